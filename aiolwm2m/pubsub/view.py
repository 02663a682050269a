"""What the LwM2M server's REST API and web UI show of a broker: its topics with their
configuration and last value, read from a broker in the same process or, over CoAP, from
one elsewhere (a gateway's)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from aiolwm2m.coap.codes import Code, code_str
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.linkformat import LinkFormatError, parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.uri import CoapUri, UriError, parse_uri
from aiolwm2m.transport.udp import UdpEndpoint

from . import drafts as d
from .broker import Broker
from .nodes import NodeState
from .rd_discovery import uri_path
from .topic_config import ConfigError, TopicConfig, decode_properties, for_creation

#: Topics one page may hold; a remote page costs two CoAP requests per topic.
MAX_PAGE = 200
_CONCURRENT_REQUESTS = 16


@dataclass(frozen=True, slots=True)
class TopicSnapshot:
    path: str
    config: TopicConfig
    value: bytes | None
    value_format: int | None
    #: Known for a broker in this process only (None when read over CoAP).
    published_at: float | None = None
    publishes: int | None = None
    subscribers: int | None = None
    last_publisher: str | None = None

    @property
    def id(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class BrokerSummary:
    #: "embedded", or the URI of the broker read over CoAP.
    source: str
    topics: int
    port: int | None = None
    subscribers: int | None = None
    nodes: int | None = None
    rd_state: str | None = None
    rd_registration: str | None = None


class BrokerUnreachable(Exception):
    """A broker read over CoAP did not answer, or answered what is not a broker."""


class BrokerView(Protocol):
    async def summary(self) -> BrokerSummary: ...

    async def topics(self, offset: int, limit: int) -> tuple[int, list[TopicSnapshot]]:
        """(total, one page of topics)."""

    async def topic(self, topic_id: str) -> TopicSnapshot | None: ...

    def nodes(self) -> list[NodeState] | None:
        """What the broker knows of its peers (None: not known over CoAP)."""

    async def close(self) -> None: ...


class LocalBrokerView:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def _snapshot(self, topic_id: str) -> TopicSnapshot | None:
        b = self.broker
        t = b.topic(topic_id)
        if t is None:
            return None
        return TopicSnapshot(t.path, t.config, t.value, t.value_format, t.published_at,
                             t.publishes, b.subscriber_count(t), t.last_publisher)

    async def summary(self) -> BrokerSummary:
        b = self.broker
        announcer = b.announcer
        return BrokerSummary("embedded", len(b.table), b.port if b.endpoints else None,
                             b.subscribers, len(b.nodes),
                             announcer.state if announcer is not None else None,
                             announcer.registration_uri if announcer is not None else None)

    async def topics(self, offset: int, limit: int) -> tuple[int, list[TopicSnapshot]]:
        ids = list(self.broker.table.by_id)
        page = [self._snapshot(i) for i in ids[offset:offset + min(limit, MAX_PAGE)]]
        return len(ids), [s for s in page if s is not None]

    async def topic(self, topic_id: str) -> TopicSnapshot | None:
        return self._snapshot(topic_id)

    def nodes(self) -> list[NodeState] | None:
        return list(self.broker.nodes)

    async def close(self) -> None:
        return None


class RemoteBrokerView:
    """A broker read over CoAP: its collection (found by discovery), each topic's
    configuration and the value of its topic-data."""

    def __init__(self, uri: str, endpoint: UdpEndpoint, *, timeout: float = 5.0) -> None:
        try:
            self.uri: CoapUri = parse_uri(uri)
        except UriError as e:
            raise ValueError(f"broker URI: {e}") from None
        if self.uri.scheme != "coap":
            raise ValueError("broker URI: only coap:// brokers can be read")
        self.endpoint = endpoint
        self.timeout = timeout
        self._collection: tuple[str, ...] | None = None
        self._gate = asyncio.Semaphore(_CONCURRENT_REQUESTS)

    @classmethod
    async def create(cls, uri: str) -> RemoteBrokerView:
        """A view with a socket of its own (dual-stack: it reaches IPv4 and IPv6)."""
        endpoint = await UdpEndpoint.create("::", 0)
        try:
            return cls(uri, endpoint)
        except ValueError:
            await endpoint.close()
            raise

    async def close(self) -> None:
        await self.endpoint.close()

    async def _get(self, path: tuple[str, ...], query: tuple[str, ...] = ()) -> Message:
        async with self._gate:
            try:
                return await self.endpoint.request(
                    Message.request(Code.GET, path, query=query),
                    (self.uri.host, self.uri.port), timeout=self.timeout)
            except (CoapError, OSError, TimeoutError) as e:
                raise BrokerUnreachable(f"{self.uri} did not answer: {e}") from None

    async def _collection_path(self) -> tuple[str, ...]:
        if self._collection is None:
            if self.uri.path:
                self._collection = self.uri.path
            else:
                reply = await self._get((".well-known", "core"), (f"rt={d.RT_COLLECTION}",))
                links = self._links(reply)
                if not links:
                    raise BrokerUnreachable(f"{self.uri} names no topic collection")
                self._collection = uri_path(links[0])
        return self._collection

    def _links(self, reply: Message) -> list[str]:
        if reply.code != Code.CONTENT:
            raise BrokerUnreachable(f"{self.uri} answered {code_str(reply.code)}")
        try:
            return [link.target for link in parse_link_format(reply.payload, max_links=100_000)]
        except LinkFormatError as e:
            raise BrokerUnreachable(f"{self.uri} sent a bad link list: {e}") from None

    async def _topic_paths(self) -> list[str]:
        return [t for t in self._links(await self._get(await self._collection_path()))
                if "://" not in t]

    async def summary(self) -> BrokerSummary:
        return BrokerSummary(str(self.uri), len(await self._topic_paths()))

    async def topics(self, offset: int, limit: int) -> tuple[int, list[TopicSnapshot]]:
        paths = await self._topic_paths()
        page = paths[offset:offset + min(limit, MAX_PAGE)]
        found = await asyncio.gather(*(self._read(p) for p in page))
        return len(paths), [s for s in found if s is not None]

    async def topic(self, topic_id: str) -> TopicSnapshot | None:
        for path in await self._topic_paths():
            if path.rstrip("/").rsplit("/", 1)[-1] == topic_id:
                return await self._read(path)
        return None

    async def _read(self, path: str) -> TopicSnapshot | None:
        reply = await self._get(uri_path(path))
        if reply.code != Code.CONTENT:
            return None  # deleted meanwhile
        try:
            config = for_creation(decode_properties(reply.payload))
        except ConfigError:
            return None
        value = value_format = None
        if config.data is not None and "://" not in config.data:
            data = await self._get(uri_path(config.data))
            if data.code == Code.CONTENT:
                value, value_format = data.payload, data.content_format
        return TopicSnapshot(path, config, value, value_format)

    def nodes(self) -> list[NodeState] | None:
        return None
