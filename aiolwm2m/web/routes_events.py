"""``/api/events``: server-sent events (registered, updated, deregistered, expired, awake,
sleeping, notification, send, queued-request)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from aiolwm2m.server import LwM2MServer

from .deps import get_server
from .events_json import event_json

router = APIRouter(prefix="/api", tags=["events"])
KEEPALIVE = 15.0


@router.get("/events", summary="Server-sent events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "one `event:`/`data:` pair per server event"}})
async def events(request: Request, server: Annotated[LwM2MServer, Depends(get_server)],
                 endpoint: Annotated[str | None, Query(description="only this endpoint")] =
                 None) -> StreamingResponse:
    stream = server.events.stream(maxsize=1000)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b": aiolwm2m events\n\n"
            while not await request.is_disconnected():
                try:
                    ev = await stream.next(KEEPALIVE)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                data = event_json(server, ev)
                if endpoint is not None and data.get("endpoint") != endpoint:
                    continue
                yield (f"event: {ev.name}\ndata: {json.dumps(data, default=str)}\n\n"
                       ).encode()
        except asyncio.CancelledError:
            pass
        finally:
            stream.close()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
