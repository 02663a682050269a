"""Object 11, LwM2M APN Connection Profile, as a NIDD device keeps it.

Resources 24 (PDN Type: 0, Non-IP), 25 to 29 (rate control) and 31 to 33 (RDS application
ids and ports, OSR-001) are the NIDD ones:

* 25 APN Rate Control (with 27 Uplink Time Unit) is what the network said in the PCO (the
  emulator's ATTACHED); 26 Serving PLMN Rate control is what the server may write: the
  uplink packet quota it enforces per 27's unit (``aiolwm2m.nidd.quota_report``). The
  client keeps its uplink within the smaller of the two;
* 31/32/33: the application id and the RDS destination (SCEF side) and source (UE side)
  ports a bootstrap server provisions so that, when several LwM2M servers share one SCEF,
  each account's packets reach its own server.
"""

from __future__ import annotations

from aiolwm2m.client.instance import Instance, resource

NON_IP = 0
#: Seconds per Uplink Time Unit value (TS 24.008 clause 10.5.6.3.2; 0: unrestricted).
TIME_UNITS = {1: 60.0, 2: 3600.0, 3: 86400.0, 4: 7 * 86400.0}


class ApnProfileInstance(Instance, object_id=11):
    profile_name = resource(0, default="nidd")
    authentication_type = resource(4, default=0)
    total_bytes_sent = resource(13, default=0)
    total_bytes_received = resource(14, default=0)
    total_packets_sent = resource(23, default=0)
    pdn_type = resource(24, default=NON_IP)
    apn_rate_control = resource(25)
    serving_plmn_rate_control = resource(26)
    uplink_time_unit = resource(27)
    apn_rate_control_exception = resource(28)
    exception_time_unit = resource(29)
    rds_application_id = resource(31)
    rds_destination_port = resource(32)
    rds_source_port = resource(33)

    def uplink_limit(self) -> tuple[int, float] | None:
        """(packets, per seconds) the device may send: the stricter of 25 and 26, per 27's
        unit; None when neither applies."""
        seconds = TIME_UNITS.get(int(self.get(27) or 0))
        if seconds is None:
            return None
        limits = [int(v) for v in (self.get(25), self.get(26)) if v]
        return (min(limits), seconds) if limits else None

    def rds_ports(self) -> tuple[int, int] | None:
        """(UE port, SCEF port) of the first RDS application provisioned, if any."""
        dest, src = self.get(32), self.get(33)
        if isinstance(dest, dict) and isinstance(src, dict) and dest and src:
            first = min(dest)
            if first in src:
                return int(src[first]), int(dest[first])
        return None
