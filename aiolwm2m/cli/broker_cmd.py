"""``aiolwm2m broker``: a CoAP publish-subscribe broker (draft-ietf-core-coap-pubsub),
optionally announced to a Resource Directory."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from aiolwm2m.pubsub import Broker, BrokerConfig
from aiolwm2m.pubsub.drafts import DRAFT

from .broker_flags import add_limit_flags, limits_from
from .server_cmd import describe_bind_error, run_async
from .settings import SettingsError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "broker", help="run a CoAP pub/sub broker",
        description=f"Run a CoAP publish-subscribe broker ({DRAFT}): topics at /ps, "
                    "discovery at /.well-known/core?rt=core.ps*, last values kept in "
                    "./aiolwm2m-data. --rd announces it to a Resource Directory.")
    add_rd_flags(p)
    add_limit_flags(p, with_defaults=True)
    p.add_argument("--host", dest="hosts", action="append",
                   help="address to serve on (repeatable; default :: = IPv4 and IPv6)")
    p.add_argument("--port", type=int, default=5683, help="UDP port (default 5683)")
    p.add_argument("--store", choices=["sqlite", "memory"], default="sqlite",
                   help="persistence (default sqlite)")
    p.add_argument("--data-dir", type=Path, default=Path("aiolwm2m-data"),
                   help="where pubsub.sqlite3 lives")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   default="INFO")
    p.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"],
                   help="event loop (default auto: uvloop when installed)")
    p.set_defaults(handler=run)


def add_rd_flags(p: argparse.ArgumentParser) -> None:
    rd = p.add_argument_group("Resource Directory", "announce the broker (rt=core.ps)")
    rd.add_argument("--rd", metavar="URI",
                    help="coap://HOST[:PORT] (its registration resource is discovered), a "
                         "registration resource URI, or a multicast address such as "
                         "coap://224.0.1.187 (All-CoRE-Nodes) to discover one")
    rd.add_argument("--rd-endpoint", metavar="NAME",
                    help="endpoint name to register as (default pubsub-<host>-<port>)")
    rd.add_argument("--rd-lifetime", type=int, metavar="S", default=3600,
                    help="registration lifetime, refreshed before it ends (default 3600)")
    rd.add_argument("--rd-multicast-if", metavar="ADDR",
                    help="IPv4 address of the interface multicast discovery uses")


def config_from(args: argparse.Namespace) -> BrokerConfig:
    try:
        return BrokerConfig(
            hosts=tuple(args.hosts or ("::",)), port=args.port, store=args.store,
            data_dir=args.data_dir, limits=limits_from(args, SettingsError), rd=args.rd,
            rd_endpoint=args.rd_endpoint, rd_lifetime=args.rd_lifetime,
            rd_multicast_interface=args.rd_multicast_if)
    except ValueError as e:
        raise SettingsError(str(e)) from None


def banner(broker: Broker) -> str:
    cfg = broker.config
    where = ", ".join(f"[{h}]:{broker.port}" if ":" in h else f"{h}:{broker.port}"
                      for h in cfg.hosts)
    lines = [f"aiolwm2m broker coap:// udp {where} ({DRAFT}); "
             f"{len(broker.table)} topics loaded",
             f"  topics   coap://{_local(cfg.hosts[0])}:{broker.port}/ps",
             "  data     " + (str(cfg.database) if cfg.store == "sqlite" else
                             "memory (not kept)")]
    if cfg.rd:
        lines.append(f"  rd       announcing to {cfg.rd}")
    return "\n".join(lines)


def _local(host: str) -> str:
    if host in ("::", "0.0.0.0"):
        return "[::1]" if host == "::" else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def serve(config: BrokerConfig) -> None:
    broker = Broker(config)
    try:
        await broker.start()
    except OSError as e:
        raise SettingsError(describe_bind_error("udp", ",".join(config.hosts), config.port,
                                                e)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        print(banner(broker), flush=True)
        await stop.wait()
    finally:
        print("stopping ...", flush=True)
        await broker.stop()


def run(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(args.log_level)
    try:
        run_async(serve(config_from(args)), args.event_loop or "auto")
    except SettingsError as e:
        print(f"aiolwm2m broker: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
