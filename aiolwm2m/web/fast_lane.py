"""The REST API's most frequent GETs, answered without FastAPI's per-request machinery.

Through FastAPI a request costs well over 100 us of CPU before its route runs: routing
matches it against every route of every included router (and does so twice, to match and
then to handle), dependencies are solved and query parameters are validated by pydantic.
For ``GET /api/server`` that was nearly all of its cost, and for a REST Read of ``/3/0`` more
than the CoAP exchange with the device. Dashboards and platforms poll exactly these.

:class:`FastLane` stands in front of the whole application (:class:`LaneApp`): FastAPI's
own layers (its telemetry hook, body limit and error middleware, Starlette's stack) and the
request gate cost a REST Read a tenth of its CPU more. It answers, from the request's head
alone

- ``GET /api/server``
- ``GET /api/clients/{endpoint}/read?path=&format=&timeout=``

when the request has no body and a valid bearer token in its ``Authorization`` header (the
check :class:`~.request_gate.RequestGate` makes), by calling the same functions as their
routes (the bodies of :mod:`.result_json`, the errors of :func:`~.deps.device_errors`), so
both answer with the same bytes. Everything else, including every refusal of the token,
goes through the gate as before. The routes stay:
they describe the API in the OpenAPI schema, and they answer every request the lane passes
on, which is any it would have to refuse for its parameters (missing, repeated, or not a
plain number where one is expected): those refusals keep FastAPI's exact form.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, HTTPException
from fastapi.exception_handlers import http_exception_handler
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from aiolwm2m.server import LwM2MServer

from .auth import TokenAuth, bearer_token
from .result_json import json_response, server_info
from .routes_operations import MAX_TIMEOUT, read_request, run

CLIENTS_PREFIX = "/api/clients/"
READ_SUFFIX = "/read"
_READ_PARAMETERS = frozenset({"path", "format", "timeout"})
# A timeout the lane takes itself; any other spelling ("1e1", " 5", "nan") is the route's.
_PLAIN_NUMBER = re.compile(r"[0-9]{1,6}(\.[0-9]{1,9})?")


class PassOn(Exception):
    """The request is the route's to answer (a refusal the lane leaves to FastAPI)."""


def query_parameters(scope: Scope, names: frozenset[str]) -> dict[str, str]:
    """``names`` from the query string, decoded as Starlette decodes them; PassOn when one
    of them is repeated (FastAPI would take the last one; the route may say so)."""
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return {}
    found: dict[str, str] = {}
    text = raw.decode("latin-1")
    # Nothing to decode (the usual "path=/3/0"): split as parse_qsl would, at a tenth of
    # its cost (it unquotes every name and value).
    pairs = ([(key, value) for key, _, value in
              (field.partition("=") for field in text.split("&") if field)]
             if "%" not in text and "+" not in text
             else parse_qsl(text, keep_blank_values=True))
    for key, value in pairs:
        if key in names:
            if key in found:
                raise PassOn
            found[key] = value
    return found


def plain_timeout(text: str | None) -> float | None:
    if text is None:
        return None
    if not _PLAIN_NUMBER.fullmatch(text):
        raise PassOn
    seconds = float(text)
    if not 0 < seconds <= MAX_TIMEOUT:
        raise PassOn
    return seconds


def _head(scope: Scope) -> tuple[bytes, bool]:
    """The Authorization header, and whether the head is one the lane may take: no body
    (no length but 0, no transfer coding) and at most one Authorization header (with two,
    which one counts is the gate's to say)."""
    authorization = b""
    plain = True
    for name, value in scope["headers"]:
        if name == b"authorization":
            plain = plain and not authorization
            authorization = value
        elif name == b"content-length":
            plain = plain and value.strip() == b"0"
        elif name == b"transfer-encoding":
            plain = False
    return authorization, plain


class FastLane:
    """Answers its requests in front of the whole application, or says it does not."""

    def __init__(self, server: LwM2MServer, auth: TokenAuth,
                 traced: Callable[[], bool] | None = None) -> None:
        self.server = server
        self.auth = auth
        #: Whether the application traces requests (FastAPI's OpenTelemetry, when an
        #: exporter is configured): then the lane leaves them all to it, to be traced.
        self._traced = traced
        self._untraced_until = 0.0
        self._traced_for_good = False

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """True when the request was answered here; False (nothing sent) when it is the
        application's: another method or path, a body, a cluster (whose router decides
        where a device's request is answered), or anything but a valid bearer token in
        the header (the gate answers those, and the query's ``access_token`` too)."""
        if (scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path")
                or self.server.cluster is not None):
            return False
        path: str = scope["path"]
        if path != "/api/server" and not (path.startswith(CLIENTS_PREFIX)
                                          and path.endswith(READ_SUFFIX)):
            return False
        authorization, plain = _head(scope)
        if not plain or self._tracing():
            return False
        token = bearer_token(authorization.decode("latin-1"), None)
        if token is None or not self.auth.check(token):
            return False
        try:
            if path == "/api/server":
                response = json_response(server_info(self.server))
            else:
                response = await self._read(scope, path[len(CLIENTS_PREFIX):
                                                         -len(READ_SUFFIX)])
        except PassOn:
            return False
        except HTTPException as e:
            response = await http_exception_handler(Request(scope), e)
        await response(scope, receive, send)
        return True

    def _tracing(self) -> bool:
        # Asking costs microseconds (it reads the environment): a "no" holds for a second.
        # OpenTelemetry's providers are set once per process, so a "yes" holds for good.
        if self._traced is None:
            return False
        if self._traced_for_good:
            return True
        now = time.monotonic()
        if now < self._untraced_until:
            return False
        if self._traced():
            self._traced_for_good = True
            return True
        self._untraced_until = now + 1.0
        return False

    async def _read(self, scope: Scope, endpoint: str) -> Response:
        if not endpoint or "/" in endpoint:
            raise PassOn  # not the route's {endpoint} either
        params: dict[str, Any] = query_parameters(scope, _READ_PARAMETERS)
        path = params.get("path")
        if path is None:
            raise PassOn
        op = read_request(path, params.get("format"))
        return await run(self.server, endpoint, op, plain_timeout(params.get("timeout")))


class LaneApp(FastAPI):
    """The application, with :class:`FastLane` in front of its middleware."""

    lane: FastLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        if lane is not None and await lane.answer(scope, receive, send):
            return
        await super().__call__(scope, receive, send)
