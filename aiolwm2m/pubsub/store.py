"""Where the broker keeps its topics and their last values across restarts.

Configuration changes (create, replace, iPATCH, delete) are rare and are durable before the
broker answers. Publications may come thousands a second and only the newest value of a
topic matters, so values are written behind: :meth:`TopicStore.set_value` returns at once
and a flush, at most ``flush_interval`` later, writes the newest value of every topic that
changed since the last one (and :meth:`TopicStore.close` writes the rest). A crash loses at
most the publications of that interval; a clean stop loses none.

Every implementation passes tests/pubsub/test_store_contract.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(slots=True)
class StoredTopic:
    id: str
    data_id: str
    #: The configuration as the broker encodes it (application/core-pubsub+cbor).
    config: bytes
    created_at: float
    #: Whom the per-address topic limit counts it against (see ``limits.address_key``).
    creator: str | None = None
    #: The last published representation; None while the topic is half created.
    value: bytes | None = None
    value_format: int | None = None
    published_at: float | None = None


class TopicStore(Protocol):
    async def load(self) -> list[StoredTopic]:
        """Every stored topic, values as of the last flush."""

    async def save_topic(self, topic: StoredTopic) -> None:
        """Insert or replace a topic (value included); durable when it returns."""

    async def delete_topic(self, topic_id: str) -> None: ...

    def set_value(self, topic_id: str, value: bytes | None, value_format: int | None,
                  at: float | None) -> None:
        """Record a publication (None: the topic-data was deleted); written behind."""

    async def flush(self) -> None:
        """Make every value recorded so far durable."""

    async def close(self) -> None:
        """Flush and release the store."""


class MemoryTopicStore:
    """Keeps nothing across restarts; for tests and ``--store memory``."""

    def __init__(self) -> None:
        self._topics: dict[str, StoredTopic] = {}

    async def load(self) -> list[StoredTopic]:
        return [replace(t) for t in self._topics.values()]

    async def save_topic(self, topic: StoredTopic) -> None:
        self._topics[topic.id] = replace(topic)

    async def delete_topic(self, topic_id: str) -> None:
        self._topics.pop(topic_id, None)

    def set_value(self, topic_id: str, value: bytes | None, value_format: int | None,
                  at: float | None) -> None:
        topic = self._topics.get(topic_id)
        if topic is not None:
            topic.value, topic.value_format, topic.published_at = value, value_format, at

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None
