"""Server nodes for the multi-node tests: in this process (several ``LwM2MServer`` with their
REST API on real sockets, sharing one Redis namespace), with short heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx

from aiolwm2m.cluster.node import ClusterNode
from aiolwm2m.cluster.settings import ClusterSettings
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

TOKEN = "cluster-test-token"
QUICK = TransmissionParameters(ack_timeout=0.5, ack_random_factor=1.0, max_retransmit=2)
#: Heartbeats every second; a stopped node is dead after 3 s (one event loop carries
#: several nodes here, and the machine is shared: shorter would flap).
FAST = ClusterSettings(node_ttl=3.0, sweep_interval=3600.0, route_timeout=20.0)


@dataclass
class Node:
    name: str
    server: LwM2MServer
    web: WebServer
    http: httpx.AsyncClient

    @property
    def cluster(self) -> ClusterNode:
        return cast(ClusterNode, self.server.cluster)

    @property
    def coap(self) -> str:
        return f"coap://127.0.0.1:{self.server.port}"

    async def stop(self) -> None:
        await self.http.aclose()
        await self.web.stop()
        await self.server.stop()


async def start_node(url: str, name: str, *, settings: ClusterSettings = FAST,
                     **config: Any) -> Node:
    config.setdefault("port", 0)
    server = LwM2MServer(ServerConfig(host="::", store=url, node_id=name, cluster=settings,
                                      rd=False, values_store="off", transmission=QUICK,
                                      **config))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=30)
    return Node(name, server, web, http)


async def start_nodes(url: str, names: list[str], **config: Any) -> list[Node]:
    nodes = [await start_node(url, name, **config) for name in names]
    # Every node sees every other before the test begins (rather than at its next beat).
    for node in nodes:
        await node.cluster.membership.beat()
    assert all(set(n.cluster.membership.alive) == set(names) for n in nodes)
    return nodes


async def stop_all(nodes: list[Node]) -> None:
    """Stop every node; one that does not stop within 30 s fails the test with the stacks
    of every task (a shutdown that hangs is a defect, and must not hang the whole run)."""
    for node in nodes:
        stopping = asyncio.ensure_future(node.stop())
        done, _ = await asyncio.wait({stopping}, timeout=30)
        if not done:
            buf = io.StringIO()
            for task in asyncio.all_tasks():
                task.print_stack(limit=12, file=buf)
            stopping.cancel()
            raise AssertionError(f"node {node.name} did not stop within 30 s; tasks:\n"
                                 + buf.getvalue())
        with contextlib.suppress(Exception):
            stopping.result()


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def fleet_for(uri: str, count: int, *, prefix: str = "sim-", seed: int = 1,
              lifetime: int = 300, **profile: Any) -> Fleet:
    return Fleet(FleetConfig(count, uri, rate=2000, seed=seed, transmission=QUICK,
                             profile=FleetProfile(endpoint_prefix=prefix, lifetime=lifetime,
                                                  **profile)))
