"""CoAP GET over UDP: the aiolwm2m server against a bare asyncio UDP responder, same run.

    .venv/bin/python bench/bench_coap_udp.py [--seconds 10] [--memory-seconds 60]

A C load generator (built on first use) keeps 64 requests in flight from 64 source ports,
each request with a fresh message ID and token. Prints requests/s for (a) the bare
responder and (b) the aiolwm2m server, the ratio b/a, latency percentiles, and the server's
RSS over a longer run to show that memory stays flat.
"""

from __future__ import annotations

import argparse
import threading
import time

from loadgen import LoadResult, run_load, start_target


def measure(name: str, args: list[str], seconds: float, conns: int, inflight: int,
            path: str) -> tuple[LoadResult, list[int]]:
    print(f"-- {name}: {seconds:g}s, {conns} sockets x {inflight} in flight ...", flush=True)
    target = start_target(args)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(target.rss_kib())

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        result = run_load(target.port, seconds, conns, inflight, path)
    finally:
        stop.set()
        t.join()
        target.stop()
    print(f"   {result.rps:,.0f} requests/s, p50 {result.p50_us} us, p99 {result.p99_us} us, "
          f"lost {result.lost}", flush=True)
    return result, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--memory-seconds", type=float, default=60.0,
                    help="length of the memory-flatness run (0 to skip)")
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--inflight", type=int, default=1)
    args = ap.parse_args()
    started = time.monotonic()
    bare, _ = measure("bare asyncio UDP responder", ["bench/bare_udp_responder.py"],
                      args.seconds, args.conns, args.inflight, "/hello")
    ours, _ = measure("aiolwm2m CoAP server", ["bench/coap_get_server.py"], args.seconds,
                      args.conns, args.inflight, "/hello")
    print()
    print(f"bare UDP responder : {bare.rps:12,.0f} requests/s")
    print(f"aiolwm2m server    : {ours.rps:12,.0f} requests/s   (p50 {ours.p50_us} us, "
          f"p99 {ours.p99_us} us)")
    print(f"ratio b/a          : {ours.rps / bare.rps:12.2f}   (target >= 0.35)")
    if args.memory_seconds > 0:
        run, rss = measure("aiolwm2m memory run", ["bench/coap_get_server.py"],
                           args.memory_seconds, args.conns, args.inflight, "/hello")
        if len(rss) >= 25:
            # The bounded caches (deduplication, block-wise) fill within the first seconds;
            # after that the RSS must not move.
            warm = rss[20]
            print(f"server RSS over {args.memory_seconds:g}s at {run.rps:,.0f} req/s "
                  f"({run.requests:,} requests): at 20s {warm / 1024:.1f} MiB, "
                  f"end {rss[-1] / 1024:.1f} MiB (growth after warm-up "
                  f"{(rss[-1] - warm) / 1024:+.1f} MiB), max {max(rss) / 1024:.1f} MiB")
    print(f"(total {time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
