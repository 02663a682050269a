"""Any node answers the REST API for any device (several nodes, ``aiolwm2m.cluster``).

:class:`ClusterRouter` is a pure ASGI middleware behind the request gate (the token is
checked where the request arrives). A request under ``/api/clients/{ep}/`` or for
``/api/registrations/{ep}`` whose device this node does not hold goes to the node that
owns it, as it came (method, path, query, body, content type): over that node's inbox
stream, where the owner runs it through its own application and sends the response back.
A device whose node died is taken over by the node the request arrived at, which then
serves it. ``GET /api/registrations`` gathers every live node's share and merges them in
endpoint order. Anything else, and every request of a single server, passes straight on:
the cost for a device this node holds is one dictionary lookup.

The node a device was last routed to is remembered (while that node lives), which saves a
lease read per request. A node that is sent a request for a device it no longer holds, and
finds the device held by a live node, answers 421 naming that node; the asking node then
forgets what it remembered and routes again, once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiolwm2m.cluster.bus import BusError
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.server import LwM2MServer

from .auth import AUTHENTICATED_KEY
from .request_gate import allow_body
from .routes_operations import MAX_TIMEOUT
from .routes_registrations import registration_out, select_registrations

if TYPE_CHECKING:
    from aiolwm2m.cluster.node import ClusterNode

log = logging.getLogger(__name__)
_throttled = LogThrottle(log, interval=10.0, burst=3)

#: Set in the scope of a request another node forwarded: it is served here, never again
#: forwarded (the value names the node it came from).
FORWARDED_KEY = "aiolwm2m.forwarded_by"
HTTP = "http"
REGISTRATIONS = "registrations"
CLIENTS = "/api/clients/"
REGISTRATIONS_PATH = "/api/registrations"
#: Request headers that travel with a forwarded request (the token stays behind).
_FORWARDED_HEADERS = (b"content-type", b"accept")
#: The answer of a node sent a request for a device another live node holds (the asker
#: routes again): 421 Misdirected Request, the holder in this header.
MISDIRECTED = 421
OWNER_HEADER = b"x-aiolwm2m-owner"
#: Response headers that come back.
_ANSWER_HEADERS = (b"content-type", b"location", b"retry-after", OWNER_HEADER)
#: Devices whose node the router remembers (all forgotten when full: they are read again).
MAX_REMEMBERED = 100_000
_PLAIN_NUMBER = re.compile(r"[0-9]{1,6}(\.[0-9]{1,9})?")
#: How long a node waits for another's share of the registration list.
LIST_TIMEOUT = 10.0
_LIST_PARAMETERS = frozenset({"endpoint", "binding", "queue_mode", "lwm2m_version", "offset",
                              "limit"})


def device_of(path: str) -> str | None:
    """The endpoint a device route names, else None."""
    if path.startswith(CLIENTS):
        endpoint, sep, _rest = path[len(CLIENTS):].partition("/")
        return endpoint if endpoint and sep else None
    if path.startswith(REGISTRATIONS_PATH + "/"):
        endpoint, _sep, rest = path[len(REGISTRATIONS_PATH) + 1:].partition("/")
        return endpoint if endpoint and rest in ("", "objects") else None
    return None


def _json_body(status: int, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return status, [(b"content-type", b"application/json")], json.dumps(
        {"detail": detail}).encode()


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                   body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(parts)


def _requested_timeout(scope: Scope) -> float:
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if key == "timeout" and _PLAIN_NUMBER.fullmatch(value):
            return min(float(value), MAX_TIMEOUT)
    return 0.0


def encode_request(scope: Scope, body: bytes) -> bytes:
    headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
               if k in _FORWARDED_HEADERS]
    head = {"m": scope["method"], "p": scope["path"],
            "q": scope.get("query_string", b"").decode("latin-1"), "h": headers}
    return json.dumps(head).encode() + b"\n" + body


def decode_answer(answer: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    head, _, body = answer.partition(b"\n")
    meta = json.loads(head)
    return (int(meta["s"]), [(k.encode("latin-1"), v.encode("latin-1"))
                             for k, v in meta["h"]], body)


async def run_forwarded(app: ASGIApp, sender: str, payload: bytes) -> bytes:
    """Serve a request another node forwarded through ``app`` (the whole application:
    the gate takes it as authenticated, the router serves it here); the answer as bytes."""
    head, _, body = payload.partition(b"\n")
    meta = json.loads(head)
    path = str(meta["p"])
    headers = [(str(k).encode("latin-1"), str(v).encode("latin-1")) for k, v in meta["h"]]
    headers.append((b"content-length", str(len(body)).encode()))
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": str(meta["m"]), "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": str(meta["q"]).encode("latin-1"),
        "root_path": "", "headers": headers, "client": None, "server": None,
        AUTHENTICATED_KEY: True, FORWARDED_KEY: sender}
    status = 500
    out_headers: list[list[str]] = []
    parts: list[bytes] = []
    sent_body = False

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers.extend([k.decode("latin-1"), v.decode("latin-1")]
                               for k, v in message.get("headers", ())
                               if k.lower() in _ANSWER_HEADERS)
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, send)
    return json.dumps({"s": status, "h": out_headers}).encode() + b"\n" + b"".join(parts)


def _list_query(scope: Scope) -> dict[str, Any] | None:
    """The list's parameters when they are plainly valid; None to leave the request to
    the route (which answers its own validation errors)."""
    raw = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    names = [k for k, _ in raw if k != "access_token"]
    if len(names) != len(set(names)) or not set(names) <= _LIST_PARAMETERS:
        return None
    given = dict(raw)
    try:
        offset = int(given.get("offset", "0"))
        limit = int(given.get("limit", "100"))
    except ValueError:
        return None
    binding = given.get("binding") or None
    version = given.get("lwm2m_version") or None
    queue_text = given.get("queue_mode")
    queue_mode = {"true": True, "1": True, "false": False, "0": False}.get(
        (queue_text or "").lower()) if queue_text is not None else None
    if (offset < 0 or not 1 <= limit <= 1000 or (queue_text is not None and queue_mode is None)
            or (binding is not None and not re.fullmatch("[UTSN]+", binding))
            or (version is not None and not re.fullmatch(r"1\.[0-9]", version))):
        return None
    return {"endpoint": given.get("endpoint") or None, "binding": binding,
            "queue_mode": queue_mode, "lwm2m_version": version, "offset": offset,
            "limit": limit}


def local_share(server: LwM2MServer, query: dict[str, Any]) -> dict[str, Any]:
    """This node's registrations for the list: its count and the first offset + limit."""
    regs = select_registrations(server, query["endpoint"], query["binding"],
                                query["queue_mode"], query["lwm2m_version"])
    want = query["offset"] + query["limit"]
    return {"total": len(regs),
            "items": [registration_out(server, r).model_dump(mode="json")
                      for r in regs[:want]]}


class ClusterRouter:
    def __init__(self, app: ASGIApp, *, server: LwM2MServer) -> None:
        self.app = app
        self.server = server
        #: Endpoint -> the node it was last routed to.
        self._owners: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        node = cast("ClusterNode | None", self.server.cluster)
        if node is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        endpoint = device_of(path)
        registry = self.server.registry
        if endpoint is not None and endpoint in registry.by_endpoint:
            await self.app(scope, receive, send)
            return
        if scope.get(FORWARDED_KEY) is not None:
            if endpoint is not None:
                # Sent here as the owner: a device this node's earlier run held, or one
                # whose node died meanwhile, is taken over; one a live node holds now is
                # sent back to the asker to route again; anything else is a 404 here.
                holder = await node.ownership.route(endpoint)
                if holder is not None:
                    status, headers, content = _json_body(
                        MISDIRECTED, f"node {holder} holds this device now")
                    await _respond(send, status, [*headers, (OWNER_HEADER, holder.encode())],
                                   content)
                    return
            await self.app(scope, receive, send)
            return
        if endpoint is None:
            if path == REGISTRATIONS_PATH and scope["method"] == "GET":
                query = _list_query(scope)
                if query is not None:
                    await self._list(node, query, send)
                    return
            await self.app(scope, receive, send)
            return
        try:
            owner = await self._owner_of(node, endpoint)
        except Exception as e:
            await _respond(send, *_json_body(503, f"cannot find the node of {endpoint!r}: "
                                                  f"{e}"))
            return
        if owner is None:
            await self.app(scope, receive, send)
            return
        await self._forward(node, owner, scope, receive, send)

    async def _owner_of(self, node: ClusterNode, endpoint: str) -> str | None:
        remembered = self._owners.get(endpoint)
        if remembered is not None and node.membership.is_alive(remembered):
            return remembered
        owner = await node.ownership.route(endpoint)
        if owner is None:
            self._owners.pop(endpoint, None)
        else:
            if len(self._owners) >= MAX_REMEMBERED:
                self._owners.clear()
            self._owners[endpoint] = owner
        return owner

    async def _forward(self, node: ClusterNode, owner: str, scope: Scope, receive: Receive,
                       send: Send) -> None:
        if scope["path"].endswith("/write-opaque"):
            allow_body(scope, self.server.config.http_max_upload)
        body = await _read_body(receive)
        timeout = node.settings.route_timeout + _requested_timeout(scope)
        endpoint = device_of(scope["path"]) or ""
        node.routed_out += 1
        try:
            answer = await node.bus.request(owner, HTTP, encode_request(scope, body), timeout)
            status, headers, content = decode_answer(answer)
            if status == MISDIRECTED and any(k == OWNER_HEADER for k, _ in headers):
                # What this node remembered was stale: read the lease again, once.
                self._owners.pop(endpoint, None)
                owner = await node.ownership.route(endpoint) or ""
                if not owner:
                    await self.app(scope, _replay(body), send)
                    return
                answer = await node.bus.request(owner, HTTP, encode_request(scope, body),
                                                timeout)
                status, headers, content = decode_answer(answer)
        except TimeoutError:
            node.route_failures += 1
            status, headers, content = _json_body(
                504, f"node {owner}, which holds this device, did not answer in time")
        except (BusError, ValueError, KeyError) as e:
            self._owners.pop(endpoint, None)
            node.route_failures += 1
            _throttled.warning("route", "routing %s %s to node %s failed: %s", scope["method"],
                               scope["path"][:80], owner, e)
            status, headers, content = _json_body(
                503, f"node {owner}, which holds this device, cannot be reached")
        await _respond(send, status, headers, content)

    async def _list(self, node: ClusterNode, query: dict[str, Any], send: Send) -> None:
        body = json.dumps(query).encode()
        peers = node.membership.peers()
        shares = [local_share(self.server, query)]
        for peer, result in zip(peers, await _gather(
                [node.bus.request(peer, REGISTRATIONS, body, LIST_TIMEOUT) for peer in peers]),
                strict=True):
            if isinstance(result, BaseException):
                _throttled.warning("list", "node %s's registrations are missing from a list: "
                                   "%s", peer, result or "timed out")
                continue
            shares.append(json.loads(result))
        merged = heapq.merge(*(share["items"] for share in shares),
                             key=lambda item: item["endpoint"])
        offset, limit = query["offset"], query["limit"]
        page = {"total": sum(int(share["total"]) for share in shares), "offset": offset,
                "limit": limit, "items": list(itertools.islice(merged, offset,
                                                               offset + limit))}
        await _respond(send, 200, [(b"content-type", b"application/json")],
                       json.dumps(page).encode())


def _replay(body: bytes) -> Receive:
    """A receive channel that gives ``body`` again (it was read for forwarding)."""
    given = False

    async def receive() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _gather(work: list[Awaitable[bytes]]) -> list[bytes | BaseException]:
    return list(await asyncio.gather(*work, return_exceptions=True))


def serve_cluster_requests(node: ClusterNode, app: ASGIApp, server: LwM2MServer) -> None:
    """Answer the bus requests of the web layer on this node: forwarded REST requests,
    and this node's share of the registration list."""

    async def http(sender: str, payload: bytes) -> bytes:
        node.routed_in += 1
        return await run_forwarded(app, sender, payload)

    async def registrations(sender: str, payload: bytes) -> bytes:
        return json.dumps(local_share(server, json.loads(payload))).encode()

    handlers: dict[str, Callable[[str, bytes], Awaitable[bytes]]] = {
        HTTP: http, REGISTRATIONS: registrations}
    node.bus.handlers.update(handlers)
