"""LwM2M registrations and updates per second, latency and memory per registration.

    .venv/bin/python bench/bench_registration.py [--counts 10000,100000] [--store sqlite]

A C load generator (bench/rd_loadgen.c, built on first use) registers N distinct endpoints
with many requests in flight from 64 source ports, then sends one Update per endpoint. The
server runs in its own process with the SQLite store by default, so every 2.01 is durable;
its writer is a second process. Nothing is pinned: the server, its writer and the load
generator share the machine's cores. The baseline, measured in the same run, is the bare UDP
responder from bench_coap_udp.py on the same event loop with as many requests in flight.
"""

from __future__ import annotations

import argparse
import subprocess
import time

from loadgen import build_loadgen, run_load, start_target


def parse(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split())


def run_counts(n: int, store: str, conns: int, inflight: int, uvloop: bool
               ) -> dict[str, float]:
    loop = "uvloop" if uvloop else "asyncio"
    print(f"-- {n:,} endpoints, {store} store, {loop} loop, {inflight} requests in flight ...",
          flush=True)
    # Not pinned: the server's SQLite writer is a process of its own and should get the
    # second core when it needs it, as it would in production.
    target = start_target(["bench/lwm2m_server_target.py", store]
                          + (["--uvloop"] if uvloop else []), core=None)
    try:
        print(f"   server: {target.detail}", flush=True)
        time.sleep(0.5)
        rss_before = target.rss_kib()
        exe = build_loadgen("rd_loadgen")
        proc = subprocess.Popen([str(exe), "127.0.0.1", str(target.port), str(n),
                                 str(conns), str(inflight)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdin is not None
        reg = parse(proc.stdout.readline())
        print(f"   registered {int(reg['n']):,} in {float(reg['seconds']):.2f}s: "
              f"{float(reg['rate']):,.0f}/s, p50 {reg['p50_us']} us, p99 {reg['p99_us']} us, "
              f"failed {reg['failed']}", flush=True)
        assert proc.stdout.readline().strip() == "registered"
        time.sleep(1.0)
        rss_after = target.rss_kib()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        upd = parse(proc.stdout.readline())
        proc.wait()
        print(f"   updated {int(upd['n']):,}: {float(upd['rate']):,.0f}/s, p50 {upd['p50_us']} us, "
              f"p99 {upd['p99_us']} us, failed {upd['failed']}", flush=True)
        per = (rss_after - rss_before) * 1024 / max(1, int(reg["n"]))
        print(f"   server RSS {rss_before / 1024:.0f} MiB -> {rss_after / 1024:.0f} MiB: "
              f"{per / 1024:.2f} KiB per registered endpoint", flush=True)
        return {"reg_rate": float(reg["rate"]), "upd_rate": float(upd["rate"]),
                "reg_p50": float(reg["p50_us"]), "reg_p99": float(reg["p99_us"]),
                "upd_p50": float(upd["p50_us"]), "upd_p99": float(upd["p99_us"]),
                "per_kib": per / 1024, "failed": float(reg["failed"]) + float(upd["failed"])}
    finally:
        target.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="10000,100000")
    ap.add_argument("--store", default="sqlite", choices=["sqlite", "memory"])
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--inflight", type=int, default=1024)
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"],
                    help="event loop of the server (aiolwm2m server uses uvloop when present)")
    args = ap.parse_args()
    # The baseline runs as the server will: same event loop, not pinned, as many requests
    # in flight over as many sockets.
    uvloop = args.loop == "uvloop"
    per_socket = max(1, args.inflight // args.conns)
    print(f"-- baseline: bare UDP responder ({args.loop}), {args.conns} sockets x "
          f"{per_socket} in flight, 5s ...", flush=True)
    bare_target = start_target(["bench/bare_udp_responder.py"]
                               + (["--uvloop"] if uvloop else []), core=None)
    try:
        bare = run_load(bare_target.port, 5, args.conns, per_socket, "/hello", core=None)
    finally:
        bare_target.stop()
    print(f"   {bare.rps:,.0f} requests/s", flush=True)
    results = {int(c): run_counts(int(c), args.store, args.conns, args.inflight, uvloop)
               for c in args.counts.split(",")}
    print()
    print(f"{'endpoints':>10} {'reg/s':>9} {'ratio':>6} {'p50/p99 ms':>13} {'upd/s':>9} "
          f"{'ratio':>6} {'p50/p99 ms':>13} {'KiB/ep':>7}")
    for n, r in results.items():
        print(f"{n:>10,} {r['reg_rate']:>9,.0f} {r['reg_rate'] / bare.rps:>6.2f} "
              f"{r['reg_p50'] / 1000:>6.1f}/{r['reg_p99'] / 1000:<6.1f} "
              f"{r['upd_rate']:>9,.0f} {r['upd_rate'] / bare.rps:>6.2f} "
              f"{r['upd_p50'] / 1000:>6.1f}/{r['upd_p99'] / 1000:<6.1f} {r['per_kib']:>7.2f}")
    print(f"(baseline: bare UDP responder {bare.rps:,.0f} requests/s; targets: >= 30,000 "
          f"registrations/s with SQLite, <= 4 KiB per endpoint at 100,000)")


if __name__ == "__main__":
    main()
