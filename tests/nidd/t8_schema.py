"""Checking T8 traffic against the standard's own schema (``TS29122_NIDD.yaml`` and the
files it references, in ``../shared/3gpp`` next to the checkout; ``AIOLWM2M_3GPP_DIR``
points elsewhere). Loaded with schemathesis, which resolves the cross-file ``$ref``s offline.

* :meth:`T8Schema.check_request`: a request body (SCS/AS -> SCEF) against its operation;
* :meth:`T8Schema.check_response`: a response (status, headers, body) against its operation;
* :meth:`T8Schema.check_callback`: a notification body (SCEF -> SCS/AS) against the
  notification type it is meant to be, one of the five of the callback's ``oneOf``.

The callback's ``oneOf`` itself cannot be satisfied by an uplink notification: every
NiddUplinkDataNotification (``niddConfiguration``, ``externalId``, ``data``) also matches
ManagePortNotification, whose only required attributes are ``niddConfiguration`` and one
identifier, and additional attributes are allowed. So each body is checked against its own
type, and against the ``oneOf`` relaxed to ``anyOf``.
"""

from __future__ import annotations

import copy
import datetime
import functools
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

API_PREFIX = "/3gpp-nidd/v1"
CALLBACK_PATH = "/x-aiolwm2m-test/callback"
NOTIFICATIONS = ("NiddConfigurationStatusNotification", "NiddUplinkDataNotification",
                 "NiddDownlinkDataDeliveryStatusNotification",
                 "GmdNiddDownlinkDataDeliveryNotification", "ManagePortNotification")


def schema_dir() -> Path:
    configured = os.environ.get("AIOLWM2M_3GPP_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared" / "3gpp"


class T8Schema:
    def __init__(self, directory: Path) -> None:
        import schemathesis

        path = directory / "TS29122_NIDD.yaml"
        raw = yaml.safe_load(path.read_text())
        # The callback is not an operation schemathesis can look up; the same body schema
        # under a path of its own is (its $refs still resolve against the file's location).
        post = raw["paths"]["/{scsAsId}/configurations"]["post"]
        callback = post["callbacks"]["niddNotifications"][
            "{$request.body#/notificationDestination}"]["post"]
        # The bodies are checked as a response's: their status attributes (DeliveryStatus,
        # NiddStatus) are readOnly, which a request body may not carry.
        body_schema = copy.deepcopy(
            callback["requestBody"]["content"]["application/json"]["schema"])
        body_schema["anyOf"] = body_schema.pop("oneOf")
        for name, schema in [("any", body_schema)] + [
                (n, {"$ref": f"#/components/schemas/{n}"}) for n in NOTIFICATIONS]:
            raw["paths"][f"{CALLBACK_PATH}/{name}"] = {"get": {"responses": {"200": {
                "description": name, "content": {"application/json": {"schema": schema}}}}}}
        self.schema = schemathesis.openapi.from_dict(raw)
        self.schema.location = path.absolute().as_uri()
        self._templates: list[tuple[re.Pattern[str], str]] = []
        for result in self.schema.get_all_operations():
            op = result.ok()
            pattern = re.sub(r"\{[^}]+\}", "[^/]+", op.path)
            self._templates.append((re.compile(pattern + "$"), op.path))

    def operation(self, method: str, url: str) -> Any:
        path = httpx.URL(url).path
        if API_PREFIX in path:
            path = path[path.index(API_PREFIX) + len(API_PREFIX):]
        for pattern, template in self._templates:
            if pattern.match(path):
                return self.schema[template][method.upper()]
        raise AssertionError(f"{method} {url} is not a T8 NIDD operation")

    def check_request(self, method: str, url: str, body: Any) -> None:
        op = self.operation(method, url)
        bodies = list(op.body)
        if not bodies:
            assert body is None, f"{method} {url} takes no body"
            return
        assert any(b.is_valid(body) for b in bodies), (
            f"{method} {url}: body does not match the schema: {body!r}")
        # Read-only attributes are the SCEF's to set.
        if isinstance(body, dict):
            assert "maximumPacketSize" not in body and "status" not in body, body

    def check_response(self, method: str, response: httpx.Response) -> None:
        op = self.operation(method, str(response.request.url))
        op.validate_response(response)
        if response.status_code == 201:
            assert response.headers.get("location"), "201 without Location"

    def check_callback(self, body: Any, kind: str) -> None:
        """``body`` is a valid ``kind`` (one of NOTIFICATIONS) and fits the callback."""
        for name in (kind, "any"):
            url = f"http://scs-as{CALLBACK_PATH}/{name}"
            response = httpx.Response(200, json=body, request=httpx.Request("GET", url))
            response.elapsed = datetime.timedelta(0)
            try:
                self.schema[f"{CALLBACK_PATH}/{name}"]["GET"].validate_response(response)
            except Exception as e:
                raise AssertionError(f"callback body is not a valid {kind}: {body!r}: "
                                     f"{e}") from None
@functools.cache
def _load(directory: str) -> T8Schema:
    return T8Schema(Path(directory))


def t8_schema() -> T8Schema:
    directory = schema_dir()
    if not (directory / "TS29122_NIDD.yaml").is_file():
        pytest.skip(f"the 3GPP OpenAPI files are not in {directory} (set AIOLWM2M_3GPP_DIR)")
    return _load(str(directory))
