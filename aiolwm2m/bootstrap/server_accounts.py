"""The LwM2M server account a bootstrap configuration provisions, kept in step with that
server's security store.

A configuration whose Security instance hands a device PSK, RPK or X.509 credentials for an
LwM2M server is only half of the provisioning: the server must also accept exactly those
credentials for the endpoint, or the device, once bootstrapped, is refused at registration.
:class:`ServerAccounts` installs them in the server's security store in the step that
stores the configuration, and when the configuration goes, removes them if asked to (and
otherwise says that they stay). The credentials a device presents to the Bootstrap-Server
itself (``bootstrap_credentials``) have nothing to do with that store: they live with the
configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiolwm2m.store.interfaces import SecurityStore
from aiolwm2m.store.records import SecurityInfo

from .configuration import (
    DEFAULT_ENDPOINT,
    ConfigurationConflict,
    ConfigurationError,
    EndpointConfig,
)
from .credentials import CERTIFICATE, PSK, RPK, AccountCredentials, BootstrapCredentials

_SECURE_MODES = {PSK: "PSK", RPK: "RPK", CERTIFICATE: "X.509"}
#: Where an operator removes credentials of the LwM2M server by hand.
_BY_HAND = "the Security page or DELETE /api/security/{endpoint}"

Undo = Callable[[], Awaitable[None]]


def principal(info: SecurityInfo) -> str:
    """The identity the LwM2M server binds ``info``'s endpoint to (``psk:dev-1``...)."""
    return BootstrapCredentials.from_security_info(info).identity


@dataclass(frozen=True, slots=True)
class CredentialsChange:
    """What storing or removing a configuration did to the endpoint's entry in the LwM2M
    server's security store."""

    endpoint: str
    #: The credentials the server now accepts for the endpoint: the provisioned account.
    installed: SecurityInfo | None = None
    #: Different credentials (or another key) the store held before, now replaced.
    replaced: SecurityInfo | None = None
    #: Credentials removed together with the configuration.
    removed: SecurityInfo | None = None
    #: Credentials the store still holds that no configuration provisions any more.
    kept: SecurityInfo | None = None
    #: One sentence for the operator about ``kept``.
    note: str = ""


def provisioned_account(endpoint: str, config: EndpointConfig) -> SecurityInfo | None:
    """The security-store entry the LwM2M server needs for ``endpoint`` to register with the
    PSK, RPK or X.509 account ``config`` writes (None: it provisions NoSec accounts only).

    Raises ConfigurationError when a secure account's resources cannot work, and
    ConfigurationConflict when it provisions several different secure accounts (the store
    binds one identity to an endpoint) or when the default configuration carries one (the
    same credentials cannot belong to every endpoint)."""
    found: dict[str, tuple[int, SecurityInfo]] = {}
    for sec in config.security:
        if sec.bootstrap_server or sec.security_mode not in _SECURE_MODES:
            continue
        try:
            account = AccountCredentials(sec.security_mode, sec.public_key_or_identity,
                                         sec.server_public_key, sec.secret_key,
                                         sec.certificate_usage, sec.sni)
            info = account.security_info(endpoint)
        except ValueError as e:  # CredentialsError, or a store record refusing the values
            raise ConfigurationError(f"security instance {sec.instance_id} "
                                     f"({_SECURE_MODES[sec.security_mode]}): {e}") from None
        previous = found.setdefault(principal(info), (sec.instance_id, info))
        if previous[1] != info:
            raise ConfigurationConflict(
                f"security instances {previous[0]} and {sec.instance_id} give the same "
                "identity different keys")
    if len(found) > 1:
        raise ConfigurationConflict(
            f"the configuration provisions {len(found)} different secure server accounts "
            f"({', '.join(sorted(found))}); the LwM2M server accepts one identity per "
            "endpoint")
    if not found:
        return None
    if endpoint == DEFAULT_ENDPOINT:
        (name,) = found
        raise ConfigurationConflict(
            f"the default configuration '*' provisions the account {name}, which the LwM2M "
            "server can bind to one endpoint only: give each device a configuration of its "
            "own")
    return next(iter(found.values()))[1]


async def _nothing() -> None:
    return None


class ServerAccounts:
    """Installs and removes provisioned accounts in the LwM2M server's security store."""

    def __init__(self, store: SecurityStore) -> None:
        self.store = store

    async def install(self, endpoint: str, config: EndpointConfig
                      ) -> tuple[CredentialsChange, Undo]:
        """Make the server accept exactly the account ``config`` provisions. Returns what
        changed and how to put the store back (if storing the configuration fails)."""
        wanted = provisioned_account(endpoint, config)
        current = self.store.get(endpoint)
        if wanted is None:
            if current is None:
                return CredentialsChange(endpoint), _nothing
            return CredentialsChange(endpoint, kept=current, note=(
                f"the LwM2M server still requires {principal(current)} of this endpoint, "
                f"which this configuration does not provision; remove them on {_BY_HAND}")
            ), _nothing
        if current == wanted:
            return CredentialsChange(endpoint, installed=wanted), _nothing
        owner = self._owner(wanted)
        if owner is not None and owner != endpoint:
            raise ConfigurationConflict(
                f"the account's identity {principal(wanted)} already belongs to endpoint "
                f"{owner!r} in the LwM2M server's security store")
        try:
            await self.store.put(wanted)
        except ValueError as e:  # taken meanwhile, or a store that checks more
            raise ConfigurationConflict(f"the LwM2M server's security store refused "
                                        f"{principal(wanted)}: {e}") from None

        async def undo() -> None:
            if current is not None:
                await self.store.put(current)
            else:
                await self.store.remove(endpoint)

        return CredentialsChange(endpoint, installed=wanted, replaced=current), undo

    def _owner(self, info: SecurityInfo) -> str | None:
        if info.psk_identity is not None:
            found = self.store.find_psk(info.psk_identity)
        elif info.rpk_public_key is not None:
            found = self.store.find_rpk(info.rpk_public_key)
        else:
            found = self.store.find_x509(info.x509_identity or "")
        return found.endpoint if found is not None else None

    async def release(self, endpoint: str, config: EndpointConfig | None, *,
                      remove: bool) -> CredentialsChange:
        """The configuration of ``endpoint`` is gone: remove the account it provisioned
        from the store when ``remove``, else report that the server still requires it.
        Credentials the configuration did not provision are never removed here."""
        current = self.store.get(endpoint)
        if current is None:
            return CredentialsChange(endpoint)
        try:
            provisioned = (provisioned_account(endpoint, config)
                           if config is not None else None)
        except ConfigurationError:
            provisioned = None
        ours = provisioned is not None and principal(provisioned) == principal(current)
        if remove and ours:
            removed = await self.store.remove(endpoint)
            return CredentialsChange(endpoint, removed=removed)
        if ours:
            note = (f"the LwM2M server still accepts {principal(current)} for this endpoint, "
                    "and requires it; remove_credentials=true removes it with the "
                    "configuration")
        else:
            note = (f"the LwM2M server still requires {principal(current)} of this endpoint; "
                    "the configuration did not provision it, so it stays: remove it on "
                    f"{_BY_HAND}")
        return CredentialsChange(endpoint, kept=current, note=note)
