"""``lwm2m_nidd_*`` Prometheus metrics, read from the NIDD service when scraped (nothing
while the server runs without a SCEF)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


class NiddCollector:
    def __init__(self, server: Any) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        service = self.server.nidd
        if service is None:
            return
        transport = service.endpoint.stats
        for direction in ("uplink", "downlink"):
            yield CounterMetricFamily(f"lwm2m_nidd_{direction}_packets",
                                      f"CoAP packets carried over NIDD, {direction}",
                                      value=transport[f"{direction}_packets"])
            yield CounterMetricFamily(f"lwm2m_nidd_{direction}_bytes",
                                      f"Bytes carried over NIDD, {direction}",
                                      value=transport[f"{direction}_bytes"])
        yield CounterMetricFamily("lwm2m_nidd_uplink_duplicates",
                                  "Uplink packets whose CoAP message id was seen before "
                                  "(re-sent or replayed)",
                                  value=transport["uplink_duplicates"])
        outcomes = CounterMetricFamily("lwm2m_nidd_downlink_outcomes",
                                       "Downlink datagrams by what became of them",
                                       labels=["outcome"])
        downlink = service.downlink
        for key, value in sorted(downlink.stats.items()):
            if not key.startswith("uplink_quota"):
                outcomes.add_metric([key], value)
        yield outcomes
        quota = CounterMetricFamily("lwm2m_nidd_quota_refusals",
                                    "Packets refused or held back by a device quota",
                                    labels=["direction", "kind"])
        for kind in ("packets", "bytes"):
            quota.add_metric(["uplink", kind], downlink.stats[f"uplink_quota_{kind}"])
            quota.add_metric(["downlink", kind], downlink.stats[f"quota_{kind}"])
        yield quota
        yield GaugeMetricFamily("lwm2m_nidd_downlink_queued",
                                "Downlink datagrams waiting in the server", value=downlink.queued)
        yield GaugeMetricFamily("lwm2m_nidd_pending_deliveries",
                                "Deliveries the SCEF holds (201) awaiting their status",
                                value=len(downlink.pending))
        errors = CounterMetricFamily("lwm2m_nidd_t8_errors", "T8 error answers and "
                                     "unreachable SCEF, by status (0: no answer) and cause",
                                     labels=["status", "cause"])
        for (code, cause), value in sorted(service.client.errors.items()):
            errors.add_metric([str(code), cause[:64]], value)
        yield errors
        configs = GaugeMetricFamily("lwm2m_nidd_configurations", "NIDD configurations by state",
                                    labels=["state"])
        states: dict[str, int] = {"pending": 0, "active": 0, "failed": 0}
        for entry in service.configurations.entries.values():
            states[entry.state] = states.get(entry.state, 0) + 1
        for state, value in states.items():
            configs.add_metric([state], value)
        yield configs
        yield GaugeMetricFamily("lwm2m_nidd_scef_reachable",
                                "1 when the last T8 request got an answer",
                                value=1 if service.client.reachable else 0)
