"""Topic configurations (draft section 2.2): the CBOR map, its checks and its updates.

Sans-IO: bytes in, a :class:`TopicConfig` or a :class:`ConfigError` naming the property
that is wrong out. Creation, replacement (POST) and iPATCH differ only in which properties
must be present and what happens to those left out, so they share one parser.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from . import drafts as d
from .cbor_reader import CborError, Tagged, read_item
from .errors import BrokerError

#: Longest topic-name, topic-type and topic-data in UTF-8 bytes: they are kept per topic
#: and echoed in every configuration reply.
MAX_TEXT: Final = 255
_UINT32: Final = (1 << 32) - 1
#: Dates beyond this are not representable as a float without loss, and far beyond any
#: topic's life anyway.
_MAX_DATE: Final = float(1 << 53)


class ConfigError(BrokerError, ValueError):
    """A topic configuration the broker refuses; ``key`` is the property at fault (None
    when the document as a whole is wrong). Its text is the 4.00 diagnostic."""

    def __init__(self, key: int | None, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{d.property_name(key)}: {reason}" if key is not None else reason)


@dataclass(frozen=True, slots=True)
class TopicConfig:
    name: str
    resource_type: str = d.RT_DATA
    #: The topic-data resource's URI; the broker assigns it when the creator gives none.
    data: str | None = None
    content_format: int | None = None
    topic_type: str | None = None
    #: Seconds since the epoch (the number inside CBOR tag 1).
    expiration: int | float | None = None
    max_subscribers: int | None = None
    observer_check: int | None = None
    initialize: bytes | None = None

    def to_map(self) -> dict[int, object]:
        out: dict[int, object] = {d.TOPIC_NAME: self.name}
        if self.data is not None:
            out[d.TOPIC_DATA] = self.data
        out[d.RESOURCE_TYPE] = self.resource_type
        for key, value in ((d.TOPIC_CONTENT_FORMAT, self.content_format),
                           (d.TOPIC_TYPE, self.topic_type),
                           (d.EXPIRATION_DATE, self.expiration),
                           (d.MAX_SUBSCRIBERS, self.max_subscribers),
                           (d.OBSERVER_CHECK, self.observer_check),
                           (d.INITIALIZE, self.initialize)):
            if value is not None:
                out[key] = value
        return out


_FIELDS: Final = {
    d.TOPIC_NAME: "name", d.TOPIC_DATA: "data", d.RESOURCE_TYPE: "resource_type",
    d.TOPIC_CONTENT_FORMAT: "content_format", d.TOPIC_TYPE: "topic_type",
    d.EXPIRATION_DATE: "expiration", d.MAX_SUBSCRIBERS: "max_subscribers",
    d.OBSERVER_CHECK: "observer_check", d.INITIALIZE: "initialize",
}


def encode(properties: Mapping[int, object]) -> bytes:
    """CBOR of a (partial) configuration, keys in ascending order."""
    out: dict[int, object] = {}
    for key in sorted(properties):
        value = properties[key]
        out[key] = cbor2.CBORTag(d.TAG_EPOCH_DATE, value) if key == d.EXPIRATION_DATE else value
    return cbor2.dumps(out)


def encode_config(config: TopicConfig) -> bytes:
    return encode(config.to_map())


def decode_properties(payload: bytes, *, allow_null: bool = False) -> dict[int, object]:
    """The checked properties of a configuration map. ``allow_null``: a property may be
    CBOR null (an iPATCH removing an optional property)."""
    if not payload:
        raise ConfigError(None, "empty payload: expected a CBOR map of topic properties")
    try:
        doc = read_item(payload)
    except CborError as e:
        raise ConfigError(None, f"malformed CBOR: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(None, "expected a CBOR map of topic properties")
    props: dict[int, object] = {}
    for key, value in doc.items():
        if type(key) is not int or key not in _FIELDS:
            raise ConfigError(None, f"unknown {d.property_name(key)}")
        if value is None:
            if not allow_null or key in (d.TOPIC_NAME, d.RESOURCE_TYPE):
                raise ConfigError(key, "must not be null")
            props[key] = None
            continue
        props[key] = _checked(key, value)
    return props


def _text(key: int, value: object) -> str:
    if type(value) is not str:
        raise ConfigError(key, "must be a text string")
    if not value:
        raise ConfigError(key, "must not be empty")
    if len(value.encode()) > MAX_TEXT:
        raise ConfigError(key, f"longer than {MAX_TEXT} bytes")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(key, "holds control characters")
    return value


def _uint(key: int, value: object, low: int, high: int) -> int:
    if type(value) is not int or value < 0:
        raise ConfigError(key, "must be an unsigned integer")
    if not low <= value <= high:
        raise ConfigError(key, f"must be {low}..{high}")
    return value


def _checked(key: int, value: object) -> object:
    if key in (d.TOPIC_NAME, d.TOPIC_TYPE, d.TOPIC_DATA):
        return _text(key, value)
    if key == d.RESOURCE_TYPE:
        rt = _text(key, value)
        if rt not in d.DATA_RESOURCE_TYPES:
            raise ConfigError(key, f"must be {d.RT_DATA!r}")
        return rt
    if key == d.TOPIC_CONTENT_FORMAT:
        return _uint(key, value, 0, 65535)
    if key == d.MAX_SUBSCRIBERS:
        return _uint(key, value, 0, _UINT32)
    if key == d.OBSERVER_CHECK:
        return _uint(key, value, 1, _UINT32)
    if key == d.EXPIRATION_DATE:
        if not isinstance(value, Tagged) or value.tag != d.TAG_EPOCH_DATE:
            raise ConfigError(key, "must be an epoch date (CBOR tag 1)")
        seconds = value.value
        if type(seconds) not in (int, float) or isinstance(seconds, bool):
            raise ConfigError(key, "tag 1 must hold a number")
        assert isinstance(seconds, int | float)
        if not math.isfinite(seconds) or not 0 <= seconds <= _MAX_DATE:
            raise ConfigError(key, "date out of range")
        return seconds
    # INITIALIZE
    if type(value) is not bytes:
        raise ConfigError(key, "must be a byte string (the initial representation)")
    return value


def _applied(base: TopicConfig, props: Mapping[int, object]) -> TopicConfig:
    changes: dict[str, Any] = {_FIELDS[k]: v for k, v in props.items()}
    config = dataclasses.replace(base, **changes)
    if config.initialize is not None and config.content_format is None:
        raise ConfigError(d.INITIALIZE, "needs topic-content-format as well")
    return config


def for_creation(props: Mapping[int, object]) -> TopicConfig:
    """The configuration a POST to the collection asks for (section 2.4.3)."""
    for key in (d.TOPIC_NAME, d.RESOURCE_TYPE):
        if key not in props:
            raise ConfigError(key, "required to create a topic")
    name = props[d.TOPIC_NAME]
    assert isinstance(name, str)
    return _applied(TopicConfig(name=name), props)


def _check_immutable(current: TopicConfig, props: Mapping[int, object]) -> None:
    mine = current.to_map()
    for key in d.IMMUTABLE:
        if key in props and props[key] != mine.get(key) and not (
                key == d.TOPIC_DATA and same_data_uri(props[key], mine.get(key))):
            raise ConfigError(key, "cannot change once the topic exists")


def replaced(current: TopicConfig, props: Mapping[int, object]) -> TopicConfig:
    """POST to a topic (section 2.5.3): a new configuration; left-out optional properties
    return to their defaults, the immutable ones keep their values."""
    _check_immutable(current, props)
    base = TopicConfig(name=current.name, resource_type=current.resource_type,
                       data=current.data)
    rest = {k: v for k, v in props.items() if k not in d.IMMUTABLE}
    return _applied(base, rest)


def patched(current: TopicConfig, props: Mapping[int, object]) -> TopicConfig:
    """iPATCH (section 2.5.4): only the properties present change; null removes one."""
    _check_immutable(current, props)
    rest = {k: v for k, v in props.items() if k not in d.IMMUTABLE}
    return _applied(current, rest)


def same_data_uri(a: object, b: object) -> bool:
    """topic-data URIs compare equal with or without their leading slash (the draft's
    examples wrote "ps/data/x" before -19 and "/ps/data/x" since)."""
    return (isinstance(a, str) and isinstance(b, str)
            and a.lstrip("/") == b.lstrip("/"))


def matches(config: TopicConfig, props: Mapping[int, object]) -> bool:
    """A collection FETCH filter (section 2.4.2): every property given has that value."""
    mine = config.to_map()
    for key, value in props.items():
        if key not in mine:
            return False
        if key == d.TOPIC_DATA:
            if not same_data_uri(value, mine[key]):
                return False
        elif mine[key] != value:
            return False
    return True


def fetch_keys(payload: bytes, content_format: int | None) -> list[int]:
    """The property keys a topic FETCH asks for: -21's array (application/cbor) or -20's
    ``{9: [...]}`` map (application/core-pubsub+cbor)."""
    try:
        doc = read_item(payload) if payload else None
    except CborError as e:
        raise ConfigError(None, f"malformed CBOR: {e}") from None
    if content_format == d.CONTENT_FORMAT_PUBSUB and isinstance(doc, dict):
        if set(doc) != {d.PREVIOUS_CONF_FILTER}:
            raise ConfigError(None, "expected {9: [keys...]} (the -20 conf-filter)")
        doc = doc[d.PREVIOUS_CONF_FILTER]
    if not isinstance(doc, list):
        raise ConfigError(None, "expected a CBOR array of topic property keys")
    keys: list[int] = []
    for k in doc:
        if type(k) is not int:
            raise ConfigError(None, "topic property keys are integers")
        keys.append(k)
    return keys


def selected(config: TopicConfig, keys: Iterable[int]) -> dict[int, object]:
    mine = config.to_map()
    return {k: mine[k] for k in keys if k in mine}
