"""Telling a NIDD device its uplink quota through Object 11 (LPW-008/009), where it applies.

Object 11's rate-control resources count uplink packets per time unit (TS 24.008: a
minute, an hour, a day or a week): 25 and 28 are the network's (read-only), 26 "Serving
PLMN Rate control" with 27 "Uplink Time Unit" are writable. So when a device with an uplink
packet quota registers over NIDD and lists an instance of Object 11, the server writes the
quota to that instance's 26 and the unit to 27, and the device keeps its uplink within it
(our client does). A quota whose window is not one of those units, or a byte quota, has no
place in Object 11: it is enforced by the server alone (and reported in the metrics and the
REST API).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiolwm2m.store.records import Registration

from .quotas import QuotaSpec

if TYPE_CHECKING:
    from aiolwm2m.server.server import LwM2MServer

log = logging.getLogger(__name__)

APN_PROFILE = 11
#: Uplink Time Unit values by window length (seconds).
UNITS = {60: 1, 3600: 2, 86400: 3, 7 * 86400: 4}


def rate_control(spec: QuotaSpec | None) -> tuple[int, int] | None:
    """(packets, Uplink Time Unit) for a quota that Object 11 can express."""
    if spec is None or spec.uplink_packets is None:
        return None
    unit = UNITS.get(spec.window)
    if unit is None:
        return None
    return spec.uplink_packets, unit


def apn_instance(reg: Registration) -> int | None:
    """The first Object 11 instance the registration lists."""
    ids = sorted(o.instance_id for o in reg.objects
                 if o.object_id == APN_PROFILE and o.instance_id is not None)
    return ids[0] if ids else None


async def report_quota(server: LwM2MServer, reg: Registration, spec: QuotaSpec | None
                       ) -> bool:
    """Write the quota into the device's Object 11 (26, 27); True when it was written."""
    control = rate_control(spec)
    iid = apn_instance(reg)
    if control is None or iid is None:
        return False
    packets, unit = control
    try:
        response = await server.write(reg.endpoint, f"/11/{iid}", {26: packets, 27: unit},
                                      replace=False)
    except Exception as e:  # the device may be gone or asleep by now; nothing depends on it
        log.info("quota report to %s failed: %s", reg.endpoint, e)
        return False
    if response.code >> 5 != 2:
        log.info("quota report to %s refused: %s", reg.endpoint, response.code_text)
        return False
    return True
