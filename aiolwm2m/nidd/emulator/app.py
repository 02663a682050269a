"""The SCEF emulator's HTTP side: the T8 NIDD API exactly as ``TS29122_NIDD.yaml`` lays it
out (``{apiRoot}/3gpp-nidd/v1/...``), and a small control API of its own under
``/emulator/v1`` (not part of T8) to change how the emulated network treats a UE.

Errors are ProblemDetails (``application/problem+json``) except where the schema gives a
delivery failure its own body. Bodies above ``max_body`` get 413 before they are parsed;
with ``token`` set, T8 requests need ``Authorization: Bearer <token>`` (401 otherwise), the
way an SCEF checks the OAuth 2.0 token of an SCS/AS.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aiolwm2m.nidd.t8_fields import T8FormatError

from .scef import Scef, ScefError

PREFIX = "/3gpp-nidd/v1/{scsAsId}/configurations"
JSON_TYPES = ("application/json", "application/merge-patch+json")
Handler = Callable[[Request], Awaitable[Response]]


class EmulatorApp:
    def __init__(self, scef: Scef, *, token: str | None = None, max_body: int = 64 << 10,
                 ue_link: Callable[[], dict[str, Any]] | None = None) -> None:
        self.scef = scef
        self.token = token.encode() if token else None
        self.max_body = max_body
        self.ue_link = ue_link or (lambda: {})
        c = PREFIX + "/{configurationId}"
        d = c + "/downlink-data-deliveries"
        p = c + "/rds-ports"
        t8 = self._t8
        self.app = Starlette(routes=[
            Route(PREFIX, t8(self.list_configurations), methods=["GET"]),
            Route(PREFIX, t8(self.create_configuration), methods=["POST"]),
            Route(c, t8(self.get_configuration), methods=["GET"]),
            Route(c, t8(self.patch_configuration), methods=["PATCH"]),
            Route(c, t8(self.delete_configuration), methods=["DELETE"]),
            Route(d, t8(self.list_deliveries), methods=["GET"]),
            Route(d, t8(self.create_delivery), methods=["POST"]),
            Route(d + "/{downlinkDataDeliveryId}", t8(self.get_delivery), methods=["GET"]),
            Route(d + "/{downlinkDataDeliveryId}", t8(self.put_delivery), methods=["PUT"]),
            Route(d + "/{downlinkDataDeliveryId}", t8(self.patch_delivery), methods=["PATCH"]),
            Route(d + "/{downlinkDataDeliveryId}", t8(self.delete_delivery),
                  methods=["DELETE"]),
            Route(p, t8(self.list_ports), methods=["GET"]),
            Route(p + "/{portId}", t8(self.get_port), methods=["GET"]),
            Route(p + "/{portId}", t8(self.put_port), methods=["PUT"]),
            Route(p + "/{portId}", t8(self.delete_port), methods=["DELETE"]),
            Route("/emulator/v1/info", self.info, methods=["GET"]),
            Route("/emulator/v1/ues", self.list_ues, methods=["GET"]),
            Route("/emulator/v1/ues/{ue}", self.get_ue, methods=["GET"]),
            Route("/emulator/v1/ues/{ue}", self.patch_ue, methods=["PATCH"]),
        ], exception_handlers={404: self._not_found, 405: self._not_allowed})

    # -- plumbing ---------------------------------------------------------------------------

    def _t8(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                if self.token is not None and not self._authorized(request):
                    raise ScefError(401, "Unauthorized", "a valid bearer token is required",
                                    headers={"WWW-Authenticate": "Bearer"})
                return await handler(request)
            except ScefError as e:
                return JSONResponse(e.body, e.status, headers=e.headers,
                                    media_type=e.media_type)
        return endpoint

    def _authorized(self, request: Request) -> bool:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        assert self.token is not None
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode("utf-8", "surrogateescape"), self.token)

    async def _body(self, request: Request) -> Any:
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind not in JSON_TYPES:
            raise ScefError(415, "Unsupported Media Type", "the body must be JSON")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise ScefError(413, "Content Too Large", f"bodies are at most {self.max_body} "
                            "bytes")
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise ScefError(413, "Content Too Large", f"bodies are at most "
                                f"{self.max_body} bytes")
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, RecursionError):
            raise ScefError(400, "Bad Request", "the body is not JSON",
                            cause="INVALID_MSG_FORMAT") from None

    @staticmethod
    def _root(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @staticmethod
    def _ok(body: Any, status: int = 200, location: str | None = None) -> Response:
        headers = {"Location": location} if location is not None else None
        return JSONResponse(body, status, headers=headers)

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        e = ScefError.not_found("resource")
        return JSONResponse(e.body, 404, media_type=e.media_type)

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        e = ScefError(405, "Method Not Allowed", f"{request.method} is not allowed here")
        return JSONResponse(e.body, 405, media_type=e.media_type)

    # -- configurations ---------------------------------------------------------------------

    async def list_configurations(self, request: Request) -> Response:
        scs = request.path_params["scsAsId"]
        return self._ok([self.scef.represent_json(r) for r in self.scef.configurations_of(scs)])

    async def create_configuration(self, request: Request) -> Response:
        body = await self._body(request)
        record = self.scef.create_configuration(request.path_params["scsAsId"], body,
                                                self._root(request))
        return self._ok(self.scef.represent_json(record), 201, record.config.self)

    async def get_configuration(self, request: Request) -> Response:
        p = request.path_params
        record = self.scef.get_configuration(p["scsAsId"], p["configurationId"])
        return self._ok(self.scef.represent_json(record))

    async def patch_configuration(self, request: Request) -> Response:
        p = request.path_params
        body = await self._body(request)
        record = self.scef.patch_configuration(p["scsAsId"], p["configurationId"], body)
        return self._ok(self.scef.represent_json(record))

    async def delete_configuration(self, request: Request) -> Response:
        p = request.path_params
        self.scef.delete_configuration(p["scsAsId"], p["configurationId"])
        return Response(status_code=204)

    # -- deliveries ---------------------------------------------------------------------------

    async def list_deliveries(self, request: Request) -> Response:
        p = request.path_params
        pending = self.scef.pending_deliveries(p["scsAsId"], p["configurationId"])
        return self._ok([t.to_json() for t in pending])

    async def create_delivery(self, request: Request) -> Response:
        p = request.path_params
        body = await self._body(request)
        status, transfer, url = self.scef.create_delivery(
            p["scsAsId"], p["configurationId"], body, self._root(request))
        return self._ok(transfer.to_json(), status, url)

    async def get_delivery(self, request: Request) -> Response:
        p = request.path_params
        return self._ok(self.scef.get_delivery(p["scsAsId"], p["configurationId"],
                                               p["downlinkDataDeliveryId"]).to_json())

    async def put_delivery(self, request: Request) -> Response:
        return await self._replace(request, patch=False)

    async def patch_delivery(self, request: Request) -> Response:
        return await self._replace(request, patch=True)

    async def _replace(self, request: Request, *, patch: bool) -> Response:
        p = request.path_params
        body = await self._body(request)
        new = self.scef.replace_delivery(p["scsAsId"], p["configurationId"],
                                         p["downlinkDataDeliveryId"], body, patch)
        return self._ok(new.to_json())

    async def delete_delivery(self, request: Request) -> Response:
        p = request.path_params
        self.scef.delete_delivery(p["scsAsId"], p["configurationId"],
                                  p["downlinkDataDeliveryId"])
        return Response(status_code=204)

    # -- RDS ports ------------------------------------------------------------------------------

    async def list_ports(self, request: Request) -> Response:
        p = request.path_params
        record = self.scef.get_configuration(p["scsAsId"], p["configurationId"])
        return self._ok([port.to_json() for port in record.ports.values()])

    async def get_port(self, request: Request) -> Response:
        p = request.path_params
        return self._ok(self.scef.get_port(p["scsAsId"], p["configurationId"],
                                           p["portId"]).to_json())

    async def put_port(self, request: Request) -> Response:
        p = request.path_params
        body = await self._body(request)
        port, url, created = self.scef.put_port(p["scsAsId"], p["configurationId"],
                                                p["portId"], body, self._root(request))
        if created:
            return self._ok(port.to_json(), 201, url)
        return Response(status_code=202)

    async def delete_port(self, request: Request) -> Response:
        p = request.path_params
        self.scef.delete_port(p["scsAsId"], p["configurationId"], p["portId"])
        return Response(status_code=204)

    # -- the emulator's own control API --------------------------------------------------------

    async def info(self, request: Request) -> Response:
        return JSONResponse({"ueLink": self.ue_link(), "ues": len(self.scef.ues),
                             "configurations": len(self.scef.configurations),
                             "pendingDeliveries": len(self.scef.deliveries),
                             "stats": self.scef.stats})

    async def list_ues(self, request: Request) -> Response:
        ues = list(self.scef.ues.values())[:1000]
        return JSONResponse([ue.to_json() for ue in ues])

    async def get_ue(self, request: Request) -> Response:
        ident = request.path_params["ue"]
        ue = self.scef.ues.get(ident)
        if ue is None:
            return JSONResponse({"ue": ident, "attached": False,
                                 "behaviour": self.scef.behaviour_of(ident).to_json()})
        return JSONResponse(ue.to_json())

    async def patch_ue(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            if not isinstance(body, dict):
                raise T8FormatError("", "expected a JSON object")
            behaviour = self.scef.set_behaviour(request.path_params["ue"], body)
        except ScefError as e:
            return JSONResponse(e.body, e.status, media_type=e.media_type)
        except T8FormatError as e:
            err = ScefError.bad_request(e)
            return JSONResponse(err.body, 400, media_type=err.media_type)
        return JSONResponse(behaviour.to_json())
