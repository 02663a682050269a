"""Bearer-token authentication for the REST API."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import HTTPException, Request, status


class TokenAuth:
    """Accepts ``Authorization: Bearer <token>``, or ``?access_token=<token>`` for clients
    that cannot set headers (the browser's EventSource)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = tuple(t for t in tokens if t)

    def check(self, token: str | None) -> bool:
        if not token:
            return False
        return any(hmac.compare_digest(token, t) for t in self.tokens)

    async def __call__(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        token = credential.strip() if scheme.lower() == "bearer" else None
        if token is None:
            token = request.query_params.get("access_token")
        if not self.check(token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or invalid bearer token" if token else "authentication required",
                headers={"WWW-Authenticate": 'Bearer realm="aiolwm2m"'})
