"""The objects a client starts with: standard instances, and its first server accounts.

The normal path provisions only a Bootstrap-Server account (a Security instance with the
Bootstrap-Server flag); the development path adds a Security and a Server instance for a
directly configured LwM2M server, which is what a factory bootstrap would do. Either
carries the security mode and key material of the configured credentials.
"""

from __future__ import annotations

from .account_security import AccountSecurity, security_values
from .bootstrap_interface import is_bootstrap_account
from .config import ClientConfig
from .instance import Instance
from .objects import (
    AccessControlInstance,
    ConnectivityMonitoringInstance,
    ConnectivityStatisticsInstance,
    DeviceInstance,
    FirmwareUpdateInstance,
    LocationInstance,
    SecurityInstance,
    ServerInstance,
)
from .tree import SECURITY, SERVER, ObjectTree


def standard_instances(config: ClientConfig, given: set[int]) -> list[Instance]:
    """Instances of objects 3-7 the application did not supply itself."""
    defaults: dict[int, Instance] = {
        3: DeviceInstance(0, serial_number=config.endpoint),
        4: ConnectivityMonitoringInstance(0),
        5: FirmwareUpdateInstance(0),
        6: LocationInstance(0),
        7: ConnectivityStatisticsInstance(0),
    }
    return [inst for oid, inst in defaults.items() if oid not in given]


def install(tree: ObjectTree, config: ClientConfig, objects: list[Instance]) -> None:
    for cls in (SecurityInstance, ServerInstance, AccessControlInstance):
        tree.register_class(cls)
    given = {inst.object_id for inst in objects}
    for inst in [*standard_instances(config, given), *objects]:
        tree.add(inst, announce=False)
    if config.bootstrap_uri is not None and not any(
            is_bootstrap_account(s) for s in tree.instances(SECURITY)):
        tree.add(SecurityInstance(tree.free_instance_id(SECURITY),
                                  server_uri=config.bootstrap_uri, bootstrap_server=True,
                                  **security_values(_account(config.bootstrap_security))),
                 announce=False)
    if config.development_server_uri is not None:
        ssid = config.development_short_server_id
        tree.add(SecurityInstance(tree.free_instance_id(SECURITY),
                                  server_uri=config.development_server_uri,
                                  bootstrap_server=False, short_server_id=ssid,
                                  **security_values(_account(config.development_security))),
                 announce=False)
        tree.add(ServerInstance(tree.free_instance_id(SERVER), short_server_id=ssid,
                                lifetime=config.lifetime, binding=config.binding),
                 announce=False)


def _account(security: object) -> AccountSecurity | None:
    # ClientConfig.__post_init__ turned bare credentials into an AccountSecurity.
    assert security is None or isinstance(security, AccountSecurity)
    return security
