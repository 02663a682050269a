"""The ``aiolwm2m`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from aiolwm2m import __version__

from . import client_commands, coap_client, demo, server_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiolwm2m", description="OMA LwM2M 1.1 device management on asyncio.")
    parser.add_argument("--version", action="version", version=f"aiolwm2m {__version__}")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server_cmd.add_parser(sub)
    coap_client.add_parser(sub)
    demo.add_parser(sub)
    client_commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
