"""Access Control (object 2) enforcement when the client has several LwM2M servers.

With a single server account every operation is allowed and object 2 need not exist. With
more, each object instance has an Access Control instance naming it (resources 0 and 1):
its ACL resource maps a Short Server ID to a bit mask (R=1 read/observe/write-attributes,
W=2, E=4, D=8, C=16); a server without an entry has every right when it is the Access
Control Owner (resource 3), otherwise the rights of ACL instance 0 (the default), if any. Create is
checked on the instance whose Object Instance ID is 65535. An operation without the right is
answered with 4.01 Unauthorized; Discover needs no right.
"""

from __future__ import annotations

from collections.abc import Callable

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapRequestError

from .instance import Instance
from .tree import ACCESS_CONTROL, SERVER, ObjectTree

READ, WRITE, EXECUTE, DELETE, CREATE = 1, 2, 4, 8, 16
ALL_RIGHTS = READ | WRITE | EXECUTE | DELETE | CREATE
OBJECT_LEVEL = 65535
_NAMES = {READ: "read", WRITE: "write", EXECUTE: "execute", DELETE: "delete",
          CREATE: "create"}


class Unauthorized(CoapRequestError):
    code = Code.UNAUTHORIZED


class AccessRights:
    def __init__(self, tree: ObjectTree,
                 acl_factory: Callable[[int], Instance] | None = None) -> None:
        self.tree = tree
        self.acl_factory = acl_factory

    @property
    def enforced(self) -> bool:
        return len(self.tree.objects.get(SERVER, {})) > 1

    def acl_for(self, object_id: int, instance_id: int) -> Instance | None:
        for acl in self.tree.instances(ACCESS_CONTROL):
            if acl.get(0) == object_id and acl.get(1) == instance_id:
                return acl
        return None

    def rights(self, ssid: int, object_id: int, instance_id: int) -> int:
        acl = self.acl_for(object_id, instance_id)
        if acl is None:
            return 0
        table = acl.get(2) or {}
        if ssid in table:
            return int(table[ssid])
        if acl.get(3) == ssid:
            return ALL_RIGHTS
        return int(table.get(0, 0))

    def allowed(self, ssid: int, right: int, object_id: int, instance_id: int) -> bool:
        if not self.enforced:
            return True
        if object_id == ACCESS_CONTROL:
            if right == READ:
                return True
            if right == CREATE:
                return False
            acl = self.tree.get(ACCESS_CONTROL, instance_id)
            return acl is not None and acl.get(3) == ssid
        return bool(self.rights(ssid, object_id, instance_id) & right)

    def check(self, ssid: int, right: int, object_id: int, instance_id: int | None) -> None:
        target = OBJECT_LEVEL if instance_id is None else instance_id
        if not self.allowed(ssid, right, object_id, target):
            where = f"/{object_id}" if instance_id is None else f"/{object_id}/{instance_id}"
            raise Unauthorized(f"server {ssid} has no {_NAMES[right]} right on {where}")

    def created(self, ssid: int, object_id: int, instance_id: int) -> None:
        """A server created an instance: it becomes the owner of its new ACL instance."""
        if not self.enforced or object_id == ACCESS_CONTROL or self.acl_factory is None:
            return
        acl = self.acl_factory(self.tree.free_instance_id(ACCESS_CONTROL))
        acl.store(0, object_id)
        acl.store(1, instance_id)
        acl.store(3, ssid)
        self.tree.add(acl)

    def deleted(self, object_id: int, instance_id: int) -> None:
        acl = self.acl_for(object_id, instance_id)
        if acl is not None:
            self.tree.remove(ACCESS_CONTROL, acl.iid)
