"""Benchmark: what a storm of values costs the registrations' durable commits.

    .venv/bin/python bench/bench_values.py [--seconds 8] [--registrations 2000]
        [--values 50000]

The server keeps every value it sees in SQLite (``aiolwm2m/history/sqlite.py``) while its
Register/Update replies wait for their group commit (``synchronous=FULL``). In one process,
as in the server, this drives registrations at a steady rate through the real SQLite
registration store and measures each one's commit latency (submitted to acknowledged),
first alone (the baseline), then with values recorded at ``--values`` per second (16 per
response, as a Read of ``/3/0`` gives) through:

- ``separate``: the product's design, a database file and writer process of their own;
- ``shared``: the same values written through the registrations' own writer, into their
  transactions (what the design avoids).

Printed per case: registration commit p50/p99, registrations and values written per
second, and the CPU time of the event-loop process per registration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiolwm2m.history import sqlite as values_sqlite
from aiolwm2m.history.sqlite import SQLiteValueStore
from aiolwm2m.history.store import Retention
from aiolwm2m.store.records import Registration
from aiolwm2m.store.sqlite import SQLiteStores

TICK = 0.01
VALUES = [(f"/3/0/{rid}", "Integer", rid * 7) for rid in range(16)]


async def run_case(case: str, seconds: float, reg_rate: int, value_rate: int
                   ) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="aiolwm2m-bench-values-") as tmp:
        data = Path(tmp)
        stores = await SQLiteStores.open(data / "aiolwm2m.sqlite3")
        values: SQLiteValueStore | None = None
        if case == "separate":
            values = await SQLiteValueStore.open(data, retention=Retention())
        elif case == "shared":
            # The registrations' writer, given the values' tables too.
            await stores.writer.submit([(sql, ()) for sql in values_sqlite.SCHEMA])
            reader = sqlite3.connect(data / "aiolwm2m.sqlite3")
            values = SQLiteValueStore(data / "aiolwm2m.sqlite3", stores.writer, reader, 0,
                                      Retention(), time.time, 0.05, 100_000)
        latencies: list[float] = []
        loop = asyncio.get_running_loop()
        per_tick_regs = max(1, round(reg_rate * TICK))
        per_tick_calls = round(value_rate * TICK / len(VALUES))
        n = 0
        cpu0 = time.process_time()
        started = loop.time()
        pending: list[asyncio.Future[None]] = []

        def done(fut: asyncio.Future[None], at: float) -> None:
            if not fut.exception():
                latencies.append(loop.time() - at)

        while loop.time() - started < seconds:
            tick = loop.time()
            for _ in range(per_tick_regs):
                n += 1
                reg = Registration(id=f"r{n}", endpoint=f"ep-{n % 5000}",
                                   address=("10.0.0.1", 5683 + n % 5000), lifetime=300,
                                   links="</3/0>,</1/0>,</3303/0>")
                _, commit = stores.registrations.add_nowait(reg)
                if commit is not None:
                    commit.add_done_callback(lambda f, at=tick: done(f, at))
                    pending.append(commit)
            if values is not None:
                for i in range(per_tick_calls):
                    values.record(f"dev-{i}", time.time(), "observe", VALUES)
            await asyncio.sleep(max(0.0, TICK - (loop.time() - tick)))
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = loop.time() - started
        cpu = time.process_time() - cpu0
        written = 0.0
        if values is not None:
            await values.flush()
            written = values.stats.recorded - values.stats.dropped
            if case == "separate":
                await values.close()
        await stores.close()
        lat = sorted(latencies)
        return {"p50_ms": statistics.median(lat) * 1000 if lat else 0.0,
                "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0.0,
                "regs_per_s": len(lat) / elapsed, "values_per_s": written / elapsed,
                "cpu_us_per_reg": cpu / max(1, len(lat)) * 1e6}


async def main(args: argparse.Namespace) -> None:
    # Values the store could not keep up with are counted (values/s shows it), not logged.
    logging.getLogger("aiolwm2m.history").setLevel(logging.ERROR)
    print(f"bench_values: {os.cpu_count()} CPUs, {args.registrations} registrations/s "
          f"(synchronous=FULL), values at {args.values}/s, {args.seconds:g} s per case")
    print(f"  {'case':<36} {'commit p50':>10} {'p99':>9} {'regs/s':>8} "
          f"{'values written/s':>16} {'loop CPU/reg':>13}")
    rows = {}
    for case, label in (("none", "no values (baseline)"),
                        ("separate", "values: own file and writer"),
                        ("shared", "values: in the registrations' writer")):
        r = rows[case] = await run_case(case, args.seconds, args.registrations,
                                        0 if case == "none" else args.values)
        print(f"  {label:<36} {r['p50_ms']:>7.1f} ms {r['p99_ms']:>6.1f} ms "
              f"{r['regs_per_s']:>8,.0f} {r['values_per_s']:>16,.0f} "
              f"{r['cpu_us_per_reg']:>10.0f} us")
    base = rows["none"]["p99_ms"] or 1.0
    separate, shared = rows["separate"]["p99_ms"] / base, rows["shared"]["p99_ms"] / base
    print(f"  registration commit p99 vs baseline: separate x{separate:.2f}, "
          f"shared x{shared:.2f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--registrations", type=int, default=2000)
    p.add_argument("--values", type=int, default=50_000)
    asyncio.run(main(p.parse_args()))
