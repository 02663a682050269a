"""Memory in Redis per registered device (target: under 1 KiB).

    .venv/bin/python bench/bench_redis_memory.py [--count 100000] [--url redis://HOST:PORT]
                                                 [--rd]

Without ``--url`` it starts a redis-server of its own (Debian's package) on a free port in a
temporary directory, so the figure is that of the registrations alone. Registrations are made
as the server makes them (the Register payload and query of a typical device parsed by the
server's own parser, ids from its generator) and written through ``RedisStores`` exactly as
the Register path writes them: row + expiry bucket in one script, the id index beside it.
``used_memory`` from ``INFO memory`` is read before and after; the difference divided by the
count is the cost per device, slot buckets' share included. Nothing is timed.

With ``--rd`` the records are Resource Directory registrations instead (RFC 9176, the five
links of ``bench/rd_loadgen.c``'s generic mode, parsed by the RD's own parser, ids from its
generator), written through the RD's Redis store as its Register path writes them: the row
and its slot's expiry bucket in one script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiolwm2m.server.registration_params import parse_register
from aiolwm2m.server.registry import RegistrationIds
from aiolwm2m.store.records import Registration, registration_to_json
from aiolwm2m.store.redis_stores import RedisStores

#: What a typical constrained device registers with (Security, Server, Device, Connectivity
#: Monitoring, Firmware Update, Location, a temperature sensor), as in bench/rd_loadgen.c.
PAYLOAD = (b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</4/0>,</5/0>,</6/0>,</3303/0>,'
           b'</3303/1>')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server not found (apt install redis-server, or pass --url)")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir",
                             str(directory), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


def registration(new_id: RegistrationIds, i: int, now: float) -> Registration:
    endpoint = f"urn:imei:35{i:013d}"
    params = parse_register([f"ep={endpoint}", "lt=86400", "lwm2m=1.1", "b=U", "Q"], PAYLOAD,
                            40, accepted_versions=frozenset({"1.0", "1.1"}),
                            default_lifetime=86400)
    links = params.object_links
    return Registration(
        id=new_id(), endpoint=endpoint, address=("2001:db8::1", 40000 + i % 20000),
        lifetime=params.lifetime, lwm2m_version=params.lwm2m_version, binding=params.binding,
        queue_mode=params.queue_mode, sms=params.sms, transport="udp", identity=None,
        links=links.links, objects=links.objects, root_path=links.root_path,
        content_formats=links.content_formats, registered_at=now, updated_at=now,
        extra=params.extra)


async def used_memory(client: Any) -> int:
    return int((await client.info("memory"))["used_memory"])


async def measure(url: str, count: int) -> None:
    stores = await RedisStores.open(url)
    client = stores.writer.client
    try:
        before = await used_memory(client)
        new_id = RegistrationIds()
        now = time.time()
        sample = registration(new_id, 0, now)
        for start in range(0, count, 5000):
            commit = None
            for i in range(start, min(count, start + 5000)):
                _, commit = stores.registrations.add_nowait(registration(new_id, i, now))
            if commit is not None:
                await commit
        after = await used_memory(client)
        row_key, expiry_key = stores.keys.registration_keys(sample.endpoint)
        row_usage = await client.memory_usage(row_key)
        print(f"{count:,} registrations: used_memory {before / 2**20:.1f} MiB -> "
              f"{after / 2**20:.1f} MiB")
        print(f"  per registered device: {(after - before) / count:,.0f} bytes "
              f"(target < 1024)")
        print(f"  of which the row key (MEMORY USAGE): {row_usage} bytes; its JSON is "
              f"{len(registration_to_json(sample))} bytes")
        print(f"  expiry bucket of its slot: {await client.zcard(expiry_key)} members, "
              f"{await client.memory_usage(expiry_key)} bytes")
    finally:
        await stores.close()


RD_LINKS = (b'</s/0>;rt="temperature";if="core.s",</s/1>;rt="humidity";if="core.s",'
            b'</s/2>;rt="pressure",</a/0>;rt="light";if="core.a",</cfg>;ct=40')


async def measure_rd(url: str, count: int) -> None:
    from aiolwm2m.rd.links import parse_links
    from aiolwm2m.rd.service import RdIds
    from aiolwm2m.rd.uri import base_from_address
    from aiolwm2m.store.rd_records import RdRegistration, rd_registration_row
    from aiolwm2m.store.redis_rd import RedisRdStore
    from aiolwm2m.store.redis_records import rd_expiry_key, rd_key

    stores = await RedisStores.open(url)
    client = stores.writer.client
    try:
        rd = await RedisRdStore.open(stores.writer, stores.keys)
        before = await used_memory(client)
        new_id = RdIds()
        now = time.time()
        links = parse_links(RD_LINKS, 40, max_links=64, max_bytes=4096)

        def make(i: int) -> RdRegistration:
            address = ("2001:db8::1", 40000 + i % 20000)
            return RdRegistration(
                id=new_id(), endpoint=f"bench-{i}", sector="bench", lifetime=86400,
                base=base_from_address("udp", address), links=links, address=address,
                registered_at=now, updated_at=now, sequence=i + 1)

        sample = make(0)
        for start in range(0, count, 5000):
            commit = None
            for i in range(start, min(count, start + 5000)):
                commit = rd.put_nowait(sample if i == 0 else make(i))
            if commit is not None:
                await commit
        after = await used_memory(client)
        row = rd_key(stores.keys, sample.id)
        print(f"{count:,} RD registrations: used_memory {before / 2**20:.1f} MiB -> "
              f"{after / 2**20:.1f} MiB")
        print(f"  per RD registration: {(after - before) / count:,.0f} bytes")
        row_json = json.dumps(rd_registration_row(sample), separators=(",", ":"))
        print(f"  of which the row key (MEMORY USAGE): {await client.memory_usage(row)} "
              f"bytes; its JSON is {len(row_json)} bytes")
        expiry = rd_expiry_key(stores.keys, row)
        print(f"  expiry bucket of its slot: {await client.zcard(expiry)} members, "
              f"{await client.memory_usage(expiry)} bytes")
    finally:
        await stores.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--url", help="an existing Redis (its namespace gets the records)")
    parser.add_argument("--rd", action="store_true",
                        help="Resource Directory registrations instead of LwM2M ones")
    args = parser.parse_args()
    run = measure_rd if args.rd else measure
    if args.url:
        asyncio.run(run(args.url, args.count))
        return
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_redis(Path(tmp))
        try:
            asyncio.run(run(f"redis://127.0.0.1:{port}?namespace=bench", args.count))
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
