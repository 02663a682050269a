"""Byte quotas over T8: our extension, declared, never slipped in as undeclared attributes.

T8 carries packet-level controls (``maximumPacketSize``, 429 answers; APN and serving-PLMN
rate control live in TS 24.008 / TS 29.571 and reach the device in the PCO), but nothing
counts bytes. We exchange byte quotas and the allowance left with the SCEF the way TS 29.500
clause 6.6 lets an API be extended:

* a supported-features bit, :data:`BYTE_QUOTA_FEATURE`, which the SCS/AS sets in the
  ``supportedFeatures`` of the NiddConfiguration it creates; an SCEF that implements the
  extension echoes it in its answer, and only then is the attribute below sent or read;
* one vendor-specific attribute (TS 29.500 clause 6.6.3: ``vendorSpecific-`` followed by
  the vendor's IANA enterprise number, six digits), :func:`attribute_name`, in the
  NiddConfiguration and NiddConfigurationPatch bodies::

      "vendorSpecific-000000": {"downlinkBytes": 100000, "uplinkBytes": 50000,
                                "windowSeconds": 86400,
                                "remainingDownlinkBytes": 99821}   # SCEF -> SCS/AS only

The SCEF (our emulator implements it) refuses MT data beyond the downlink byte quota with
429 (cause ``QUOTA_EXCEEDED``) and reports what is left; the uplink quota is enforced by
the server itself. ``000000`` stands in for the enterprise number until the project has
one (``ServerConfig.scef_vendor_pen``); both ends must use the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .t8_fields import T8FormatError, integer

#: Feature number (1-based) of the byte-quota extension in ``supportedFeatures``: far above
#: the handful of NIDD features TS 29.122 V18 assigns, so as not to collide with them.
BYTE_QUOTA_FEATURE: Final = 64
DEFAULT_PEN: Final = "000000"
QUOTA_EXCEEDED: Final = "QUOTA_EXCEEDED"

_bytes = integer(0, 2 ** 53)
_window = integer(1, 366 * 86400)


def attribute_name(pen: str = DEFAULT_PEN) -> str:
    if len(pen) != 6 or not pen.isdigit():
        raise ValueError("an IANA enterprise number is written as six digits")
    return f"vendorSpecific-{pen}"


@dataclass(frozen=True, slots=True)
class ByteQuota:
    """Bytes allowed per window in each direction (None: no quota that way), and what the
    SCEF reports as left."""

    downlinkBytes: int | None = None
    uplinkBytes: int | None = None
    windowSeconds: int = 86400
    remainingDownlinkBytes: int | None = None
    remainingUplinkBytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("downlinkBytes", self.downlinkBytes),
                                  ("uplinkBytes", self.uplinkBytes),
                                  ("windowSeconds", self.windowSeconds),
                                  ("remainingDownlinkBytes", self.remainingDownlinkBytes),
                                  ("remainingUplinkBytes", self.remainingUplinkBytes))
                if v is not None}

    @classmethod
    def from_json(cls, value: Any, where: str) -> ByteQuota:
        if not isinstance(value, dict):
            raise T8FormatError(where, "expected a JSON object")
        kwargs: dict[str, Any] = {}
        for name in ("downlinkBytes", "uplinkBytes", "remainingDownlinkBytes",
                     "remainingUplinkBytes"):
            if value.get(name) is not None:
                kwargs[name] = _bytes(value[name], f"{where}/{name}")
        if value.get("windowSeconds") is not None:
            kwargs["windowSeconds"] = _window(value["windowSeconds"], f"{where}/windowSeconds")
        return cls(**kwargs)


def read_quota(body: dict[str, Any], attribute: str) -> ByteQuota | None:
    raw = body.get(attribute)
    return None if raw is None else ByteQuota.from_json(raw, f"/{attribute}")
