"""``aiolwm2m client`` registering over coap+tcp:// and coaps+tcp:// on the test's event
loop (AIOLWM2M_EVENT_LOOP): its outgoing connections went through the same accept-side
code that reset every uvloop connection."""

from __future__ import annotations

import asyncio
import sys

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Registered
from aiolwm2m.store.records import SecurityInfo

from .conftest import next_event
from .test_cli import stop

KEY = "000102030405060708090a0b0c0d0e0f"


async def test_client_command_registers_over_tcp_and_tls(event_loop_name: str) -> None:
    server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, tcp_port=0, tls_port=0,
                                      store="memory", run_timers=False))
    await server.start()
    await server.stores.security.put(SecurityInfo("cli-tls", psk_identity=b"cli-tls",
                                                  psk_key=bytes.fromhex(KEY)))
    events = server.events.stream()
    command = (sys.executable, "-m", "aiolwm2m", "client", "--host", "127.0.0.1")
    clients = []
    try:
        for name, uri, extra in (
                ("cli-tcp", f"coap+tcp://127.0.0.1:{server.port_of('tcp')}", ()),
                ("cli-tls", f"coaps+tcp://127.0.0.1:{server.port_of('tls')}",
                 ("--psk-identity", "cli-tls", "--psk-key", KEY))):
            clients.append(await asyncio.create_subprocess_exec(
                *command, "--endpoint", name, "--server", uri, *extra,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT))
        registered = {(await next_event(events, Registered, 20)).registration.endpoint
                      for _ in clients}
        assert registered == {"cli-tcp", "cli-tls"}
        assert server.registrations["cli-tcp"].transport == "tcp"
        assert server.registrations["cli-tls"].transport == "tls"
        for name in registered:
            assert (await server.read(name, "/3303/0/5700", timeout=10)).code == 0x45
        for proc in clients:
            code, output = await stop(proc)
            assert code == 0 and f"({event_loop_name})" in output
        clients = []
    finally:
        for proc in clients:
            proc.kill()
            await proc.wait()
        await server.stop()
