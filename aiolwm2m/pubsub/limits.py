"""What the broker lets its peers make it hold, and how fast they may publish.

Every topic, subscriber and value is memory the broker keeps for someone it may never have
authenticated (the draft's security section names topic creation and large publications
as the denial-of-service risks), so each is capped, in all and per peer address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BrokerLimits:
    #: Topics in all; a create beyond gets 4.03. Bounds the table, and with
    #: ``max_value_size`` the values held in memory (10,000 x 8 KiB = 80 MiB at most).
    max_topics: int = 10_000
    #: Topics created from one IP address (IPv6: one /64), so one peer cannot take them all.
    max_topics_per_address: int = 1_000
    #: Largest published representation (and "initialize" value); 4.13 with Size1 beyond.
    max_value_size: int = 8 * 1024
    #: Subscribers of one topic when its max-subscribers is larger or unset; beyond, a
    #: subscribe gets the value without Observe (RFC 7641 section 4.1).
    max_subscribers_per_topic: int = 1_000
    #: Subscriptions in all, and from one IP address (IPv6: one /64).
    max_subscribers: int = 100_000
    max_subscribers_per_address: int = 1_000
    #: Publications per second one address may make to one topic, and the burst it may
    #: send at once (a token bucket); faster gets 4.29 with Max-Age. 0 turns it off. The
    #: same rate, in a bucket of their own, bounds an address's topic configuration
    #: changes (each one is written to disk before its reply).
    publish_rate: float = 10.0
    publish_burst: int = 20
    #: Publisher buckets kept (least recently used first out); a bucket evicted early only
    #: forgives a peer its past publications.
    max_rate_entries: int = 10_000
    #: Peers whose publishing and subscribing the broker remembers (see ``nodes``).
    max_nodes: int = 10_000
    #: Topic links announced to a Resource Directory; beyond, only the broker and its
    #: collection are (an RD takes a few hundred links per registration comfortably).
    max_announced_topics: int = 200

    def __post_init__(self) -> None:
        for name in ("max_topics", "max_topics_per_address", "max_value_size",
                     "max_subscribers_per_topic", "max_subscribers",
                     "max_subscribers_per_address", "max_rate_entries", "max_nodes",
                     "publish_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.publish_rate < 0:
            raise ValueError("publish_rate must not be negative")
        if self.max_announced_topics < 0:
            raise ValueError("max_announced_topics must not be negative")


DEFAULT_LIMITS = BrokerLimits()


def address_key(peer: object) -> str:
    """The unit per-address limits count by: the IP address, IPv6 cut to its /64 (one
    host usually holds a whole /64, so counting single addresses would not bound it)."""
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    text = str(host)
    if text.startswith("::ffff:") and "." in text:
        return text[7:]
    if ":" in text:
        try:
            net = ipaddress.IPv6Network((text.split("%", 1)[0], 64), strict=False)
        except ValueError:
            return text
        return str(net.network_address) + "/64"
    return text
