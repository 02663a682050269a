"""Object 0, LwM2M Security: one instance per server account, the bootstrap one included.

Only the bootstrap server reads or writes it; the Device Management interface refuses it.
"""

from __future__ import annotations

from ..instance import Instance, resource

NO_SEC, PSK, RPK, CERTIFICATE, EST = 3, 0, 1, 2, 4


class SecurityInstance(Instance, object_id=0):
    server_uri = resource(0, default="")
    bootstrap_server = resource(1, default=False)
    security_mode = resource(2, default=NO_SEC)
    public_key_or_identity = resource(3, default=b"")
    server_public_key = resource(4, default=b"")
    secret_key = resource(5, default=b"")
    short_server_id = resource(10)
    client_hold_off_time = resource(11)
    bootstrap_server_account_timeout = resource(12)
    matching_type = resource(13)
    sni = resource(14)
    certificate_usage = resource(15)
    ciphersuites = resource(16)
