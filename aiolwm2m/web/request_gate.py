"""What every HTTP request passes before the application sees it.

The bearer token is checked from the headers alone, before the application reads any of
the body (an anonymous body is only ever dropped), and the body is then counted as it
streams in and cut off at a limit (413). It is a pure ASGI middleware on purpose: FastAPI
reads and parses a request's body before it runs the route's dependencies, so an
authentication dependency alone let an anonymous client make the server hold a 300 MiB
upload, and answered bad JSON with 422 before it said 401.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Literal, cast

from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import AUTHENTICATED_KEY, TokenAuth, bearer_token

MetricsAccess = Literal["open", "loopback-or-token", "token"]
METRICS_ACCESS: tuple[MetricsAccess, ...] = ("open", "loopback-or-token", "token")
BODY_LIMIT_KEY = "aiolwm2m.body_limit"
#: How long the rest of a body answered early (401, 413) is read and dropped before the
#: response is completed: clients send their whole body before they read the answer, and
#: the HTTP server closes the connection once a response is complete, which on unread data
#: makes the kernel send a reset that discards the answer. A "lingering close", bounded in
#: time as web servers bound theirs; it holds no memory.
LINGER_SECONDS = 10.0


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimit:
    """The byte budget of one request's body. A route that takes large uploads raises
    ``limit`` before it starts reading (see :func:`allow_body`); the declared length is
    checked on the first read, so it is measured against the route's own limit."""

    __slots__ = ("declared", "limit", "received")

    def __init__(self, limit: int, declared: int | None) -> None:
        self.limit = limit
        self.declared = declared
        self.received = 0

    def count(self, message: Message) -> None:
        if self.declared is not None and self.declared > self.limit:
            raise BodyTooLarge(self.limit)
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise BodyTooLarge(self.limit)


def allow_body(scope: Scope, limit: int) -> None:
    """Let the current request's body grow to ``limit`` bytes (for upload routes)."""
    budget = scope.get(BODY_LIMIT_KEY)
    if isinstance(budget, BodyLimit):
        budget.limit = limit


def is_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(str(client[0]).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def _discard_body(receive: Receive, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body"):
                    return
    except TimeoutError:
        pass


def _declared_length(headers: Headers) -> int | None:
    text = headers.get("content-length")
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _json_response(status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
                   ) -> tuple[Message, Message]:
    body = json.dumps({"detail": detail}).encode()
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()), *(headers or [])]},
            {"type": "http.response.body", "body": body})


class RequestGate:
    """Token first (for ``/api`` always, for ``/metrics`` as ``metrics_access`` says), then
    a body limit for every request."""

    def __init__(self, app: ASGIApp, *, auth: TokenAuth, max_body: int,
                 metrics_access: str) -> None:
        self.app = app
        self.auth = auth
        self.max_body = max_body
        self.metrics_access = metrics_access

    def _needs_token(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        if path == "/api" or path.startswith("/api/"):
            return True
        if path == "/metrics":
            return self.metrics_access == "token" or (
                self.metrics_access == "loopback-or-token" and not is_loopback(scope))
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        body_done = not declared and "chunked" not in headers.get("transfer-encoding", "")
        started = False

        async def lingering_send(message: Message) -> None:
            nonlocal started, body_done
            if message["type"] == "http.response.start":
                started = True
            elif (message["type"] == "http.response.body" and not message.get("more_body")
                  and not body_done):
                # Answered before the body was all read: the answer goes out, then the
                # rest of the body is dropped, then the response is completed.
                await send({**message, "more_body": True})
                await _discard_body(receive, LINGER_SECONDS)
                body_done = True
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        # A request another node forwarded (``aiolwm2m.cluster``) was checked there.
        if self._needs_token(scope) and scope.get(AUTHENTICATED_KEY) is not True:
            token = bearer_token(headers.get("authorization", ""), None)
            if token is None:  # the query is parsed only for clients without the header
                query = QueryParams(cast(bytes, scope.get("query_string", b"")))
                token = query.get("access_token")
            if not self.auth.check(token):
                # Answered from the headers: the body is never kept, nor echoed.
                for message in _json_response(
                        401, "missing or invalid bearer token" if token
                        else "authentication required",
                        [(b"www-authenticate", b'Bearer realm="aiolwm2m"')]):
                    await lingering_send(message)
                return
            scope[AUTHENTICATED_KEY] = True
        budget = BodyLimit(self.max_body, declared)
        scope[BODY_LIMIT_KEY] = budget

        async def limited_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                body_done = True
            budget.count(message)
            return message

        try:
            await self.app(scope, limited_receive, lingering_send)
        except BodyTooLarge as e:
            # FastAPI's exception handling answers it inside the app; this is for readers
            # outside of it (a mounted app, a streaming response's receive).
            if started:
                raise
            for message in _json_response(413, str(e.detail)):
                await lingering_send(message)

