"""The pub/sub broker: topics, their last values, subscribers, and the CoAP endpoints that
serve them (draft-ietf-core-coap-pubsub, numbers in :mod:`aiolwm2m.pubsub.drafts`).

It is usable on its own (``aiolwm2m broker``), inside ``aiolwm2m server``
(``--broker-port``) and inside a gateway. Code that embeds it works with :class:`Topic`
objects and a small API: :meth:`Broker.create_topic`, :meth:`Broker.publish`,
:meth:`Broker.delete_topic`, the ``listeners`` it tells about every change, and ``nodes``,
what it knows of each peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable

from aiolwm2m.coap.blockwise import Block1Assembler
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.observe import Observation
from aiolwm2m.coap.reassembly_limits import ReassemblyLimits
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.server.refusals import Refusals
from aiolwm2m.store.redis_connect import is_redis_url
from aiolwm2m.transport.udp import UdpEndpoint

from . import drafts as d
from .announce import RdAnnouncer
from .config import BrokerConfig
from .errors import (
    BrokerError,
    LimitReached,
    RateLimited,
    StoreFailed,
    TopicNotFound,
    ValueTooLarge,
    WrongContentFormat,
)
from .events import (
    BrokerEvent,
    DataDeleted,
    Published,
    Subscribed,
    TopicChanged,
    TopicCreated,
    TopicRemoved,
    Unsubscribed,
)
from .limits import address_key
from .nodes import NodeTable, peer_host
from .rate_limit import PublishRateLimiter
from .resources import BROKER_PATH, CONFIG_SLACK, BrokerSite, TopicDataResource
from .store import MemoryTopicStore, TopicStore
from .store_sqlite import SQLiteTopicStore
from .subscribers import SubscriberRegistry, state_of
from .topic_config import ConfigError, TopicConfig, decode_properties, for_creation
from .topics import COLLECTION, Topic, TopicTable

log = logging.getLogger(__name__)
_listener_failures = LogThrottle(log, interval=10.0, burst=5)

#: Refusal reasons (the ``lwm2m_refusals{reason=...}`` label) by the error behind them.
_REASONS: tuple[tuple[type[BrokerError], str], ...] = (
    (ConfigError, "pubsub-bad-config"),
    (LimitReached, "pubsub-topic-limit"),
    (ValueTooLarge, "pubsub-too-large"),
    (WrongContentFormat, "pubsub-content-format"),
    (RateLimited, "pubsub-rate-limited"),
)


class Broker:
    def __init__(self, config: BrokerConfig | None = None, *,
                 refusals: Refusals | None = None, store: TopicStore | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``refusals``: where refused requests are counted (the LwM2M server's when it
        embeds the broker); ``store``: overrides ``config.store``."""
        self.config = config or BrokerConfig()
        self.limits = self.config.limits
        self.clock = self.config.clock
        self.monotonic = monotonic
        self.table = TopicTable(self.limits)
        self.nodes = NodeTable(self.limits.max_nodes)
        self.site = BrokerSite(self)
        self.rate = PublishRateLimiter(self.limits.publish_rate, self.limits.publish_burst,
                                       self.limits.max_rate_entries)
        self.refusals = refusals if refusals is not None else Refusals(lambda _e: None)
        #: Called with every :mod:`aiolwm2m.pubsub.events` event, in the broker's loop.
        self.listeners: list[Callable[[BrokerEvent], None]] = []
        self.endpoints: list[UdpEndpoint] = []
        self.store: TopicStore | None = store
        self._own_store = store is None
        self._per_address: Counter[str] = Counter()
        self._subscribers = 0
        self._tasks: list[asyncio.Task[None]] = []
        # Set when topics change, so the timers re-time themselves.
        self._expiry_changed = asyncio.Event()
        self._checks_changed = asyncio.Event()
        #: Keeps the broker registered in a Resource Directory (``config.rd``).
        self.announcer: RdAnnouncer | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the stored topics, bind the endpoints, start the timers (and the RD
        announcement when ``config.rd`` is set)."""
        if self.store is None and is_redis_url(self.config.store):
            from .store_redis import RedisTopicStore

            self.store = await RedisTopicStore.open(
                self.config.store, flush_interval=self.config.flush_interval)
        if self.store is None:
            self.store = (MemoryTopicStore() if self.config.store == "memory" else
                          await SQLiteTopicStore.open(self.config.database,
                                                      flush_interval=self.config.flush_interval))
        await self._load()
        port = self.config.port
        try:
            for host in self.config.hosts:
                endpoint = await UdpEndpoint.create(host, port, site=self.site,
                                                    observers=self.new_registry(),
                                                    params=self.config.transmission)
                endpoint.dispatcher.block1 = self._block1_assembler()
                self.attach(endpoint)
                port = endpoint.port  # port 0: the others take the port the first got
        except BaseException:
            await self.stop()
            raise
        self._tasks.append(asyncio.create_task(self._expire_loop()))
        self._tasks.append(asyncio.create_task(self._observer_check_loop()))
        if self.config.rd:
            announcer = RdAnnouncer(self, self.config.rd,
                                    endpoint_name=self.config.rd_endpoint,
                                    lifetime=self.config.rd_lifetime,
                                    multicast_interface=self.config.rd_multicast_interface)
            self.announcer = announcer
            announcer.start()

    async def stop(self) -> None:
        if self.announcer is not None:
            await self.announcer.stop()
            self.announcer = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for endpoint in self.endpoints:
            await endpoint.close()
        self.endpoints.clear()
        if self.store is not None and self._own_store:
            await self.store.close()
            self.store = None

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self.endpoints[0].port

    def new_registry(self) -> SubscriberRegistry:
        """The observer list an endpoint serving this broker's site must use."""
        return SubscriberRegistry(observer_check=self._observer_check_of,
                                  on_add=self._subscribed, on_drop=self._unsubscribed,
                                  on_acknowledged=self._validated)

    def _block1_assembler(self) -> Block1Assembler:
        """Block-wise uploads no larger than the largest request the broker takes (a
        configuration with an "initialize" value): 4.13 with Size1 at the first block
        beyond, rather than a megabyte buffered per peer for a refusal."""
        largest = self.limits.max_value_size + CONFIG_SLACK
        budget = max(1024, largest)
        return Block1Assembler(max_body_size=largest, limits=ReassemblyLimits(
            peer_bytes=budget, untrusted_peer_bytes=budget))

    def attach(self, endpoint: UdpEndpoint) -> None:
        """Serve on an endpoint made with ``site=broker.site`` and
        ``observers=broker.new_registry()`` (what :meth:`start` does for each host)."""
        self.endpoints.append(endpoint)

    async def _load(self) -> None:
        assert self.store is not None
        now = self.clock()
        for stored in await self.store.load():
            try:
                config = for_creation(decode_properties(stored.config))
            except ConfigError as e:
                log.error("stored topic %s is unreadable (%s); skipped", stored.id, e)
                continue
            if config.expiration is not None and config.expiration <= now:
                await self.store.delete_topic(stored.id)
                continue
            topic = self.table.restore(stored, config)
            self.site.attach_topic(topic)
        if len(self.table):
            log.info("pub/sub broker: %d topics loaded", len(self.table))

    # -- topics ---------------------------------------------------------------------------

    def topics(self) -> list[Topic]:
        return list(self.table.by_id.values())

    def topic(self, topic_id: str) -> Topic | None:
        return self.table.by_id.get(topic_id)

    def topic_named(self, name: str) -> Topic | None:
        return self.table.by_name.get(name)

    def holds(self, topic: Topic) -> bool:
        return self.table.by_id.get(topic.id) is topic

    def _require(self, topic: Topic) -> None:
        if not self.holds(topic):
            raise TopicNotFound("no such topic")

    async def create_topic(self, config: TopicConfig, creator: object = None) -> Topic:
        """Create a topic (durably); ``creator`` is the requesting peer's address, which
        the per-address topic limit counts by."""
        assert self.store is not None, "start() the broker first"
        key = address_key(creator) if creator is not None else None
        topic = self.table.create(config, key, self.clock())
        self.site.attach_topic(topic)
        try:
            await self.store.save_topic(topic.stored())
        except Exception as e:
            log.error("storing new topic %s failed: %s", topic.id, e)
            self.site.detach_topic(topic)
            self.table.remove(topic)
            raise StoreFailed("could not store the topic") from e
        self._timers_changed()
        self._emit(TopicCreated(topic))
        return topic

    async def update_topic(self, topic: Topic, config: TopicConfig) -> Topic:
        """Give a topic a replaced or patched configuration (see ``topic_config``)."""
        assert self.store is not None, "start() the broker first"
        self._require(topic)
        old = topic.config
        self.table.reconfigure(topic, config, self.clock())
        try:
            await self.store.save_topic(topic.stored())
        except Exception as e:
            log.error("storing topic %s failed: %s", topic.id, e)
            if self.holds(topic):
                self.table.reconfigure(topic, old, float("-inf"))
            raise StoreFailed("could not store the change") from e
        self._trim_subscribers(topic)
        self._timers_changed()
        self._emit(TopicChanged(topic))
        return topic

    async def delete_topic(self, topic: Topic, reason: str = "deleted") -> None:
        """Remove a topic and its data; subscribers get a final 4.04."""
        assert self.store is not None, "start() the broker first"
        self._require(topic)
        self.table.remove(topic)
        data = self.site.data_resource(topic)
        if data is not None:
            data.notify()  # renders 4.04 now that the topic is gone: ends every subscription
        self.site.detach_topic(topic)
        self._emit(TopicRemoved(topic, reason))
        try:
            await self.store.delete_topic(topic.id)
        except Exception as e:
            log.error("removing topic %s from the store failed: %s", topic.id, e)
            raise StoreFailed("could not store the change") from e

    # -- data -----------------------------------------------------------------------------

    def publish(self, topic: Topic, payload: bytes, content_format: int | None = None,
                publisher: str | None = None) -> bool:
        """Publish as the broker itself (no rate limit); True when it is the topic's first
        value. Subscribers are notified at once."""
        self._require(topic)
        first = self.table.publish(topic, payload, content_format, self.clock(), publisher)
        self._published(topic, first, publisher)
        return first

    def publish_from(self, topic: Topic, payload: bytes, content_format: int | None,
                     peer: object) -> bool:
        """A publication received from ``peer``: checked, rate limited, then published."""
        self._require(topic)
        self.table.check_publication(topic, payload, content_format)
        host = peer_host(peer)
        wait = self.rate.take((host, topic.id), self.monotonic())
        if wait:
            raise RateLimited(wait)
        now = self.clock()
        first = self.table.publish(topic, payload, content_format, now, host)
        self.nodes.published(host, topic.id, now)
        self._published(topic, first, host)
        return first

    def limit_configuration(self, peer: object) -> None:
        """Configuration changes from ``peer`` share the publication rate limit (a bucket
        of their own): each is written to disk before its reply, so a flood of them
        would otherwise queue disk writes without bound."""
        wait = self.rate.take((peer_host(peer), ""), self.monotonic())
        if wait:
            raise RateLimited(wait, "changing topics")

    def _published(self, topic: Topic, first: bool, publisher: str | None) -> None:
        assert self.store is not None
        self.store.set_value(topic.id, topic.value, topic.value_format, topic.published_at)
        data = self.site.data_resource(topic)
        if data is not None:
            data.notify(self._deliverable)
        self._emit(Published(topic, publisher, first))

    def delete_data(self, topic: Topic) -> bool:
        """Back to half created; subscribers get a final 4.04. False if it had no data."""
        assert self.store is not None
        self._require(topic)
        if not self.table.delete_data(topic):
            return False
        self.store.set_value(topic.id, None, None, None)
        data = self.site.data_resource(topic)
        if data is not None:
            data.notify()
        self._emit(DataDeleted(topic))
        return True

    # -- subscribers ----------------------------------------------------------------------

    def subscriber_count(self, topic: Topic) -> int:
        data = self.site.data_resource(topic)
        if data is None:
            return 0
        return sum(e.dispatcher.observers.count(data) for e in self.endpoints)

    @property
    def subscribers(self) -> int:
        return self._subscribers

    def admit_subscriber(self, data: TopicDataResource, request: Message) -> bool:
        """Whether a subscribe request gets an observation (else: 2.05 without Observe)."""
        peer, token = request.remote, request.token
        for endpoint in self.endpoints:
            if endpoint.dispatcher.observers.get(peer, token) is not None:
                return True  # a renewal replaces the subscription it already has
        limits = self.limits
        cap = limits.max_subscribers_per_topic
        wanted = data.topic.config.max_subscribers
        if wanted is not None:
            cap = min(cap, wanted)
        why = None
        if self.subscriber_count(data.topic) >= cap:
            why = f"topic {data.topic.id} is at its {cap} subscribers"
        elif self._subscribers >= limits.max_subscribers:
            why = f"the broker is at its {limits.max_subscribers} subscriptions"
        elif self._per_address[address_key(peer)] >= limits.max_subscribers_per_address:
            why = f"at most {limits.max_subscribers_per_address} subscriptions per address"
        if why is None:
            return True
        self.refusals.refused(transport="udp", reason="pubsub-subscriber-limit",
                              peer=peer_host(peer), detail=why)
        return False

    def _deliverable(self, obs: Observation) -> bool:
        """Whether a publication goes to ``obs`` now: not while the one notification an
        unproven subscriber may have outstanding is unacknowledged (see ``subscribers``)."""
        state = state_of(obs)
        if state is None:
            return True
        if state.pending and not state.validated:
            return False
        if isinstance(obs.key, TopicDataResource):
            state.seen = obs.key.topic.publishes
        return True

    def _validated(self, obs: Observation) -> None:
        """A subscriber proved its address: send it what it missed meanwhile."""
        state = state_of(obs)
        data = obs.key
        if (state is None or not isinstance(data, TopicDataResource)
                or data.topic.value is None or state.seen == data.topic.publishes):
            return
        for endpoint in self.endpoints:
            if endpoint.dispatcher.observers.get(obs.peer, obs.token) is obs:
                state.seen = data.topic.publishes
                endpoint.dispatcher.notify_observation(obs)
                return

    def _observer_check_of(self, key: Hashable) -> int | None:
        if isinstance(key, TopicDataResource):
            return key.topic.config.observer_check
        return None

    def _subscribed(self, obs: Observation) -> None:
        self._subscribers += 1
        self._per_address[address_key(obs.peer)] += 1
        host = peer_host(obs.peer)
        self.nodes.seen(host, self.clock()).subscriptions += 1
        if isinstance(obs.key, TopicDataResource):
            self._emit(Subscribed(obs.key.topic, host))

    def _unsubscribed(self, obs: Observation) -> None:
        self._subscribers -= 1
        key = address_key(obs.peer)
        self._per_address[key] -= 1
        if self._per_address[key] <= 0:
            del self._per_address[key]
        host = peer_host(obs.peer)
        self.nodes.unsubscribed(host)
        if isinstance(obs.key, TopicDataResource):
            self._emit(Unsubscribed(obs.key.topic, host))

    def _trim_subscribers(self, topic: Topic) -> None:
        """After max-subscribers went down: the newest subscriptions beyond it end with a
        final 4.04 (the draft leaves the choice to the broker)."""
        data = self.site.data_resource(topic)
        if data is None:
            return
        cap = self.limits.max_subscribers_per_topic
        if topic.config.max_subscribers is not None:
            cap = min(cap, topic.config.max_subscribers)
        current = [o for e in self.endpoints for o in e.dispatcher.observers.observers(data)]
        if len(current) <= cap:
            return
        ending = data.ending = {(o.peer, o.token) for o in current[cap:]}
        try:
            data.notify(lambda o: (o.peer, o.token) in ending)
        finally:
            data.ending = None

    def check_observers(self) -> int:
        """Send a Confirmable notification to every subscriber of a topic with an
        observer-check whose last one is older than that; returns how many were sent."""
        sent = 0
        for topic_id in list(self.table.observer_checked):
            topic = self.table.by_id.get(topic_id)
            data = self.site.data_resource(topic) if topic is not None else None
            if data is None or topic is None or topic.value is None:
                continue
            for endpoint in self.endpoints:
                now = endpoint.clock()
                for obs in endpoint.dispatcher.observers.observers(data):
                    if now >= obs.con_due and self._deliverable(obs):
                        endpoint.dispatcher.notify_observation(obs, confirmable=True)
                        sent += 1
        return sent

    # -- timers ---------------------------------------------------------------------------

    def _timers_changed(self) -> None:
        self._expiry_changed.set()
        self._checks_changed.set()

    async def _expire_loop(self) -> None:
        while True:
            due = self.table.next_expiry()
            delay = 60.0 if due is None else min(60.0, max(0.0, due - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._expiry_changed.wait(), delay)
            self._expiry_changed.clear()
            await self.expire_due()

    async def expire_due(self) -> int:
        """Delete every topic whose expiration-date has come (subscribers get a final
        4.04, as for a DELETE); returns how many. The broker's timer calls it on time."""
        removed = 0
        for topic in self.table.expired(self.clock()):
            try:
                await self.delete_topic(topic, reason="expired")
                removed += 1
            except BrokerError as e:
                log.error("expiring topic %s: %s", topic.id, e)
        return removed

    def _check_interval(self) -> float:
        checks = [t.config.observer_check for tid in self.table.observer_checked
                  if (t := self.table.by_id.get(tid)) is not None
                  and t.config.observer_check is not None]
        return min(60.0, max(0.5, min(checks) / 2)) if checks else 60.0

    async def _observer_check_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._checks_changed.wait(), self._check_interval())
            if self._checks_changed.is_set():
                self._checks_changed.clear()  # a topic's observer-check changed: re-time
                continue
            self.check_observers()

    # -- reporting ------------------------------------------------------------------------

    def count_refusal(self, error: BrokerError, peer: object) -> None:
        for kind, reason in _REASONS:
            if isinstance(error, kind):
                self.refusals.refused(transport="udp", reason=reason, peer=peer_host(peer),
                                      detail=str(error))
                return

    def _emit(self, event: BrokerEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception as e:
                _listener_failures.log(logging.ERROR, "listener", "broker listener failed: %s",
                                       e, exc_info=e)

    def on(self, listener: Callable[[BrokerEvent], None]) -> Callable[[], None]:
        """Add a listener; returns what removes it."""
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    def links(self, *, max_topics: int | None = None) -> Iterable[str]:
        """The broker's links as a Resource Directory registration carries them: itself,
        its collection and its first ``max_topics`` topics (default: the limit's)."""
        yield f'</{BROKER_PATH}>;rt="{d.RT_BROKER}";ct={d.CONTENT_FORMAT_LINK}'
        yield f'</{COLLECTION}>;rt="{d.RT_COLLECTION}";ct={d.CONTENT_FORMAT_LINK}'
        limit = self.limits.max_announced_topics if max_topics is None else max_topics
        for topic in list(self.table.by_id.values())[:limit]:
            yield f'<{topic.path}>;rt="{d.RT_TOPIC}";ct={d.CONTENT_FORMAT_PUBSUB}'
