"""Plain CoAP nodes (no LwM2M of their own) fronted as end devices.

::

    node = CoapNodeDevice("boiler", ("2001:db8::7", 5683), {
        "/3303/0/5700": "/temperature",      # observed: the node's notifications update it
        "/3311/0/5850": "/light",            # On/Off: a server's Write becomes a PUT
    })
    gateway.add_end_device(node)

Each mapped LwM2M resource is backed by one CoAP resource of the node. When the gateway
starts, it observes them (or reads them once, for a node that does not do Observe), so the
LwM2M server's Reads are answered from the node's last values and its observations follow
the node's notifications. A Write of a mapped resource is a PUT to the node, an Execute a
POST, both before the server gets its answer: a node that refuses makes the server's
request fail with the node's code, and an unreachable one with 5.03. Values travel as
text/plain (CBOR and opaque are understood from the node as well).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError, CoapRequestError, ServiceUnavailable
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import Exchange
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.formats import ContentFormat, decode_node, encode_node
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.nodes import ResourceInstance, SingleResource
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.udp import UdpEndpoint

from .end_device import Result, TreeEndDevice, end_device_model
from .proxied_objects import ForwardedInstance, proxied_class

log = logging.getLogger(__name__)
_bad_values = LogThrottle(log, interval=30.0, burst=5)

__all__ = ["CoapNodeDevice"]

CF = ContentFormat
_UNDERSTOOD: Final = (CF.TEXT, CF.CBOR, CF.OPAQUE)
#: Longest value a node may send for one resource (a larger one is ignored).
MAX_NODE_VALUE: Final = 1024


@dataclass(slots=True)
class _Binding:
    path: LwM2MPath
    uri_path: tuple[str, ...]
    exchange: Exchange | None = None
    observed: bool = False


class _NodeSink:
    """Receives the node's notifications of one resource (set straight into the tree)."""

    def __init__(self, device: CoapNodeDevice, binding: _Binding) -> None:
        self.device = device
        self.binding = binding
        self.first: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    def on_response(self, msg: Message) -> None:
        if not self.first.done():
            self.first.set_result(msg)
            return
        self.device.take(self.binding, msg)

    def on_error(self, error: BaseException) -> None:
        if not self.first.done():
            self.first.set_exception(error)
        self.binding.observed = False


class CoapNodeDevice(TreeEndDevice):
    def __init__(self, prefix: str, address: tuple[str, int],
                 resources: Mapping[str | LwM2MPath, str], *, device_id: str | None = None,
                 model: ModelRegistry | None = None, observe: bool = True,
                 timeout: float = 10.0) -> None:
        registry = model if model is not None else end_device_model()
        bindings: list[_Binding] = []
        instances: dict[tuple[int, int], ForwardedInstance] = {}
        for lwm2m_path, node_path in resources.items():
            path = (lwm2m_path if isinstance(lwm2m_path, LwM2MPath)
                    else LwM2MPath.parse(lwm2m_path))
            if len(path) != 3:
                raise ValueError(f"{path}: map resources (/object/instance/resource)")
            key = (path[0], path[1])
            if key not in instances:
                instances[key] = proxied_class(registry, path[0])(path[1])
            segments = tuple(s for s in node_path.strip("/").split("/") if s)
            bindings.append(_Binding(path, segments))
        super().__init__(prefix, instances.values(), device_id=device_id, model=registry)
        for inst in instances.values():
            inst.forward = self._forward
        #: The node's CoAP address.
        self.address = address
        self.observe = observe
        self.timeout = timeout
        self.bindings = {b.path: b for b in bindings}
        self.endpoint: UdpEndpoint | None = None
        self._pending: list[tuple[ForwardedInstance, int, Any, Any]] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open a socket towards the node and observe (or read) every mapped resource."""
        if self.endpoint is None:
            host = "::" if ":" in self.address[0] else "0.0.0.0"
            self.endpoint = await UdpEndpoint.create(host, 0, site=Site())
        for binding in self.bindings.values():
            try:
                await self._follow(binding)
            except (CoapError, TimeoutError, OSError) as e:
                log.warning("end device %s: %s of the node: %s", self.prefix,
                            "/" + "/".join(binding.uri_path), e or "timed out")

    async def stop(self) -> None:
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            for binding in self.bindings.values():
                if binding.exchange is not None:
                    endpoint.forget(binding.exchange)
                    binding.exchange = None
            await endpoint.close()

    async def _follow(self, binding: _Binding) -> None:
        endpoint = self.endpoint
        assert endpoint is not None
        request = Message.request(Code.GET, binding.uri_path)
        if not self.observe:
            self.take(binding, await endpoint.request(request, self.address,
                                                      timeout=self.timeout))
            return
        request.observe = 0
        request.token = endpoint.new_token()
        sink = _NodeSink(self, binding)
        binding.exchange = await endpoint.observe_with(request, self.address, sink)
        first = await asyncio.wait_for(sink.first, self.timeout)
        binding.observed = first.observe is not None
        if not binding.observed:
            endpoint.forget(binding.exchange)
            binding.exchange = None
        self.take(binding, first)

    # -- values from the node -------------------------------------------------------------

    def take(self, binding: _Binding, msg: Message) -> None:
        """A value from the node (a response or a notification) into the tree."""
        if msg.code != Code.CONTENT or len(msg.payload) > MAX_NODE_VALUE:
            return
        fmt = msg.content_format if msg.content_format is not None else CF.TEXT
        if fmt not in _UNDERSTOOD:
            return
        try:
            node = decode_node(fmt, msg.payload, binding.path, self.tree.model)
        except LwM2MError as e:
            _bad_values.warning(self.prefix, "end device %s: value of %s from the node: %s",
                                self.prefix, binding.path, e)
            return
        if isinstance(node, SingleResource | ResourceInstance):
            inst = self.tree.get(binding.path[0], binding.path[1])
            if inst is not None:
                inst.set(binding.path[2], node.value)

    # -- requests of the LwM2M server -----------------------------------------------------

    def _forward(self, inst: ForwardedInstance, rid: int, value: Any, arguments: str
                 ) -> Awaitable[None] | None:
        binding = self.bindings.get(LwM2MPath(inst.object_id, inst.iid, rid))
        if binding is None:
            return None  # not the node's: kept at the gateway
        if value is None:  # an Execute: a POST to the node, awaited by the Execute
            return self._to_node(Message.request(
                Code.POST, binding.uri_path, payload=arguments.encode("utf-8"),
                content_format=CF.TEXT if arguments else None))
        # A Write: sent once the whole request is decoded (see handle); the value it
        # replaces comes back if the node refuses.
        self._pending.append((inst, rid, value, inst.get(rid)))
        return None

    def handle(self, request: Message, ssid: int, peer: Hashable, now: float) -> Result:
        self._pending = []
        result = super().handle(request, ssid, peer, now)
        pending, self._pending = self._pending, []
        if not pending or not isinstance(result, Message):
            return result
        return self._send_writes(pending, result)

    async def _send_writes(self, pending: list[tuple[ForwardedInstance, int, Any, Any]],
                           response: Message) -> Message:
        for index, (inst, rid, value, _old) in enumerate(pending):
            path = LwM2MPath(inst.object_id, inst.iid, rid)
            rm = inst.resource_model(rid)
            assert rm is not None
            payload = encode_node(CF.TEXT, path, SingleResource(rid, rm.type, value),
                                  self.tree.model)
            try:
                await self._to_node(Message.request(Code.PUT, self.bindings[path].uri_path,
                                                     payload=payload, content_format=CF.TEXT))
            except CoapRequestError:
                for back, brid, _value, old in pending[index:]:
                    back.store(brid, old)  # the node keeps what it had
                raise
        return response

    async def _to_node(self, request: Message) -> None:
        endpoint = self.endpoint
        if endpoint is None:
            raise ServiceUnavailable(f"end device {self.prefix} is not connected")
        try:
            reply = await endpoint.request(request, self.address, timeout=self.timeout)
        except (CoapError, TimeoutError, OSError):
            raise ServiceUnavailable(f"end device {self.prefix} did not answer") from None
        if not 64 <= reply.code < 96:
            code = reply.code if 128 <= reply.code < 192 else Code.SERVICE_UNAVAILABLE
            raise CoapRequestError(f"end device {self.prefix} refused it", code)
