"""The ASGI application: REST API, OpenAPI, server-sent events, web UI and metrics."""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aiolwm2m import __version__
from aiolwm2m.bootstrap.server import BootstrapServer
from aiolwm2m.firmware.service import FirmwareService
from aiolwm2m.server import LwM2MServer

from . import (
    routes_bootstrap,
    routes_broker,
    routes_cluster,
    routes_events,
    routes_firmware,
    routes_gateways,
    routes_groups,
    routes_info,
    routes_misc,
    routes_operations,
    routes_rd,
    routes_registrations,
    routes_upload,
    routes_values,
)
from . import routes_nidd as nidd_web
from .auth import TokenAuth
from .bad_json import bad_json_handler
from .cluster_metrics import ClusterCollector
from .cluster_routing import ClusterRouter, serve_cluster_requests
from .events_json import event_json
from .fast_lane import FastLane, LaneApp
from .firmware_metrics import FirmwareCollector
from .metrics import ServerMetrics
from .request_gate import METRICS_ACCESS, RequestGate
from .schemas import ErrorOut
from .sse_fanout import SseFanout

if TYPE_CHECKING:
    from aiolwm2m.cluster.node import ClusterNode

STATIC = Path(__file__).resolve().parent / "static"

DESCRIPTION = """The REST API of an aiolwm2m LwM2M server.

Every `/api` call needs `Authorization: Bearer <token>` (or `?access_token=<token>` where a
header cannot be set, e.g. the browser's EventSource). Device operations answer with the
client's CoAP response code in the body; a sleeping queue-mode client gets the request queued
(HTTP 202 with a request id to poll at `/api/requests/{id}`).

Opaque values are JSON objects `{"base64": "QU4="}` (schema `OpaqueValue`), in reads,
events and composite results; Write, Create and Write-Composite take the same (or
`{"hex": "414e"}`), and `POST .../write-opaque?path=` takes the raw bytes as the body.
Bodies above the configured limit get 413; a large value is sent to the device block-wise.
"""


def create_app(server: LwM2MServer, tokens: list[str],
               bootstrap: BootstrapServer | None = None,
               firmware: FirmwareService | None = None) -> FastAPI:
    auth = TokenAuth(tokens)
    cfg = server.config
    if cfg.metrics_access not in METRICS_ACCESS:
        raise ValueError(f"metrics_access must be one of {', '.join(METRICS_ACCESS)}, not "
                         f"{cfg.metrics_access!r}")
    app = LaneApp(title="aiolwm2m", version=__version__, description=DESCRIPTION)
    app.state.server = server
    app.state.bootstrap = bootstrap
    app.state.metrics = metrics = ServerMetrics(server)
    app.state.sse = SseFanout(server, max_events=cfg.sse_max_events,
                              max_bytes=cfg.sse_max_bytes)
    # The most frequent GETs skip FastAPI's layers, routing and dependencies.
    # (FastAPI's OpenTelemetry hook, in the versions that have one: traced requests are
    # all left to it.)
    telemetry = getattr(app, "_native_telemetry", None)
    app.lane = FastLane(server, auth, telemetry.enabled if telemetry is not None else None)
    # Several nodes: requests for devices another node holds go there (behind the gate).
    app.add_middleware(ClusterRouter, server=server)
    # Outermost of the user middleware: the token is checked before anything reads a body.
    app.add_middleware(RequestGate, auth=auth, max_body=cfg.http_max_body,
                       metrics_access=cfg.metrics_access)
    app.add_exception_handler(RequestValidationError, bad_json_handler)
    protected = [Depends(auth)]
    for router in (routes_registrations.router, routes_operations.router,
                   routes_upload.router, routes_values.router, routes_misc.requests_router,
                   routes_misc.security_router,
                   routes_bootstrap.router,
                   routes_events.router, routes_info.router, routes_cluster.router,
                   routes_rd.router,
                   routes_broker.router, routes_groups.router, routes_gateways.router,
                   routes_gateways.end_device_routes(routes_operations.router,
                                                     routes_upload.router,
                                                     routes_values.router)):
        app.include_router(router, dependencies=protected,
                           responses={401: {"model": ErrorOut,
                                            "description": "missing or invalid token"}})
    if server.cluster is not None:
        join_cluster(app, server)
    app.state.firmware = firmware
    if firmware is not None:
        app.include_router(routes_firmware.router, dependencies=protected,
                           responses={401: {"model": ErrorOut,
                                            "description": "missing or invalid token"}})
        # Devices download here with the token of their Package URI, not an API token.
        app.include_router(routes_firmware.download_router)
        metrics.registry.register(FirmwareCollector(firmware))
    nidd_web.mount(app, server, protected)  # SCEF callbacks, /api/nidd, lwm2m_nidd_* metrics

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/api-docs", include_in_schema=False, response_class=HTMLResponse)
    async def api_docs() -> str:
        return render_api_docs(app.openapi())

    if STATIC.is_dir():
        app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")
    return app


def join_cluster(app: FastAPI, server: LwM2MServer) -> None:
    """Several nodes: this app answers the REST requests other nodes forward, its event
    stream carries every node's events, and the metrics add the cluster's."""
    node = cast("ClusterNode", server.cluster)
    serve_cluster_requests(node, app, server)
    fanout: SseFanout = app.state.sse
    fanout.remote = node.events
    node.events.attach(functools.partial(event_json, server), fanout.publish_frame)
    app.state.metrics.registry.register(ClusterCollector(server))


def render_api_docs(spec: dict[str, Any]) -> str:
    """A self-contained page listing the API (FastAPI's /docs needs a CDN; this does not)."""
    rows = []
    for path, methods in sorted(spec.get("paths", {}).items()):
        for method, op in methods.items():
            params = ", ".join(p["name"] for p in op.get("parameters", [])
                               if p.get("in") == "query")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref", "")
            rows.append(
                f"<tr><td><b>{html.escape(method.upper())}</b></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td>"
                f"<td>{html.escape(params)}</td><td>{html.escape(ref.rsplit('/', 1)[-1])}</td>"
                "</tr>")
    return ("<!doctype html><meta charset=utf-8><title>aiolwm2m API</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 10px;"
            "border-bottom:1px solid #ddd}</style>"
            f"<h1>aiolwm2m API {html.escape(spec['info']['version'])}</h1>"
            f"<p>{html.escape(spec['info'].get('description', ''))}</p>"
            "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a>; interactive "
            "(needs internet for its assets): <a href=/docs>/docs</a>.</p><table>"
            "<tr><th>method</th><th>path</th><th>what</th><th>query</th><th>body</th></tr>"
            + "".join(rows) + "</table>")
