"""The REST API's most frequent GETs, answered without FastAPI's per-request machinery.

Through FastAPI a request costs well over 100 us of CPU before its route runs: routing
matches it against every route of every included router (and does so twice, to match and
then to handle), dependencies are solved and query parameters are validated by pydantic.
For ``GET /api/server`` that was nearly all of its cost, and for a REST Read of ``/3/0`` more
than the CoAP exchange with the device. Dashboards and platforms poll exactly these.

:class:`FastLane` is a pure ASGI middleware behind :class:`~.request_gate.RequestGate` (so
the token and the body limit are checked first) that answers

- ``GET /api/server``
- ``GET /api/clients/{endpoint}/read?path=&format=&timeout=``

by calling the same functions as their routes (the bodies of :mod:`.result_json`, the
errors of :func:`~.deps.device_errors`), so both answer with the same bytes. The routes stay:
they describe the API in the OpenAPI schema, and they answer every request the lane passes
on, which is any it would have to refuse for its parameters (missing, repeated, or not a
plain number where one is expected): those refusals keep FastAPI's exact form.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import HTTPException
from fastapi.exception_handlers import http_exception_handler
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from aiolwm2m.server import LwM2MServer

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


class FastLane:
    def __init__(self, app: ASGIApp, *, server: LwM2MServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            path: str = scope["path"]
            try:
                if path == "/api/server":
                    response = json_response(server_info(self.server))
                elif path.startswith(CLIENTS_PREFIX) and path.endswith(READ_SUFFIX):
                    response = await self._read(scope, path[len(CLIENTS_PREFIX):
                                                             -len(READ_SUFFIX)])
                else:
                    raise PassOn
            except PassOn:
                pass
            except HTTPException as e:
                await (await http_exception_handler(Request(scope), e))(scope, receive, send)
                return
            else:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _read(self, scope: Scope, endpoint: str) -> Response:
        if not endpoint or "/" in endpoint:
            raise PassOn  # not the route's {endpoint} either
        params: dict[str, Any] = query_parameters(scope, _READ_PARAMETERS)
        path = params.get("path")
        if path is None:
            raise PassOn
        op = read_request(path, params.get("format"))
        return await run(self.server, endpoint, op, plain_timeout(params.get("timeout")))
