"""``aiolwm2m gateway``: an LwM2M Gateway with simulated end devices, running the pub/sub
broker that nodes behind it publish to."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path

from aiolwm2m.client import ClientConfig
from aiolwm2m.coap.uri import parse_uri
from aiolwm2m.gateway import BrokerNodes, CoapNodeDevice, EndDevice, LwM2MGateway
from aiolwm2m.gateway.simulated import Drift, simulated_end_devices
from aiolwm2m.lwm2m.errors import LwM2MError, shown
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.pubsub import Broker, BrokerConfig
from aiolwm2m.pubsub.drafts import DRAFT

from .broker_cmd import add_rd_flags
from .broker_flags import add_limit_flags, limits_from
from .server_cmd import describe_bind_error, run_async
from .settings import SettingsError

log = logging.getLogger(__name__)

#: More simulated end devices than this would not fit a default server's registration
#: (one /25 instance each; ``--max-objects-per-registration`` raises the server's limit).
MAX_END_DEVICES = 100_000


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gateway", help="run an LwM2M Gateway with simulated end devices and a pub/sub broker",
        description="Run an LwM2M Gateway (Object 25) that registers with the LwM2M server "
                    "at --server and fronts --end-devices simulated end devices under the "
                    "prefixes dev0, dev1, ... (/dev0/3303/0/5700). With --broker-port it "
                    f"runs a CoAP pub/sub broker ({DRAFT}) on that UDP port of 127.0.0.1 and "
                    "::1: a node publishing to topic NODE/3303/0/5700 becomes end device "
                    "NODE, whose last values the server reads from the gateway.")
    p.add_argument("--server", "-s", metavar="URI", required=True,
                   help="the LwM2M server, coap://HOST[:PORT] (development provisioning: "
                        "no Bootstrap-Server)")
    p.add_argument("--endpoint", "-e", default="gateway", help="endpoint name (default "
                                                               "gateway)")
    p.add_argument("--end-devices", "-n", type=int, default=3, metavar="N",
                   help="simulated end devices (default 3)")
    p.add_argument("--lifetime", type=int, default=300, help="registration lifetime (s)")
    p.add_argument("--drift-interval", type=float, default=5.0, metavar="S",
                   help="move simulated temperatures every S seconds (0: never)")
    p.add_argument("--host", default="::", help="local address of the gateway's socket")
    p.add_argument("--coap-node", action="append", default=[], metavar="SPEC",
                   help="also front a plain CoAP node (repeatable): PREFIX=coap://HOST[:PORT]"
                        ",/OBJ/INST/RES=/node/path[,...], e.g. 'boiler=coap://[::1]:5700,"
                        "/3303/0/5700=/temperature': the node's resource is observed, a "
                        "server's Write is a PUT to it, an Execute a POST")
    broker = p.add_argument_group("pub/sub broker")
    broker.add_argument("--broker-port", type=int, metavar="PORT",
                        help="serve the broker on this UDP port (0: any free one)")
    broker.add_argument("--broker-host", dest="broker_hosts", action="append",
                        metavar="ADDR", help="address of the broker (repeatable; default "
                                             "127.0.0.1 and ::1)")
    broker.add_argument("--store", choices=["sqlite", "memory"], default="sqlite",
                        help="where the broker keeps topics and last values (default "
                             "sqlite)")
    broker.add_argument("--data-dir", type=Path, default=Path("aiolwm2m-data"),
                        help="where pubsub.sqlite3 lives")
    broker.add_argument("--online-window", type=float, default=600.0, metavar="S",
                        help="a node heard from within S seconds is online (default 600)")
    add_rd_flags(p)
    add_limit_flags(p, with_defaults=True)
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   default="INFO")
    p.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"],
                   help="event loop (default auto: uvloop when installed)")
    p.set_defaults(handler=run)


def client_config(args: argparse.Namespace) -> ClientConfig:
    try:
        parse_uri(args.server)
        return ClientConfig.development(args.endpoint, args.server, lifetime=args.lifetime,
                                        host=args.host)
    except ValueError as e:
        raise SettingsError(f"--server: {e}") from None


def coap_node(spec: str) -> CoapNodeDevice:
    """``PREFIX=coap://HOST[:PORT],/3303/0/5700=/temperature,...`` as an end device."""
    head, _, mapping = spec.partition(",")
    prefix, eq, uri = head.partition("=")
    try:
        if not eq or not mapping:
            raise ValueError("expected PREFIX=coap://HOST[:PORT],/OBJ/INST/RES=/node/path")
        parsed = parse_uri(uri.strip())
        if parsed.scheme != "coap":
            raise ValueError("the node is reached over coap:// (UDP)")
        try:
            address = socket.getaddrinfo(parsed.host, parsed.port,
                                         type=socket.SOCK_DGRAM)[0][4]
        except socket.gaierror:
            raise ValueError(f"cannot resolve {shown(parsed.host, 40)}") from None
        resources: dict[str | LwM2MPath, str] = {}
        for item in mapping.split(","):
            lwm2m, eq, node_path = item.partition("=")
            if not eq or not node_path.strip():
                raise ValueError(f"{shown(item, 40)}: expected /OBJ/INST/RES=/node/path")
            resources[lwm2m.strip()] = node_path.strip()
        return CoapNodeDevice(prefix.strip(), (str(address[0]), int(address[1])), resources)
    except (ValueError, KeyError, LwM2MError, OSError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise SettingsError(f"--coap-node {shown(spec, 60)}: {message}") from None


def broker_config(args: argparse.Namespace) -> BrokerConfig | None:
    if args.broker_port is None:
        if args.rd:
            raise SettingsError("--rd announces the broker: give --broker-port as well")
        return None
    try:
        return BrokerConfig(
            hosts=tuple(args.broker_hosts or ("127.0.0.1", "::1")), port=args.broker_port,
            store=args.store, data_dir=args.data_dir, limits=limits_from(args, SettingsError),
            rd=args.rd, rd_endpoint=args.rd_endpoint, rd_lifetime=args.rd_lifetime,
            rd_multicast_interface=args.rd_multicast_if)
    except ValueError as e:
        raise SettingsError(str(e)) from None


def banner(gateway: LwM2MGateway, broker: Broker | None, server: str) -> str:
    lines = [f"aiolwm2m gateway {gateway.config.endpoint}: {len(gateway.end_devices)} end "
             f"devices (/dev0/3303/0/5700 ...), registering with {server}"]
    if broker is not None:
        cfg = broker.config
        where = ", ".join(f"[{h}]:{broker.port}" if ":" in h else f"{h}:{broker.port}"
                          for h in cfg.hosts)
        lines.append(f"  broker   coap:// udp {where} ({DRAFT}), topics at /ps, "
                     "nodes publish to NODE/OBJECT/INSTANCE/RESOURCE")
        if cfg.rd:
            lines.append(f"  rd       announcing the broker to {cfg.rd}")
        lines.append("  data     " + (str(cfg.database) if cfg.store == "sqlite" else
                                     "memory (not kept)"))
    return "\n".join(lines)


async def serve(args: argparse.Namespace) -> None:
    if not 0 <= args.end_devices <= MAX_END_DEVICES:
        raise SettingsError(f"--end-devices: 0 to {MAX_END_DEVICES}")
    config = client_config(args)
    nodes_behind: list[EndDevice] = [coap_node(spec) for spec in args.coap_node]
    broker_cfg = broker_config(args)
    broker = Broker(broker_cfg) if broker_cfg is not None else None
    if broker is not None and broker_cfg is not None:
        try:
            await broker.start()
        except OSError as e:
            raise SettingsError(describe_bind_error(
                "udp", ",".join(broker_cfg.hosts), broker_cfg.port, e)) from None
    devices = simulated_end_devices(args.end_devices, gateway=args.endpoint)
    try:
        gateway = LwM2MGateway(config, end_devices=[*devices, *nodes_behind])
    except ValueError as e:  # a prefix used twice
        if broker is not None:
            await broker.stop()
        raise SettingsError(f"--coap-node: {e}") from None
    nodes = BrokerNodes(gateway, broker, online_window=args.online_window) if broker else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    drift: asyncio.Task[None] | None = None
    try:
        await gateway.start()
        if nodes is not None:
            nodes.start()
        if args.drift_interval > 0 and devices:
            drift = asyncio.create_task(Drift(devices, interval=args.drift_interval).run())
        print(banner(gateway, broker, args.server), flush=True)
        await stop.wait()
    finally:
        print("stopping ...", flush=True)
        if drift is not None:
            drift.cancel()
        if nodes is not None:
            await nodes.stop()
        await gateway.stop()
        if broker is not None:
            await broker.stop()


def run(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(args.log_level)
    try:
        run_async(serve(args), args.event_loop or "auto")
    except SettingsError as e:
        print(f"aiolwm2m gateway: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
