"""Client configuration, and how the client is provisioned.

LwM2M 1.1 requirement OSR-002 rules out factory bootstrap: the normal path is a
Bootstrap-Server (``bootstrap_uri``), from which the client learns its LwM2M servers. A
directly configured server (:meth:`ClientConfig.development`) is a development convenience
that pre-provisions the Security and Server objects the way a factory bootstrap would; it
is named as such everywhere it appears.

Either URI may be ``coap://``, ``coaps://`` (DTLS), ``coap+tcp://`` or ``coaps+tcp://``
(TLS); a secure one needs the account's credentials (``bootstrap_security`` /
``development_security``), e.g. ``AccountSecurity(PskCredentials(b"dev-1", key))`` or simply
the credentials object itself::

    ClientConfig("dev-1", bootstrap_uri="coaps://bs.example:5684",
                 bootstrap_security=PskCredentials(b"dev-1", bytes.fromhex("00112233...")))
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.uri import parse_uri
from aiolwm2m.security.credentials import PskCredentials, RpkCredentials, X509Credentials

from .account_security import BEARER_SCHEMES, AccountSecurity
from .backoff import RetryPolicy
from .clock import Clock, LoopClock
from .download_trust import download_context
from .registration import CLIENT_LWM2M_VERSIONS, announced_formats

if TYPE_CHECKING:
    from aiolwm2m.nidd.attachment import NiddAttachment


@dataclass
class ClientConfig:
    endpoint: str
    #: The Bootstrap-Server (normal provisioning path), e.g. ``coap://bs.example:5683``.
    bootstrap_uri: str | None = None
    #: DEVELOPMENT ONLY: an LwM2M server configured directly (factory bootstrap).
    development_server_uri: str | None = None
    development_short_server_id: int = 1
    #: Credentials of the bootstrap account (for a coaps:// or coaps+tcp:// bootstrap_uri).
    bootstrap_security: AccountSecurity | PskCredentials | RpkCredentials | X509Credentials \
        | None = None
    #: DEVELOPMENT ONLY: credentials for development_server_uri.
    development_security: AccountSecurity | PskCredentials | RpkCredentials \
        | X509Credentials | None = None
    lifetime: int = 300
    binding: str = "U"
    queue_mode: bool = False
    #: Queue mode: how long the client stays reachable after it last spoke (the TS
    #: default is CoAP's MAX_TRANSMIT_WAIT, 93 s).
    awake_time: float = 93.0
    host: str = "::"
    port: int = 0
    transmission: TransmissionParameters = DEFAULT_PARAMETERS
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: How long a client-initiated bootstrap waits for Bootstrap-Finish after the 2.04.
    bootstrap_timeout: float = 120.0
    #: Before a client-initiated bootstrap, wait this long for the bootstrap server to
    #: start one (server-initiated bootstrap); 0 bootstraps at once.
    server_initiated_wait: float = 0.0
    #: ``pct`` of the Bootstrap-Request: the format the bootstrap server should use.
    preferred_content_format: int | None = None
    #: The LwM2M version the client registers as: "1.1", or "1.2", which changes only what
    #: the Register announces (a list of content formats instead of one).
    lwm2m_version: str = "1.1"
    #: The content formats the Register's root link names (``ct``): None for the default
    #: (1.1: SenML JSON, 110; 1.2: every format the client handles); under 1.1 at most
    #: one; () names none (servers then assume TLV). See :mod:`.registration`.
    content_formats: tuple[int, ...] | None = None
    #: Overall bound on one request to a server (None: the CoAP retransmission limit).
    request_timeout: float | None = None
    #: Reach every server through a SCEF over NIDD instead of IP (binding N;
    #: ``aiolwm2m.nidd.attachment.NiddAttachment``: the SCEF and our identity there).
    nidd: NiddAttachment | None = None
    #: PEM CA certificates trusted for https:// firmware downloads, besides the system's.
    firmware_trust_pem: bytes | None = None
    clock: Clock = field(default_factory=LoopClock)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not self.endpoint:
            raise ValueError("the client needs an endpoint name")
        if self.bootstrap_uri is None and self.development_server_uri is None:
            raise ValueError("give bootstrap_uri (normal path) or, for development only, "
                             "development_server_uri")
        if self.lifetime <= 0:
            raise ValueError("lifetime must be positive")
        if self.lwm2m_version not in CLIENT_LWM2M_VERSIONS:
            raise ValueError(f"lwm2m_version is one of {', '.join(CLIENT_LWM2M_VERSIONS)}, "
                             f"not {self.lwm2m_version!r}")
        announced_formats(self.lwm2m_version, self.content_formats)
        if self.firmware_trust_pem is not None:
            download_context(self.firmware_trust_pem)  # fails here, not at the download
        for name, uri in (("bootstrap", self.bootstrap_uri),
                          ("development", self.development_server_uri)):
            security = getattr(self, f"{name}_security")
            if security is not None and not isinstance(security, AccountSecurity):
                security = AccountSecurity(security)
                setattr(self, f"{name}_security", security)
            if uri is None:
                if security is not None:
                    raise ValueError(f"{name}_security is given without its URI")
                continue
            parsed = parse_uri(uri)
            secure = parsed.secure
            if secure and security is None:
                raise ValueError(f"{uri} needs credentials ({name}_security)")
            if parsed.scheme in BEARER_SCHEMES and isinstance(
                    getattr(security, "credentials", None), PskCredentials):
                continue  # a PSK as an h2c bearer token (trusted networks only)
            if not secure and security is not None:
                raise ValueError(f"{uri} carries no security: use coaps:// or coaps+tcp:// "
                                 f"with {name}_security")

    @property
    def announced_content_formats(self) -> tuple[int, ...]:
        """What the Register's root link names (``ct``)."""
        return announced_formats(self.lwm2m_version, self.content_formats)

    @classmethod
    def development(cls, endpoint: str, server_uri: str, **kwargs: object) -> ClientConfig:
        """DEVELOPMENT ONLY: a client talking to ``server_uri`` without a bootstrap server
        (factory bootstrap, which OSR-002 excludes from deployments)."""
        return cls(endpoint, development_server_uri=server_uri, **kwargs)  # type: ignore[arg-type]
