"""``/api/cluster``: the nodes serving as one (``aiolwm2m.cluster``), each with its figures,
and the cluster's totals. A single server answers with itself alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from aiolwm2m.server import LwM2MServer

from .deps import get_server

if TYPE_CHECKING:
    from aiolwm2m.cluster.node import ClusterNode

router = APIRouter(prefix="/api", tags=["server"])
#: The figures each node's heartbeat carries that add up to cluster totals.
TOTALLED = ("registrations", "observations", "queue_depth", "routed_in", "routed_out")


class NodeOut(BaseModel):
    node: str
    registrations: int
    observations: int
    queue_depth: int
    routed_in: int = 0
    routed_out: int = 0
    adopted: int = 0
    released: int = 0
    watching: bool = False
    http: str | None = None
    started: float | None = None


class ClusterOut(BaseModel):
    #: This node's id; None for a single server.
    node: str | None
    nodes: list[NodeOut]
    totals: dict[str, int]


def cluster_view(server: LwM2MServer) -> dict[str, Any]:
    node = cast("ClusterNode | None", server.cluster)
    if node is None:
        alone: dict[str, Any] = {"node": "", "registrations": len(server.registrations),
                                 "observations": (len(server.observations)
                                                  if server.started else 0),
                                 "queue_depth": server.queue.depth if server.started else 0}
        return {"node": None, "nodes": [alone],
                "totals": {k: int(alone.get(k, 0)) for k in TOTALLED}}
    nodes = []
    for name, figures in sorted(node.membership.alive.items()):
        if name == node.node:
            figures = {**figures, **node.figures()}
        nodes.append({"node": name, **{k: figures.get(k) for k in NodeOut.model_fields
                                       if k != "node" and figures.get(k) is not None}})
    totals = {k: sum(int(n.get(k) or 0) for n in nodes) for k in TOTALLED}
    return {"node": node.node, "nodes": nodes, "totals": totals}


@router.get("/cluster", response_model=ClusterOut,
            summary="The live nodes serving as one, their figures and the totals")
async def cluster(server: Annotated[LwM2MServer, Depends(get_server)]) -> dict[str, Any]:
    return cluster_view(server)
