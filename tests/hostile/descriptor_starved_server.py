"""A coap+tcp listener in a process that may open only a few more descriptors, for
test_tcp_exhaustion. Argument: the event loop ("asyncio" or "uvloop").

Prints ``{"port": N}`` once listening; on a ``report`` line from stdin prints what the log
received: tracebacks (records with exception info, from any logger), lines of the accept
throttle, and how many connections were served (got to CoAP).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import sys

from aiolwm2m.cli import event_loop
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tcp_events import Connected


class Counting(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.tracebacks = 0
        self.accept_lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.tracebacks += 1
        if record.name == "aiolwm2m.transport.accept":
            self.accept_lines += 1


async def main() -> None:
    counting = Counting()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().addHandler(counting)
    served = 0

    def on_event(event: object) -> None:
        nonlocal served
        if isinstance(event, Connected):
            served += 1

    endpoint = await TcpEndpoint.create("127.0.0.1", 0, dial=False)
    endpoint.events.subscribe(on_event)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    # From here on, only a few dozen more descriptors.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 30, hard))
    print(json.dumps({"port": endpoint.port}), flush=True)
    while line := await reader.readline():
        if line.strip() == b"report":
            print(json.dumps({"tracebacks": counting.tracebacks,
                              "accept_lines": counting.accept_lines, "served": served}),
                  flush=True)
            break
    await endpoint.close()


if __name__ == "__main__":
    event_loop.run(main(), sys.argv[1])
