"""``/api/broker``: the pub/sub broker's topics with their last values.

A broker in the server's process (``aiolwm2m server --broker-port``) or one read over
CoAP (``--broker-uri``, say a gateway's); without either every route answers 404.
Values travel as ``{"base64": ...}`` like Opaque resources, plus ``text`` for textual
content formats and ``json`` for CBOR ones (decoded, for people to read).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Annotated, Any

import cbor2
from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel

from aiolwm2m.pubsub.drafts import DRAFT
from aiolwm2m.pubsub.view import BrokerUnreachable, BrokerView, TopicSnapshot

from .schemas import ErrorOut

router = APIRouter(prefix="/api/broker", tags=["broker"], responses={
    404: {"model": ErrorOut, "description": "no broker configured (or no such topic)"},
    502: {"model": ErrorOut, "description": "the broker read over CoAP did not answer"}})

#: Content formats shown as text: text/plain, link-format, JSON, SenML JSON, LwM2M JSON.
_TEXT_FORMATS = frozenset({0, 40, 50, 110, 11543})
#: ... and decoded from CBOR: CBOR, SenML CBOR, LwM2M CBOR.
_CBOR_FORMATS = frozenset({60, 112, 11544})


def get_view(request: Request) -> BrokerView:
    view: BrokerView | None = getattr(request.app.state, "broker_view", None)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "no broker: start the server with --broker-port (a broker in "
                            "this process) or --broker-uri (one read over CoAP)")
    return view


class ValueOut(BaseModel):
    base64: str
    #: The value as text, for textual content formats (when it is UTF-8).
    text: str | None = None
    #: The value decoded from CBOR, for CBOR content formats (when it decodes).
    json_value: Any = None


class TopicOut(BaseModel):
    id: str
    path: str
    name: str
    data_path: str | None
    resource_type: str
    topic_content_format: int | None
    topic_type: str | None
    expiration_date: float | None
    max_subscribers: int | None
    observer_check: int | None
    #: "half-created" (nothing published yet) or "fully-created".
    state: str
    value: ValueOut | None
    value_format: int | None
    published_at: float | None
    publishes: int | None
    subscribers: int | None
    last_publisher: str | None


class TopicPage(BaseModel):
    total: int
    offset: int
    items: list[TopicOut]


class BrokerOut(BaseModel):
    draft: str
    source: str
    port: int | None
    topics: int
    subscribers: int | None
    nodes: int | None
    rd_state: str | None
    rd_registration: str | None


class NodeOut(BaseModel):
    address: str
    first_seen: float
    last_seen: float
    last_publish: float | None
    last_topic: str | None
    publishes: int
    subscriptions: int


def _json_safe(value: Any) -> Any:
    """CBOR data as JSON: bytes as {"base64"}, tags as {"tag", "value"}, odd keys as text."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, cbor2.CBORTag):
        return {"tag": value.tag, "value": _json_safe(value.value)}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def value_out(value: bytes | None, fmt: int | None) -> ValueOut | None:
    if value is None:
        return None
    out = ValueOut(base64=base64.b64encode(value).decode())
    if fmt in _TEXT_FORMATS:
        try:
            out.text = value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    elif fmt in _CBOR_FORMATS:
        try:
            decoded = _json_safe(cbor2.loads(value))
            json.dumps(decoded)
            out.json_value = decoded
        except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError,
                binascii.Error):
            pass
    return out


def topic_out(s: TopicSnapshot) -> TopicOut:
    c = s.config
    return TopicOut(
        id=s.id, path=s.path, name=c.name, data_path=c.data, resource_type=c.resource_type,
        topic_content_format=c.content_format, topic_type=c.topic_type,
        expiration_date=float(c.expiration) if c.expiration is not None else None,
        max_subscribers=c.max_subscribers, observer_check=c.observer_check,
        state="fully-created" if s.value is not None else "half-created",
        value=value_out(s.value, s.value_format), value_format=s.value_format,
        published_at=s.published_at, publishes=s.publishes, subscribers=s.subscribers,
        last_publisher=s.last_publisher)


def _unreachable(e: BrokerUnreachable) -> HTTPException:
    return HTTPException(status.HTTP_502_BAD_GATEWAY, str(e))


@router.get("", response_model=BrokerOut, summary="The broker: where it is, how much it holds")
async def broker_info(request: Request) -> BrokerOut:
    view = get_view(request)
    try:
        s = await view.summary()
    except BrokerUnreachable as e:
        raise _unreachable(e) from None
    return BrokerOut(draft=DRAFT, source=s.source, port=s.port, topics=s.topics,
                     subscribers=s.subscribers, nodes=s.nodes, rd_state=s.rd_state,
                     rd_registration=s.rd_registration)


@router.get("/topics", response_model=TopicPage,
            summary="Topics with their configuration and last value")
async def list_topics(request: Request,
                      offset: Annotated[int, Query(ge=0)] = 0,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> TopicPage:
    view = get_view(request)
    try:
        total, page = await view.topics(offset, limit)
    except BrokerUnreachable as e:
        raise _unreachable(e) from None
    return TopicPage(total=total, offset=offset, items=[topic_out(s) for s in page])


@router.get("/topics/{topic_id}", response_model=TopicOut, summary="One topic")
async def get_topic(request: Request, topic_id: str) -> TopicOut:
    view = get_view(request)
    try:
        found = await view.topic(topic_id)
    except BrokerUnreachable as e:
        raise _unreachable(e) from None
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such topic")
    return topic_out(found)


@router.get("/nodes", response_model=list[NodeOut],
            summary="Peers the broker has heard from (a broker in this process only)")
async def list_nodes(request: Request) -> list[NodeOut]:
    nodes = get_view(request).nodes()
    if nodes is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "node state is known for a broker in this process only")
    return [NodeOut(address=n.address, first_seen=n.first_seen, last_seen=n.last_seen,
                    last_publish=n.last_publish, last_topic=n.last_topic,
                    publishes=n.publishes, subscriptions=n.subscriptions) for n in nodes]
