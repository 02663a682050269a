"""What a broker tells its listeners (``Broker.listeners``): topics coming and going,
publications, subscriptions ending. Listeners run synchronously, in the broker's loop."""

from __future__ import annotations

from dataclasses import dataclass

from .topics import Topic


@dataclass(frozen=True, slots=True)
class TopicCreated:
    topic: Topic


@dataclass(frozen=True, slots=True)
class TopicChanged:
    topic: Topic


@dataclass(frozen=True, slots=True)
class TopicRemoved:
    topic: Topic
    #: "deleted" (a DELETE or the Python API) or "expired" (its expiration-date came).
    reason: str


@dataclass(frozen=True, slots=True)
class Published:
    topic: Topic
    #: The publisher's IP address; None for publications through the Python API.
    publisher: str | None
    first: bool


@dataclass(frozen=True, slots=True)
class DataDeleted:
    topic: Topic


@dataclass(frozen=True, slots=True)
class Subscribed:
    topic: Topic
    subscriber: str


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """A subscription ended: cancelled, reset, unacknowledged, or ended by the broker."""

    topic: Topic
    subscriber: str


BrokerEvent = (TopicCreated | TopicChanged | TopicRemoved | Published | DataDeleted
               | Subscribed | Unsubscribed)

__all__ = ["BrokerEvent", "DataDeleted", "Published", "Subscribed", "TopicChanged",
           "TopicCreated", "TopicRemoved", "Unsubscribed"]
