"""Benchmark: REST Reads of simulated devices against a device-free route, in one run.

    .venv/bin/python bench/bench_rest.py [--devices 100] [--seconds 10] [--connections 64]
        [--http-server product|hypercorn|uvicorn|granian|all] [--store sqlite|memory]
        [--path /3/0]

Three processes: the server with its REST API (``bench/rest_server_target.py``), N simulated
devices (``aiolwm2m simulate``) and ``bench/http_loadgen.c``, a closed-loop HTTP/1.1 load
generator in C keeping one request in flight on each of ``--connections`` keep-alive
connections. It first drives the baseline, ``GET /api/server`` (needs no device), then
``GET /api/clients/{ep}/read?path=/3/0`` round the N devices, each for ``--seconds`` after a
one-second warm-up. Reported per route: requests/s, latency p50/p99 (request written to
response read), and the CPU time the server process (with its SQLite writer) and the
simulator spent per request. ``--http-server all`` runs the whole thing once per HTTP
server, the product's own and the alternatives serving the same app.

Targets (issue 19): >= 5,000 reads/s, at least half the baseline's rate, p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass

from loadgen import BENCH, build_loadgen

TOKEN = "bench-token"
SERVERS = ("product", "hypercorn", "uvicorn", "granian")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    ok: int
    errors: int
    p50_us: int
    p99_us: int


def cpu_seconds(pid: int) -> float:
    """User + system time of ``pid`` and its children that are still running."""
    total = 0.0
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, IndexError, ValueError):
            pass
    return total


def http_get(port: int, path: str) -> dict[str, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, object] = json.loads(response.read())
        return data


def run_load(port: int, paths: list[str], seconds: float, conns: int) -> Load:
    exe = build_loadgen("http_loadgen")
    with tempfile.NamedTemporaryFile("w", suffix=".paths") as f:
        f.write("\n".join(paths) + "\n")
        f.flush()
        out = subprocess.run([str(exe), "127.0.0.1", str(port), str(seconds), str(conns),
                              f.name, TOKEN, "1"], capture_output=True, text=True,
                             check=True).stdout
    fields = dict(item.split("=") for item in out.split())
    return Load(int(fields["requests"]), float(fields["seconds"]), float(fields["rps"]),
                int(fields["ok"]), int(fields["errors"]), int(fields["p50_us"]),
                int(fields["p99_us"]))


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True,
                            cwd=BENCH.parent)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measured(port: int, paths: list[str], seconds: float, conns: int,
             server_pid: int, sim_pid: int) -> tuple[Load, float, float]:
    """The load's figures and the server's and simulator's CPU seconds per request."""
    s0, d0 = cpu_seconds(server_pid), cpu_seconds(sim_pid)
    load = run_load(port, paths, seconds, conns)
    s1, d1 = cpu_seconds(server_pid), cpu_seconds(sim_pid)
    # The CPU figures span the warm-up second too: count its requests at the same rate.
    spanned = max(1, round(load.rps * (seconds + 1.0)))
    return load, (s1 - s0) / spanned, (d1 - d0) / spanned


def run_one(http_server: str, args: argparse.Namespace) -> dict[str, object]:
    target = start([str(BENCH / "rest_server_target.py"), "--http-server", http_server,
                    "--store", args.store])
    assert target.stdout is not None
    line = target.stdout.readline().split()
    if not line or line[0] != "ready":
        stop(target)
        sys.exit(f"bench: the {http_server} target did not start")
    coap_port, http_port = int(line[1]), int(line[2])
    detail = " ".join(line[3:])
    sim = subprocess.Popen(
        [sys.executable, "-m", "aiolwm2m", "simulate", "--count", str(args.devices),
         "--server", f"coap://127.0.0.1:{coap_port}", "--rate", "2000", "--progress", "none",
         "--lifetime", "3600", "--send-interval", "1000000", "--prefix", "bench-"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=BENCH.parent)
    try:
        deadline = time.monotonic() + 60
        while http_get(http_port, "/api/server")["registrations"] != args.devices:
            if time.monotonic() > deadline or sim.poll() is not None:
                sys.exit(f"bench: {args.devices} devices did not register")
            time.sleep(0.2)
        reads = [f"/api/clients/bench-{i:06d}/read?path={args.path}"
                 for i in range(args.devices)]
        sample = http_get(http_port, reads[0])
        if sample.get("code") != "2.05":
            sys.exit(f"bench: a Read of {args.path} answered {sample}")
        baseline = measured(http_port, ["/api/server"], args.seconds, args.connections,
                            target.pid, sim.pid)
        read = measured(http_port, reads, args.seconds, args.connections, target.pid,
                        sim.pid)
    finally:
        stop(sim)
        stop(target)
    return {"http_server": http_server, "detail": detail, "baseline": baseline,
            "read": read}


def report(result: dict[str, object], args: argparse.Namespace) -> None:
    print(f"\nHTTP server {result['http_server']} ({result['detail']}), {args.devices} "
          f"simulated devices, {args.connections} connections, {args.seconds:g} s per route")
    print(f"  {'route':<42} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
          f"{'server CPU/req':>15} {'devices CPU/req':>16}")
    rows = (("GET /api/server (baseline, no device)", result["baseline"]),
            (f"GET .../read?path={args.path} ({args.devices} devices)", result["read"]))
    for name, (load, server_cpu, sim_cpu) in rows:  # type: ignore[misc]
        print(f"  {name:<42} {load.rps:>8,.0f} {load.p50_us / 1000:>7.1f} "
              f"{load.p99_us / 1000:>7.1f} {load.errors:>6} {server_cpu * 1e6:>12.0f} us "
              f"{sim_cpu * 1e6:>13.0f} us")
    base: Load = result["baseline"][0]  # type: ignore[index]
    read: Load = result["read"][0]  # type: ignore[index]
    ratio = read.rps / base.rps if base.rps else 0.0
    checks = [(">= 5,000 reads/s", read.rps >= 5000),
              (">= 0.5 of the baseline", ratio >= 0.5),
              ("read p99 < 50 ms", read.p99_us < 50_000)]
    print(f"  reads / baseline = {ratio:.2f}; targets: "
          + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in checks))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--http-server", choices=[*SERVERS, "all"], default="product")
    p.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    p.add_argument("--path", default="/3/0")
    args = p.parse_args()
    kinds = SERVERS if args.http_server == "all" else (args.http_server,)
    print(f"bench_rest: {os.cpu_count()} CPUs; load generator bench/http_loadgen.c")
    for kind in kinds:
        report(run_one(kind, args), args)


if __name__ == "__main__":
    main()
