"""Bearer-token authentication for the REST API."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import HTTPException, Request, status

#: Set in the ASGI scope by :class:`~.request_gate.RequestGate` once it has checked the
#: request's token, so that the route dependency does not check it again.
AUTHENTICATED_KEY = "aiolwm2m.authenticated"


def bearer_token(authorization: str, query_token: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of ``?access_token=``."""
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return credential.strip()
    return query_token


class TokenAuth:
    """Accepts ``Authorization: Bearer <token>``, or ``?access_token=<token>`` for clients
    that cannot set headers (the browser's EventSource).

    :class:`~.request_gate.RequestGate` checks it before the body is read; as a route
    dependency it also documents the 401 in the OpenAPI schema and guards any route that
    would be mounted outside ``/api``."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = tuple(t.encode() for t in tokens if t)

    def check(self, token: str | None) -> bool:
        if not token:
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters (a 500 before).
        given = token.encode("utf-8", "surrogateescape")
        return any(hmac.compare_digest(given, t) for t in self.tokens)

    async def __call__(self, request: Request) -> None:
        if request.scope.get(AUTHENTICATED_KEY) is True:
            return
        token = bearer_token(request.headers.get("authorization", ""),
                             request.query_params.get("access_token"))
        if not self.check(token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or invalid bearer token" if token else "authentication required",
                headers={"WWW-Authenticate": 'Bearer realm="aiolwm2m"'})
