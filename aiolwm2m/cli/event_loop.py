"""Which event loop the long-running commands use.

``auto`` (the default) is uvloop when it is installed (the ``fast`` extra, which both README
commands install) and asyncio otherwise; ``--event-loop`` or ``AIOLWM2M_EVENT_LOOP`` pick one
explicitly, so that both can be run and tested as users get them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

ENVIRONMENT_VARIABLE = "AIOLWM2M_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")

T = TypeVar("T")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve(choice: str | None, environ: Mapping[str, str] | None = None) -> str:
    """"uvloop" or "asyncio" for a flag value (None: the environment, then auto); a
    ValueError says what is wrong with an unknown name or a missing uvloop."""
    if environ is None:
        environ = os.environ
    value = (choice or environ.get(ENVIRONMENT_VARIABLE) or "auto").strip().lower()
    if value not in CHOICES:
        raise ValueError(f"event loop {value!r} is not one of {', '.join(CHOICES)}")
    if value == "auto":
        return "uvloop" if uvloop_installed() else "asyncio"
    if value == "uvloop" and not uvloop_installed():
        raise ValueError("event loop uvloop is not installed (pip install 'aiolwm2m[fast]')")
    return value


def run(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``main`` to completion on a new loop of kind ``loop`` (see :func:`resolve`)."""
    if loop == "uvloop":
        import uvloop

        result: T = uvloop.run(main)
        return result
    return asyncio.run(main)


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--event-loop", choices=CHOICES,
                        help="event loop: uvloop or asyncio (default auto: uvloop when "
                             f"installed; also {ENVIRONMENT_VARIABLE})")


def running() -> str:
    """"uvloop" or "asyncio": what the current loop is."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (where the loop can take signal handlers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def run_command(coro: Coroutine[Any, Any, int], args: argparse.Namespace, command: str) -> int:
    """Run a command's coroutine on the loop ``--event-loop`` / AIOLWM2M_EVENT_LOOP name
    (default: uvloop when it is installed, for faster sockets); a bad choice is one line on
    stderr and exit status 2, Ctrl-C is 130."""
    try:
        loop = resolve(args.event_loop)
    except ValueError as e:
        coro.close()
        print(f"aiolwm2m {command}: {e}", file=sys.stderr)
        return 2
    try:
        return run(coro, loop)
    except KeyboardInterrupt:
        return 130
