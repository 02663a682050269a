"""The ``aiolwm2m`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from aiolwm2m import __version__

from . import (
    broker_cmd,
    client_commands,
    cluster_demo,
    coap_client,
    demo,
    gateway_cmd,
    rd_commands,
    scef_emulator,
    server_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiolwm2m", description="OMA LwM2M 1.1 device management on asyncio.")
    parser.add_argument("--version", action="version", version=f"aiolwm2m {__version__}")
    # Its own dest: a subcommand's --log-level (``server``, ``demo``) would otherwise
    # overwrite this one with its default None, and the level given first was lost.
    parser.add_argument("--log-level", dest="global_log_level",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="default WARNING; server and demo: INFO (or their settings)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server_cmd.add_parser(sub)
    coap_client.add_parser(sub)
    demo.add_parser(sub)
    cluster_demo.add_parser(sub)
    client_commands.add_parsers(sub)
    broker_cmd.add_parser(sub)
    gateway_cmd.add_parser(sub)
    scef_emulator.add_parser(sub)
    rd_commands.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(args, "log_level", None) or args.global_log_level or "WARNING"
    logging.basicConfig(level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
