"""``/api/groups`` and ``/api/group-runs``: device groups and operations on every member.

A group is a static list of endpoints, the members an RD group registration names, and/or
an RD lookup filter (``ep=meter-*&d=plant-1``) that finds registered endpoints when an
operation runs. ``POST /api/groups/{name}/read`` (write, execute, write-attributes,
observe) starts a run and answers 202 with it; its results come member by member from
``GET /api/group-runs/{id}/events`` (server-sent events: ``result`` per member, ``done``
at the end; ``?from=N`` resumes after N results) or all at once from
``GET /api/group-runs/{id}``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from aiolwm2m.groups.model import GroupBusy, GroupError, UnknownGroup
from aiolwm2m.groups.runs import GroupRun, MemberResult
from aiolwm2m.groups.service import GroupService
from aiolwm2m.server import LwM2MServer, NotRegistered
from aiolwm2m.store.group_store import DeviceGroup

from .deps import get_server
from .formats import parse_format
from .json_values import opaque_from_json
from .result_json import encode_json, operation_result
from .schemas import ErrorOut, OperationResult

router = APIRouter(tags=["device groups"])
ServerDep = Annotated[LwM2MServer, Depends(get_server)]
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut}, 404: {"model": ErrorOut}}
RUN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 409: {"model": ErrorOut, "description": "too many group operations running"}}


class RdGroupRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ep: str = Field(description="the RD group registration's name (et=core.rd-group)")
    d: str | None = None


class GroupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[str] = Field(default_factory=list, description="endpoint names",
                               examples=[["meter-1", "meter-2"]])
    filter: str | None = Field(None, description="an RD lookup query; every registered "
                               "endpoint it finds is a member", examples=["ep=meter-*&d=plant-1"])
    rd_group: RdGroupRef | None = Field(None, description="an RD group registration whose "
                                        "member links (ep=...) are members")
    description: str = ""


class GroupOut(BaseModel):
    name: str
    members: list[str]
    filter: str | None
    rd_group: RdGroupRef | None
    description: str
    dynamic: bool
    created_at: float
    updated_at: float


class MembersOut(BaseModel):
    name: str
    endpoints: list[str]
    #: More matched than the group may have (GroupLimits.max_members); the rest are left out.
    truncated: bool
    #: How many of them are registered now.
    registered: int


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    concurrency: int | None = Field(None, ge=1, description="requests in flight at once "
                                    "(default: the server's group concurrency)")
    timeout: float | None = Field(None, gt=0, le=600, description="per member, seconds")
    queue_ttl: float | None = Field(None, gt=0, le=30 * 86400, description="how long a "
                                    "request queued for a sleeping member waits (s)")


class GroupReadBody(RunOptions):
    path: str = Field(examples=["/3/0"])
    format: str | int | None = None


class GroupObserveBody(GroupReadBody):
    pass


class GroupWriteBody(RunOptions):
    path: str = Field(examples=["/3/0/14"])
    value: JsonValue = Field(examples=["+02:00"])
    mode: Literal["replace", "update"] = "replace"
    format: str | int | None = None
    at_most_once: bool = False


class GroupExecuteBody(RunOptions):
    path: str = Field(examples=["/3/0/4"])
    arguments: str = ""
    at_most_once: bool = False


class GroupAttributesBody(RunOptions):
    path: str = Field(examples=["/3303/0/5700"])
    set: dict[str, float] = Field(default_factory=dict, examples=[{"pmin": 10, "pmax": 60}])
    unset: list[str] = Field(default_factory=list)


class RunOut(BaseModel):
    id: str
    group: str
    operation: str
    path: str
    state: Literal["running", "done", "cancelled"]
    members: int
    concurrency: int
    truncated: bool
    started_at: float
    finished_at: float | None
    #: Members by their latest status (ok, error, failed, not-registered, queued, expired).
    summary: dict[str, int]
    #: Results so far (a queued member counts twice: queued, then final).
    results: int


class MemberResultOut(BaseModel):
    endpoint: str
    status: Literal["ok", "error", "failed", "not-registered", "queued", "expired"]
    final: bool
    elapsed: float
    code: str | None
    detail: str | None
    request_id: str | None
    result: OperationResult | None


class RunResultsOut(BaseModel):
    run: RunOut
    results: list[MemberResultOut]


# -- helpers --------------------------------------------------------------------------------


def _groups(server: LwM2MServer) -> GroupService:
    return server.groups


@contextmanager
def group_errors() -> Iterator[None]:
    try:
        yield
    except UnknownGroup as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except GroupBusy as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    except (GroupError, ValueError) as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None


def group_out(group: DeviceGroup) -> GroupOut:
    return GroupOut(name=group.name, members=list(group.members),
                    filter="&".join(group.filter) or None,
                    rd_group=None if group.rd_group is None else RdGroupRef(
                        ep=group.rd_group[0], d=group.rd_group[1]),
                    description=group.description, dynamic=group.dynamic,
                    created_at=group.created_at, updated_at=group.updated_at)


def run_out(run: GroupRun) -> RunOut:
    return RunOut(id=run.id, group=run.group, operation=run.operation, path=run.path,
                  state=run.state,  # type: ignore[arg-type]
                  members=len(run.members), concurrency=run.concurrency,
                  truncated=run.truncated, started_at=run.started_at,
                  finished_at=run.finished_at, summary=run.summary(),
                  results=len(run.results))


def member_result(server: LwM2MServer, result: MemberResult) -> dict[str, Any]:
    """A member's result as MemberResultOut describes it (plain data)."""
    out = None if result.response is None or result.operation is None else (
        _operation_result(server, result))
    return {"endpoint": result.endpoint, "status": result.status, "final": result.final,
            "elapsed": round(result.elapsed, 6),
            "code": result.response.code_text if result.response is not None else None,
            "detail": result.detail, "request_id": result.request_id, "result": out}


def _operation_result(server: LwM2MServer, result: MemberResult) -> dict[str, Any] | None:
    assert result.response is not None and result.operation is not None
    try:
        return operation_result(server, result.endpoint, result.operation, result.response)
    except NotRegistered:  # gone since: its model (to name the values) with it
        return None


def _run_started(start: Callable[[], GroupRun]) -> Response:
    with group_errors():
        run = start()
    return Response(run_out(run).model_dump_json(), status_code=status.HTTP_202_ACCEPTED,
                    media_type="application/json")


def _format(value: str | int | None) -> int | None:
    try:
        return parse_format(value)
    except ValueError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None


def _run(server: LwM2MServer, run_id: str) -> GroupRun:
    run = _groups(server).runs.get(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such group run (finished runs "
                            "are kept for a while, not forever)")
    return run


# -- definitions ----------------------------------------------------------------------------


@router.get("/api/groups", response_model=list[GroupOut], summary="Device groups")
async def list_groups(server: ServerDep) -> list[GroupOut]:
    return [group_out(g) for g in _groups(server).all()]


@router.get("/api/groups/{name}", response_model=GroupOut, responses=ERRORS,
            summary="One device group")
async def get_group(server: ServerDep, name: str) -> GroupOut:
    group = _groups(server).get(name)
    if group is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such group")
    return group_out(group)


@router.put("/api/groups/{name}", response_model=GroupOut, responses=ERRORS,
            summary="Create or replace a device group")
async def put_group(server: ServerDep, name: str, body: GroupBody) -> GroupOut:
    with group_errors():
        group = await _groups(server).put(
            name, members=body.members, filter=body.filter,
            rd_group=None if body.rd_group is None else (body.rd_group.ep, body.rd_group.d),
            description=body.description)
    return group_out(group)


@router.delete("/api/groups/{name}", status_code=204, responses=ERRORS,
               summary="Remove a device group")
async def delete_group(server: ServerDep, name: str) -> None:
    if await _groups(server).remove(name) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such group")


@router.get("/api/groups/{name}/members", response_model=MembersOut, responses=ERRORS,
            summary="The group's members now")
async def group_members(server: ServerDep, name: str) -> MembersOut:
    with group_errors():
        membership = _groups(server).resolve(name)
    registered = server.registry.by_endpoint
    return MembersOut(name=name, endpoints=membership.endpoints,
                      truncated=membership.truncated,
                      registered=sum(1 for e in membership.endpoints if e in registered))


# -- operations -----------------------------------------------------------------------------


@router.post("/api/groups/{name}/read", status_code=202, response_model=RunOut,
             responses=RUN_ERRORS, summary="Read on every member")
async def group_read(server: ServerDep, name: str, body: GroupReadBody) -> Response:
    fmt = _format(body.format)
    return _run_started(lambda: _groups(server).read(
        name, body.path, format=fmt, concurrency=body.concurrency, timeout=body.timeout,
        queue_ttl=body.queue_ttl))


@router.post("/api/groups/{name}/observe", status_code=202, response_model=RunOut,
             responses=RUN_ERRORS, summary="Observe on every member")
async def group_observe(server: ServerDep, name: str, body: GroupObserveBody) -> Response:
    fmt = _format(body.format)
    return _run_started(lambda: _groups(server).observe(
        name, body.path, format=fmt, concurrency=body.concurrency, timeout=body.timeout,
        queue_ttl=body.queue_ttl))


@router.post("/api/groups/{name}/write", status_code=202, response_model=RunOut,
             responses=RUN_ERRORS, summary="Write on every member (typed by each one's model)")
async def group_write(server: ServerDep, name: str, body: GroupWriteBody) -> Response:
    fmt = _format(body.format)
    return _run_started(lambda: _groups(server).write(
        name, body.path, body.value, replace=body.mode == "replace", format=fmt,
        convert=opaque_from_json, concurrency=body.concurrency, timeout=body.timeout,
        queue_ttl=body.queue_ttl, at_most_once=body.at_most_once))


@router.post("/api/groups/{name}/execute", status_code=202, response_model=RunOut,
             responses=RUN_ERRORS, summary="Execute on every member")
async def group_execute(server: ServerDep, name: str, body: GroupExecuteBody) -> Response:
    return _run_started(lambda: _groups(server).execute(
        name, body.path, body.arguments, concurrency=body.concurrency, timeout=body.timeout,
        queue_ttl=body.queue_ttl, at_most_once=body.at_most_once))


@router.post("/api/groups/{name}/write-attributes", status_code=202, response_model=RunOut,
             responses=RUN_ERRORS, summary="Write-Attributes on every member")
async def group_write_attributes(server: ServerDep, name: str, body: GroupAttributesBody
                                 ) -> Response:
    items = [f"{k}={int(v) if float(v).is_integer() else v}" for k, v in body.set.items()]
    items.extend(body.unset)
    if not items:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "no attribute to set or unset")
    return _run_started(lambda: _groups(server).write_attributes(
        name, body.path, items, concurrency=body.concurrency, timeout=body.timeout,
        queue_ttl=body.queue_ttl))


# -- runs -----------------------------------------------------------------------------------


@router.get("/api/group-runs", response_model=list[RunOut],
            summary="Group operations: the running ones and the last finished")
async def list_runs(server: ServerDep) -> list[RunOut]:
    return [run_out(r) for r in reversed(_groups(server).runs.values())]


@router.get("/api/group-runs/{run_id}", response_model=RunResultsOut,
            responses={404: {"model": ErrorOut}}, summary="A group operation and its results")
async def get_run(server: ServerDep, run_id: str,
                  offset: Annotated[int, Query(ge=0, le=1 << 31)] = 0,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                  final: Annotated[bool, Query(description="only each member's final "
                                               "result")] = False) -> Response:
    run = _run(server, run_id)
    results = [r for r in run.results if r.final] if final else run.results
    page = [member_result(server, r) for r in results[offset:offset + limit]]
    return Response(encode_json({"run": run_out(run).model_dump(), "results": page}),
                    media_type="application/json")


@router.delete("/api/group-runs/{run_id}", response_model=RunOut,
               responses={404: {"model": ErrorOut}},
               summary="Cancel a group operation (queued requests stay queued)")
async def cancel_run(server: ServerDep, run_id: str) -> RunOut:
    run = _run(server, run_id)
    run.cancel()
    return run_out(run)


@router.get("/api/group-runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: result` with a MemberResultOut per "
                             "member as it answers (a queued member twice), then `event: "
                             "done` with the RunOut"}, 404: {"model": ErrorOut}},
            summary="The results of a group operation as they come (server-sent events)")
async def run_events(server: ServerDep, request: Request, run_id: str,
                     start: Annotated[int, Query(alias="from", ge=0, le=1 << 31,
                                                 description="skip this many results")] = 0
                     ) -> StreamingResponse:
    run = _run(server, run_id)

    async def frames() -> AsyncIterator[bytes]:
        yield b": group run\n\n"
        batch: list[bytes] = []
        seen = start
        async for result in run.follow(start):
            seen += 1
            batch.append(b"event: result\ndata: " + encode_json(member_result(server, result))
                         + b"\n\n")
            # Results come in bursts: one write per burst (or per 256), not per result.
            if len(batch) >= 256 or seen >= len(run.results):
                yield b"".join(batch)
                batch.clear()
        if batch:
            yield b"".join(batch)
        yield b"event: done\ndata: " + json.dumps(run_out(run).model_dump()).encode() + b"\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
