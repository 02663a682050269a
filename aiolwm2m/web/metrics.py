"""Prometheus metrics of one server, in a registry of its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aiolwm2m.lwm2m.operations import Operation, Response
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import Event, Refused

from .gateway_metrics import GatewayCollector
from .values_metrics import ValuesCollector


class ServerMetrics:
    def __init__(self, server: LwM2MServer) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        devices = Gauge("lwm2m_registered_devices", "Clients currently registered",
                        registry=r)
        devices.set_function(lambda: len(server.registrations))
        queue = Gauge("lwm2m_queue_depth", "Requests waiting for sleeping clients",
                      registry=r)
        queue.set_function(lambda: server.queue.depth if server.started else 0)
        observations = Gauge("lwm2m_observations", "Observations the server holds",
                             registry=r)
        observations.set_function(lambda: len(server.observations) if server.started else 0)
        self.requests = Counter("lwm2m_requests", "Requests sent to clients",
                                ["operation", "code"], registry=r)
        self.latency = Histogram("lwm2m_request_duration_seconds",
                                 "Time from sending a request to its response",
                                 ["operation"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                          10, 30, 93))
        self.registration_events = Counter("lwm2m_registration_events",
                                           "Registration interface events", ["event"],
                                           registry=r)
        self.notifications = Counter("lwm2m_notifications", "Notifications received",
                                     registry=r)
        self.sends = Counter("lwm2m_sends", "Send operations received", registry=r)
        self.refusals = Counter("lwm2m_refusals", "Requests refused, by reason", ["reason"],
                                registry=r)
        # Label children by (operation, code): prometheus_client looks labels up under a
        # lock with argument checks, a few microseconds that every REST Read paid.
        self._counted: dict[tuple[str, object], Any] = {}
        self._timed: dict[str, Any] = {}
        r.register(StoreWriterCollector(server))
        r.register(GatewayCollector(server))
        r.register(ValuesCollector(server))
        server.request_hooks.append(self.on_request)
        server.events.subscribe(self.on_event)

    def on_request(self, op: Operation, response: Response | None, seconds: float,
                   error: BaseException | None) -> None:
        kind = op.kind
        outcome: object = response.code if response is not None else (
            "timeout" if error is not None else "none")
        counter = self._counted.get((kind, outcome))
        if counter is None:
            code = response.code_text if response is not None else str(outcome)
            counter = self._counted[(kind, outcome)] = self.requests.labels(kind, code)
        counter.inc()
        timer = self._timed.get(kind)
        if timer is None:
            timer = self._timed[kind] = self.latency.labels(kind)
        timer.observe(seconds)

    def on_event(self, ev: Event) -> None:
        if ev.name == "notification":
            self.notifications.inc()
        elif ev.name == "send":
            self.sends.inc()
        elif isinstance(ev, Refused):
            self.refusals.labels(ev.reason).inc()
        elif ev.name in ("registered", "updated", "deregistered", "expired",
                         "end-device-added", "end-device-changed", "end-device-removed"):
            self.registration_events.labels(ev.name).inc()


class StoreWriterCollector:
    """``lwm2m_store_writer_restarts`` (how often the SQLite writer process was restarted)
    and ``lwm2m_store_writer_up`` (1 while it takes writes), read from the writer when
    scraped. Without a SQLite store: 0 restarts, up."""

    def __init__(self, server: LwM2MServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        writer = self.server.store_writer
        yield CounterMetricFamily("lwm2m_store_writer_restarts",
                                  "SQLite writer process restarts after it died",
                                  value=writer.restarts if writer is not None else 0)
        yield GaugeMetricFamily("lwm2m_store_writer_up",
                                "1 while the SQLite writer process takes writes, 0 while it "
                                "restarts", value=1 if writer is None or writer.state == "ok"
                                else 0)
