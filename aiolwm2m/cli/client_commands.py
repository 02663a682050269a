"""``aiolwm2m client``, ``aiolwm2m bootstrap-server`` and ``aiolwm2m simulate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiolwm2m.coap.uri import UriError, parse_uri


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_client(sub)
    _add_bootstrap_server(sub)
    _add_simulate(sub)


# -- aiolwm2m client ----------------------------------------------------------------------


def _add_client(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "client", help="run an LwM2M 1.1 client (device) until Ctrl-C",
        description="An LwM2M 1.1 client with the standard objects (0-7) and a temperature "
                    "sensor (3303). The normal provisioning path is a bootstrap server "
                    "(--bootstrap); --server configures an LwM2M server directly, which is "
                    "a factory bootstrap and meant for development only (OSR-002).")
    p.add_argument("--endpoint", "-e", default=socket.gethostname(),
                   help="endpoint name (default: the host name)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--bootstrap", "-b", metavar="URI",
                       help="bootstrap server, e.g. coap://bs.example:5683 (normal path)")
    group.add_argument("--server", "-s", metavar="URI",
                       help="DEVELOPMENT ONLY: register directly with this LwM2M server "
                            "(factory bootstrap)")
    p.add_argument("--short-server-id", type=int, default=1,
                   help="Short Server ID for --server (development only)")
    p.add_argument("--lifetime", type=int, default=300, help="registration lifetime (s)")
    p.add_argument("--queue", action="store_true", help="queue mode (sleep when idle)")
    p.add_argument("--awake-time", type=float, default=93.0,
                   help="queue mode: seconds awake after the last exchange")
    p.add_argument("--host", default="::", help="local address to bind")
    p.add_argument("--port", type=int, default=0, help="local port (0: any)")
    p.add_argument("--send-interval", type=float, default=0.0,
                   help="Send the temperature every this many seconds (0: never)")
    p.set_defaults(handler=run_client)


async def _client(args: argparse.Namespace) -> int:
    from aiolwm2m.client import ClientConfig, LwM2MClient, TemperatureInstance

    try:
        for uri in (args.bootstrap, args.server):
            if uri is not None:
                parse_uri(uri)
        if args.server is not None:
            config = ClientConfig.development(
                args.endpoint, args.server, development_short_server_id=args.short_server_id,
                lifetime=args.lifetime, queue_mode=args.queue, awake_time=args.awake_time,
                host=args.host, port=args.port)
        else:
            config = ClientConfig(args.endpoint, bootstrap_uri=args.bootstrap,
                                  lifetime=args.lifetime, queue_mode=args.queue,
                                  awake_time=args.awake_time, host=args.host, port=args.port)
    except (UriError, ValueError) as e:
        print(f"aiolwm2m client: {e}", file=sys.stderr)
        return 2
    if args.server is not None:
        print("aiolwm2m client: --server is a factory bootstrap, for development only",
              file=sys.stderr)
    temperature = TemperatureInstance(0)
    client = LwM2MClient(config, objects=[temperature])
    client.events.subscribe(lambda e: print(f"{e.name}: {e}", flush=True))
    stop = _stop_event()
    await client.start()
    print(f"client {args.endpoint} listening on port {client.port}", flush=True)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.send_interval or 3600.0)
            if args.send_interval and client.registered and not stop.is_set():
                try:
                    await client.send(["/3303/0/5700"])
                except Exception as e:
                    print(f"send failed: {e}", file=sys.stderr)
    finally:
        await client.stop()
    return 0


def run_client(args: argparse.Namespace) -> int:
    return _run(_client(args))


# -- aiolwm2m bootstrap-server ------------------------------------------------------------


def _add_bootstrap_server(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bootstrap-server", help="run the LwM2M bootstrap server until Ctrl-C",
        description="Bootstrap-Server: answers POST /bs?ep=NAME and writes the endpoint's "
                    "configuration (Security, Server, Access Control objects).")
    p.add_argument("--config", "-c", type=Path,
                   help="endpoint configurations, TOML or JSON (format: the docstring of "
                        "aiolwm2m/bootstrap/configuration.py)")
    p.add_argument("--server", "-s", metavar="URI",
                   help="shortcut: configure every endpoint ('*') for this LwM2M server")
    p.add_argument("--short-server-id", type=int, default=1)
    p.add_argument("--lifetime", type=int, default=300)
    p.add_argument("--host", default="::")
    p.add_argument("--port", type=int, default=5683)
    p.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    p.add_argument("--data-dir", type=Path, default=Path("aiolwm2m-data"))
    p.set_defaults(handler=run_bootstrap_server)


async def _bootstrap_server(args: argparse.Namespace) -> int:
    from aiolwm2m.bootstrap import (
        BootstrapServer,
        BootstrapServerConfig,
        ConfigurationError,
        EndpointConfig,
    )

    config = BootstrapServerConfig(host=args.host, port=args.port, store=args.store,
                                   data_dir=args.data_dir, config_file=args.config)
    server = BootstrapServer(config)
    server.events.subscribe(lambda e: print(f"{e.name}: {e}", flush=True))
    try:
        await server.start()
        if args.server is not None:
            parse_uri(args.server)
            await server.set_config("*", EndpointConfig.for_server(
                args.server, args.short_server_id, lifetime=args.lifetime))
    except (ConfigurationError, UriError, OSError) as e:
        print(f"aiolwm2m bootstrap-server: {e}", file=sys.stderr)
        await server.stop()
        return 2
    if not server.configs:
        print("aiolwm2m bootstrap-server: warning: no configuration (use --config or "
              "--server); every Bootstrap-Request will be refused", file=sys.stderr)
    print(f"bootstrap server on port {server.port} with "
          f"{len(server.configs)} configuration(s)", flush=True)
    stop = _stop_event()
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0


def run_bootstrap_server(args: argparse.Namespace) -> int:
    return _run(_bootstrap_server(args))


# -- aiolwm2m simulate --------------------------------------------------------------------


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate", help="simulate many LwM2M devices in one process",
        description="N simulated devices (Device, Server and Temperature objects; the "
                    "temperature drifts, observations are honoured, each device Sends every "
                    "--send-interval seconds), started at --rate per second, with a live "
                    "progress display and a summary.")
    p.add_argument("--count", "-n", type=int, required=True, help="number of devices")
    p.add_argument("--server", "-s", required=True, metavar="URI",
                   help="the LwM2M server; with --bootstrap, only the default")
    p.add_argument("--bootstrap", "-b", metavar="URI",
                   help="bootstrap each device from this bootstrap server first")
    p.add_argument("--rate", "-r", type=float, default=200.0, help="devices started per s")
    p.add_argument("--duration", "-d", type=float, default=None,
                   help="seconds to run once all are registered (default: until Ctrl-C)")
    p.add_argument("--register-timeout", type=float, default=None,
                   help="stop waiting for all registrations after this many seconds")
    p.add_argument("--lifetime", type=int, default=300, help="registration lifetime (s)")
    p.add_argument("--send-interval", type=float, default=300.0,
                   help="seconds between two Sends of a device")
    p.add_argument("--prefix", default="sim-", help="endpoint name prefix")
    p.add_argument("--progress", choices=["auto", "rich", "lines", "none"], default="auto")
    p.add_argument("--interval", type=float, default=1.0, help="progress update period (s)")
    p.add_argument("--json-summary", type=Path, help="also write the summary as JSON")
    p.add_argument("--no-deregister", action="store_true",
                   help="do not De-register the devices when stopping")
    p.add_argument("--seed", type=int, default=None, help="random seed (jitter)")
    p.set_defaults(handler=run_simulate)


async def _simulate(args: argparse.Namespace) -> int:
    from aiolwm2m.simulator import FleetConfig, FleetProfile, run_fleet
    from aiolwm2m.simulator.progress import print_summary

    if args.count <= 0 or args.rate <= 0:
        print("aiolwm2m simulate: --count and --rate must be positive", file=sys.stderr)
        return 2
    profile = FleetProfile(endpoint_prefix=args.prefix, lifetime=args.lifetime,
                           send_interval=args.send_interval,
                           deregister_on_stop=not args.no_deregister)
    try:
        config = FleetConfig(args.count, args.server, args.bootstrap, args.rate, profile,
                             seed=args.seed)
        summary = await run_fleet(config, duration=args.duration,
                                  register_timeout=args.register_timeout,
                                  progress=args.progress, interval=args.interval,
                                  json_summary=args.json_summary)
    except (UriError, ValueError, OSError, RuntimeError) as e:
        print(f"aiolwm2m simulate: {e}", file=sys.stderr)
        return 1
    if args.progress == "none":
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0 if summary["registered"] == args.count else 1


def run_simulate(args: argparse.Namespace) -> int:
    return _run(_simulate(args))


# -- shared ---------------------------------------------------------------------------------


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _run(coro: Coroutine[Any, Any, int]) -> int:
    """Run with uvloop when it is installed (faster sockets for the simulator)."""
    try:
        import uvloop
    except ImportError:
        runner: Callable[[Coroutine[Any, Any, int]], int] = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(coro)
    except KeyboardInterrupt:
        return 130
