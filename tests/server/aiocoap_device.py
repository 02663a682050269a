"""An LwM2M device played by aiocoap, an independent CoAP stack, for server tests.

Its CoAP side (message layer, block-wise, observe) is entirely aiocoap's; only the payload
encodings reuse aiolwm2m's content formats, which are themselves checked against payloads of
third-party clients in tests/lwm2m.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.interfaces
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.linkformat import Link, format_link_format
from aiolwm2m.lwm2m import (
    ContentFormat,
    LwM2MError,
    LwM2MObject,
    LwM2MPath,
    ModelRegistry,
    MultipleResource,
    Node,
    ObjectInstance,
    ResourceInstance,
    ResourceType,
    SingleResource,
    decode_composite,
    decode_node,
    decode_paths,
    encode_composite,
    encode_node,
)
from aiolwm2m.lwm2m.formats import decode_create

CF = ContentFormat
S = ResourceType
_BIND_LOCKS: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


def _bind_lock() -> asyncio.Lock:
    return _BIND_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())


def device_instance() -> ObjectInstance:
    return ObjectInstance.from_resources(0, [
        SingleResource(0, S.STRING, "aiocoap-works"),
        SingleResource(1, S.STRING, "Fixture-1"),
        SingleResource(2, S.STRING, "SN-0001"),
        SingleResource(3, S.STRING, "1.0.0"),
        MultipleResource(6, S.INTEGER, {0: 1, 1: 5}),
        MultipleResource(7, S.INTEGER, {0: 3800, 1: 5000}),
        SingleResource(9, S.INTEGER, 87),
        MultipleResource(11, S.INTEGER, {0: 0}),
        SingleResource(13, S.TIME, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        SingleResource(14, S.STRING, "+01:00"),
        SingleResource(16, S.STRING, "U"),
    ])


@dataclass
class _Observation:
    paths: tuple[LwM2MPath, ...]
    composite: bool
    accept: int | None
    request: aiocoap.Message
    handle: Any


@dataclass
class DeviceState:
    objects: dict[int, dict[int, ObjectInstance]] = field(default_factory=dict)
    attributes: dict[str, list[str]] = field(default_factory=dict)
    executed: list[tuple[str, str]] = field(default_factory=list)
    creates: list[bytes] = field(default_factory=list)  # raw Create payloads, in order


class AiocoapDevice(aiocoap.interfaces.ObservableResource):
    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.model = ModelRegistry.with_core_objects()
        self.state = DeviceState()
        self.state.objects[1] = {0: ObjectInstance.from_resources(0, [
            SingleResource(0, S.INTEGER, 1), SingleResource(1, S.INTEGER, 300),
            SingleResource(7, S.STRING, "U")])}
        self.state.objects[3] = {0: device_instance()}
        self.state.objects[3303] = {0: ObjectInstance.from_resources(0, [
            SingleResource(5700, S.FLOAT, 21.5), SingleResource(5701, S.STRING, "Cel")])}
        self.observations: list[_Observation] = []
        self.context: aiocoap.Context | None = None
        self.location: tuple[str, ...] = ()
        self.server_uri = ""
        self.requests: list[tuple[str, str]] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        # aiocoap binds with SO_REUSEPORT, and Linux may hand the same ephemeral port to two
        # such sockets, which then share (and lose) each other's datagrams. Pick the port
        # with a plain socket, and bind one device at a time.
        # UDP only: by default aiocoap also listens for TCP and TLS on that port number,
        # which may belong to another connection's ephemeral TCP port.
        async with _bind_lock():
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
                probe.bind(("::1", 0))
                port = probe.getsockname()[1]
            self.context = await aiocoap.Context.create_server_context(self, bind=("::1", port),
                                                                       transports=["udp6"])

    async def stop(self) -> None:
        if self.context is not None:
            context, self.context = self.context, None
            await context.shutdown()

    def object_links(self) -> bytes:
        links = [Link("/", [("rt", "oma.lwm2m"), ("ct", "60 110 112 11542 11543 11544")]),
                 Link("/1", [("ver", "1.1")])]
        for oid in sorted(self.state.objects):
            for iid in sorted(self.state.objects[oid]):
                links.append(Link(f"/{oid}/{iid}"))
        return format_link_format(links).encode()

    async def register(self, server_uri: str, lifetime: int = 300, *, queue: bool = False,
                       version: str = "1.1") -> aiocoap.Message:
        assert self.context is not None
        self.server_uri = server_uri
        query = f"ep={self.endpoint}&lt={lifetime}&lwm2m={version}&b=U" + ("&Q" if queue else "")
        req = aiocoap.Message(code=C.POST, uri=f"{server_uri}/rd?{query}",
                              payload=self.object_links(), content_format=40)
        resp = await self.context.request(req).response
        if resp.code == C.CREATED:
            self.location = tuple(resp.opt.location_path)
        return resp

    async def update(self, query: str = "", with_links: bool = False) -> aiocoap.Message:
        assert self.context is not None
        uri = f"{self.server_uri}/{'/'.join(self.location)}" + (f"?{query}" if query else "")
        req = aiocoap.Message(code=C.POST, uri=uri,
                              payload=self.object_links() if with_links else b"")
        if with_links:
            req.opt.content_format = 40
        return await self.context.request(req).response

    async def deregister(self) -> aiocoap.Message:
        assert self.context is not None
        uri = f"{self.server_uri}/{'/'.join(self.location)}"
        return await self.context.request(aiocoap.Message(code=C.DELETE, uri=uri)).response

    async def send(self, paths: Iterable[str], fmt: int = CF.SENML_CBOR) -> aiocoap.Message:
        assert self.context is not None
        nodes = {LwM2MPath.parse(p): self.node_at(LwM2MPath.parse(p)) for p in paths}
        payload = encode_composite(fmt, nodes)
        req = aiocoap.Message(code=C.POST, uri=f"{self.server_uri}/dp", payload=payload,
                              content_format=fmt)
        return await self.context.request(req).response

    # -- the data -------------------------------------------------------------------------

    def node_at(self, path: LwM2MPath) -> Node:
        objects = self.state.objects
        if path[0] not in objects:
            raise KeyError(path)
        if len(path) == 1:
            return LwM2MObject(path[0], objects[path[0]])
        inst = objects[path[0]][path[1]]
        if len(path) == 2:
            return inst
        res = inst.resources[path[2]]
        if len(path) == 3:
            return res
        assert isinstance(res, MultipleResource)
        return ResourceInstance(path[3], res.type, res.instances[path[3]])

    def set_value(self, path: str, value: Any) -> None:
        p = LwM2MPath.parse(path)
        inst = self.state.objects[p[0]][p[1]]
        old = inst.resources[p[2]]
        new = dict(inst.resources)
        new[p[2]] = SingleResource(p[2], old.type, value)
        self.state.objects[p[0]][p[1]] = ObjectInstance(p[1], new)
        self.notify(p)

    def _write(self, path: LwM2MPath, node: Node, replace: bool) -> None:
        objects = self.state.objects
        if len(path) == 1:
            assert isinstance(node, LwM2MObject)
            for iid, inst in node.instances.items():
                self._write(path.child(iid), inst, replace)
            return
        if len(path) == 2:
            assert isinstance(node, ObjectInstance)
            current = objects[path[0]].get(path[1])
            if current is None or replace:
                objects[path[0]][path[1]] = node
            else:
                merged = dict(current.resources)
                merged.update(node.resources)
                objects[path[0]][path[1]] = ObjectInstance(path[1], merged)
            return
        inst = objects[path[0]][path[1]]
        resources = dict(inst.resources)
        if len(path) == 3:
            assert isinstance(node, SingleResource | MultipleResource)
            resources[path[2]] = node
        else:
            assert isinstance(node, ResourceInstance)
            res = resources[path[2]]
            assert isinstance(res, MultipleResource)
            values = dict(res.instances)
            values[path[3]] = node.value
            resources[path[2]] = MultipleResource(path[2], res.type, values)
        objects[path[0]][path[1]] = ObjectInstance(path[1], resources)

    # -- observe --------------------------------------------------------------------------

    def notify(self, changed: LwM2MPath) -> None:
        for obs in list(self.observations):
            if any(p.is_prefix_of(changed) or changed.is_prefix_of(p) for p in obs.paths):
                obs.handle.trigger()

    async def add_observation(self, request: aiocoap.Message, serverobservation: Any) -> None:
        try:
            paths, composite = self._observed_paths(request)
        except (LwM2MError, KeyError, ValueError):
            return
        obs = _Observation(paths, composite, request.opt.accept, request, serverobservation)
        self.observations.append(obs)
        serverobservation.accept(lambda: self.observations.remove(obs))

    def _observed_paths(self, request: aiocoap.Message) -> tuple[tuple[LwM2MPath, ...], bool]:
        if request.code == C.FETCH:
            return tuple(decode_paths(request.opt.content_format, request.payload)), True
        return (self._path(request),), False

    # -- CoAP -----------------------------------------------------------------------------

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

    def _path(self, request: aiocoap.Message) -> LwM2MPath:
        segments = request.opt.uri_path
        return LwM2MPath.parse("/" + "/".join(segments)) if segments else LwM2MPath()

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        try:
            path = self._path(request)
        except LwM2MError as e:
            return aiocoap.Message(code=C.BAD_REQUEST, payload=str(e).encode())
        self.requests.append((str(request.code), str(path)))
        try:
            return self._dispatch(request, path)
        except KeyError:
            return aiocoap.Message(code=C.NOT_FOUND)
        except LwM2MError as e:
            return aiocoap.Message(code=C.BAD_REQUEST, payload=str(e).encode())

    def _content(self, path: LwM2MPath, node: Node, accept: int | None) -> aiocoap.Message:
        fmt = accept if accept is not None else CF.TLV
        try:
            payload = encode_node(fmt, path, node)
        except LwM2MError:
            return aiocoap.Message(code=C.NOT_ACCEPTABLE)
        return aiocoap.Message(code=C.CONTENT, payload=payload, content_format=fmt)

    def _dispatch(self, request: aiocoap.Message, path: LwM2MPath) -> aiocoap.Message:
        code = request.code
        cf = request.opt.content_format
        if code == C.GET:
            if request.opt.accept == CF.LINK_FORMAT:
                return self._discover(path)
            return self._content(path, self.node_at(path), request.opt.accept)
        if code == C.PUT:
            if request.opt.uri_query and not request.payload:
                self.state.attributes[str(path)] = list(request.opt.uri_query)
                return aiocoap.Message(code=C.CHANGED)
            node = decode_node(cf, request.payload, path, self.model)
            self._write(path, node, replace=True)
            self.notify(path)
            return aiocoap.Message(code=C.CHANGED)
        if code == C.POST:
            if len(path) == 3:
                res = self.model.resource(path[0], path[2])
                if res is None or not res.executable:
                    return aiocoap.Message(code=C.METHOD_NOT_ALLOWED)
                self.state.executed.append((str(path), request.payload.decode()))
                return aiocoap.Message(code=C.CHANGED)
            if len(path) == 1:
                # The payload may leave the instance id to us: the lowest free one.
                existing = self.state.objects.setdefault(path[0], {})
                free = next(i for i in range(65535) if i not in existing)
                self.state.creates.append(request.payload)
                created = decode_create(cf, request.payload, path, self.model, free)
                assert isinstance(created, LwM2MObject)
                inst = next(iter(created.instances.values()))
                existing[inst.id] = inst
                return aiocoap.Message(code=C.CREATED, location_path=(str(path[0]),
                                                                      str(inst.id)))
            node = decode_node(cf, request.payload, path, self.model)
            self._write(path, node, replace=False)
            self.notify(path)
            return aiocoap.Message(code=C.CHANGED)
        if code == C.DELETE:
            if len(path) != 2 or path[1] not in self.state.objects.get(path[0], {}):
                return aiocoap.Message(code=C.NOT_FOUND)
            del self.state.objects[path[0]][path[1]]
            return aiocoap.Message(code=C.DELETED)
        if code == C.FETCH:
            paths = decode_paths(cf, request.payload)
            nodes = {p: self.node_at(p) for p in paths}
            fmt = request.opt.accept or CF.SENML_CBOR
            return aiocoap.Message(code=C.CONTENT, payload=encode_composite(fmt, nodes),
                                   content_format=fmt)
        if code == C.iPATCH:
            for p, node in decode_composite(cf, request.payload, None, self.model).items():
                self._write(p, node, replace=True)
                self.notify(p)
            return aiocoap.Message(code=C.CHANGED)
        return aiocoap.Message(code=C.METHOD_NOT_ALLOWED)

    def _discover(self, path: LwM2MPath) -> aiocoap.Message:
        links: list[Link] = []
        node = self.node_at(path)
        if isinstance(node, LwM2MObject):
            links.append(Link(str(path)))
            for iid, inst in node.instances.items():
                links.append(Link(f"{path}/{iid}"))
                links.extend(self._resource_links(path.child(iid), inst))
        elif isinstance(node, ObjectInstance):
            links.append(Link(str(path)))
            links.extend(self._resource_links(path, node))
        else:
            links.extend(self._resource_links(path.parent(), None, only=path[2]))
        for link in links:
            for q in self.state.attributes.get(link.target, []):
                k, _, v = q.partition("=")
                link.params.append((k, v or None))
        return aiocoap.Message(code=C.CONTENT, payload=format_link_format(links).encode(),
                               content_format=40)

    def _resource_links(self, ipath: LwM2MPath, inst: ObjectInstance | None,
                        only: int | None = None) -> list[Link]:
        if inst is None:
            inst = self.state.objects[ipath[0]][ipath[1]]
        out = []
        for rid, res in sorted(inst.resources.items()):
            if only is not None and rid != only:
                continue
            params: list[tuple[str, str | None]] = []
            if isinstance(res, MultipleResource):
                params.append(("dim", str(len(res.instances))))
            out.append(Link(f"{ipath}/{rid}", params))
        return out


async def started_device(endpoint: str) -> AiocoapDevice:
    dev = AiocoapDevice(endpoint)
    await dev.start()
    return dev


async def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)
