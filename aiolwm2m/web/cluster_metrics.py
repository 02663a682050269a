"""Prometheus metrics of several nodes (``aiolwm2m.cluster``): every node's own figures
as its heartbeat reports them, the cluster's totals, and this node's routing counters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aiolwm2m.server import LwM2MServer

if TYPE_CHECKING:
    from aiolwm2m.cluster.node import ClusterNode


class ClusterCollector:
    def __init__(self, server: LwM2MServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        node = cast("ClusterNode | None", self.server.cluster)
        if node is None:
            return
        alive = dict(node.membership.alive)
        alive[node.node] = {**alive.get(node.node, {}), **node.figures()}
        yield GaugeMetricFamily("lwm2m_cluster_nodes", "Live server nodes", value=len(alive))
        for name, help_text in (("registrations", "Clients registered with the node"),
                                ("observations", "Observations the node holds"),
                                ("queue_depth", "Requests the node holds for sleeping "
                                                "clients")):
            per_node = GaugeMetricFamily(f"lwm2m_cluster_node_{name}", help_text, labels=["node"])
            for member, figures in sorted(alive.items()):
                per_node.add_metric([member], float(figures.get(name) or 0))
            yield per_node
            yield GaugeMetricFamily(f"lwm2m_cluster_{name}", f"{help_text}, all live nodes",
                                    value=sum(float(f.get(name) or 0) for f in alive.values()))
        routed = CounterMetricFamily("lwm2m_cluster_routed_requests",
                                     "REST requests routed to another node (out) or served "
                                     "for one (in)", labels=["direction"])
        routed.add_metric(["out"], node.routed_out)
        routed.add_metric(["in"], node.routed_in)
        yield routed
        yield CounterMetricFamily("lwm2m_cluster_route_failures",
                                  "Routed REST requests the owner did not answer",
                                  value=node.route_failures)
        moved = CounterMetricFamily("lwm2m_cluster_devices_moved",
                                    "Devices this node took over from another node (in) or "
                                    "let go to one (out)", labels=["direction"])
        moved.add_metric(["in"], node.ownership.adopted)
        moved.add_metric(["out"], node.ownership.released)
        yield moved
        yield CounterMetricFamily("lwm2m_cluster_orphans_expired",
                                  "Registrations of dead nodes this node expired",
                                  value=node.sweeper.expired)
