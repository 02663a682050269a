"""``aiolwm2m cluster-demo``: several server nodes as one, on one machine, as deployed: a
3-primary Redis Cluster, N ``aiolwm2m server --node-id`` processes and nginx (stream module)
in front of them, with a few simulated devices registering through nginx.

Needs Debian's redis-server, redis-tools, nginx and libnginx-mod-stream
(``scripts/setup.sh test`` installs them). Everything listens on 127.0.0.1 and lives in
``--dir`` (Redis' AOF, nginx.conf and its log, each node's log), kept after the demo so that
a newcomer can read the configuration it used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import sys
import tempfile
from pathlib import Path

from aiolwm2m.cluster.deployment import Deployment, DeploymentError
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cluster-demo", help="run several server nodes as one behind nginx, on Redis",
        description="Start a Redis Cluster (or one Redis), N server nodes sharing it, nginx "
                    "as the CoAP (UDP) and REST (TCP) load balancer in front of them, and "
                    "simulated devices registering through nginx. Stop with Ctrl-C.")
    p.add_argument("--nodes", type=int, default=3, help="server nodes (default 3)")
    p.add_argument("--redis-primaries", type=int, default=3,
                   help="Redis Cluster primaries; 1 runs one standalone Redis (default 3)")
    p.add_argument("--coap-port", type=int, default=5683,
                   help="UDP port nginx takes CoAP on (default 5683; 0 picks one)")
    p.add_argument("--http-port", type=int, default=8080,
                   help="TCP port nginx takes the REST API and web UI on (default 8080; 0 "
                        "picks one)")
    p.add_argument("--devices", type=int, default=20,
                   help="simulated devices registering through nginx (default 20)")
    p.add_argument("--dir", type=Path, default=None,
                   help="where Redis, nginx and the nodes keep their files (default: a new "
                        "temporary directory)")
    p.add_argument("--api-token", default=None,
                   help="the REST API token of every node (default: a random one, shown)")
    p.set_defaults(handler=run)


def _say(text: str) -> None:
    print(text, flush=True)


async def _demo(deployment: Deployment, devices: int) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await asyncio.to_thread(deployment.start)
    try:
        fleet = None
        if devices:
            fleet = Fleet(FleetConfig(devices, deployment.coap_uri, rate=50.0, profile=FleetProfile(
                endpoint_prefix="demo-", send_interval=30.0, sample_period=2.0)))
            await fleet.start()
        _say(f"cluster-demo: {len(deployment.servers)} nodes on {deployment.store_url}")
        for server in deployment.servers:
            _say(f"  node {server.name}: CoAP udp 127.0.0.1:{server.coap_port}, REST "
                 f"{server.http_url}/api, log {server.log}")
        _say(f"  nginx: devices -> {deployment.coap_uri} (hash on the source address), "
             f"REST and web UI -> {deployment.http_url}/ui/ (any node answers)")
        _say(f"  API token: {deployment.token}")
        _say(f"  files: {deployment.directory} (nginx/nginx.conf is the load balancer's "
             "configuration)")
        _say(f"cluster-demo: ready; {devices} simulated devices register through nginx. "
             "Try: kill -9 one node's process and watch its devices move (GET /api/cluster)."
             " Ctrl-C stops everything.")
        await stopped.wait()
        if fleet is not None:
            with contextlib.suppress(Exception):
                await fleet.stop(timeout=5.0)
    finally:
        await asyncio.to_thread(deployment.stop)
        _say("cluster-demo: stopped")


def run(args: argparse.Namespace) -> int:
    if args.nodes < 1 or args.redis_primaries < 1 or args.devices < 0:
        print("aiolwm2m cluster-demo: --nodes and --redis-primaries must be at least 1, "
              "--devices not negative", file=sys.stderr)
        return 2
    directory = args.dir or Path(tempfile.mkdtemp(prefix="aiolwm2m-cluster-"))
    deployment = Deployment(directory, nodes=args.nodes, redis_primaries=args.redis_primaries,
                            token=args.api_token or secrets.token_urlsafe(18),
                            coap_port=args.coap_port, http_port=args.http_port)
    try:
        asyncio.run(_demo(deployment, args.devices))
    except DeploymentError as e:
        print(f"aiolwm2m cluster-demo: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
