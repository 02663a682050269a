"""The server's T8 client (httpx): NIDD configurations, downlink deliveries and RDS ports on
one SCEF, every answer parsed with the T8 model.

Errors come back as :class:`T8Error` with the status, the ProblemDetails (or the delivery
failure body) and ``Retry-After``; an SCEF that cannot be reached, or answers 502/503/504,
raises :class:`ScefUnreachable`, which callers treat as "try again later" (nothing is lost).
Resource URIs the SCEF hands out (``Location``, ``self``) are only followed when they lie
under the configured API root: an SCEF cannot send this server's requests elsewhere.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from . import t8_model as m
from .t8_fields import T8FormatError, format_port_id

log = logging.getLogger(__name__)


#: Seconds an idle T8 connection is kept.
KEEPALIVE_EXPIRY = 2.0


class T8Error(Exception):
    def __init__(self, status: int, message: str, *, problem: m.ProblemDetails | None = None,
                 failure: m.NiddDownlinkDataDeliveryFailure | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem if problem is not None else (
            failure.problemDetail if failure is not None else None)
        self.failure = failure
        self.retry_after = retry_after

    @property
    def cause(self) -> str:
        if self.problem is not None and self.problem.cause:
            return self.problem.cause
        return str(self.status)


class ScefUnreachable(T8Error):
    """No answer, or a gateway/availability error: the SCEF may be back later."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """The answer to a downlink delivery: 200 (done) or 201 (pending, at ``location``)."""

    status: int
    transfer: m.NiddDownlinkDataTransfer
    location: str | None


def _retry_after(response: httpx.Response) -> float | None:
    text = response.headers.get("retry-after")
    if text is None:
        return None
    try:
        return max(0.0, min(float(text), 3600.0))
    except ValueError:
        return None


class T8Client:
    def __init__(self, api_root: str, scs_as_id: str, *, token: str | None = None,
                 timeout: float = 10.0, max_connections: int = 64,
                 http: httpx.AsyncClient | None = None) -> None:
        self.api_root = api_root.rstrip("/")
        self.scs_as_id = scs_as_id
        self.base = f"{self.api_root}/3gpp-nidd/v1/{scs_as_id}/configurations"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Idle connections are closed before the SCEF's HTTP server would close them
        # (servers commonly keep them 5 s): a request sent on a connection the server is
        # closing meanwhile fails without an answer.
        self.http = http or httpx.AsyncClient(
            timeout=timeout, headers=headers,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections,
                                keepalive_expiry=KEEPALIVE_EXPIRY))
        #: Error answers by (status, cause), for the metrics.
        self.errors: Counter[tuple[int, str]] = Counter()
        self.requests = 0
        #: True after a request got any answer, False after one got none.
        self.reachable: bool | None = None

    async def close(self) -> None:
        await self.http.aclose()

    def owns(self, url: str) -> bool:
        return url.startswith(self.base + "/")

    async def _call(self, method: str, url: str, body: dict[str, Any] | None = None,
                    content_type: str = "application/json") -> httpx.Response:
        if url != self.base and not self.owns(url):
            raise T8Error(0, f"refusing to follow {url[:80]!r}: not under {self.base}")
        self.requests += 1
        try:
            if body is None:
                response = await self.http.request(method, url)
            else:
                response = await self.http.request(
                    method, url, json=body, headers={"content-type": content_type})
        except httpx.HTTPError as e:
            self.reachable = False
            self.errors[(0, type(e).__name__)] += 1
            raise ScefUnreachable(0, f"SCEF unreachable: {type(e).__name__}: {e}") from None
        self.reachable = True
        if response.status_code >= 300:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> T8Error:
        status = response.status_code
        problem = failure = None
        try:
            body = response.json()
            if isinstance(body, dict) and "problemDetail" in body:
                failure = m.NiddDownlinkDataDeliveryFailure.from_json(body)
            elif isinstance(body, dict):
                problem = m.ProblemDetails.from_json(body)
        except (ValueError, T8FormatError):
            pass
        cls = ScefUnreachable if status in (502, 503, 504) else T8Error
        detail = ""
        p = problem if problem is not None else (failure.problemDetail if failure else None)
        if p is not None and (p.cause or p.detail):
            detail = ": " + " ".join(x for x in (p.cause, f"({p.detail[:120]})" if p.detail
                                                 else None) if x)
        error = cls(status, f"SCEF answered {status}{detail}", problem=problem,
                    failure=failure, retry_after=_retry_after(response))
        self.errors[(status, error.cause)] += 1
        return error

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise T8Error(response.status_code, "SCEF answered with a body that is not "
                          "JSON") from None

    # -- configurations -------------------------------------------------------------------

    async def create_configuration(self, config: m.NiddConfiguration,
                                   extra: dict[str, Any] | None = None
                                   ) -> tuple[m.NiddConfiguration, dict[str, Any], str]:
        """(the configuration as the SCEF made it, its raw body, its URI)."""
        body = config.to_json()
        if extra:
            body.update(extra)
        response = await self._call("POST", self.base, body)
        raw = self._json(response)
        try:
            made = m.NiddConfiguration.from_json(raw)
        except T8FormatError as e:
            raise T8Error(response.status_code, f"SCEF's configuration is malformed: {e}"
                          ) from None
        url = response.headers.get("location") or made.self or ""
        if not self.owns(url):
            raise T8Error(response.status_code, "SCEF gave no usable configuration URI")
        return made, raw, url

    async def list_configurations(self) -> list[tuple[m.NiddConfiguration, dict[str, Any]]]:
        response = await self._call("GET", self.base)
        raw = self._json(response)
        out = []
        for item in raw if isinstance(raw, list) else []:
            try:
                out.append((m.NiddConfiguration.from_json(item), item))
            except T8FormatError as e:
                log.warning("SCEF listed a malformed configuration: %s", e)
        return out

    async def get_configuration(self, url: str) -> tuple[m.NiddConfiguration, dict[str, Any]]:
        raw = self._json(await self._call("GET", url))
        try:
            return m.NiddConfiguration.from_json(raw), raw
        except T8FormatError as e:
            raise T8Error(200, f"SCEF's configuration is malformed: {e}") from None

    async def patch_configuration(self, url: str, patch: m.NiddConfigurationPatch,
                                  extra: dict[str, Any] | None = None
                                  ) -> m.NiddConfiguration | None:
        body = patch.to_json()
        if extra:
            body.update(extra)
        response = await self._call("PATCH", url, body, "application/merge-patch+json")
        if response.status_code == 204:
            return None
        try:
            return m.NiddConfiguration.from_json(self._json(response))
        except T8FormatError as e:
            raise T8Error(response.status_code, f"SCEF's configuration is malformed: {e}"
                          ) from None

    async def delete_configuration(self, url: str) -> None:
        try:
            await self._call("DELETE", url)
        except T8Error as e:
            if e.status != 404:
                raise

    # -- downlink data ----------------------------------------------------------------------

    async def deliver(self, config_url: str, transfer: m.NiddDownlinkDataTransfer
                      ) -> Delivered:
        response = await self._call("POST", f"{config_url}/downlink-data-deliveries",
                                    transfer.to_json())
        raw = self._json(response)
        try:
            answer = m.NiddDownlinkDataTransfer.from_json(raw)
        except T8FormatError as e:
            raise T8Error(response.status_code, f"SCEF's delivery answer is malformed: {e}"
                          ) from None
        location = None
        if response.status_code == 201:
            location = response.headers.get("location") or answer.self
            if not location or not self.owns(location):
                raise T8Error(201, "SCEF gave no usable delivery URI")
        return Delivered(response.status_code, answer, location)

    async def delete_delivery(self, url: str) -> None:
        try:
            await self._call("DELETE", url)
        except T8Error as e:
            if e.status not in (404, 409):
                raise

    # -- RDS ports (OSR-001) ----------------------------------------------------------------

    async def reserve_port(self, config_url: str, port_ue: int, port_scef: int, app_id: str
                           ) -> None:
        await self._call("PUT", f"{config_url}/rds-ports/{format_port_id(port_ue, port_scef)}",
                         m.ManagePort(appId=app_id).to_json())
