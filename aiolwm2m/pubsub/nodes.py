"""What the broker knows about the peers that publish and subscribe: when each was first
and last heard from, what it last published, how many subscriptions it holds.

A gateway that runs the broker in front of sleeping nodes reads this to tell which are
alive; the table is bounded (least recently heard-from first out).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator


class NodeState:
    __slots__ = ("address", "first_seen", "last_publish", "last_seen", "last_topic",
                 "publishes", "subscriptions")

    def __init__(self, address: str, now: float) -> None:
        #: The peer's IP address (no port: a sleeping node's port may change).
        self.address = address
        self.first_seen = now
        self.last_seen = now
        self.last_publish: float | None = None
        #: Id of the topic it last published to.
        self.last_topic: str | None = None
        self.publishes = 0
        #: Subscriptions it holds right now.
        self.subscriptions = 0

    def __repr__(self) -> str:
        return (f"NodeState({self.address!r}, publishes={self.publishes}, "
                f"subscriptions={self.subscriptions})")


class NodeTable:
    def __init__(self, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self._nodes: OrderedDict[str, NodeState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[NodeState]:
        return iter(list(self._nodes.values()))

    def get(self, address: str) -> NodeState | None:
        return self._nodes.get(address)

    def seen(self, address: str, now: float) -> NodeState:
        node = self._nodes.get(address)
        if node is None:
            if len(self._nodes) >= self.max_nodes:
                self._nodes.popitem(last=False)
            node = self._nodes[address] = NodeState(address, now)
        else:
            node.last_seen = now
            self._nodes.move_to_end(address)
        return node

    def published(self, address: str, topic_id: str, now: float) -> NodeState:
        node = self.seen(address, now)
        node.last_publish = now
        node.last_topic = topic_id
        node.publishes += 1
        return node

    def unsubscribed(self, address: str) -> None:
        node = self._nodes.get(address)
        if node is not None and node.subscriptions > 0:
            node.subscriptions -= 1


def peer_host(peer: object) -> str:
    """The IP address of a socket-level peer address, IPv4-mapped IPv6 shown as IPv4."""
    host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host
