"""How a device is attached to the network when it speaks NIDD (``ClientConfig.nidd``):
the SCEF (emulator) it reaches and the identity it has there. Plain data, so the client's
configuration can name it without importing the transport."""

from __future__ import annotations

from dataclasses import dataclass

from aiolwm2m.coap.params import TransmissionParameters

from .t8_fields import T8FormatError, external_id, msisdn

#: The client's CoAP timers over NIDD: packets spend seconds in the network, and a
#: retransmission that overtakes its original only costs radio time.
CLIENT_NIDD_TRANSMISSION = TransmissionParameters(ack_timeout=10.0, ack_random_factor=1.5,
                                                  max_retransmit=4, response_timeout=600.0,
                                                  empty_ack_delay=3.0)
#: The Server URI of a NIDD account: the device has no IP, so there is nothing to resolve
#: (``.invalid`` is reserved for names that must never resolve, RFC 6761).
NIDD_SERVER_URI = "coap://nidd.invalid"


@dataclass(frozen=True)
class NiddAttachment:
    #: The SCEF emulator's URL (its T8 HTTP root): the UE socket is found from there
    #: (``GET /emulator/v1/info``) unless ``ue_link`` names it.
    scef_url: str
    #: The device's External Identifier (``local@domain``) or MSISDN.
    ident: str
    #: External Group Identifiers the network knows the device under (the HSS's view,
    #: carried in the emulator's ATTACH).
    groups: tuple[str, ...] = ()
    ue_link: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        try:
            if "@" in self.ident:
                external_id(self.ident, "ident")
            else:
                msisdn(self.ident, "ident")
            for g in self.groups:
                external_id(g, "groups")
        except T8FormatError as e:
            raise ValueError(f"NIDD {e.param}: {e.reason}") from None
