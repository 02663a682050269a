"""The broker's CoAP resources (draft sections 2 and 3) and the site that routes to them.

``/broker`` (rt=core.ps) lists the topic collection ``/ps`` (core.ps.coll); each topic is
``/ps/<id>`` (core.ps.conf) and its data ``/ps/data/<id>`` (core.ps.data). Topics are
routed by a dictionary lookup and kept out of ``/.well-known/core``: listing 100,000 topics
there would let any peer make the broker walk them all with one small request; the
collection lists them (block-wise), and the Resource Directory gets the first few.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import NotAcceptable, NotFound, UnsupportedContentFormat
from aiolwm2m.coap.linkformat import Link, format_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.options import OptionNumber, encode_uint
from aiolwm2m.transport.site import RenderResult, Resource, Site

from . import drafts as d
from .errors import (
    BrokerError,
    LimitReached,
    NoData,
    RateLimited,
    StoreFailed,
    TopicNotFound,
    ValueTooLarge,
    WrongContentFormat,
)
from .topic_config import (
    ConfigError,
    TopicConfig,
    decode_properties,
    encode,
    encode_config,
    fetch_keys,
    for_creation,
    matches,
    patched,
    replaced,
    selected,
)
from .topics import COLLECTION, DATA, Topic

if TYPE_CHECKING:
    from .broker import Broker

BROKER_PATH: Final = "broker"
_URI_PATH: Final = int(OptionNumber.URI_PATH)
_COLL: Final = COLLECTION.encode()
_DATA: Final = DATA.encode()
#: A configuration holds at most four short texts and an "initialize" value.
CONFIG_SLACK: Final = 1024


def error_reply(request: Message, error: BrokerError) -> Message:
    """The one place a broker refusal becomes a CoAP response."""
    code: int = Code.INTERNAL_SERVER_ERROR
    if isinstance(error, ConfigError):
        code = Code.BAD_REQUEST
    elif isinstance(error, TopicNotFound | NoData):
        code = Code.NOT_FOUND
    elif isinstance(error, LimitReached):
        code = Code.FORBIDDEN
    elif isinstance(error, ValueTooLarge):
        code = Code.REQUEST_ENTITY_TOO_LARGE
    elif isinstance(error, WrongContentFormat):
        code = Code.UNSUPPORTED_CONTENT_FORMAT
    elif isinstance(error, RateLimited):
        code = Code.TOO_MANY_REQUESTS
    elif isinstance(error, StoreFailed):
        code = Code.INTERNAL_SERVER_ERROR
    reply = request.response(code, str(error).encode(), 0)
    if isinstance(error, ValueTooLarge):
        reply.set_option(OptionNumber.SIZE1, encode_uint(error.limit))
    elif isinstance(error, RateLimited):
        reply.set_option(OptionNumber.MAX_AGE, encode_uint(error.retry_after))
    return reply


def _accepts(request: Message, offered: int) -> None:
    wanted = request.accept
    if wanted is not None and wanted != offered:
        raise NotAcceptable(f"this resource answers in content format {offered}")


def _content_format(request: Message, *allowed: int) -> int:
    """The request's Content-Format if it is one of ``allowed`` (none given: the first)."""
    cf = request.content_format
    if cf is None:
        return allowed[0]
    if cf not in allowed:
        raise UnsupportedContentFormat(
            "expected content format " + " or ".join(str(a) for a in allowed))
    return cf


class BrokerSite(Site):
    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker
        # One resource serves every topic's configuration (it finds the topic by path);
        # topic-data needs one each, as observations are kept per resource.
        self.topic_resource = TopicResource(broker)
        self.topic_resource.site = self
        self.data_resources: dict[bytes, TopicDataResource] = {}
        self.add(BROKER_PATH, BrokerResource())
        self.add(COLLECTION, CollectionResource(broker))

    def attach_topic(self, topic: Topic) -> TopicDataResource:
        data = TopicDataResource(self.broker, topic)
        data.site, data.route = self, (_COLL, _DATA, topic.data_id.encode())
        self.data_resources[data.route[-1]] = data
        return data

    def detach_topic(self, topic: Topic) -> None:
        data = self.data_resources.pop(topic.data_id.encode(), None)
        if data is not None:
            data.site = None

    def data_resource(self, topic: Topic) -> TopicDataResource | None:
        return self.data_resources.get(topic.data_id.encode())

    def find(self, request: Message) -> Resource:
        key = tuple([v for n, v in request.options if n == _URI_PATH])
        if len(key) == 2 and key[0] == _COLL:
            if key[1].decode(errors="replace") in self.broker.table.by_id:
                return self.topic_resource
        elif len(key) == 3 and key[0] == _COLL and key[1] == _DATA:
            data = self.data_resources.get(key[2])
            if data is not None:
                return data
        return super().find(request)


class BrokerResource(Resource):
    """The broker itself, as discovery and Resource Directories name it."""

    link_params = (("rt", d.RT_BROKER), ("ct", str(d.CONTENT_FORMAT_LINK)))

    def render_get(self, request: Message) -> RenderResult:
        _accepts(request, d.CONTENT_FORMAT_LINK)
        link = Link(f"/{COLLECTION}", [("rt", d.RT_COLLECTION),
                                       ("ct", str(d.CONTENT_FORMAT_LINK))])
        return request.response(Code.CONTENT, format_link_format([link]).encode(),
                                d.CONTENT_FORMAT_LINK)


def _matches_query(link: Link, query: str) -> bool:
    """RFC 6690 section 4.1 filtering; a trailing ``*`` matches a prefix."""
    name, _, pattern = query.partition("=")
    if name == "href":
        candidates = [link.target]
    else:
        if not link.has(name):
            return False
        candidates = link.values(name) or [v or "" for v in link.get_all(name)]
    if pattern.endswith("*"):
        return any(c.startswith(pattern[:-1]) for c in candidates)
    return pattern in candidates


class _BrokerResource(Resource):
    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker

    def refuse(self, request: Message, error: BrokerError) -> Message:
        self.broker.count_refusal(error, request.remote)
        return error_reply(request, error)

    def config_payload(self, request: Message) -> bytes:
        limit = self.broker.limits.max_value_size + CONFIG_SLACK
        if len(request.payload) > limit:
            raise ValueTooLarge(limit)
        return request.payload


class CollectionResource(_BrokerResource):
    link_params = (("rt", d.RT_COLLECTION), ("ct", str(d.CONTENT_FORMAT_LINK)))

    def _links(self, topics: Sequence[Topic], queries: list[str]) -> bytes:
        if not queries:
            return ",".join(f"<{t.path}>" for t in topics).encode()
        links: list[Link] = []
        for t in topics:
            links.append(Link(t.path, [("rt", d.RT_TOPIC),
                                       ("ct", str(d.CONTENT_FORMAT_PUBSUB))]))
            params: list[tuple[str, str | None]] = [("rt", t.config.resource_type)]
            if t.config.content_format is not None:
                params.append(("ct", str(t.config.content_format)))
            params.append(("obs", None))
            links.append(Link(t.data_path, params))
        for q in queries:
            links = [link for link in links if _matches_query(link, q)]
        return format_link_format(links).encode()

    def render_get(self, request: Message) -> RenderResult:
        _accepts(request, d.CONTENT_FORMAT_LINK)
        body = self._links(list(self.broker.table.by_id.values()), request.uri_query)
        return request.response(Code.CONTENT, body, d.CONTENT_FORMAT_LINK)

    def render_fetch(self, request: Message) -> RenderResult:
        _accepts(request, d.CONTENT_FORMAT_LINK)
        _content_format(request, d.CONTENT_FORMAT_PUBSUB)
        try:
            wanted = decode_properties(self.config_payload(request))
        except BrokerError as e:
            return self.refuse(request, e)
        found = [t for t in self.broker.table.by_id.values() if matches(t.config, wanted)]
        return request.response(Code.CONTENT, self._links(found, []), d.CONTENT_FORMAT_LINK)

    def render_post(self, request: Message) -> RenderResult:
        _accepts(request, d.CONTENT_FORMAT_PUBSUB)
        _content_format(request, d.CONTENT_FORMAT_PUBSUB)
        try:
            config = for_creation(decode_properties(self.config_payload(request)))
            self.broker.limit_configuration(request.remote)
        except BrokerError as e:
            return self.refuse(request, e)
        return self._create(request, config)

    async def _create(self, request: Message, config: TopicConfig) -> Message:
        try:
            topic = await self.broker.create_topic(config, creator=request.remote)
        except BrokerError as e:
            return self.refuse(request, e)
        reply = request.response(Code.CREATED, encode_config(topic.config),
                                 d.CONTENT_FORMAT_PUBSUB)
        reply.location_path = (COLLECTION, topic.id)
        return reply


class TopicResource(_BrokerResource):
    """Topics' configurations (section 2.5), each found by the last Uri-Path segment."""

    def links(self) -> list[Link]:
        return []

    def _live(self, request: Message) -> Topic:
        path = request.uri_path
        topic = self.broker.topic(path[-1]) if len(path) == 2 else None
        if topic is None:
            raise NotFound("no such topic")
        return topic

    def _representation(self, request: Message, code: int, topic: Topic) -> Message:
        return request.response(code, encode_config(topic.config), d.CONTENT_FORMAT_PUBSUB)

    def render_get(self, request: Message) -> RenderResult:
        _accepts(request, d.CONTENT_FORMAT_PUBSUB)
        return self._representation(request, Code.CONTENT, self._live(request))

    def render_fetch(self, request: Message) -> RenderResult:
        _accepts(request, d.CONTENT_FORMAT_PUBSUB)
        topic = self._live(request)
        cf = _content_format(request, d.CONTENT_FORMAT_CBOR, d.CONTENT_FORMAT_PUBSUB)
        try:
            keys = fetch_keys(self.config_payload(request), cf)
        except BrokerError as e:
            return self.refuse(request, e)
        return request.response(Code.CONTENT, encode(selected(topic.config, keys)),
                                d.CONTENT_FORMAT_PUBSUB)

    def _update(self, request: Message, *, patch: bool) -> RenderResult:
        _accepts(request, d.CONTENT_FORMAT_PUBSUB)
        _content_format(request, d.CONTENT_FORMAT_PUBSUB)
        topic = self._live(request)
        try:
            props = decode_properties(self.config_payload(request), allow_null=patch)
            config = patched(topic.config, props) if patch else replaced(topic.config, props)
            self.broker.limit_configuration(request.remote)
        except BrokerError as e:
            return self.refuse(request, e)
        return self._apply(request, topic, config)

    async def _apply(self, request: Message, topic: Topic, config: TopicConfig) -> Message:
        try:
            await self.broker.update_topic(topic, config)
        except BrokerError as e:
            return self.refuse(request, e)
        return self._representation(request, Code.CHANGED, topic)

    def render_post(self, request: Message) -> RenderResult:
        return self._update(request, patch=False)

    def render_ipatch(self, request: Message) -> RenderResult:
        return self._update(request, patch=True)

    def render_delete(self, request: Message) -> RenderResult:
        topic = self._live(request)
        try:
            self.broker.limit_configuration(request.remote)
        except BrokerError as e:
            return self.refuse(request, e)
        return self._delete(request, topic)

    async def _delete(self, request: Message, topic: Topic) -> Message:
        try:
            await self.broker.delete_topic(topic)
        except BrokerError as e:
            return self.refuse(request, e)
        return request.response(Code.DELETED)


class TopicDataResource(_BrokerResource):
    """Where a topic's data is published and subscribed to (section 3.2)."""

    observable = True

    def __init__(self, broker: Broker, topic: Topic) -> None:
        super().__init__(broker)
        self.topic = topic
        #: (peer, token) of subscriptions being ended with a final 4.04 (max-subscribers
        #: lowered): the notification rendered for them is that 4.04. None mostly (a set
        #: per topic would cost 200 bytes each).
        self.ending: set[tuple[object, bytes]] | None = None

    def links(self) -> list[Link]:
        return []

    def render_get(self, request: Message) -> RenderResult:
        topic = self.topic
        if not self.broker.holds(topic):
            raise NotFound("no such topic")
        if self.ending and (request.remote, request.token) in self.ending:
            raise NotFound("subscription ended: the topic's max-subscribers was lowered")
        if topic.value is None:
            raise NotFound("nothing published to this topic yet")
        if topic.value_format is not None:
            _accepts(request, topic.value_format)
        return request.response(Code.CONTENT, topic.value, topic.value_format)

    def admits_observer(self, request: Message) -> bool:
        return self.broker.admit_subscriber(self, request)

    def render_put(self, request: Message) -> RenderResult:
        topic = self.topic
        if not self.broker.holds(topic):
            raise NotFound("no such topic")
        try:
            first = self.broker.publish_from(topic, request.payload, request.content_format,
                                             request.remote)
        except BrokerError as e:
            return self.refuse(request, e)
        return request.response(Code.CREATED if first else Code.CHANGED)

    def render_delete(self, request: Message) -> RenderResult:
        topic = self.topic
        if not self.broker.holds(topic) or not self.broker.delete_data(topic):
            raise NotFound("no data to delete")
        return request.response(Code.DELETED)
