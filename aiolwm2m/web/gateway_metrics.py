"""Metrics of gateways and their end devices, read from the server when scraped."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from aiolwm2m.server import LwM2MServer


class GatewayCollector:
    """``lwm2m_end_devices`` (all end devices the server keeps behind gateways) and
    ``lwm2m_gateway_end_devices{gateway="..."}`` (per gateway: one series per registered
    gateway, never one per end device)."""

    def __init__(self, server: LwM2MServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        started = server.started
        yield GaugeMetricFamily("lwm2m_end_devices",
                                "End devices behind gateways (from their /25)",
                                value=len(server.end_devices) if started else 0)
        per_gateway = GaugeMetricFamily("lwm2m_gateway_end_devices",
                                        "End devices behind each registered gateway",
                                        labels=["gateway"])
        if started:
            directory = server.end_devices
            for gateway in sorted(directory.gateways.values(), key=lambda r: r.endpoint):
                per_gateway.add_metric([gateway.endpoint],
                                       len(directory.by_gateway.get(gateway.id, ())))
        yield per_gateway
