"""``aiolwm2m scef-emulator``: a SCEF serving the T8 NIDD API over emulated UEs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from . import event_loop
from .server_cmd import describe_bind_error


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scef-emulator", help="run a SCEF emulator (3GPP T8 NIDD API) for NIDD devices",
        description="A SCEF emulator: the T8 NIDD API (3GPP TS 29.122) at "
                    "http://HOST:PORT/3gpp-nidd/v1/..., and a UDP socket on the same port "
                    "number where emulated UEs (aiolwm2m client --nidd, aiolwm2m simulate "
                    "--nidd) attach. PATCH /emulator/v1/ues/{id} changes how the network "
                    "treats a UE (latency, reachable, maximumPacketSize, apnRateControl, "
                    "downlinkRate); the flags below set the defaults.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8800, help="HTTP port (default 8800)")
    p.add_argument("--ue-port", type=int, help="UDP port of the UE side (default: --port)")
    p.add_argument("--token", help="require this bearer token on T8 requests (401 without)")
    p.add_argument("--latency", type=float, default=0.0,
                   help="one-way delay of every packet, seconds")
    p.add_argument("--maximum-packet-size", type=int, default=12_000,
                   help="maximumPacketSize given to UEs and SCS/ASs, in bits (default 12000)")
    p.add_argument("--apn-rate-control", type=int, default=0,
                   help="uplink packets per minute a UE may send (0: unlimited)")
    p.add_argument("--downlink-rate", type=int, default=0,
                   help="MT packets per minute per UE before 429 (0: unlimited)")
    p.add_argument("--buffer-time", type=float, default=3600.0,
                   help="how long MT data without maximumLatency is buffered, seconds")
    event_loop.add_flag(p)
    p.set_defaults(handler=run)


async def serve(args: argparse.Namespace) -> None:
    from aiolwm2m.nidd.emulator import ScefEmulator, ScefLimits, UeBehaviour

    behaviour = UeBehaviour(latency=args.latency, maximumPacketSize=args.maximum_packet_size,
                            apnRateControl=args.apn_rate_control,
                            downlinkRate=args.downlink_rate)
    emulator = ScefEmulator(args.host, args.port, ue_port=args.ue_port, token=args.token,
                            limits=ScefLimits(buffer_time=args.buffer_time),
                            behaviour=behaviour)
    await emulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    host, port = emulator.ue_address
    print(f"aiolwm2m scef-emulator T8 {emulator.url}/3gpp-nidd/v1/{{scsAsId}}/configurations; "
          f"UE link udp {host}:{port}; loop {event_loop.running()}", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535 or not 0 <= (args.ue_port or 0) <= 65535:
        print("aiolwm2m scef-emulator: ports are 0..65535", file=sys.stderr)
        return 2
    try:
        event_loop.run(serve(args), event_loop.resolve(getattr(args, "event_loop", None)))
    except OSError as e:
        print(f"aiolwm2m scef-emulator: {describe_bind_error('http/udp', args.host, args.port, e)}",
              file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"aiolwm2m scef-emulator: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
