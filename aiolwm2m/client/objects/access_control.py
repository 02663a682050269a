"""Object 2, LwM2M Access Control: who may do what on which object instance.

Enforcement lives in :mod:`aiolwm2m.client.access_rights`; Object ID and Object Instance ID
(0, 1) are read-only to servers but set by the client and the bootstrap server.
"""

from __future__ import annotations

from ..instance import Instance, resource


class AccessControlInstance(Instance, object_id=2):
    target_object = resource(0)
    target_instance = resource(1)
    acl = resource(2, default={})
    owner = resource(3)
