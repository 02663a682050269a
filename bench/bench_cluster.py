"""Several nodes as one: registrations/s and REST reads/s with 1, 2 and 3 nodes, a routed
REST request against a local one in the same run, and Redis memory per registered device.

    .venv/bin/python bench/bench_cluster.py [--nodes 1,2,3] [--devices 6000]
                                            [--seconds 5] [--connections 16]

For each node count, a 3-primary Redis Cluster (AOF, ``appendfsync always``), that many
``aiolwm2m server --node-id`` processes and nginx in front (``aiolwm2m.cluster.deployment``,
as ``aiolwm2m cluster-demo`` runs them) are started afresh. Then:

- **registrations/s**: one simulator process per node registers ``devices / nodes``
  devices directly at that node (what nginx's source-address hash does with a fleet of
  distinct addresses; nginx itself is not in the path, so as not to measure it), all at
  once; the rate is every device over the time the slowest process took. Every 2.01 is
  durable in Redis (the Register's script has run).
- **REST reads/s** (``GET /api/registrations/{ep}``, no device round trip, so that the
  figure is the node's and the routing's): ``bench/http_loadgen.c`` against every node at
  once, each node reading the devices it holds ("local"), then each node reading devices
  another node holds ("routed": through the owner's inbox stream and back).
- **Redis bytes per device**: ``used_memory`` summed over the primaries before and after
  the registrations, divided by the devices (node heartbeats and streams included).

The machine is shared and has 2 cores: the nodes, Redis, the simulators and the load
generator all compete for them, so the scaling ratio here says what the cluster costs, not
what N machines would give. Report ratios within the run, not absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadgen import build_loadgen

from aiolwm2m.cluster.deployment import Deployment, NodeProcess

TOKEN = "bench-cluster"


def fleet_worker(uri: str, count: int, prefix: str) -> None:
    """In a process of its own: register ``count`` devices at ``uri``, print the seconds,
    then keep them registered (answering the server) until stdin closes."""
    from aiolwm2m.coap.params import TransmissionParameters
    from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile

    async def main() -> None:
        fleet = Fleet(FleetConfig(count, uri, rate=1e9, transmission=TransmissionParameters(
            ack_timeout=4.0, ack_random_factor=1.0, max_retransmit=4),
            profile=FleetProfile(endpoint_prefix=prefix, lifetime=3600, send_interval=1e6,
                                 deregister_on_stop=False)))
        start = time.perf_counter()
        await fleet.start()
        while fleet.stats.registered < count:
            await asyncio.sleep(0.01)
        print(f"registered {time.perf_counter() - start:.3f}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await fleet.stop(deregister=False, timeout=5)

    asyncio.run(main())


def used_memory(deployment: Deployment) -> int:
    assert deployment.redis is not None
    total = 0
    for node in deployment.redis.nodes:
        info = node.cli("INFO", "memory")
        total += int(next(line.split(":", 1)[1] for line in info.splitlines()
                          if line.startswith("used_memory:")))
    return total


def register(deployment: Deployment, devices: int) -> tuple[float, list[list[str]]]:
    """Register ``devices`` spread over the nodes; the rate, and the endpoints per node.
    The simulator processes keep running (they answer reads) until ``stop_workers``."""
    servers = deployment.servers
    share = devices // len(servers)
    workers = []
    for i, server in enumerate(servers):
        workers.append(subprocess.Popen(
            [sys.executable, __file__, "--fleet-worker", f"coap://127.0.0.1:{server.coap_port}",
             str(share), f"n{i}-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    times = []
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline().split()
        assert line and line[0] == "registered", line
        times.append(float(line[1]))
    register.workers = workers  # type: ignore[attr-defined]
    rate = share * len(servers) / max(times)
    return rate, [[f"n{i}-{j:06d}" for j in range(share)] for i in range(len(servers))]


def stop_workers() -> None:
    for worker in getattr(register, "workers", []):
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait(30)


def reads(servers: list[NodeProcess], paths: list[list[str]], seconds: float,
          connections: int) -> tuple[float, int]:
    """http_loadgen against every node at once, node i reading ``paths[i]``; the summed
    rate and the non-2xx answers."""
    exe = build_loadgen("http_loadgen")
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, server in enumerate(servers):
            file = Path(tmp) / f"paths{i}"
            file.write_text("".join(f"/api/registrations/{ep}\n" for ep in paths[i]))
            procs.append(subprocess.Popen(
                [str(exe), "127.0.0.1", str(server.http_port), str(seconds), str(connections),
                 str(file), TOKEN, "1"], stdout=subprocess.PIPE, text=True))
        rate = 0.0
        errors = 0
        for proc in procs:
            out, _ = proc.communicate()
            fields = dict(item.split("=") for item in out.split())
            rate += float(fields["rps"])
            errors += int(fields["errors"])
    return rate, errors


def run(nodes: int, devices: int, seconds: float, connections: int) -> dict[str, float]:
    print(f"-- {nodes} node(s), {devices:,} devices", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        deployment = Deployment(Path(tmp), nodes=nodes, redis_primaries=3, token=TOKEN,
                                node_ttl=10.0)
        deployment.start()
        try:
            before = used_memory(deployment)
            rate, owned = register(deployment, devices)
            time.sleep(1.0)  # heartbeats, streams settle
            per_device = (used_memory(deployment) - before) / (len(owned[0]) * nodes)
            print(f"   registrations: {rate:,.0f}/s; Redis {per_device:,.0f} bytes per "
                  "device", flush=True)
            local, local_errors = reads(deployment.servers, owned, seconds, connections)
            print(f"   REST reads, local: {local:,.0f}/s ({local_errors} errors)", flush=True)
            result = {"nodes": nodes, "reg_rate": rate, "bytes_per_device": per_device,
                      "local_reads": local}
            if nodes > 1:
                shifted = owned[1:] + owned[:1]  # node i reads node i+1's devices
                routed, routed_errors = reads(deployment.servers, shifted, seconds,
                                              connections)
                print(f"   REST reads, routed to the owner: {routed:,.0f}/s "
                      f"({routed_errors} errors); routed/local {routed / local:.2f}",
                      flush=True)
                result["routed_reads"] = routed
            return result
        finally:
            stop_workers()
            deployment.stop()


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--fleet-worker":
        fleet_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="1,2,3")
    parser.add_argument("--devices", type=int, default=6000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    results = [run(int(n), args.devices, args.seconds, args.connections)
               for n in args.nodes.split(",")]
    base = results[0]
    print("-- summary (the machine is shared: ratios within this run)")
    for r in results:
        line = (f"   {int(r['nodes'])} node(s): {r['reg_rate']:,.0f} reg/s "
                f"(x{r['reg_rate'] / base['reg_rate']:.2f}), local reads "
                f"{r['local_reads']:,.0f}/s (x{r['local_reads'] / base['local_reads']:.2f})")
        if "routed_reads" in r:
            line += (f", routed reads {r['routed_reads']:,.0f}/s "
                     f"({r['routed_reads'] / r['local_reads']:.2f} of local)")
        print(line + f", {r['bytes_per_device']:,.0f} B/device in Redis")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
