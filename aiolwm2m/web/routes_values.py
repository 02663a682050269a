"""``/api/clients/{endpoint}/values``: the values a device reported, kept by the server.

Every value read, observed (notifications too) or sent by a device is kept with its time
(``aiolwm2m.history``, retention per ``values_max_age`` / ``values_max_samples``), also after
the device deregistered. ``GET .../values`` is the history (the newest ``limit`` samples in
the range, oldest first), ``GET .../values/latest`` the last known value of each resource,
``DELETE .../values`` forgets the device's values.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from aiolwm2m.history.samples import ValueSample
from aiolwm2m.history.store import MAX_QUERY_SAMPLES, QueryTooBroad, ValueStore
from aiolwm2m.server import LwM2MServer

from .deps import get_server, parse_path
from .result_json import json_response
from .schemas import ErrorOut, JsonValue

router = APIRouter(prefix="/api/clients/{endpoint}/values", tags=["values"])
ServerDep = Annotated[LwM2MServer, Depends(get_server)]
PathQuery = Annotated[str, Query(description="a path: its values and those below it "
                                 "(default: all)", examples=["/3303/0/5700"])]


class SampleOut(BaseModel):
    path: str
    time: float = Field(description="seconds since the epoch: the device's time when it "
                        "gave one (Send, timestamped notifications), else when the server "
                        "received the value")
    type: str
    value: JsonValue = Field(description="Opaque values are {\"base64\": ...}, Time values "
                             "epoch seconds, Objlnk values \"3:0\"")
    source: Literal["read", "observe", "send"]


class HistoryOut(BaseModel):
    endpoint: str
    path: str
    samples: list[SampleOut]


class LatestOut(BaseModel):
    endpoint: str
    path: str
    values: list[SampleOut] = Field(description="the newest value of each resource (and "
                                    "resource instance), by path")


def sample_json(s: ValueSample) -> dict[str, Any]:
    value = s.value
    return {"path": s.path, "time": s.time, "type": s.type,
            "value": {"base64": base64.b64encode(value).decode("ascii")}
            if isinstance(value, bytes) else value, "source": s.source}


def _store(server: LwM2MServer) -> ValueStore:
    if server.values is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "this server keeps no values (values_store is off)")
    return server.values


def _prefix(path: str) -> str:
    parsed = parse_path(path)
    return str(parsed) if parsed else ""


@router.get("", response_model=HistoryOut, responses={400: {"model": ErrorOut},
                                                      404: {"model": ErrorOut}},
            summary="History of a device's values")
async def history(server: ServerDep, endpoint: str, path: PathQuery = "/",
                  since: Annotated[float | None, Query(description="epoch seconds")] = None,
                  until: Annotated[float | None, Query(description="epoch seconds")] = None,
                  limit: Annotated[int, Query(ge=1, le=MAX_QUERY_SAMPLES,
                                              description="the newest this many")] = 1000
                  ) -> Response:
    store = _store(server)
    prefix = _prefix(path)
    try:
        samples = await store.history(endpoint, prefix, since, until, limit)
    except QueryTooBroad as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    return json_response({"endpoint": endpoint, "path": prefix or "/",
                          "samples": [sample_json(s) for s in samples]})


@router.get("/latest", response_model=LatestOut, responses={400: {"model": ErrorOut},
                                                            404: {"model": ErrorOut}},
            summary="The last known value of each of a device's resources")
async def latest(server: ServerDep, endpoint: str, path: PathQuery = "/") -> Response:
    prefix = _prefix(path)
    samples = await _store(server).latest(endpoint, prefix)
    return json_response({"endpoint": endpoint, "path": prefix or "/",
                          "values": [sample_json(s) for s in samples]})


@router.delete("", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"model": ErrorOut}}, summary="Forget a device's values")
async def forget(server: ServerDep, endpoint: str) -> None:
    await _store(server).forget(endpoint)
