"""Accept failures of listening sockets, logged once per interval instead of per attempt.

When the process runs out of file descriptors (EMFILE) or the kernel of buffers, the event
loop cannot accept connections. asyncio reports every failed ``accept()`` (up to a backlog's
worth per wake-up) to the loop's exception handler, which logs a full traceback each time:
under a connection flood that is hundreds of thousands of lines. :func:`throttle_accept_errors`
puts a filter in front of the loop's handler that turns them into one warning per interval;
the loop itself keeps (re)trying, so accepting resumes as soon as descriptors are free again.
Everything else goes on to the handler that was there before.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

from aiolwm2m.log_throttle import LogThrottle

log = logging.getLogger("aiolwm2m.transport.accept")

_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

Handler = Any  # the loop's exception handler: (loop, context) -> None, or None


def is_accept_error(context: dict[str, Any]) -> bool:
    """An exception-handler context that reports a failed accept for lack of resources."""
    exc = context.get("exception")
    if not isinstance(exc, OSError) or exc.errno not in _RESOURCE_ERRORS:
        return False
    message = str(context.get("message", ""))
    return "accept" in message or "listen" in message


class AcceptErrorFilter:
    """An event-loop exception handler: accept errors to a :class:`LogThrottle`, the rest to
    ``previous`` (or the loop's default handler)."""

    def __init__(self, previous: Handler, interval: float) -> None:
        self.previous = previous
        self.throttle = LogThrottle(log, interval=interval, burst=1)
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if is_accept_error(context):
            exc = context["exception"]
            if not self.throttle.warning(
                    "accept", "cannot accept connections: %s; new connections wait until "
                    "descriptors are free again (raise the open-files limit, lower "
                    "max_connections)", exc):
                self.suppressed += 1
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)


def throttle_accept_errors(loop: asyncio.AbstractEventLoop, interval: float = 10.0) -> None:
    """Install the filter on ``loop`` (once; later calls keep the first interval)."""
    current = loop.get_exception_handler()
    if isinstance(current, AcceptErrorFilter):
        return
    loop.set_exception_handler(AcceptErrorFilter(current, interval))
