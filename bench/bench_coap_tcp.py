"""CoAP GET over TCP (RFC 8323): the aiolwm2m TcpEndpoint against a bare asyncio responder of
the same framing, same run; then memory per idle connection.

    .venv/bin/python bench/bench_coap_tcp.py [--seconds 5] [--rounds 3] [--idle 5000]

A C load generator (bench/coap_tcp_loadgen.c, built on first use, run in its own process)
opens 64 connections, sends a CSM on each and keeps one GET in flight per connection. Each
round measures (a) the bare responder and (b) the aiolwm2m server; the medians over the
rounds and their ratio b/a are printed (target >= 0.35), with the server CPU time per
request of each (steadier than requests/s on a shared machine: at one request in flight
per connection neither server is CPU-bound).

Memory: the server is started, warmed with a batch of connections that are then closed, and
its RSS read; then ``--idle`` connections are opened and held (each has exchanged CSMs with
the server) and the RSS read again. The delta divided by the count is the cost of one idle
connection (target <= 8 KB; plain TCP, TLS excluded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from loadgen import LoadResult, open_idle_tcp, run_tcp_load, start_target


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, args: list[str], seconds: float, conns: int, inflight: int
            ) -> tuple[LoadResult, float]:
    """Requests/s, and the server's CPU microseconds per request over the same run."""
    target = start_target(args)
    try:
        cpu0, wall0 = cpu_seconds(target.proc.pid), time.monotonic()
        result = run_tcp_load(target.port, seconds, conns, inflight, "/hello")
        cpu1, wall1 = cpu_seconds(target.proc.pid), time.monotonic()
    finally:
        target.stop()
    # The load generator's warm-up second is in the CPU window too: divide by all the
    # requests served in the window, estimated at the measured rate.
    us_per_request = 1e6 * (cpu1 - cpu0) / max(1.0, result.rps * (wall1 - wall0))
    print(f"   {name:<22} {result.rps:10,.0f} requests/s   p50 {result.p50_us} us, "
          f"p99 {result.p99_us} us, server CPU {us_per_request:.1f} us/request", flush=True)
    return result, us_per_request


def idle_memory(count: int) -> tuple[float, int, int]:
    """Bytes of RSS per idle connection, and the RSS (KiB) before and after."""
    target = start_target(["bench/coap_tcp_get_server.py"])
    try:
        warm = open_idle_tcp(target.port, min(500, count))
        warm.communicate("")  # close stdin: the warm-up connections go away
        time.sleep(1.0)
        before = target.rss_kib()
        holder = open_idle_tcp(target.port, count)
        time.sleep(1.0)
        after = target.rss_kib()
        holder.communicate("")
    finally:
        target.stop()
    return (after - before) * 1024 / count, before, after


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--inflight", type=int, default=1)
    ap.add_argument("--idle", type=int, default=5000,
                    help="idle connections for the memory measurement (0 to skip)")
    args = ap.parse_args()
    started = time.monotonic()
    bare: list[float] = []
    ours: list[float] = []
    ratios: list[float] = []
    bare_cpu: list[float] = []
    ours_cpu: list[float] = []
    for r in range(args.rounds):
        print(f"-- round {r + 1}/{args.rounds}: {args.seconds:g}s, {args.conns} connections x "
              f"{args.inflight} in flight", flush=True)
        a, a_cpu = measure("bare asyncio responder", ["bench/bare_tcp_responder.py"],
                           args.seconds, args.conns, args.inflight)
        b, b_cpu = measure("aiolwm2m TcpEndpoint", ["bench/coap_tcp_get_server.py"],
                           args.seconds, args.conns, args.inflight)
        bare.append(a.rps)
        ours.append(b.rps)
        ratios.append(b.rps / a.rps)
        bare_cpu.append(a_cpu)
        ours_cpu.append(b_cpu)
    print()
    print(f"bare TCP responder : {statistics.median(bare):12,.0f} requests/s (median of "
          f"{args.rounds})")
    print(f"aiolwm2m TCP server: {statistics.median(ours):12,.0f} requests/s")
    print(f"ratio b/a          : {statistics.median(ratios):12.2f}   (per round: "
          f"{', '.join(f'{x:.2f}' for x in ratios)}; target >= 0.35)")
    # At one request in flight per connection neither server is CPU-bound, so requests/s
    # follow scheduling noise on a shared machine; CPU per request is the steadier figure.
    a_us, b_us = statistics.median(bare_cpu), statistics.median(ours_cpu)
    print(f"server CPU/request : bare {a_us:.1f} us, aiolwm2m {b_us:.1f} us   "
          f"(efficiency ratio a/b {a_us / b_us:.2f})")
    if args.idle > 0:
        per_conn, before, after = idle_memory(args.idle)
        print(f"idle connections   : {args.idle} held, server RSS {before / 1024:.1f} -> "
              f"{after / 1024:.1f} MiB, {per_conn / 1024:.2f} KiB per connection "
              f"(target <= 8 KiB)")
    print(f"(total {time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
