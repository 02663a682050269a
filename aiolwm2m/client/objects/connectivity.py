"""Objects 4, Connectivity Monitoring, and 7, Connectivity Statistics.

Statistics count the client's own traffic between Start (7/0/6) and Stop (7/0/7): Tx/Rx Data
in kilobytes and the message sizes come from the transport's counters.
"""

from __future__ import annotations

from typing import Any

from ..instance import Instance, execute, resource

ETHERNET = 41


class ConnectivityMonitoringInstance(Instance, object_id=4):
    network_bearer = resource(0, default=ETHERNET)
    available_network_bearer = resource(1, default={0: ETHERNET})
    radio_signal_strength = resource(2, default=0)
    link_quality = resource(3)
    ip_addresses = resource(4, default={0: "127.0.0.1"})
    router_ip_addresses = resource(5)
    link_utilization = resource(6)
    apn = resource(7)
    cell_id = resource(8)
    smnc = resource(9)
    smcc = resource(10)


class ConnectivityStatisticsInstance(Instance, object_id=7):
    sms_tx_counter = resource(0, default=0)
    sms_rx_counter = resource(1, default=0)
    tx_data = resource(2)
    rx_data = resource(3)
    max_message_size = resource(4)
    average_message_size = resource(5)
    collection_period = resource(8, default=0)

    def __init__(self, iid: int = 0, **values: Any) -> None:
        super().__init__(iid, **values)
        self.collecting = False
        self._start: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._frozen: tuple[int, int, int, int] | None = (0, 0, 0, 0)

    def _counters(self) -> tuple[int, int, int, int]:
        if self._frozen is not None and not self.collecting:
            return self._frozen
        control = self.control
        now = control.traffic() if control is not None else self._start
        return tuple(a - b for a, b in zip(now, self._start, strict=True))  # type: ignore[return-value]

    @tx_data.reader
    def _tx(self) -> int:
        return self._counters()[0] // 1024

    @rx_data.reader
    def _rx(self) -> int:
        return self._counters()[1] // 1024

    @average_message_size.reader
    def _average(self) -> int:
        tx, rx, ntx, nrx = self._counters()
        return (tx + rx) // max(1, ntx + nrx)

    @execute(6)
    def start(self, arguments: str) -> None:
        control = self.control
        self._start = control.traffic() if control is not None else (0, 0, 0, 0)
        self._frozen = None
        self.collecting = True

    @execute(7)
    def stop(self, arguments: str) -> None:
        self._frozen = self._counters()
        self.collecting = False
