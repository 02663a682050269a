"""``aiolwm2m rd``: what it refuses before sending anything (exit status 2, one line saying
why), and its commands against a scripted RD, in this process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from aiolwm2m.cli.main import main
from aiolwm2m.coap.codes import Code

from .rd_peer import RunningRd, scripted_rd


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["rd", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("args", "message"), [
    (["register", "coaps://127.0.0.1", "--ep", "x", "--once"], "needs RD credentials"),
    (["register", "coap://127.0.0.1", "--ep", "x", "--psk-identity", "a", "--psk-key", "00",
      "--once"], "need a coaps://"),
    (["register", "coap://127.0.0.1", "--ep", "e" * 64, "--once"], "longer than 63 bytes"),
    (["register", "coap://127.0.0.1", "--ep", "x", "--lt", "0", "--once"],
     "outside 1..4294967295"),
    (["register", "coap://127.0.0.1", "--ep", "x", "--links", "<a", "--once"],
     "unterminated '<'"),
    (["register", "coap://127.0.0.1", "--ep", "x", "--attr", "base=y", "--once"],
     "cannot be an extra attribute"),
    (["register", "coaps://127.0.0.1", "--ep", "x", "--psk-identity", "a", "--psk-key",
      "zz", "--once"], "--psk-key is hex"),
    (["register", "coaps://127.0.0.1", "--ep", "x", "--psk-identity", "a", "--rpk-key",
      "/nonexistent", "--once"], "one security mode"),
    (["register", "ftp://127.0.0.1", "--ep", "x", "--once"], "unsupported scheme"),
    (["lookup", "coap://127.0.0.1", "ep", "--count", "0"], "count 0 is outside 1..4294967295"),
    (["unregister", "coap://127.0.0.1"], "give the registration's location"),
])
def test_usage_errors_exit_2_with_the_reason(capsys: pytest.CaptureFixture[str],
                                             args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith(f"aiolwm2m rd {args[0]}: ") and message in err
    assert err.count("\n") == 1


@pytest.fixture
def rd() -> Iterator[RunningRd]:
    """The scripted RD on a loop of its own in a thread: the command runs its own loop."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    started: list[tuple[RunningRd, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        async with scripted_rd() as running:
            started.append((running, stop))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    running, stop = started[0]
    try:
        yield running
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_commands_against_an_rd(rd: RunningRd, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "register", rd.uri, "--ep", "n1", "--d", "s", "--et", "t1",
                         "--et", "t2", "--lt", "60", "--base", "coap://192.0.2.1",
                         "--links", "</a>;rt=x", "--attr", "k=v", "--attr", "flag", "--once")
    assert (code, out, err) == (0, f"{rd.uri}/dir/1\n", "")
    [register] = rd.state.of(Code.POST, ("dir",))
    assert register.query == ["ep=n1", "d=s", "lt=60", "base=coap://192.0.2.1", "et=t1",
                              "et=t2", "k=v", "flag"]
    code, out, err = run(capsys, "lookup", rd.uri + "/find/ep", "ep", "ep=n1")
    assert code == 0 and out.startswith("</dir/1>;ep=n1;d=s;"), err
    code, out, err = run(capsys, "unregister", f"{rd.uri}/dir/1")
    assert (code, out) == (0, f"removed {rd.uri}/dir/1\n")
    rd.state.fail("register", Code.FORBIDDEN)
    code, out, err = run(capsys, "register", rd.uri, "--ep", "n1", "--once")
    assert code == 1 and err == "aiolwm2m rd register: registration answered 4.03\n"
