"""Resource Directory: generic registrations/s against LwM2M registrations/s, and lookups/s
by an indexed attribute among 100,000 endpoints against a plain GET, in one run.

    .venv/bin/python bench/bench_rd.py [--endpoints 100000] [--store sqlite] [--seconds 5]

1. Registrations, the baseline first: a fresh server takes N LwM2M Registers (and one Update
   each) from the C load generator (bench/rd_loadgen.c), then another fresh server takes N
   generic RD registrations (``POST /rd?ep=bench-<i>&d=bench``, five resource links each)
   and their updates. With the SQLite store every 2.01 is durable.
2. Lookups, on the server holding the N generic registrations: closed-loop CoAP GETs from
   bench/rd_lookup_loadgen.c, each naming a random endpoint: ``/rd-lookup/ep?ep=...``,
   ``/rd-lookup/res?ep=...`` and ``/rd-lookup/res?d=bench&rt=light&ep=...`` (three indexed
   criteria), against the baseline of the same server answering
   ``/.well-known/core?rt=core.rd-lookup-ep`` (the same request path without a lookup).
3. For scale: a few lookups by an attribute that is not indexed (a scan of every
   registration), one at a time.
4. A group read fanned out to ``--group-devices`` (10,000) simulated devices (``aiolwm2m
   simulate``, its own process): the group is a filter (``ep=gsim-*``, resolved through the
   RD's lookup), read ``/3/0/2`` on every member at the group's concurrency, against the
   baseline of the same reads sent at once with ``asyncio.gather`` (no limit, no group
   machinery). Reported: seconds, answers, and the server's RSS growth during each.

Targets: generic registrations as fast as LwM2M's (>= 30,000/s durable), >= 5,000 indexed
lookups/s with p99 under 20 ms, the group read of 10,000 devices under 10 s with bounded
memory. The server runs in its own process (``bench_rd.py --target STORE``), nothing is
pinned. ``--only groups`` runs step 4 alone.
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
from typing import Any

from loadgen import build_loadgen, start_target

BENCH = Path(__file__).resolve().parent


# -- the target: the server with the RD's per-address and total caps raised -----------------


async def serve(store: str) -> None:
    from aiolwm2m import compiled
    from aiolwm2m.rd.config import RdLimits
    from aiolwm2m.server import LwM2MServer, ServerConfig
    from aiolwm2m.server.collector import tune_for_server

    tune_for_server()
    with tempfile.TemporaryDirectory(prefix="aiolwm2m-bench-rd-") as tmp:
        server = LwM2MServer(ServerConfig(
            host="127.0.0.1", port=0, store=store, data_dir=Path(tmp),
            # The load comes from one address: lift the per-address cap and the total;
            # and let step 3's scans run (CoAP lookups are refused past 10,000 by default).
            rd_limits=RdLimits(max_registrations=10_000_000,
                               max_registrations_per_address=0,
                               max_lookup_scan=10_000_000)))
        await server.start()
        core = "compiled (mypyc)" if compiled.in_use() else "plain Python"
        print(f"ready {server.port} request path: {core}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()


# -- the group target: a server that runs group reads on command ---------------------------


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _sampled(work: Any) -> tuple[Any, float, int, int]:
    """(result, seconds, RSS before, peak RSS during) of awaiting ``work``."""
    before = peak = _rss_kib()
    started = time.perf_counter()
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait([task], timeout=0.05)
        peak = max(peak, _rss_kib())
    return task.result(), time.perf_counter() - started, before, peak


async def serve_groups(store: str) -> None:
    """Answers lines on stdin: ``count`` (registrations), ``group N CONCURRENCY`` (a group
    read of every gsim-* device) and ``gather`` (the same reads at once, no group)."""
    from aiolwm2m.server import LwM2MServer, ServerConfig
    from aiolwm2m.server.collector import tune_for_server

    tune_for_server()
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="aiolwm2m-bench-groups-") as tmp:
        server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store=store,
                                          data_dir=Path(tmp)))
        await server.start()
        print(f"ready {server.port}", flush=True)
        try:
            while True:
                line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
                if not line:
                    return
                if line[0] == "count":
                    print(json.dumps({"registered": len(server.registrations)}), flush=True)
                elif line[0] == "group":
                    await server.groups.put("bench", filter="ep=gsim-*")
                    run = server.groups.read("bench", "/3/0/2", concurrency=int(line[2]),
                                             timeout=30)
                    _, seconds, before, peak = await _sampled(run.wait())
                    print(json.dumps({"members": len(run.members), "seconds": seconds,
                                      "summary": run.summary(), "rss_before_kib": before,
                                      "rss_peak_kib": peak}), flush=True)
                    server.groups.runs.clear()  # as if it had aged out of kept_runs
                elif line[0] == "gather":
                    names = [n for n in server.registrations if n.startswith("gsim-")]
                    reads = asyncio.gather(*(server.read(n, "/3/0/2", timeout=30)
                                             for n in names), return_exceptions=True)
                    answers, seconds, before, peak = await _sampled(reads)
                    ok = sum(1 for a in answers if getattr(a, "success", False))
                    print(json.dumps({"members": len(names), "seconds": seconds, "ok": ok,
                                      "rss_before_kib": before, "rss_peak_kib": peak}),
                          flush=True)
        finally:
            await server.stop()


def group_fanout(store: str, loop: str, devices: int, concurrency: int, rate: float
                 ) -> dict[str, dict[str, Any]]:
    target_args = ["bench/bench_rd.py", "--group-target", store] + (
        ["--uvloop"] if loop == "uvloop" else [])
    proc = subprocess.Popen([sys.executable, *target_args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=BENCH.parent)
    assert proc.stdin is not None and proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])

    def ask(command: str) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        out: dict[str, Any] = json.loads(proc.stdout.readline())
        return out

    sim = subprocess.Popen(
        [sys.executable, "-m", "aiolwm2m", "simulate", "--count", str(devices), "--server",
         f"coap://127.0.0.1:{port}", "--rate", str(rate), "--prefix", "gsim-",
         "--send-interval", "86400", "--lifetime", "86400", "--progress", "none",
         "--no-deregister"], stdout=subprocess.DEVNULL, cwd=BENCH.parent)
    try:
        deadline = time.monotonic() + devices / rate + 120
        while ask("count")["registered"] < devices:
            if time.monotonic() > deadline:
                sys.exit("bench: the simulated devices did not all register")
            time.sleep(1.0)
        # The group first: its RSS growth is then not hidden by the heap the unbounded
        # baseline grew.
        results = {"group": ask(f"group 0 {concurrency}"), "gather": ask("gather")}
        results["group-again"] = ask(f"group 0 {concurrency}")
        return results
    finally:
        sim.terminate()
        sim.wait(30)
        proc.stdin.close()
        proc.wait(30)


def print_fanout(results: dict[str, dict[str, Any]], devices: int, concurrency: int) -> None:
    base = results["gather"]
    print(f"{'fan-out':>12} {'members':>8} {'s':>7} {'ok':>7} {'RSS growth MiB':>15}")
    for name in ("group", "gather", "group-again"):
        r = results[name]
        ok = r.get("ok", r.get("summary", {}).get("ok", 0))
        growth = (r["rss_peak_kib"] - r["rss_before_kib"]) / 1024
        print(f"{name:>12} {r['members']:>8,} {r['seconds']:>7.2f} {ok:>7,} {growth:>15.1f}")
    best = min(results["group"]["seconds"], results["group-again"]["seconds"])
    print(f"(group read of {devices:,} simulated devices, {concurrency} at a time: "
          f"{best:.2f} s, {best / base['seconds']:.2f}x the unbounded gather baseline; "
          "target: under 10 s, memory bounded)")


# -- the driver -----------------------------------------------------------------------------


def fields(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split())


def register(port: int, n: int, mode: str, conns: int, inflight: int
             ) -> tuple[dict[str, str], dict[str, str]]:
    exe = build_loadgen("rd_loadgen")
    args = [str(exe), "127.0.0.1", str(port), str(n), str(conns), str(inflight)]
    proc = subprocess.Popen(args + (["rd"] if mode == "rd" else []), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    reg = fields(proc.stdout.readline())
    assert proc.stdout.readline().strip() == "registered"
    proc.stdin.write("go\n")
    proc.stdin.flush()
    upd = fields(proc.stdout.readline())
    proc.wait()
    return reg, upd


def lookups(port: int, mode: str, n: int, seconds: float, conns: int, inflight: int
            ) -> dict[str, str]:
    exe = build_loadgen("rd_lookup_loadgen")
    out = subprocess.run([str(exe), "127.0.0.1", str(port), str(seconds), str(conns),
                          str(inflight), mode, str(n), "1"],
                         capture_output=True, text=True, check=True).stdout
    return fields(out)


async def scans(port: int, count: int) -> list[float]:
    """Milliseconds of lookups by an attribute no index holds, one at a time."""
    from aiolwm2m.coap.codes import Code
    from aiolwm2m.coap.message import Message
    from aiolwm2m.transport.site import Site
    from aiolwm2m.transport.udp import UdpEndpoint

    ep = await UdpEndpoint.create("127.0.0.1", 0, site=Site())
    out = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            answer = await ep.request(Message.request(Code.GET, "rd-lookup/ep",
                                                      query=["site=nowhere"]),
                                      ("127.0.0.1", port), timeout=60)
            out.append((time.perf_counter() - started) * 1000)
            assert answer.code == Code.CONTENT and answer.payload == b""
    finally:
        await ep.close()
    return out


def line(what: str, r: dict[str, str]) -> str:
    return (f"{float(r['rate']):>9,.0f}/s  p50 {int(r['p50_us']) / 1000:6.1f} ms  "
            f"p99 {int(r['p99_us']) / 1000:6.1f} ms  failed {r['failed']}  ({what})")


def main() -> None:
    for flag, target in (("--target", serve), ("--group-target", serve_groups)):
        if flag in sys.argv:
            store = sys.argv[sys.argv.index(flag) + 1]
            if "--uvloop" in sys.argv:
                import uvloop

                uvloop.run(target(store))
            else:
                asyncio.run(target(store))
            return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", type=int, default=100_000)
    ap.add_argument("--store", default="sqlite", choices=["sqlite", "memory"])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--inflight", type=int, default=1024)
    ap.add_argument("--lookup-conns", type=int, default=16)
    ap.add_argument("--lookup-inflight", type=int, default=4, help="per socket")
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--group-devices", type=int, default=10_000)
    ap.add_argument("--group-concurrency", type=int, default=64)
    ap.add_argument("--group-rate", type=float, default=2000.0,
                    help="simulated devices started per second")
    ap.add_argument("--only", choices=["all", "groups"], default="all")
    args = ap.parse_args()
    if args.only == "groups":
        print(f"-- group read fanned out to {args.group_devices:,} simulated devices ...",
              flush=True)
        fanout = group_fanout(args.store, args.loop, args.group_devices,
                              args.group_concurrency, args.group_rate)
        print_fanout(fanout, args.group_devices, args.group_concurrency)
        return
    n = args.endpoints
    target_args = ["bench/bench_rd.py", "--target", args.store] + (
        ["--uvloop"] if args.loop == "uvloop" else [])

    print(f"-- baseline: {n:,} LwM2M registrations ({args.store}, {args.loop}) ...", flush=True)
    target = start_target(target_args, core=None)
    try:
        print(f"   server: {target.detail}", flush=True)
        lw_reg, lw_upd = register(target.port, n, "lwm2m", args.conns, args.inflight)
    finally:
        target.stop()
    print("   register " + line("LwM2M", lw_reg))
    print("   update   " + line("LwM2M", lw_upd), flush=True)

    print(f"-- {n:,} generic RD registrations, five links each ...", flush=True)
    target = start_target(target_args, core=None)
    try:
        time.sleep(0.5)
        rss_before = target.rss_kib()
        rd_reg, rd_upd = register(target.port, n, "rd", args.conns, args.inflight)
        time.sleep(1.0)
        rss_after = target.rss_kib()
        print("   register " + line("RD", rd_reg))
        print("   update   " + line("RD", rd_upd))
        per_kib = (rss_after - rss_before) / max(1, int(rd_reg["n"]))
        print(f"   server RSS {rss_before / 1024:.0f} MiB -> {rss_after / 1024:.0f} MiB: "
              f"{per_kib:.2f} KiB per registration", flush=True)

        results: dict[str, dict[str, str]] = {}
        for mode, what in (("wkc", "baseline: GET /.well-known/core?rt=core.rd-lookup-ep"),
                           ("ep", "GET /rd-lookup/ep?ep=<random>"),
                           ("res", "GET /rd-lookup/res?ep=<random>"),
                           ("and", "GET /rd-lookup/res?d=bench&rt=light&ep=<random>")):
            print(f"-- {what}, {args.seconds:g} s ...", flush=True)
            r = results[mode] = lookups(target.port, mode, n, args.seconds,
                                        args.lookup_conns, args.lookup_inflight)
            print(f"   {float(r['rps']):,.0f}/s  p50 {int(r['p50_us']) / 1000:.2f} ms  "
                  f"p99 {int(r['p99_us']) / 1000:.2f} ms  lost {r['lost']}  errors "
                  f"{r['errors']}  {r['bytes']} bytes/answer", flush=True)
        print("-- lookups by an attribute no index holds (a scan), one at a time ...",
              flush=True)
        scanned = asyncio.run(scans(target.port, 5))
        print(f"   {', '.join(f'{ms:.0f}' for ms in scanned)} ms", flush=True)
    finally:
        target.stop()

    print(f"-- group read fanned out to {args.group_devices:,} simulated devices ...",
          flush=True)
    fanout = group_fanout(args.store, args.loop, args.group_devices, args.group_concurrency,
                          args.group_rate)

    base = float(results["wkc"]["rps"])
    print()
    print(f"registrations/s, {n:,} endpoints, {args.store}: RD {float(rd_reg['rate']):,.0f} "
          f"vs LwM2M {float(lw_reg['rate']):,.0f} (ratio "
          f"{float(rd_reg['rate']) / float(lw_reg['rate']):.2f}); updates RD "
          f"{float(rd_upd['rate']):,.0f} vs LwM2M {float(lw_upd['rate']):,.0f}")
    print(f"{'lookup':>8} {'per s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for mode in ("wkc", "ep", "res", "and"):
        r = results[mode]
        print(f"{mode:>8} {float(r['rps']):>9,.0f} {float(r['rps']) / base:>6.2f} "
              f"{int(r['p50_us']) / 1000:>7.2f} {int(r['p99_us']) / 1000:>7.2f}")
    print(f"(baseline: /.well-known/core on the same server, {base:,.0f}/s; unindexed scan "
          f"of {n:,} registrations: {min(scanned):.0f} ms; targets: RD registrations as fast "
          "as LwM2M's (>= 30,000/s durable), >= 5,000 indexed lookups/s, p99 < 20 ms)")
    print_fanout(fanout, args.group_devices, args.group_concurrency)


if __name__ == "__main__":
    main()
