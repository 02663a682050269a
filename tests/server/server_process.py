"""An LwM2M server in its own process, for restart tests: JSON lines in and out.

Prints ``{"ready": ..., "registrations": N, "observations": M}`` once serving, then one line per
notification; reads commands from stdin: ``{"observe_all": "/3303/0/5700"}``,
``{"execute": "/3/0/4", "endpoint": "dev", "at_most_once": true}`` (answers the queued
request's id, or the response code when the client is awake), ``{"queued": id}`` (answers
the stored record). Optional third argument: the queue-mode awake time in seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiolwm2m.lwm2m import LwM2MPath
from aiolwm2m.lwm2m.operations import ExecuteRequest
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Event, NotificationReceived
from aiolwm2m.store.records import QueuedRequest


def out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def observe_all(server: LwM2MServer, path: str) -> list[int]:
    sem = asyncio.Semaphore(64)

    async def one(ep: str) -> int:
        async with sem:
            return (await server.observe(ep, path, timeout=10)).code

    return list(await asyncio.gather(*(one(ep) for ep in list(server.registrations))))


async def main(data_dir: str, port: int, awake_time: float) -> None:
    server = LwM2MServer(ServerConfig(host="::1", port=port, data_dir=Path(data_dir),
                                      awake_time=awake_time))
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
        elif "execute" in cmd:
            result = await server.submit(cmd["endpoint"],
                                         ExecuteRequest(LwM2MPath.parse(cmd["execute"])),
                                         at_most_once=cmd.get("at_most_once", False))
            out({"queued": result.id} if isinstance(result, QueuedRequest)
                else {"code": result.code})
        elif "queued" in cmd:
            record = await server.queued_request(cmd["queued"])
            out({"record": record.to_dict() if record is not None else None})
    await server.stop()


if __name__ == "__main__":
    # On the test's loop (AIOLWM2M_EVENT_LOOP, set by tests/conftest.py).
    from aiolwm2m.cli import event_loop

    event_loop.run(main(sys.argv[1], int(sys.argv[2]),
                        float(sys.argv[3]) if len(sys.argv) > 3 else 93.0),
                   event_loop.resolve(None))
