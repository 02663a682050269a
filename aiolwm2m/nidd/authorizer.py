"""Registrations over NIDD bound to the device's identifier, as DTLS ones are to their
credentials (LPW-001).

Wrapped around the server's authorizer while NIDD is on:

* over NIDD, the identity is ``nidd:<identifier>``, which the network vouched for. A
  device entry that names an endpoint lets the identifier register that endpoint only;
  an endpoint with DTLS/TLS credentials in the security store cannot register over NIDD
  (it must use them); otherwise a name registered by one identifier cannot be taken by
  another (the default authorizer's rule);
* over any other transport, an endpoint a NIDD device entry names may not register: it
  belongs to that device, whose identifier no IP peer can present.

What the peer hears is the same few words as for DTLS refusals; the operator's detail
names the identifiers.
"""

from __future__ import annotations

from aiolwm2m.server.registry import Authorizer, Denial, Origin
from aiolwm2m.store.interfaces import SecurityStore
from aiolwm2m.store.records import Registration

from .devices import PRINCIPAL_PREFIX, NiddDirectory


class NiddAuthorizer:
    def __init__(self, inner: Authorizer, directory: NiddDirectory, security: SecurityStore,
                 transport: str = "nidd") -> None:
        self.inner = inner
        self.directory = directory
        self.security = security
        self.transport = transport

    def authorize(self, endpoint: str, origin: Origin,
                  current: Registration | None) -> Denial | None:
        owner = self.directory.by_endpoint.get(endpoint)
        if origin.transport != self.transport:
            if owner is not None:
                return Denial("nidd-endpoint", f"endpoint {endpoint!r} belongs to NIDD "
                              f"device {owner}; it registers over NIDD only",
                              "authentication required")
            return self.inner.authorize(endpoint, origin, current)
        identity = origin.identity or ""
        ident = identity[len(PRINCIPAL_PREFIX):]
        if owner is not None and owner != ident:
            return Denial("wrong-identity", f"endpoint {endpoint!r} belongs to NIDD device "
                          f"{owner}, not to {ident}")
        device = self.directory.devices.get(ident)
        if device is not None and device.endpoint is not None and device.endpoint != endpoint:
            return Denial("wrong-identity", f"NIDD device {ident} may register "
                          f"{device.endpoint!r} only, not {endpoint!r}")
        info = self.security.get(endpoint)
        if info is not None:
            return Denial("nidd-has-credentials", f"endpoint {endpoint!r} has credentials "
                          f"({info.principal}); {ident} cannot register it over NIDD",
                          "authentication required")
        if current is not None and current.identity is not None and (
                current.identity != identity):
            return Denial("wrong-identity", f"endpoint {endpoint!r} is bound to "
                          f"{current.identity}, not to {identity}")
        return None
