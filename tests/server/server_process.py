"""An LwM2M server in its own process, for restart tests: JSON lines in and out.

Prints ``{"ready": ..., "registrations": N, "observations": M}`` once serving, then one line per
notification; reads commands from stdin: ``{"observe_all": "/3303/0/5700"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Event, NotificationReceived


def out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def observe_all(server: LwM2MServer, path: str) -> list[int]:
    sem = asyncio.Semaphore(64)

    async def one(ep: str) -> int:
        async with sem:
            return (await server.observe(ep, path, timeout=10)).code

    return list(await asyncio.gather(*(one(ep) for ep in list(server.registrations))))


async def main(data_dir: str, port: int) -> None:
    server = LwM2MServer(ServerConfig(host="::1", port=port, data_dir=Path(data_dir)))
    await server.start()

    def on_event(ev: Event) -> None:
        if isinstance(ev, NotificationReceived):
            content = ev.response.content
            out({"notification": ev.registration.endpoint,
                 "value": getattr(content, "value", None)})

    server.events.subscribe(on_event)
    out({"ready": True, "registrations": len(server.registrations),
         "observations": len(server.observations)})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if "observe_all" in cmd:
            codes = await observe_all(server, cmd["observe_all"])
            out({"observed": sum(1 for c in codes if c == 69)})
        elif "count" in cmd:
            out({"registrations": len(server.registrations),
                 "observations": len(server.observations)})
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
