"""How the server's API names an end device: its gateway's endpoint and its prefix."""

from __future__ import annotations

from aiolwm2m.lwm2m.prefixed_path import check_prefix

__all__ = ["EndDeviceName"]


class EndDeviceName(str):
    """``EndDeviceName("gw-1", "dev1")``, text ``"gw-1/dev1"``: usable wherever the
    server's API takes an endpoint name (``server.read(EndDeviceName("gw-1", "dev1"),
    "/3303/0")``), and what events and queued requests of an end device carry.

    It is a distinct type, not a naming convention: the server resolves it among the end
    devices of gateway ``gw-1`` only, so an ordinary device that registered the endpoint
    name ``"gw-1/dev1"`` can never receive requests meant for the end device (nor the
    other way round). The prefix cannot hold a ``/``, so the text splits unambiguously at
    its last one.
    """

    __slots__ = ()

    def __new__(cls, gateway: str, prefix: str) -> EndDeviceName:
        check_prefix(prefix)
        return super().__new__(cls, f"{gateway}/{prefix}")

    @property
    def gateway(self) -> str:
        return self.rpartition("/")[0]

    @property
    def prefix(self) -> str:
        return self.rpartition("/")[2]

    def __repr__(self) -> str:
        return f"EndDeviceName({self.gateway!r}, {self.prefix!r})"

    def __reduce__(self) -> tuple[type[EndDeviceName], tuple[str, str]]:
        return (EndDeviceName, (self.gateway, self.prefix))
