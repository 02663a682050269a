"""The broker's topics and their lifecycle (draft section 3.1), without any I/O.

A topic is HALF CREATED until something is published to it (or it is created with
"initialize"), then FULLY CREATED; deleting its topic-data sends it back to HALF CREATED,
deleting the topic removes it. The table enforces the limits on what peers may create and
keeps the indexes the CoAP resources look topics up by. Times are passed in (wall-clock
seconds, which is what "expiration-date" counts in).
"""

from __future__ import annotations

import dataclasses
import heapq
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Final

from . import drafts as d
from .errors import LimitReached, ValueTooLarge, WrongContentFormat
from .limits import BrokerLimits
from .store import StoredTopic
from .topic_config import ConfigError, TopicConfig, encode_config

#: The topic collection's path; topics live below it, their data below ``<it>/data``.
COLLECTION: Final = "ps"
DATA: Final = "data"
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_.~-]{1,64}")


def topic_path(topic_id: str) -> str:
    return f"/{COLLECTION}/{topic_id}"


def data_path(data_id: str) -> str:
    return f"/{COLLECTION}/{DATA}/{data_id}"


class Topic:
    __slots__ = ("config", "created_at", "creator", "data_id", "id", "last_publisher",
                 "published_at", "publishes", "value", "value_format")

    def __init__(self, topic_id: str, data_id: str, config: TopicConfig, created_at: float,
                 creator: str | None) -> None:
        self.id = topic_id
        self.data_id = data_id
        self.config = config
        self.created_at = created_at
        self.creator = creator
        self.value: bytes | None = None
        self.value_format: int | None = None
        self.published_at: float | None = None
        self.publishes = 0
        self.last_publisher: str | None = None

    @property
    def fully_created(self) -> bool:
        return self.value is not None

    @property
    def path(self) -> str:
        return topic_path(self.id)

    @property
    def data_path(self) -> str:
        return data_path(self.data_id)

    def stored(self) -> StoredTopic:
        return StoredTopic(self.id, self.data_id, encode_config(self.config), self.created_at,
                           self.creator, self.value, self.value_format, self.published_at)

    def __repr__(self) -> str:
        return f"Topic({self.id!r}, {self.config.name!r})"


class TopicTable:
    def __init__(self, limits: BrokerLimits,
                 new_id: Callable[[], str] = lambda: secrets.token_hex(4)) -> None:
        self.limits = limits
        self._new_id = new_id
        self.by_id: dict[str, Topic] = {}
        self.by_data_id: dict[str, Topic] = {}
        self.by_name: dict[str, Topic] = {}
        self._per_creator: Counter[str] = Counter()
        # (expiration, topic id): stale entries (topic gone or date changed) are skipped.
        self._expiry: list[tuple[float, str]] = []
        #: Topics that set "observer-check" (the broker re-checks their subscribers).
        self.observer_checked: set[str] = set()

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[Topic]:
        return iter(list(self.by_id.values()))

    # -- configuration --------------------------------------------------------------------

    def _checked(self, config: TopicConfig, now: float) -> TopicConfig:
        """The configuration the broker stores for ``config``: refused where it cannot
        hold, max-subscribers lowered to the broker's own cap (the draft lets it)."""
        if config.initialize is not None and len(config.initialize) > self.limits.max_value_size:
            raise ConfigError(d.INITIALIZE,
                              f"longer than {self.limits.max_value_size} bytes")
        if config.expiration is not None and config.expiration <= now:
            raise ConfigError(d.EXPIRATION_DATE, "already passed")
        cap = self.limits.max_subscribers_per_topic
        if config.max_subscribers is not None and config.max_subscribers > cap:
            config = _with(config, max_subscribers=cap)
        return config

    def _data_id_for(self, config: TopicConfig) -> str:
        if config.data is None:
            return self._fresh(self.by_data_id)
        text = config.data.lstrip("/")
        prefix = f"{COLLECTION}/{DATA}/"
        seg = text[len(prefix):] if text.startswith(prefix) else ""
        if not _SEGMENT.fullmatch(seg):
            raise ConfigError(d.TOPIC_DATA, f"this broker hosts topic-data at "
                                            f"/{prefix}<1-64 of A-Z a-z 0-9 _ . ~ ->")
        if seg in self.by_data_id:
            raise ConfigError(d.TOPIC_DATA, "already in use")
        return seg

    def _fresh(self, taken: dict[str, Topic]) -> str:
        while True:
            candidate = self._new_id()
            if candidate not in taken and candidate != DATA:
                return candidate

    def create(self, config: TopicConfig, creator: str | None, now: float) -> Topic:
        """Add a topic (section 2.4.3); with "initialize" it starts fully created."""
        if config.name in self.by_name:
            raise ConfigError(d.TOPIC_NAME, "already in use")
        if len(self.by_id) >= self.limits.max_topics:
            raise LimitReached(f"the broker holds its maximum of {self.limits.max_topics} "
                               "topics")
        if creator is not None and (self._per_creator[creator]
                                    >= self.limits.max_topics_per_address):
            raise LimitReached(f"at most {self.limits.max_topics_per_address} topics per "
                               "address")
        config = self._checked(config, now)
        data_id = self._data_id_for(config)
        topic = Topic(self._fresh(self.by_id), data_id, _with(config, data=data_path(data_id)),
                      now, creator)
        if config.initialize is not None:
            topic.value = config.initialize
            topic.value_format = config.content_format
            topic.published_at = now
        self._index(topic)
        return topic

    def _index(self, topic: Topic) -> None:
        self.by_id[topic.id] = topic
        self.by_data_id[topic.data_id] = topic
        self.by_name[topic.config.name] = topic
        if topic.creator is not None:
            self._per_creator[topic.creator] += 1
        self._track(topic)

    def _track(self, topic: Topic) -> None:
        if topic.config.expiration is not None:
            heapq.heappush(self._expiry, (float(topic.config.expiration), topic.id))
        if topic.config.observer_check is not None:
            self.observer_checked.add(topic.id)
        else:
            self.observer_checked.discard(topic.id)

    def reconfigure(self, topic: Topic, config: TopicConfig, now: float) -> TopicConfig:
        """Give ``topic`` its replaced or patched configuration; returns the one stored."""
        config = self._checked(config, now)
        topic.config = config
        self._track(topic)
        return config

    def remove(self, topic: Topic) -> None:
        if self.by_id.get(topic.id) is not topic:
            return
        del self.by_id[topic.id]
        del self.by_data_id[topic.data_id]
        del self.by_name[topic.config.name]
        self.observer_checked.discard(topic.id)
        if topic.creator is not None:
            self._per_creator[topic.creator] -= 1
            if self._per_creator[topic.creator] <= 0:
                del self._per_creator[topic.creator]

    def expired(self, now: float) -> list[Topic]:
        """Topics whose expiration-date has come (they are still in the table)."""
        out = []
        heap = self._expiry
        while heap and heap[0][0] <= now:
            when, topic_id = heapq.heappop(heap)
            topic = self.by_id.get(topic_id)
            if topic is not None and topic.config.expiration is not None and float(
                    topic.config.expiration) == when:
                out.append(topic)
        return out

    def next_expiry(self) -> float | None:
        return self._expiry[0][0] if self._expiry else None

    # -- data -----------------------------------------------------------------------------

    def check_publication(self, topic: Topic, payload: bytes, content_format: int | None
                          ) -> None:
        wanted = topic.config.content_format
        if wanted is not None and content_format != wanted:
            raise WrongContentFormat(wanted)
        if len(payload) > self.limits.max_value_size:
            raise ValueTooLarge(self.limits.max_value_size)

    def publish(self, topic: Topic, payload: bytes, content_format: int | None, now: float,
                publisher: str | None) -> bool:
        """Store a publication; True when it is the first (the topic becomes fully
        created: 2.01 rather than 2.04)."""
        self.check_publication(topic, payload, content_format)
        first = topic.value is None
        topic.value = payload
        topic.value_format = content_format
        topic.published_at = now
        topic.publishes += 1
        topic.last_publisher = publisher
        return first

    def delete_data(self, topic: Topic) -> bool:
        """Back to HALF CREATED (section 3.2.4); False when it already was."""
        if topic.value is None:
            return False
        topic.value = None
        topic.value_format = None
        return True

    # -- persistence ----------------------------------------------------------------------

    def restore(self, stored: StoredTopic, config: TopicConfig) -> Topic:
        """Put back a topic loaded from the store (limits are not applied again)."""
        topic = Topic(stored.id, stored.data_id, config, stored.created_at, stored.creator)
        topic.value = stored.value
        topic.value_format = stored.value_format
        topic.published_at = stored.published_at
        self._index(topic)
        return topic


def _with(config: TopicConfig, **changes: object) -> TopicConfig:
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]
