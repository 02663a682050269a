"""Object 1, LwM2M Server: one instance per LwM2M server account.

Its executes act on the client: Disable (4) de-registers and stays away for the Disable
Timeout (5), Registration Update Trigger (8) sends an Update, Bootstrap-Request Trigger (9)
starts a client-initiated bootstrap. Mute Send (23) forbids Send to this server.
"""

from __future__ import annotations

from aiolwm2m.coap.errors import ServiceUnavailable

from ..control import ClientControl
from ..instance import Instance, execute, resource

# H: LwM2M over HTTP/2 (aiolwm2m.http2).
_BINDING_LETTERS = frozenset("UTSNH")
DEFAULT_DISABLE_TIMEOUT = 86400


class ServerInstance(Instance, object_id=1):
    short_server_id = resource(0)
    lifetime = resource(1, default=86400)
    default_min_period = resource(2)
    default_max_period = resource(3)
    disable_timeout = resource(5, default=DEFAULT_DISABLE_TIMEOUT)
    notification_storing = resource(6, default=True)
    binding = resource(7, default="U")
    last_bootstrapped = resource(12)
    bootstrap_on_registration_failure = resource(16, default=True)
    communication_retry_count = resource(17)
    communication_retry_timer = resource(18)
    mute_send = resource(23, default=False)

    def _control(self) -> ClientControl:
        control = self.control
        if control is None:
            raise ServiceUnavailable("the client is not running")
        return control

    @lifetime.on_write
    def _check_lifetime(self, value: int) -> None:
        if value <= 0:
            raise ValueError(f"lifetime must be positive, not {value}")

    @binding.on_write
    def _check_binding(self, value: str) -> None:
        letters = value.replace("Q", "")
        if not letters or any(c not in _BINDING_LETTERS for c in letters):
            raise ValueError(f"{value!r} is not a binding mode")

    @execute(4)
    def disable(self, arguments: str) -> None:
        seconds = self.get(5)
        self._control().disable_server(int(self.get(0) or 0),
                                       float(DEFAULT_DISABLE_TIMEOUT if seconds is None
                                             else seconds))

    @execute(8)
    def registration_update_trigger(self, arguments: str) -> None:
        self._control().trigger_update(int(self.get(0) or 0))

    @execute(9)
    def bootstrap_request_trigger(self, arguments: str) -> None:
        self._control().trigger_bootstrap()
