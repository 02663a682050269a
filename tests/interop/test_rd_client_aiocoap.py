"""Our RD registerer, lookup and ``aiolwm2m rd`` against aiocoap's Resource Directory
(``aiocoap-rd``, an independent implementation of RFC 9176), over coap://, coap+tcp:// and
coaps+tcp:// with X.509 (aiocoap's RD has no DTLS without DTLSSocket).

aiocoap's RD serves registration at /resourcedirectory/ and lookups at /endpoint-lookup/
and /resource-lookup/: every path here is discovered. Over TCP it needs an explicit base.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.cli.main import main
from aiolwm2m.client import ManualClock
from aiolwm2m.client.account_security import AccountSecurity
from aiolwm2m.coap.linkformat import Link
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.rd_client import (
    RdRegistered,
    RdRegisterer,
    RdRegistration,
    RdRegistrationLost,
    RdUpdated,
    rd_lookup,
    rd_remove,
)
from aiolwm2m.security import CertificateUsage, X509Credentials
from tests.security.pki import Pki, make_pki

pytestmark = pytest.mark.interop
FAST = TransmissionParameters(ack_timeout=0.5, ack_random_factor=1.0, max_retransmit=3)
RD_BINARY = Path(sys.executable).parent / "aiocoap-rd"
LINKS = '</sensors/temp>;rt="temperature";if="core.s",</sensors/light>;rt="light-lux"'


def _free_pair() -> int:
    """p such that p and p + 1 are free for UDP and TCP on 127.0.0.1."""
    for _ in range(200):
        port = random.randrange(20000, 60000, 2)
        socks: list[socket.socket] = []
        try:
            for p in (port, port + 1):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port pair")


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("rd-aiocoap-pki")))


@pytest.fixture(scope="module")
def aiocoap_rd(pki: Pki) -> Iterator[int]:
    """aiocoap-rd on 127.0.0.1: coap and coap+tcp on the port it yields, coaps+tcp (the
    test PKI's server certificate) on the next."""
    if not RD_BINARY.exists() and shutil.which("aiocoap-rd") is None:
        pytest.skip("aiocoap-rd is not installed")
    binary = str(RD_BINARY) if RD_BINARY.exists() else "aiocoap-rd"
    port = _free_pair()
    proc = subprocess.Popen(
        [binary, "--bind", f"127.0.0.1:{port}",
         "--tls-server-certificate", str(pki.path("server_chain.pem")),
         "--tls-server-key", str(pki.path("server.key"))],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (_listening(port) and _listening(port + 1)):
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"aiocoap-rd exited: {err.decode(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError("aiocoap-rd did not start listening")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def unique(name: str) -> str:
    return f"{name}-{random.randrange(1 << 30):x}"


def registerer(uri: str, endpoint: str, *, sector: str | None = None,
               endpoint_types: tuple[str, ...] = (), base: str | None = None,
               extra: dict[str, str | None] | None = None, **kwargs: Any) -> RdRegisterer:
    reg = RdRegistration.build(endpoint, sector=sector, endpoint_types=endpoint_types,
                               base=base, lifetime=300, links=LINKS, extra=extra or {})
    kwargs.setdefault("transmission", FAST)
    kwargs.setdefault("request_timeout", 10.0)
    return RdRegisterer(uri, reg, **kwargs)


def attrs(link: Link) -> dict[str, str | None]:
    return dict(link.params)


async def test_register_look_up_and_remove_over_udp(aiocoap_rd: int) -> None:
    rd = f"coap://127.0.0.1:{aiocoap_rd}"
    ep = unique("udp-node")
    r = registerer(rd, ep, sector="plant-7", endpoint_types=("core.rd-ep-x",),
                   extra={"room": "12"})
    location = await r.register()
    try:
        assert location.startswith("/reg/")
        assert r._registration_path == ("resourcedirectory", "")  # discovered
        [found] = await rd_lookup(rd, "ep", [("ep", ep)], transmission=FAST, timeout=10)
        assert found.target == location
        a = attrs(found)
        assert (a["ep"], a["d"], a["et"], a["room"]) == (ep, "plant-7", "core.rd-ep-x", "12")
        base = a["base"]
        assert base is not None and base.startswith("coap://127.0.0.1:")
        resources = await rd_lookup(rd, "res", [("ep", ep), ("rt", "temp*")],
                                    transmission=FAST, timeout=10)
        assert [(x.target, x.get("rt")) for x in resources] == [
            (f"{base}/sensors/temp", "temperature")]
        # aiocoap pages before it filters: page through everything it holds.
        pages = [await rd_lookup(rd, "res", page=n, count=1, transmission=FAST, timeout=10)
                 for n in (0, 1)]
        assert [len(p) for p in pages] == [1, 1] and pages[0] != pages[1]
    finally:
        await r.close()
    assert await rd_lookup(rd, "ep", [("ep", ep)], transmission=FAST, timeout=10) == []


async def test_refresh_and_registering_again_after_the_rd_dropped_it(aiocoap_rd: int) -> None:
    rd = f"coap://127.0.0.1:{aiocoap_rd}"
    ep = unique("refresh-node")
    clock = ManualClock()
    r = registerer(rd, ep, clock=clock)
    stream = r.events.stream()
    await r.start()
    try:
        first = await stream.until(RdRegistered, timeout=10)
        assert isinstance(first, RdRegistered)
        await clock.advance(300.0)  # the lifetime runs out: refreshed before it does
        assert await stream.until(RdUpdated, timeout=10) == RdUpdated(first.location, 300)
        r.set_lifetime(600)
        assert await stream.until(RdUpdated, timeout=10) == RdUpdated(first.location, 600)
        await rd_remove(f"{rd}{first.location}", transmission=FAST, timeout=10)
        r.refresh_soon()
        lost = await stream.until(RdRegistrationLost, timeout=10)
        assert isinstance(lost, RdRegistrationLost) and "4.04" in lost.reason
        await stream.until(RdRegistered, timeout=10)
        [found] = await rd_lookup(rd, "ep", [("ep", ep)], transmission=FAST, timeout=10)
        assert found.target == location_of(r)
    finally:
        await r.close()


def location_of(r: RdRegisterer) -> str:
    return "/" + "/".join(r.location)


async def test_simple_registration(aiocoap_rd: int) -> None:
    rd = f"coap://127.0.0.1:{aiocoap_rd}"
    ep = unique("simple-node")
    r = registerer(rd, ep, simple=True, host="127.0.0.1")
    assert await r.register() == ""
    try:
        resources = await rd_lookup(rd, "res", [("ep", ep)], transmission=FAST, timeout=10)
        assert sorted(x.get("rt") or "" for x in resources) == ["light-lux", "temperature"]
        port = r._connection.endpoint.port if r._connection else 0
        assert all(x.target.startswith(f"coap://127.0.0.1:{port}/") for x in resources)
    finally:
        await r.close()  # finds the registration by endpoint lookup, then deletes it
    assert await rd_lookup(rd, "ep", [("ep", ep)], transmission=FAST, timeout=10) == []


async def test_over_tcp_and_over_tls_with_x509(aiocoap_rd: int, pki: Pki) -> None:
    x509 = AccountSecurity(X509Credentials(pki.read("client1_chain.pem"),
                                           pki.read("client1.key"), pki.read("root.pem"),
                                           CertificateUsage.CA_CONSTRAINT))
    for uri, security in ((f"coap+tcp://127.0.0.1:{aiocoap_rd}", None),
                          (f"coaps+tcp://localhost:{aiocoap_rd + 1}", x509)):
        ep = unique("tcp-node")
        r = registerer(uri, ep, base="coap://192.0.2.1:5683", security=security)
        try:
            location = await r.register()
            await r.update()
            [found] = await rd_lookup(uri, "ep", [("ep", ep)], security=security,
                                      timeout=10)
            assert found.target == location and found.get("base") == "coap://192.0.2.1:5683"
        finally:
            await r.close()
        assert await rd_lookup(uri, "ep", [("ep", ep)], security=security, timeout=10) == []


# -- the command line ---------------------------------------------------------------------


def aiolwm2m(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command in this process (its own event loop), with what it printed."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_register_once_lookup_and_unregister(aiocoap_rd: int,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rd = f"coap://127.0.0.1:{aiocoap_rd}"
    ep = unique("cli-node")
    code, out, err = aiolwm2m(capsys, "rd", "register", rd, "--ep", ep, "--d", "s1",
                              "--et", "x.y", "--lt", "600", "--links", LINKS,
                              "--attr", "room=5", "--once")
    assert code == 0, err
    location = out.strip()
    assert location.startswith(f"{rd}/reg/")
    code, out, err = aiolwm2m(capsys, "rd", "lookup", rd, "ep", f"ep={ep}")
    assert code == 0, err
    [line] = out.splitlines()
    assert line.startswith(f"<{location[len(rd):]}>;ep={ep};d=s1;et=x.y;room=5;")
    code, out, err = aiolwm2m(capsys, "rd", "lookup", rd, "res", f"ep={ep}", "rt=light*")
    assert code == 0 and out.count("\n") == 1 and 'rt="light-lux"' in out, (out, err)
    code, out, err = aiolwm2m(capsys, "rd", "unregister", location)
    assert code == 0 and out.strip() == f"removed {location}", err
    code, out, err = aiolwm2m(capsys, "rd", "unregister", location)
    assert code == 1 and "4.04" in err
    code, out, err = aiolwm2m(capsys, "rd", "lookup", rd, "ep", f"ep={ep}")
    assert (code, out) == (0, "")


def test_cli_unregister_by_endpoint_name(aiocoap_rd: int,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rd = f"coap://127.0.0.1:{aiocoap_rd}"
    ep = unique("cli-byname")
    code, out, err = aiolwm2m(capsys, "rd", "register", rd, "--ep", ep, "--once")
    assert code == 0, err
    code, out, err = aiolwm2m(capsys, "rd", "unregister", rd, "--ep", ep)
    assert code == 0 and out.startswith("removed /reg/"), err
    code, out, err = aiolwm2m(capsys, "rd", "unregister", rd, "--ep", ep)
    assert code == 1 and "knows no endpoint" in err


async def test_cli_register_runs_until_interrupted_and_then_unregisters(
        aiocoap_rd: int) -> None:
    rd = f"coap://127.0.0.1:{aiocoap_rd}"
    ep = unique("cli-long")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "rd", "register", rd, "--ep", ep, "--links",
        LINKS, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    err = await proc.stderr.read() if proc.stderr else b""
                    pytest.fail(f"register exited early: {err.decode(errors='replace')}")
                if line.startswith("rd-registered"):
                    break
        [found] = await rd_lookup(rd, "ep", [("ep", ep)], timeout=10)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    assert f"rd-unregistered: RdUnregistered(location='{found.target}', confirmed=True)" \
        in out.decode()
    assert await rd_lookup(rd, "ep", [("ep", ep)], timeout=10) == []
