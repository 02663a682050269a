"""The server's NIDD settings (``ServerConfig.nidd``); the SCEF itself is
``ServerConfig.scef_url``."""

from __future__ import annotations

from dataclasses import dataclass

from aiolwm2m.coap.params import TransmissionParameters

from .devices import NiddDevice, NiddGroup
from .quotas import QuotaSpec

#: CoAP timers for NIDD: a packet may spend seconds in the network each way (LPW-002), so a
#: first retransmission after 2 s would only duplicate it. CON requests retransmit after
#: 15-22 s, give up after MAX_TRANSMIT_WAIT (~12 min); a slow handler's empty ACK waits 5 s
#: (every message costs a T8 round trip and the device's radio time).
NIDD_TRANSMISSION = TransmissionParameters(ack_timeout=15.0, ack_random_factor=1.5,
                                           max_retransmit=4, response_timeout=600.0,
                                           empty_ack_delay=5.0)


@dataclass(frozen=True)
class NiddSettings:
    #: The SCS/AS identifier in every T8 path (``/3gpp-nidd/v1/{scsAsId}/...``).
    scs_as_id: str = "aiolwm2m"
    #: Bearer token for T8 requests (what an SCEF's OAuth 2.0 client credentials grant
    #: would yield); None sends none.
    token: str | None = None
    #: Base URL the SCEF posts notifications to: the product's HTTP server as the SCEF
    #: reaches it (``aiolwm2m server`` derives it from --http-host/--http-port). The
    #: callback path adds a secret, ``<base>/nidd/v1/callbacks/<secret>``.
    callback_url: str | None = None
    #: That secret (random at each start when None; configurations the SCEF keeps are moved
    #: to the new URL at start).
    callback_secret: str | None = None
    devices: tuple[NiddDevice, ...] = ()
    groups: tuple[NiddGroup, ...] = ()
    #: Time to live of downlink data without a TTL of its own (per request or device): sent
    #: as ``maximumLatency``, and what the server waits before dropping it from its queue.
    ttl: float = 3600.0
    #: Lifetime asked for each NIDD configuration (``duration``); it is refreshed (PATCH)
    #: when less than ``refresh_margin`` is left.
    configuration_duration: float = 86400.0
    refresh_margin: float = 600.0
    #: False: requests to devices go NON, the SCEF's delivery status being their
    #: acknowledgement (LPW-002). True: CON with the NIDD timers below.
    confirmable: bool = False
    transmission: TransmissionParameters = NIDD_TRANSMISSION
    #: Largest callback body read (413 beyond); a notification's data is one packet.
    max_callback_body: int = 64 << 10
    #: Downlink datagrams waiting per device and in all (a device's oldest is dropped, and
    #: reported, when its queue is full; new ones are refused when all are).
    max_queued_per_device: int = 256
    max_queued: int = 200_000
    #: T8 requests in flight at once (the HTTP connection pool).
    max_in_flight: int = 64
    #: Back-off while the SCEF is unreachable or answers 5xx/429 without Retry-After.
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: Seconds one T8 request may take.
    request_timeout: float = 10.0
    #: Quota of devices and groups that have none of their own (None: unlimited).
    quota: QuotaSpec | None = None
    #: OSR-001: the application id this server reserves RDS ports under (ManagePort) and
    #: the (UE port, SCEF port) pair it is reached at, when several servers share a SCEF.
    app_id: str | None = None
    rds_ports: tuple[int, int] | None = None
    #: IANA enterprise number of the byte-quota extension attribute (see
    #: ``aiolwm2m.nidd.quota_extension``); both ends must agree.
    vendor_pen: str = "000000"


DEFAULT_NIDD_SETTINGS = NiddSettings()
