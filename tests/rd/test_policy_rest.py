"""``/api/rd/policy``: reading and replacing the RD's authorisation policy over HTTP; a
refused document changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.server import LwM2MServer
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer
from tests.fake_clock import FakeClock

from .conftest import new_node, rd_config

TOKEN = "rd-policy-token-0123456789"
DEFAULT = {"anonymous_register": True, "anonymous_lookup": True, "sector_lookup": False,
           "bind_credentials": True, "identities": {}}


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[LwM2MServer,
                                                                        httpx.AsyncClient]]:
    server = LwM2MServer(rd_config(tmp_path, clock))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=20)
    try:
        yield server, http
    finally:
        await http.aclose()
        await web.stop()
        await server.stop()


def body(r: httpx.Response) -> dict[str, object]:
    data = r.json()
    return {k: v for k, v in data.items() if k not in ("source", "updated_at")}


async def test_read_replace_and_reset(api: tuple[LwM2MServer, httpx.AsyncClient]) -> None:
    server, http = api
    r = await http.get("/api/rd/policy")
    assert r.status_code == 200 and body(r) == DEFAULT and r.json()["source"] == "default"
    policy = {"anonymous_register": False, "sector_lookup": True,
              "identities": {"psk:gw-1": {"endpoints": ["meter-*"], "sectors": ["plant-1", ""],
                                          "lookup": ["plant-*"]},
                             "*": {"endpoints": []}}}
    r = await http.put("/api/rd/policy", json=policy)
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "api" and r.json()["updated_at"] == server.config.clock()
    assert body(r)["identities"] == {
        "*": {"endpoints": [], "sectors": None, "lookup": []},
        "psk:gw-1": {"endpoints": ["meter-*"], "sectors": ["plant-1", ""],
                     "lookup": ["plant-*"]}}
    # It applies at once: a NoSec registration is refused.
    node = await new_node(server)
    try:
        refused = await node.ask(Code.POST, "rd", "ep=x", "d=y", payload=b"</a>", cf=40)
        assert (refused.code, refused.payload) == (Code.FORBIDDEN, b"authentication required")
    finally:
        await node.close()
    # One identity's rule.
    r = await http.put("/api/rd/policy/identities/x509:CN=gw 2/O=x",
                       json={"endpoints": ["gw2-*"]})
    assert r.status_code == 200
    assert r.json()["identities"]["x509:CN=gw 2/O=x"] == {
        "endpoints": ["gw2-*"], "sectors": None, "lookup": []}
    r = await http.delete("/api/rd/policy/identities/x509:CN=gw 2/O=x")
    assert r.status_code == 200 and "x509:CN=gw 2/O=x" not in r.json()["identities"]
    assert (await http.delete("/api/rd/policy/identities/psk:nobody")).status_code == 404
    r = await http.delete("/api/rd/policy")
    assert r.status_code == 200 and body(r) == DEFAULT and r.json()["source"] == "default"


@pytest.mark.parametrize(("document", "status", "says"), [
    ({"identities": {"psk:gw": {"endpoints": ["me*ter"]}}}, 400, "'*' may only end"),
    ({"identities": {"psk:gw": {"endpoints": [""]}}}, 400, "cannot be empty"),
    ({"identities": {"gw-1": {}}}, 400, "is not a principal"),
    ({"identities": {"psk:gw": {"sectors": ["x" * 64]}}}, 400, "longer than 63 bytes"),
    ({"identities": {"psk:gw": {"endpoints": ["a"] * 257}}}, 400, "more than 256"),
    ({"anonymous_lookup": "perhaps"}, 422, ""),
    ({"identities": {"psk:gw": {"endpoint": ["a"]}}}, 422, ""),
    ({"no_such_flag": True}, 422, ""),
])
async def test_bad_documents_change_nothing(api: tuple[LwM2MServer, httpx.AsyncClient],
                                            document: dict[str, object], status: int,
                                            says: str) -> None:
    server, http = api
    assert (await http.put("/api/rd/policy", json={"sector_lookup": True})).status_code == 200
    before = server.rd.policy  # type: ignore[union-attr]
    r = await http.put("/api/rd/policy", json=document)
    assert r.status_code == status, r.text
    assert says in str(r.json()["detail"])
    assert server.rd.policy is before  # type: ignore[union-attr]
    r = await http.put("/api/rd/policy/identities/psk:gw", json={"lookup": ["a*b"]})
    assert r.status_code == 400 and "'*' may only end" in r.json()["detail"]
    assert server.rd.policy is before  # type: ignore[union-attr]
