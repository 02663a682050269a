"""The REST request path: no worker-thread hop, and the fast lane (``web/fast_lane.py``)
answers exactly as the routes it stands in for."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from hypothesis import given, strategies

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.fast_lane import PassOn, query_parameters
from aiolwm2m.web.routes_info import ServerInfoOut
from aiolwm2m.web.schemas import OperationResult

from .api_fixtures import TOKEN, Stack, stack


def _dependants(app: Any) -> Iterator[tuple[str, Dependant]]:
    """Every route's dependant as FastAPI serves it (with the dependencies given when its
    router was included)."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path, route.dependant
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                dependant = getattr(context, "dependant", None)
                if dependant is not None:
                    yield context.original_route.path, dependant


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _is_coroutine(call: Callable[..., Any]) -> bool:
    return (inspect.iscoroutinefunction(call)
            or inspect.iscoroutinefunction(type(call).__call__))


def test_no_route_or_dependency_runs_in_a_worker_thread() -> None:
    """FastAPI runs a plain-function endpoint or dependency in a worker thread: a sync
    ``get_server`` sent every REST request through the thread pool and back."""
    app = create_app(LwM2MServer(ServerConfig(store="memory")), ["t"])
    seen = 0
    for path, dependant in _dependants(app):
        for call in _calls(dependant):
            assert _is_coroutine(call), f"{path}: {call!r} would run in a worker thread"
            seen += 1
    assert seen > 40  # the walk found the routes (and their dependencies)


@pytest.fixture
async def s() -> AsyncIterator[Stack]:
    async for st in stack():
        assert (await st.device.register(st.coap_uri)).code.is_successful()
        yield st


async def get(http: httpx.AsyncClient, url: str, **params: str) -> httpx.Response:
    return await http.get(url, params=params)


# A timeout the lane would take itself, and the same number spelt so that it leaves the
# request to FastAPI's route.
LANE, ROUTE = "20", "2e1"


async def test_fast_lane_reads_equal_the_route(s: Stack) -> None:
    for params in ({"path": "/3/0/7"}, {"path": "/3303/0"},
                   {"path": "/3/0", "format": "senml-json"}, {"path": "/3/0/9", "format": "tlv"},
                   {"path": "/3/0/99"}):
        lane = await get(s.http, "/api/clients/dev-1/read", timeout=LANE, **params)
        route = await get(s.http, "/api/clients/dev-1/read", timeout=ROUTE, **params)
        assert lane.status_code == route.status_code == 200, (lane.text, route.text)
        assert lane.headers["content-type"] == route.headers["content-type"]
        body = lane.json()
        if params["path"] != "/3303/0":  # the temperature drifts between the two reads
            assert body == route.json()
        # Exactly the fields (and no more) of the schema that documents it.
        assert body == OperationResult.model_validate(body).model_dump(exclude={"values"}) | {
            "values": body["values"]}
    # Without any timeout at all, too.
    r = await get(s.http, "/api/clients/dev-1/read", path="/3/0/9")
    assert r.json()["values"] == [{"path": "/3/0/9", "name": "Battery Level",
                                   "type": "Integer", "units": "%", "value": 87}]


async def test_fast_lane_errors_equal_the_route(s: Stack) -> None:
    cases: list[tuple[str, dict[str, str], int]] = [
        ("/api/clients/nobody/read", {"path": "/3/0"}, 404),
        ("/api/clients/dev-1/read", {"path": "/3/x"}, 400),
        ("/api/clients/dev-1/read", {"path": ""}, 400),
        ("/api/clients/dev-1/read", {"path": "/3/0", "format": "jpeg"}, 400),
        ("/api/clients/dev-1/read", {"path": "/3/0", "format": "70000"}, 400),
    ]
    for url, params, status in cases:
        lane = await get(s.http, url, timeout=LANE, **params)
        route = await get(s.http, url, timeout=ROUTE, **params)
        assert lane.status_code == route.status_code == status, (url, params, lane.text)
        assert lane.json() == route.json() and "detail" in lane.json()


async def test_what_the_lane_leaves_to_the_route(s: Stack) -> None:
    url = "/api/clients/dev-1/read"
    # Refusals of the parameters keep FastAPI's form (422 with the field's location).
    for query in ("timeout=0", "timeout=601", "timeout=nan", "timeout=-1", ""):
        r = await s.http.get(f"{url}?path=/3/0/9&{query}" if query else url)
        assert r.status_code == 422, (query, r.text)
        assert isinstance(r.json()["detail"], list)
    # A repeated parameter: FastAPI takes the last one.
    r = await s.http.get(f"{url}?path=/3/0/x&path=/3/0/9")
    assert r.status_code == 200 and r.json()["values"][0]["path"] == "/3/0/9"
    # An endpoint name with an encoded slash is not the route's {endpoint} either.
    assert (await s.http.get("/api/clients/a%2Fb/read?path=/3/0")).status_code == 404
    # Other methods and paths are not the lane's.
    assert (await s.http.post(f"{url}?path=/3/0")).status_code == 405
    assert (await s.http.get("/api/clients/dev-1/read/x?path=/3/0")).status_code == 404


async def test_server_info_is_its_schema(s: Stack) -> None:
    r = await s.http.get("/api/server")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body == ServerInfoOut.model_validate(body).model_dump()
    assert body["registrations"] == 1 and body["coap_port"] == s.server.port
    # The token is still required (the lane sits behind the request gate).
    async with httpx.AsyncClient(base_url=s.web.url) as anon:
        assert (await anon.get("/api/server")).status_code == 401
        assert (await anon.get("/api/clients/dev-1/read?path=/3/0")).status_code == 401


async def test_a_result_for_a_device_gone_meanwhile() -> None:
    """A device may deregister between its answer and the building of the result: the
    answer is still given (a 500 before), with the server's own model."""
    from aiolwm2m.lwm2m import LwM2MPath
    from aiolwm2m.lwm2m.nodes import SingleResource
    from aiolwm2m.lwm2m.operations import ReadRequest, ReadResponse
    from aiolwm2m.lwm2m.values import ResourceType
    from aiolwm2m.web.result_json import operation_result

    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory"))
    await server.start()
    try:
        path = LwM2MPath.parse("/3/0/9")
        result = operation_result(server, "gone", ReadRequest(path), ReadResponse(
            69, content=SingleResource(9, ResourceType.INTEGER, 5), path=path))
        assert result["code"] == "2.05" and result["content"] == 5
        assert result["values"][0]["name"] == "Battery Level"
    finally:
        await server.stop()


_NAMES = strategies.sampled_from(["path", "format", "timeout", "x", "", "pa th"])
_VALUES = strategies.sampled_from(["", "=", "=/3/0", "=%2F3", "=a+b", "=1=2", "=;"])


@given(strategies.lists(strategies.tuples(_NAMES, _VALUES), max_size=5))
def test_query_parameters_as_starlette_reads_them(fields: list[tuple[str, str]]) -> None:
    """The lane's split of a plain query string equals parse_qsl's (what Starlette uses)."""
    from urllib.parse import parse_qsl

    text = "&".join(k + v for k, v in fields)
    names = frozenset({"path", "format", "timeout", "pa th"})
    expected: dict[str, str] = {}
    repeated = False
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in names:
            repeated = repeated or key in expected
            expected[key] = value
    scope = {"query_string": text.encode("latin-1")}
    if repeated:
        with pytest.raises(PassOn):
            query_parameters(scope, names)  # type: ignore[arg-type]
    else:
        assert query_parameters(scope, names) == expected  # type: ignore[arg-type]


async def test_the_lane_answers_only_token_holders_without_a_body(s: Stack) -> None:
    """The lane stands in front of the request gate: what the gate must see reaches it."""
    read = "/api/clients/dev-1/read?path=/3/0/9"
    async with httpx.AsyncClient(base_url=s.web.url) as anon:
        for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": "Basic eA=="},
                        {"Authorization": f"Bearer {TOKEN}", "Content-Length": "5"},
                        {"Authorization": f"bearer  {TOKEN}"}):
            body = b"12345" if "Content-Length" in headers else None
            r = await anon.request("GET", read, headers=headers, content=body)
            expected = 200 if "Content-Length" in headers or "bearer " in str(headers) else 401
            assert r.status_code == expected, (headers, r.text)
        # The query's access_token is the gate's (and the routes') to take.
        r = await anon.get(f"{read}&access_token={TOKEN}")
        assert r.status_code == 200 and r.json()["values"][0]["value"] == 87
        r = await anon.get("/api/server", params={"access_token": "nope"})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        # Two Authorization headers: not the lane's to pick one.
        r = await anon.get(read, headers=[("Authorization", "Bearer nope"),
                                          ("Authorization", f"Bearer {TOKEN}")])
        assert r.status_code == 401
