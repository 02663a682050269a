"""Shared pieces of the route modules: the server instance and error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, Request, status

from aiolwm2m.lwm2m import InvalidPath, LwM2MError, LwM2MPath
from aiolwm2m.lwm2m.coap_mapping import ResponseDecodeError
from aiolwm2m.lwm2m.errors import shown
from aiolwm2m.server import LwM2MServer, NotRegistered
from aiolwm2m.server.errors import RequestFailed
from aiolwm2m.server.queue_mode import QueueExpired


async def get_server(request: Request) -> LwM2MServer:
    """The server behind the app. A coroutine on purpose: FastAPI runs a plain function
    dependency in a worker thread, which cost every REST request a thread-pool round trip
    (a third of its time under load)."""
    server: LwM2MServer = request.app.state.server
    return server


def parse_path(text: str) -> LwM2MPath:
    try:
        return LwM2MPath.parse(text)
    except LwM2MError as e:
        # (Quoted shortened: it may be kilobytes of digits.)
        reason = e.reason if isinstance(e, InvalidPath) else str(e)
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"invalid path {shown(text, 40)}: {reason}") from None


@contextmanager
def device_errors() -> Iterator[None]:
    """Map what can go wrong talking to a device to HTTP statuses, once."""
    try:
        yield
    except NotRegistered as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except ResponseDecodeError as e:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(e)) from None
    except LwM2MError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    except (ValueError, TypeError) as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    except (RequestFailed, QueueExpired, TimeoutError) as e:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT,
                            f"device did not answer: {e}") from None
