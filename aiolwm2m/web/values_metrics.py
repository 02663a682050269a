"""Metrics of the values store: ``lwm2m_values_recorded``, ``lwm2m_values_dropped`` (the
store could not keep up, or its writer was restarting) and ``lwm2m_values_skipped`` (larger
than ``values_max_value_bytes``), read when scraped; all 0 with ``values_store`` off."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from aiolwm2m.server import LwM2MServer


class ValuesCollector:
    def __init__(self, server: LwM2MServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        values = self.server.values
        recorder = self.server.value_recorder
        stats = values.stats if values is not None else None
        yield CounterMetricFamily("lwm2m_values_recorded", "Values kept (read, observed, sent)",
                                  value=stats.recorded if stats is not None else 0)
        yield CounterMetricFamily("lwm2m_values_dropped", "Values not kept: the values store "
                                  "could not keep up", value=stats.dropped if stats else 0)
        yield CounterMetricFamily("lwm2m_values_skipped", "Values not kept for their size",
                                  value=recorder.skipped if recorder is not None else 0)
