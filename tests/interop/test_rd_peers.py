"""Our Resource Directory against third-party RD clients: aiocoap's registerer
(``aiocoap.resourcedirectory.client.register``), the ``aiocoap-client`` command, and
libcoap's ``coap-client`` (register, update, delete, look up)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap
import aiocoap.resource
import pytest

from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.server import LwM2MServer, ServerConfig

from .conftest import require, run

pytestmark = pytest.mark.interop


@pytest.fixture
async def rd(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path))
    await srv.start()
    yield srv
    await srv.stop()


def rd_uri(rd: LwM2MServer, path: str = "") -> str:
    return f"coap://127.0.0.1:{rd.port}{path}"


class Temperature(aiocoap.resource.Resource):
    rt = "temperature"

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=b"21.5")


async def test_aiocoap_registerer(rd: LwM2MServer) -> None:
    """aiocoap discovers /rd through /.well-known/core?rt=core.rd, registers its site's
    links, and deletes the registration when it shuts down."""
    from aiocoap.resourcedirectory.client.register import Registerer

    site = aiocoap.resource.Site()
    site.add_resource(["sensors", "temp"], Temperature())
    site.add_resource([".well-known", "core"],
                      aiocoap.resource.WKCResource(site.get_resources_as_linkheader))
    ctx = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", 0))
    registerer = Registerer(ctx, rd=rd_uri(rd), lt=120,
                            registration_parameters={"ep": "aiocoap-node", "d": "interop"})
    try:
        async with asyncio.timeout(15):
            while registerer.state != "registered":
                assert registerer.state not in ("failed", "cancelled")
                await asyncio.sleep(0.05)
        assert rd.rd is not None and len(rd.rd.directory) == 1
        (reg,) = rd.rd.directory.by_id.values()
        assert (reg.endpoint, reg.sector, reg.lifetime) == ("aiocoap-node", "interop", 120)
        # aiocoap looks it up too.
        lookup = aiocoap.Message(code=aiocoap.GET,
                                 uri=rd_uri(rd, "/rd-lookup/res?rt=temperature"))
        answer = await ctx.request(lookup).response
        assert answer.code == aiocoap.CONTENT
        (link,) = parse_link_format(answer.payload)
        assert link.target.endswith("/sensors/temp") and link.get("rt") == "temperature"
    finally:
        await registerer.shutdown()
        await ctx.shutdown()
    assert rd.rd is not None and len(rd.rd.directory) == 0  # the DELETE arrived


async def test_aiocoap_client_command(rd: LwM2MServer) -> None:
    cli = str(Path(sys.executable).parent / "aiocoap-client")
    rc, out, err = await run(cli, "-m", "POST", "--content-format", "application/link-format",
                             "--payload", '</light>;rt="light";if="core.s"',
                             rd_uri(rd, "/rd?ep=cli-node&d=interop&et=lamp"))
    assert rc == 0, err
    assert rd.rd is not None and len(rd.rd.directory) == 1
    rc, out, err = await run(cli, rd_uri(rd, "/rd-lookup/ep?et=lamp"))
    assert rc == 0, err
    (link,) = parse_link_format(out.strip())
    assert link.get("ep") == "cli-node" and link.get("d") == "interop"
    rc, out, err = await run(cli, rd_uri(rd, "/rd-lookup/res?if=core.s&ep=cli-*"))
    assert rc == 0 and out.strip().endswith(b'/light>;rt="light";if="core.s"'), out


async def test_libcoap_register_update_lookup_delete(rd: LwM2MServer) -> None:
    client = require("coap-client-gnutls")
    rc, out, err = await run(client, "-B", "5", "-v", "7", "-m", "post", "-t", "40",
                             "-e", '</temp>;rt="temperature";if="core.s",</hum>',
                             rd_uri(rd, "/rd?ep=libcoap-node&d=lab&lt=60"))
    assert rc == 0, err
    found = re.search(rb"Location-Path:rd, Location-Path:([\w-]+)", out + err)
    assert found is not None, out + err
    rid = found.group(1).decode()
    assert rd.rd is not None
    reg = rd.rd.get(rid)
    assert reg is not None and reg.endpoint == "libcoap-node" and reg.lifetime == 60
    # Update from another process (another port): the location is the capability.
    rc, _, err = await run(client, "-B", "5", "-m", "post", rd_uri(rd, f"/rd/{rid}?lt=600"))
    assert rc == 0, err
    reg = rd.rd.get(rid)
    assert reg is not None and reg.lifetime == 600
    rc, out, err = await run(client, "-B", "5", rd_uri(rd, "/rd-lookup/res?rt=temperature"))
    assert rc == 0, err
    (link,) = parse_link_format(out.strip())
    assert link.target.startswith("coap://127.0.0.1:") and link.target.endswith("/temp")
    rc, out, err = await run(client, "-B", "5", rd_uri(rd, "/rd-lookup/ep?d=lab"))
    assert rc == 0 and out.strip().startswith(f'</rd/{rid}>;ep="libcoap-node"'.encode())
    rc, _, err = await run(client, "-B", "5", "-m", "delete", rd_uri(rd, f"/rd/{rid}"))
    assert rc == 0, err
    assert rd.rd.get(rid) is None
    rc, out, _ = await run(client, "-B", "5", rd_uri(rd, "/rd-lookup/ep?d=lab"))
    assert rc == 0 and out.strip() == b""
