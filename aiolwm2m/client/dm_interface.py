"""The Device Management and Information Reporting interfaces, server requests to client.

Sans-IO: a complete CoAP request (block-wise already reassembled), the Short Server ID of
the server that sent it and a key for its observations go in; the response comes out, or an
awaitable of it for Execute. Mapping (LwM2M 1.1 over CoAP):

=========================  ==================================================================
GET, Accept 40             Discover
GET [Observe 0/1]          Read [Observe / cancel]
PUT with payload           Write (replace)
PUT with query only        Write-Attributes
POST /o                    Create
POST /o/i                  Write (partial update)
POST /o/i/r                Execute (or partial update of a multiple resource)
DELETE /o/i                Delete
FETCH / [Observe]          Read-Composite [Observe-Composite]
iPATCH /                   Write-Composite
=========================  ==================================================================

Errors: 4.00 malformed request, 4.01 no access right (Access Control, Security object),
4.04 unknown path, 4.05 operation not allowed on the target, 4.06 Accept not supported,
4.15 payload format not supported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import (
    BadRequest,
    CoapRequestError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    UnsupportedContentFormat,
)
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.attributes import NotificationAttributes, parse_write_attributes
from aiolwm2m.lwm2m.errors import InvalidAttribute, LwM2MError, UnsupportedFormat
from aiolwm2m.lwm2m.formats import (
    ContentFormat,
    decode_composite,
    decode_create,
    decode_node,
    decode_paths,
    encode_composite,
    encode_discover,
)
from aiolwm2m.lwm2m.nodes import LwM2MObject, Node, ObjectInstance
from aiolwm2m.lwm2m.path import LwM2MPath

from .access_rights import CREATE, DELETE, EXECUTE, READ, WRITE, AccessRights, Unauthorized
from .attribute_store import AttributeStore
from .discovery import discover
from .observations import ClientObservation, ObservationEngine
from .request_paths import (
    composite_accept,
    composite_format,
    content_response,
    lwm2m_path,
    path_list_format,
    payload_format,
)
from .tree import HIDDEN_OBJECTS, ObjectTree

CF = ContentFormat
Result = Message | Awaitable[Message]


def decode_error(e: LwM2MError) -> CoapRequestError:
    if isinstance(e, UnsupportedFormat):
        return UnsupportedContentFormat(str(e))
    return BadRequest(str(e))


class DeviceManagement:
    def __init__(self, tree: ObjectTree, attributes: AttributeStore,
                 observations: ObservationEngine, access: AccessRights,
                 server_defaults: Callable[[int], NotificationAttributes],
                 *, default_format: int = CF.TLV,
                 default_composite_format: int = CF.SENML_CBOR) -> None:
        self.tree = tree
        self.attributes = attributes
        self.observations = observations
        self.access = access
        self.server_defaults = server_defaults
        self.default_format = default_format
        self.default_composite_format = default_composite_format

    def effective_attributes(self, ssid: int, path: LwM2MPath) -> NotificationAttributes:
        return self.attributes.effective(ssid, path, self.server_defaults(ssid))

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: Message, ssid: int, peer: Hashable, now: float) -> Result:
        """Answer one request; raises CoapRequestError for the error responses."""
        path = lwm2m_path(request.uri_path)
        if path and path[0] in HIDDEN_OBJECTS:
            raise Unauthorized(f"object {path[0]} is not accessible to LwM2M servers")
        code = request.code
        if code == Code.GET:
            if request.accept == CF.LINK_FORMAT:
                return self._discover(request, path, ssid)
            return self._read(request, path, ssid, peer, now)
        if code == Code.PUT:
            if not request.payload and request.content_format is None:
                return self._write_attributes(request, path, ssid, now)
            return self._write(request, path, ssid, replace=True)
        if code == Code.POST:
            if len(path) == 1:
                return self._create(request, path, ssid)
            if len(path) == 2:
                return self._write(request, path, ssid, replace=False)
            if len(path) == 3:
                return self._post_resource(request, path, ssid)
            raise MethodNotAllowed(f"POST is not allowed on {path}")
        if code == Code.DELETE:
            return self._delete(request, path, ssid, now)
        if code == Code.FETCH:
            if path:
                raise MethodNotAllowed("Read-Composite (FETCH) targets the root path")
            return self._read_composite(request, ssid, peer, now)
        if code == Code.IPATCH:
            if path:
                raise MethodNotAllowed("Write-Composite (iPATCH) targets the root path")
            return self._write_composite(request, ssid)
        raise MethodNotAllowed(f"method {code} is not an LwM2M operation")

    # -- Read / Observe -------------------------------------------------------------------

    def read_node(self, path: LwM2MPath, ssid: int) -> Node:
        if not path:
            raise MethodNotAllowed("Read needs an object, instance or resource path")
        if len(path) == 1:
            self.tree.locate(path)
            instances = {i.iid: i.to_node() for i in self.tree.instances(path[0])
                         if self.access.allowed(ssid, READ, path[0], i.iid)}
            if self.access.enforced and not instances and self.tree.instances(path[0]):
                raise Unauthorized(f"server {ssid} may read no instance of /{path[0]}")
            return LwM2MObject(path[0], instances)
        self.tree.locate(LwM2MPath(*path[:2]))
        self.access.check(ssid, READ, path[0], path[1])
        return self.tree.read(path)

    def _content(self, request: Message, path: LwM2MPath, node: Node) -> Message:
        return content_response(request, path, node, self.tree.model, self.default_format)

    def _read(self, request: Message, path: LwM2MPath, ssid: int, peer: Hashable,
              now: float) -> Message:
        key = (peer, request.token)
        observe = request.observe
        existing = self.observations.get(key)
        response = self._content(request, path, self.read_node(path, ssid))
        if observe == 0 and not (existing is not None and existing.request is request):
            self.observations.add(key, ssid, (path,), False, request, now)
        elif observe == 1:
            self.observations.remove(key)
        return response

    def render_notification(self, obs: ClientObservation) -> Message:
        """The current representation for an observation (a CoAP response to its request)."""
        try:
            if obs.composite:
                return self._composite_content(obs.request, obs.paths, obs.ssid)
            return self._content(obs.request, obs.paths[0], self.read_node(obs.paths[0],
                                                                          obs.ssid))
        except CoapRequestError as e:
            return obs.request.response(e.code, e.diagnostic.encode(), 0)

    # -- Discover / Write-Attributes -------------------------------------------------------

    def _discover(self, request: Message, path: LwM2MPath, ssid: int) -> Message:
        links = discover(self.tree, path, lambda p: self.attributes.level(ssid, p))
        return request.response(Code.CONTENT, encode_discover(links), CF.LINK_FORMAT)

    def _write_attributes(self, request: Message, path: LwM2MPath, ssid: int,
                          now: float) -> Message:
        if not path:
            raise MethodNotAllowed("Write-Attributes needs an object, instance or resource")
        if not request.uri_query:
            raise BadRequest("a PUT without payload or attributes is not an LwM2M operation")
        self.tree.locate(path)
        if len(path) >= 2:
            self.access.check(ssid, READ, path[0], path[1])
        try:
            update = parse_write_attributes(request.uri_query)
            resource = None
            if len(path) >= 3:
                inst = self.tree.instance(path)
                resource = inst.resource_model(path[2])
            self.attributes.apply(ssid, path, update, resource)
        except InvalidAttribute as e:
            raise BadRequest(str(e)) from None
        self.observations.attributes_changed(now)
        return request.response(Code.CHANGED)

    # -- Write / Create / Delete / Execute ------------------------------------------------

    def _decode(self, request: Message, path: LwM2MPath) -> Node:
        fmt = payload_format(request.content_format)
        try:
            return decode_node(fmt, request.payload, path, self.tree.model)
        except LwM2MError as e:
            raise decode_error(e) from None

    def _write(self, request: Message, path: LwM2MPath, ssid: int, *, replace: bool
               ) -> Message:
        if len(path) < 2:
            raise MethodNotAllowed("Write targets an object instance or a resource")
        self.tree.locate(LwM2MPath(*path[:2]))
        self.access.check(ssid, WRITE, path[0], path[1])
        node = self._decode(request, path)
        self.tree.write(path, node, replace=replace)
        return request.response(Code.CHANGED)

    def _post_resource(self, request: Message, path: LwM2MPath, ssid: int) -> Result:
        inst = self.tree.instance(path)
        rm = inst.resource_model(path[2])
        if rm is None:
            raise NotFound(f"{path} does not exist")
        if rm.executable:
            return self._execute(request, path, ssid)
        if rm.multiple and rm.writable:
            return self._write(request, path, ssid, replace=False)
        raise MethodNotAllowed(f"{path} is not executable")

    def _execute(self, request: Message, path: LwM2MPath, ssid: int) -> Awaitable[Message]:
        inst = self.tree.executable(path)
        self.access.check(ssid, EXECUTE, path[0], path[1])
        try:
            arguments = request.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("Execute arguments are not UTF-8 text") from None

        async def run() -> Message:
            try:
                await inst.execute_resource(path[2], arguments)
            except ValueError as e:
                raise BadRequest(str(e)) from None
            return request.response(Code.CHANGED)

        return run()

    def _create(self, request: Message, path: LwM2MPath, ssid: int) -> Message:
        self.tree.locate(path)
        self.access.check(ssid, CREATE, path[0], None)
        fmt = payload_format(request.content_format)
        # A payload without the instance level (LwM2M 1.1) leaves the id to the client: the
        # lowest free one, answered in Location-Path.
        free_id = self.tree.free_instance_id(path[0])
        try:
            decoded = decode_create(fmt, request.payload, path, self.tree.model, free_id)
        except LwM2MError as e:
            raise decode_error(e) from None
        if not isinstance(decoded, LwM2MObject) or len(decoded.instances) != 1:
            raise BadRequest("Create carries exactly one object instance")
        node: ObjectInstance = next(iter(decoded.instances.values()))
        inst = self.tree.create(path[0], node)
        self.access.created(ssid, path[0], inst.iid)
        response = request.response(Code.CREATED)
        response.location_path = (str(path[0]), str(inst.iid))
        return response

    def _delete(self, request: Message, path: LwM2MPath, ssid: int, now: float) -> Message:
        if len(path) != 2:
            raise MethodNotAllowed("Delete targets an object instance")
        self.tree.locate(path)
        self.access.check(ssid, DELETE, path[0], path[1])
        self.tree.delete(path)
        self.access.deleted(path[0], path[1])
        self.attributes.forget_under(path)
        self.observations.remove_under(path)
        return request.response(Code.DELETED)

    # -- composite ------------------------------------------------------------------------

    def _paths(self, request: Message) -> list[LwM2MPath]:
        fmt = path_list_format(request.content_format)
        try:
            paths = decode_paths(fmt, request.payload)
        except LwM2MError as e:
            raise BadRequest(f"bad path list: {e}") from None
        if not paths:
            raise BadRequest("the path list is empty")
        for p in paths:
            if not p:
                raise BadRequest("Read-Composite of the root path is not supported")
            if p[0] in HIDDEN_OBJECTS:
                raise Unauthorized(f"object {p[0]} is not accessible to LwM2M servers")
        return paths

    def _composite_content(self, request: Message, paths: tuple[LwM2MPath, ...] | list[
            LwM2MPath], ssid: int) -> Message:
        fmt = composite_accept(request.accept, self.default_composite_format)
        nodes: dict[LwM2MPath, Node] = {}
        for p in paths:
            try:
                nodes[p] = self.read_node(p, ssid)
            except NotFound:
                continue  # a missing path is left out of the answer
        if not nodes:
            raise NotFound("none of the requested paths exists")
        try:
            payload = encode_composite(fmt, nodes, self.tree.model)
        except UnsupportedFormat as e:
            raise NotAcceptable(str(e)) from None
        return request.response(Code.CONTENT, payload, fmt)

    def _read_composite(self, request: Message, ssid: int, peer: Hashable,
                        now: float) -> Message:
        paths = tuple(self._paths(request))
        key = (peer, request.token)
        existing = self.observations.get(key)
        response = self._composite_content(request, paths, ssid)
        if request.observe == 0 and not (existing is not None and existing.request is request):
            self.observations.add(key, ssid, paths, True, request, now)
        elif request.observe == 1:
            self.observations.remove(key)
        return response

    def _write_composite(self, request: Message, ssid: int) -> Message:
        fmt = composite_format(request.content_format)
        try:
            values = decode_composite(fmt, request.payload, None, self.tree.model)
        except LwM2MError as e:
            raise decode_error(e) from None
        if not values:
            raise BadRequest("Write-Composite carries no value")
        for p in values:
            if len(p) < 3:
                raise BadRequest(f"Write-Composite writes resources, not {p}")
            if p[0] in HIDDEN_OBJECTS:
                raise Unauthorized(f"object {p[0]} is not accessible to LwM2M servers")
            self.tree.locate(LwM2MPath(*p[:2]))
            self.access.check(ssid, WRITE, p[0], p[1])
            inst = self.tree.instance(p)
            rm = inst.resource_model(p[2])
            if rm is None or p[2] not in inst.fields:
                raise NotFound(f"{p} does not exist")
            if not rm.writable:
                raise MethodNotAllowed(f"{p} is not writable")
        for p, node in values.items():
            self.tree.write(p, node, replace=True)
        return request.response(Code.CHANGED)
