"""``aiolwm2m demo``: the server, its web UI, and a few simulated devices that find it the
normal way: through the Bootstrap-Server (OSR-002)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Awaitable, Callable

from aiolwm2m.bootstrap.configuration import EndpointConfig
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile

from .server_cmd import (
    RunningServer,
    add_server_flags,
    console,
    run_async,
    serve_until_stopped,
    settings_from,
)
from .settings import SettingsError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="run the server, its web UI and a few simulated devices",
        description="Start the LwM2M server with its web UI and Bootstrap-Server, then N "
                    "simulated devices that bootstrap from it, register, send temperature "
                    "readings every 30 s and answer reads, writes and observations. Takes "
                    "every `aiolwm2m server` option.")
    add_server_flags(p)
    p.add_argument("--devices", type=int, default=5, help="simulated devices (default 5)")
    p.set_defaults(handler=run)


def start_devices(count: int) -> Callable[[RunningServer], Awaitable[Callable[[],
                                                                              Awaitable[None]]]]:
    async def start(running: RunningServer) -> Callable[[], Awaitable[None]]:
        server_uri = f"coap://127.0.0.1:{running.server.port}"
        bs = running.bootstrap
        bootstrap_uri = None
        if bs is not None:
            if not bs.configs:
                # Anyone who asks is sent to this server (NoSec): fine on a laptop, and
                # replaced by real configurations through the API or the UI.
                await bs.set_config("*", EndpointConfig.for_server(server_uri, 1,
                                                                   lifetime=300))
            bootstrap_uri = f"coap://127.0.0.1:{bs.port}"
        fleet = Fleet(FleetConfig(
            count=count, server_uri=server_uri, bootstrap_uri=bootstrap_uri, rate=5.0,
            profile=FleetProfile(endpoint_prefix="demo-", send_interval=30.0,
                                 sample_period=2.0, deregister_on_stop=True)))
        await fleet.start()
        how = "bootstrap from the Bootstrap-Server and " if bootstrap_uri else ""
        console.print(f"  {count} demo devices ({fleet.config.profile.endpoint(0)} ...) "
                      f"{how}register now; open the web UI above")

        async def stop() -> None:
            with contextlib.suppress(Exception):
                await fleet.stop(timeout=5.0)

        return stop

    return start


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        run_async(serve_until_stopped(settings, start_devices(args.devices)),
                  settings.event_loop)
    except SettingsError as e:
        print(f"aiolwm2m demo: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
