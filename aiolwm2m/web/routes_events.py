"""``/api/events``: server-sent events (registered, updated, deregistered, expired, awake,
sleeping, notification, send, queued-request, refused), fanned out by
:class:`~.sse_fanout.SseFanout`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from .sse_fanout import SseFanout

router = APIRouter(prefix="/api", tags=["events"])


@router.get("/events", summary="Server-sent events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "one `event:`/`data:` pair per server event; a "
                             "client that falls too far behind gets a last `event: dropped` "
                             "whose data gives the reason, and the stream ends"}})
async def events(request: Request,
                 endpoint: Annotated[str | None, Query(description="only this endpoint")] =
                 None) -> StreamingResponse:
    fanout: SseFanout = request.app.state.sse
    return StreamingResponse(fanout.stream(endpoint), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
