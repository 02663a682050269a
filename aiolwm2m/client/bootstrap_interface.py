"""The Bootstrap interface, bootstrap server to client.

Sans-IO, like :mod:`.dm_interface`: Bootstrap-Write (PUT), Bootstrap-Read (GET on the
Server and Access Control objects), Bootstrap-Discover (GET, Accept 40), Bootstrap-Delete
(DELETE) and Bootstrap-Finish (POST /bs), which checks that the configuration is usable
(answering 4.06 Not Acceptable when it is not: an account without its Server instance, a
Security instance whose URI, security mode or key material cannot work, such as mode 4,
Certificate with EST, which this client does not implement).
"""

from __future__ import annotations

from collections.abc import Callable

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import BadRequest, MethodNotAllowed, NotAcceptable
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.formats import ContentFormat, decode_node, encode_discover
from aiolwm2m.lwm2m.path import LwM2MPath

from .access_rights import Unauthorized
from .account_security import SecurityModeError, server_target
from .discovery import bootstrap_discover
from .dm_interface import decode_error
from .instance import Instance
from .request_paths import content_response, lwm2m_path, payload_format
from .tree import ACCESS_CONTROL, SECURITY, SERVER, ObjectTree

CF = ContentFormat
_READABLE = frozenset({SERVER, ACCESS_CONTROL})


def is_bootstrap_account(inst: Instance) -> bool:
    return inst.object_id == SECURITY and bool(inst.get(1))


def configuration_problems(tree: ObjectTree) -> list[str]:
    """What makes the configuration unusable (empty when it is fine)."""
    problems: list[str] = []
    security_ssids: dict[int, Instance] = {}
    for sec in tree.instances(SECURITY):
        try:
            # URI, security mode and key material: what connecting will need.
            server_target(sec)
        except SecurityModeError as e:
            problems.append(str(e))
            continue
        if not is_bootstrap_account(sec):
            ssid = sec.get(10)
            if ssid is None:
                problems.append(f"/0/{sec.iid}: no Short Server ID")
            else:
                security_ssids[int(ssid)] = sec
    server_ssids = {int(s.get(0)) for s in tree.instances(SERVER) if s.get(0) is not None}
    for ssid in sorted(server_ssids - set(security_ssids)):
        problems.append(f"server {ssid} has no Security instance")
    if not server_ssids & set(security_ssids):
        problems.append("no LwM2M server account (Security + Server instances with one "
                        "Short Server ID)")
    return problems


class BootstrapInterface:
    def __init__(self, tree: ObjectTree, on_finish: Callable[[], None], *,
                 on_refused: Callable[[str], None] | None = None,
                 default_format: int = CF.TLV) -> None:
        self.tree = tree
        self.on_finish = on_finish
        self.on_refused = on_refused
        self.default_format = default_format
        self.writes = 0

    def handle(self, request: Message) -> Message:
        segments = request.uri_path
        if segments == ("bs",):
            if request.code != Code.POST:
                raise MethodNotAllowed("/bs takes POST (Bootstrap-Finish)")
            return self._finish(request)
        path = lwm2m_path(segments)
        code = request.code
        if code == Code.PUT:
            return self._write(request, path)
        if code == Code.GET:
            if request.accept == CF.LINK_FORMAT:
                links = bootstrap_discover(self.tree, path)
                return request.response(Code.CONTENT, encode_discover(links), CF.LINK_FORMAT)
            return self._read(request, path)
        if code == Code.DELETE:
            return self._delete(request, path)
        raise MethodNotAllowed("not a Bootstrap interface operation")

    def _write(self, request: Message, path: LwM2MPath) -> Message:
        if not path:
            raise BadRequest("Bootstrap-Write needs an object path")
        fmt = payload_format(request.content_format)
        try:
            node = decode_node(fmt, request.payload, path, self.tree.model)
        except LwM2MError as e:
            raise decode_error(e) from None
        self.tree.bootstrap_write(path, node)
        self.writes += 1
        return request.response(Code.CHANGED)

    def _read(self, request: Message, path: LwM2MPath) -> Message:
        if not path or len(path) > 2:
            raise BadRequest("Bootstrap-Read targets an object or an object instance")
        if path[0] == SECURITY:
            raise Unauthorized("the Security object cannot be read")
        if path[0] not in _READABLE:
            raise BadRequest("Bootstrap-Read is limited to the Server and Access Control "
                             "objects")
        return content_response(request, path, self.tree.read(path), self.tree.model,
                                self.default_format)

    def _delete(self, request: Message, path: LwM2MPath) -> Message:
        if len(path) > 2:
            raise BadRequest("Bootstrap-Delete targets the root, an object or an instance")
        if len(path) == 2:
            inst = self.tree.get(path[0], path[1])
            if inst is not None:
                if is_bootstrap_account(inst) or not inst.deletable:
                    raise BadRequest(f"{path} cannot be deleted")
                self.tree.remove(path[0], path[1])
            return request.response(Code.DELETED)
        oids = [path[0]] if path else list(self.tree.objects)
        for oid in oids:
            for inst in self.tree.instances(oid):
                if inst.deletable and not is_bootstrap_account(inst):
                    self.tree.remove(oid, inst.iid)
        return request.response(Code.DELETED)

    def _finish(self, request: Message) -> Message:
        problems = configuration_problems(self.tree)
        if problems:
            reason = "; ".join(problems)
            if self.on_refused is not None:
                self.on_refused(reason)
            raise NotAcceptable(reason)
        self.on_finish()
        return request.response(Code.CHANGED)
