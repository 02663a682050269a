"""Benchmark: the device simulator against the aiolwm2m server, each in its own process.

    .venv/bin/python bench/bench_simulator.py [--counts 10000,100000] [--rate 3000]
        [--steady 120] [--lifetime 120] [--send-interval 120] [--store memory|sqlite]

For each count: a server process (memory store by default, uvloop when installed) and a
``aiolwm2m simulate`` process. Reported per run: devices registered per second (from the
first Register to the last 2.01), the simulator's RSS per device (total RSS / N, and the
growth over the process before its first device), and its CPU per device over a steady
state window that starts once every device is registered (lifetime and Send interval are
chosen so that every device Updates and Sends during the window).

Baseline, measured in the same run: N full ``LwM2MClient`` objects (one UdpEndpoint, Site
and message layer each) in one process; the ratio shows what the fleet design saves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent

SERVER = r"""
import asyncio, sys
from aiolwm2m.server import LwM2MServer, ServerConfig
async def main():
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store=sys.argv[1],
                                   data_dir=sys.argv[2]))
    await srv.start()
    print("ready", srv.port, flush=True)
    while True:
        await asyncio.sleep(5)
        print("registrations", len(srv.registrations), flush=True)
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""

BASELINE = r"""
import asyncio, json, sys, time
from aiolwm2m.client import ClientConfig, LwM2MClient, TemperatureInstance
from aiolwm2m.simulator.stats import cpu_seconds, rss_bytes
async def main():
    n, port = int(sys.argv[1]), int(sys.argv[2])
    base = rss_bytes()
    clients = [LwM2MClient(ClientConfig.development(f"base-{i:05d}",
                                                    f"coap://127.0.0.1:{port}",
                                                    host="127.0.0.1"),
                           objects=[TemperatureInstance(0)]) for i in range(n)]
    start = time.monotonic()
    for c in clients:
        await c.start()
    await asyncio.gather(*(c.wait_registered(120) for c in clients))
    took = time.monotonic() - start
    cpu0, t0 = cpu_seconds(), time.monotonic()
    await asyncio.sleep(10)
    cpu = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
    rss = rss_bytes()
    print(json.dumps({"devices": n, "registered_per_second": n / took,
                      "rss_per_device_kb": rss / n / 1024,
                      "rss_growth_per_device_kb": (rss - base) / n / 1024,
                      "cpu_us_per_device_per_s": cpu / n * 1e6}), flush=True)
    for c in clients:
        await c.stop(deregister=False)
asyncio.run(main())
"""


def proc_figures(pid: int) -> tuple[float, float]:
    """RSS (MB) and CPU seconds of a process, from /proc."""
    try:
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0
    return rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, cpu


async def start_server(store: str, data_dir: str) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON, "-c", SERVER, store, data_dir, stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
    if not line or line[0] != "ready":
        raise RuntimeError(f"server did not start: {line}")
    return proc, int(line[1])


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def relay(stream: asyncio.StreamReader | None, prefix: str) -> None:
    if stream is None:
        return
    while True:
        line = await stream.readline()
        if not line:
            return
        print(f"{prefix} {line.decode().rstrip()}", flush=True)


async def run_count(count: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server, port = await start_server(args.store, tmp)
        summary_path = Path(tmp) / "summary.json"
        print(f"== {count:,} devices: server pid {server.pid} on port {port} "
              f"({args.store} store)", flush=True)
        sim = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "aiolwm2m", "simulate", "--count", str(count),
            "--server", f"coap://127.0.0.1:{port}", "--rate", str(args.rate),
            "--duration", str(args.steady), "--lifetime", str(args.lifetime),
            "--send-interval", str(args.send_interval), "--progress", "lines",
            "--interval", "5", "--register-timeout", str(args.register_timeout),
            "--json-summary", str(summary_path), "--no-deregister", "--seed", "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT)
        server_cpu0 = proc_figures(server.pid)[1]
        relays = [asyncio.create_task(relay(sim.stderr, f"[sim {count}]")),
                  asyncio.create_task(relay(sim.stdout, f"[sim {count}]"))]
        try:
            await sim.wait()
            for r in relays:
                with contextlib.suppress(Exception):
                    await r
            server_rss, server_cpu = proc_figures(server.pid)
        finally:
            await stop_process(sim)
            await stop_process(server)
        if not summary_path.exists():
            raise RuntimeError(f"the simulator exited with {sim.returncode} and no summary")
        summary: dict[str, Any] = json.loads(summary_path.read_text())
        summary["server_rss_mb"] = round(server_rss, 1)
        summary["server_cpu_s"] = round(server_cpu - server_cpu0, 1)
        return summary


async def run_baseline(n: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server, port = await start_server("memory", tmp)
        print(f"== baseline: {n} full LwM2MClient objects in one process", flush=True)
        try:
            proc = await asyncio.create_subprocess_exec(
                PYTHON, "-c", BASELINE, str(n), str(port), stdout=asyncio.subprocess.PIPE,
                cwd=ROOT)
            out, _ = await asyncio.wait_for(proc.communicate(), 300)
        finally:
            await stop_process(server)
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result


def fmt(value: Any, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="10000,100000")
    parser.add_argument("--rate", type=float, default=5000.0, help="devices started per s")
    parser.add_argument("--steady", type=float, default=120.0,
                        help="steady-state window once all are registered (s)")
    parser.add_argument("--lifetime", type=int, default=120)
    parser.add_argument("--send-interval", type=float, default=120.0)
    parser.add_argument("--register-timeout", type=float, default=600.0)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--baseline", type=int, default=300,
                        help="full clients in the baseline run (0: skip)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c]
    started = time.monotonic()
    baseline = await run_baseline(args.baseline, args) if args.baseline else None
    results = [await run_count(n, args) for n in counts]
    print()
    print(f"simulator vs aiolwm2m server ({args.store} store), lifetime {args.lifetime} s, "
          f"Send every {args.send_interval:g} s, start rate {args.rate:g}/s, steady window "
          f"{args.steady:g} s; {os.cpu_count()} cores; total {time.monotonic() - started:.0f} s")
    header = (f"{'devices':>9} {'registered':>10} {'reg/s':>8} {'RSS/dev KB':>10} "
              f"{'growth/dev KB':>13} {'CPU us/dev/s':>12} {'core %':>7} {'server RSS MB':>13}")
    print(header)
    for r in results:
        per_dev = r["cpu_us_per_device_per_s"]
        core = per_dev * r["devices"] / 1e4 if per_dev is not None else None
        print(f"{r['devices']:>9,} {r['registered']:>10,} {fmt(r['registered_per_second']):>8}"
              f" {fmt(r['rss_per_device_kb'], '.2f'):>10}"
              f" {fmt(r['rss_growth_per_device_kb'], '.2f'):>13}"
              f" {fmt(per_dev, '.2f'):>12} {fmt(core, '.1f'):>7}"
              f" {fmt(r['server_rss_mb']):>13}")
    if baseline is not None:
        print(f"baseline: {baseline['devices']} full LwM2MClient objects: "
              f"{baseline['registered_per_second']:.0f} reg/s, "
              f"{baseline['rss_growth_per_device_kb']:.1f} KB RSS growth per client, "
              f"{baseline['cpu_us_per_device_per_s']:.1f} us CPU per client per s idle")
        for r in results:
            ratio = baseline["rss_growth_per_device_kb"] / max(r["rss_growth_per_device_kb"],
                                                               1e-9)
            print(f"  fleet of {r['devices']:,}: {ratio:.0f}x less memory per device than "
                  "the baseline")
    print(json.dumps({"baseline": baseline, "runs": results}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
