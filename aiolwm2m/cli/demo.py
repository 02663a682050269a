"""``aiolwm2m demo``: what the README's run command starts."""

from __future__ import annotations

import argparse

from .coap_server import run_server


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the demo (for now: the CoAP demo server)")
    p.add_argument("--host", default="::")
    p.add_argument("--port", type=int, default=5683)
    p.set_defaults(handler=run_server)
