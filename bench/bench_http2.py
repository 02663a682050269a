"""LwM2M over HTTP/2 against CoAP over TCP, same run: Read round trips per second, h2load
registrations per second, and the server's memory per idle HTTP/2 device.

    .venv/bin/python bench/bench_http2.py [--seconds 5] [--rounds 3] [--devices 16]
                                          [--concurrency 4] [--h2load 20000] [--idle 10000]

1. Reads: one server process (core 0) serves coap+tcp:// and http2://; one device process
   (core 1) runs ``--devices`` of our LwM2MClient registered over one transport; the server
   keeps ``--concurrency`` Reads of /3/0/0 in flight per device for ``--seconds`` and counts
   the answers. Each round measures CoAP/TCP, HTTP/2 (answers on the answer stream) and
   HTTP/2 with a POST per answer (the fallback) in interleaved slices of a second (a fleet
   of devices each, all connected throughout); the medians, the median of the rounds'
   ratios HTTP/2 / CoAP-TCP (target >= 0.5) and the CPU per Read of the server and of the
   devices are printed (on a shared, loaded machine the CPU figures are the steadier).
2. Registrations: ``h2load`` (Debian nghttp2-client) sends ``--h2load`` Registers, each with
   its own endpoint name, over 8 connections with 32 streams each (8 h2load processes), to
   a server with the durable SQLite store (every 201 waits for its group commit).
3. Memory: a holder process opens ``--idle`` h2c connections (each from its own 127.x.y.z),
   registers a device on each and opens its downlink and answer streams, then goes quiet;
   the server's RSS growth divided by the count is the cost of one idle HTTP/2 device
   (target < 16 KiB).

Roles (used by the orchestration above, each in its own process): ``--role server``,
``--role devices``, ``--role holder``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_loop(main: object) -> None:
    try:
        import uvloop

        uvloop.run(main)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]


# -- roles ----------------------------------------------------------------------------------


async def server_role(store: str, tcp: bool) -> None:
    from aiolwm2m.http2.limits import Http2Limits
    from aiolwm2m.server import LwM2MServer, ServerConfig
    from aiolwm2m.server.collector import tune_for_server
    from aiolwm2m.transport.stream_limits import StreamLimits

    raise_files()
    tune_for_server()
    limits = StreamLimits(max_connections=30_000, max_connections_per_address=None)
    with tempfile.TemporaryDirectory(prefix="aiolwm2m-bench-") as tmp:
        server = LwM2MServer(ServerConfig(
            host="127.0.0.1", port=0, tcp_port=0 if tcp else None, http2_port=0, store=store,
            data_dir=Path(tmp), tcp_limits=limits, http2_limits=Http2Limits()))
        await server.start()
        tcp_port = server.port_of("tcp") if tcp else 0
        print(f"ready {server.port_of('http2')} tcp={tcp_port}", flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().split()
            if not line or line[0] == "quit":
                break
            if line[0] == "count":
                print(f"count {len(server.registrations)}", flush=True)
            elif line[0] == "read":
                prefix, seconds, concurrency = line[1], float(line[2]), int(line[3])
                done = await read_load(server, prefix, seconds, concurrency)
                print(f"result {done}", flush=True)
        await server.stop()


async def read_load(server: object, prefix: str, seconds: float, concurrency: int) -> int:
    names = [n for n in server.registrations if n.startswith(prefix)]  # type: ignore[attr-defined]
    count = 0
    stop_at = time.monotonic() + seconds

    async def worker(name: str) -> None:
        nonlocal count
        while time.monotonic() < stop_at:
            resp = await server.read(name, "/3/0/0", timeout=10)  # type: ignore[attr-defined]
            if resp.code == 0x45:
                count += 1

    await asyncio.gather(*(worker(n) for n in names for _ in range(concurrency)))
    return count


async def devices_role(uri: str, prefix: str, count: int, post_answers: bool) -> None:
    from aiolwm2m.client import ClientConfig, LwM2MClient
    from aiolwm2m.http2.client_endpoint import Http2ClientEndpoint

    raise_files()
    if post_answers:
        Http2ClientEndpoint.use_answer_stream = False
    clients = [LwM2MClient(ClientConfig.development(f"{prefix}{i:05d}", uri, host="127.0.0.1",
                                                    lifetime=3600)) for i in range(count)]
    for client in clients:
        await client.start()
    for client in clients:
        await client.wait_registered(30)
    await asyncio.sleep(0.5)  # HTTP/2 devices open their downlink stream after the 201
    print("ready 0", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for client in clients:
        await client.stop(deregister=False)


async def holder_role(port: int, count: int) -> None:
    """Idle HTTP/2 devices: register, open the downlink and answer streams, then hold the
    socket only (the h2 state is dropped: the server sends nothing to an idle device)."""
    import h2.config
    import h2.connection
    import h2.events

    raise_files()
    sockets: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(200)
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        n = i + 1
        local = f"127.{1 + (n >> 16)}.{(n >> 8) & 0xFF}.{n & 0xFF}"
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                               local_addr=(local, 0))
                conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
                conn.initiate_connection()
                conn.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                                      (":authority", "bench"),
                                      (":path", f"/rd?ep=idle-{i:06d}&lt=86400&b=H"),
                                      ("content-type", "application/link-format")])
                conn.send_data(1, b"</1/0>,</3/0>", end_stream=True)
                writer.write(conn.data_to_send())
                location = ""
                downlink_ok = False
                opened = 0
                while not downlink_ok:
                    data = await asyncio.wait_for(reader.read(65536), 30)
                    if not data:
                        raise ConnectionError("closed")
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.ResponseReceived):
                            headers = dict(event.headers)
                            if event.stream_id == 1:
                                location = headers[b"location"].decode()
                                conn.send_headers(3, [(":method", "GET"), (":scheme", "http"),
                                                      (":authority", "bench"),
                                                      (":path", f"{location}/requests")],
                                                  end_stream=True)
                                # The answer stream, held open as our client holds it.
                                conn.send_headers(5, [(":method", "POST"), (":scheme", "http"),
                                                      (":authority", "bench"),
                                                      (":path", f"{location}/responses"),
                                                      ("content-type", "application/cbor-seq")])
                            elif headers[b":status"] == b"200":
                                opened += 1
                                downlink_ok = opened == 2
                    writer.write(conn.data_to_send())
                await writer.drain()
                sockets.append(writer)
            except (TimeoutError, OSError, KeyError):
                failures += 1

    await asyncio.gather(*(one(i) for i in range(count)))
    print(f"ready {len(sockets)} failed={failures}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for writer in sockets:
        writer.transport.abort()


# -- orchestration ----------------------------------------------------------------------------


def spawn(args: list[str], core: int | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    if core is not None and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        cmd = ["taskset", "-c", str(core), *cmd]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=BENCH.parent)


def ready(proc: subprocess.Popen[str], timeout: float = 120.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ready"):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    sys.exit(f"bench: {proc.args} did not get ready")


def ask(proc: subprocess.Popen[str], command: str, answer: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    while True:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"bench: {proc.args} ended while asked {command!r}")
        if line.startswith(answer):
            return line.split(None, 1)[1].strip()


def stop(proc: subprocess.Popen[str]) -> None:
    try:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def reads(args: argparse.Namespace) -> None:
    print(f"1. Read round trips: {args.devices} devices, {args.concurrency} Reads in flight "
          f"each, {args.seconds:g} s per measurement, {args.rounds} rounds", flush=True)
    server = spawn(["--role", "server", "--store", "memory", "--tcp"], 0)
    line = ready(server)
    http2_port = int(line.split()[1])
    tcp_port = int(re.search(r"tcp=(\d+)", line).group(1))  # type: ignore[union-attr]
    # name -> (device URI, name prefix, extra device arguments)
    setups = {"coap+tcp": (f"coap+tcp://127.0.0.1:{tcp_port}", "tcp-", []),
              "http2": (f"http2://127.0.0.1:{http2_port}", "h2-", []),
              "h2-posts": (f"http2://127.0.0.1:{http2_port}", "h2p-", ["--post-answers"])}
    results: dict[str, list[float]] = {name: [] for name in setups}
    cpu: dict[str, list[float]] = {name: [] for name in setups}
    both: dict[str, list[float]] = {name: [] for name in setups}  # server + devices
    fleets: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, (uri, prefix, extra) in setups.items():
            fleets[name] = spawn(["--role", "devices", "--uri", uri, "--prefix", prefix,
                                  "--count", str(args.devices), *extra], 1)
            ready(fleets[name])
            ask(server, f"read {prefix} 1 {args.concurrency}", "result")  # warm-up
        # Each round interleaves the setups in slices of at most a second, so that the
        # machine's changing load (it is shared) falls on all of them alike, and each
        # round's ratios compare like with like.
        slices = max(1, round(args.seconds))
        for _ in range(args.rounds):
            done = dict.fromkeys(setups, 0)
            wall = dict.fromkeys(setups, 0.0)
            server_cpu = dict.fromkeys(setups, 0.0)
            device_cpu = dict.fromkeys(setups, 0.0)
            for _slice in range(slices):
                for name, (_uri, prefix, _extra) in setups.items():
                    devices = fleets[name]
                    cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
                    dev0 = cpu_seconds(devices.pid)
                    done[name] += int(ask(
                        server, f"read {prefix} {args.seconds / slices} {args.concurrency}",
                        "result"))
                    wall[name] += time.monotonic() - wall0
                    server_cpu[name] += cpu_seconds(server.pid) - cpu0
                    device_cpu[name] += cpu_seconds(devices.pid) - dev0
            for name in setups:
                results[name].append(done[name] / wall[name])
                cpu[name].append(1e6 * server_cpu[name] / max(1, done[name]))
                both[name].append(1e6 * (server_cpu[name] + device_cpu[name])
                                  / max(1, done[name]))
                print(f"   {name:<9} {results[name][-1]:10,.0f} Reads/s   server CPU "
                      f"{cpu[name][-1]:.0f} us/Read, devices' CPU "
                      f"{both[name][-1] - cpu[name][-1]:.0f} us/Read", flush=True)
            tcp = results["coap+tcp"][-1]
            print(f"   round ratios to CoAP/TCP: HTTP/2 {results['http2'][-1] / tcp:.2f}, "
                  f"HTTP/2 with per-answer POSTs {results['h2-posts'][-1] / tcp:.2f}",
                  flush=True)
    finally:
        for devices in fleets.values():
            stop(devices)
        stop(server)
    med = {name: statistics.median(values) for name, values in results.items()}
    ratios = {name: statistics.median(h / t for h, t in zip(
        results[name], results["coap+tcp"], strict=True)) for name in ("http2", "h2-posts")}
    cpu_med = {name: statistics.median(values) for name, values in cpu.items()}
    both_med = {name: statistics.median(values) for name, values in both.items()}
    print(f"   median: CoAP/TCP {med['coap+tcp']:,.0f} Reads/s, HTTP/2 {med['http2']:,.0f} "
          f"Reads/s (per-answer POSTs {med['h2-posts']:,.0f}); median of the rounds' "
          f"ratios HTTP/2 / CoAP-TCP = {ratios['http2']:.2f} (target >= 0.5; per-answer "
          f"POSTs {ratios['h2-posts']:.2f})", flush=True)
    print(f"   CPU per Read, server: CoAP/TCP {cpu_med['coap+tcp']:.0f} us, HTTP/2 "
          f"{cpu_med['http2']:.0f} us (POSTs {cpu_med['h2-posts']:.0f} us); server and "
          f"devices: {both_med['coap+tcp']:.0f} / {both_med['http2']:.0f} / "
          f"{both_med['h2-posts']:.0f} us, so CPU-bound Reads/s HTTP/2 / CoAP-TCP = "
          f"{both_med['coap+tcp'] / both_med['http2']:.2f} (POSTs "
          f"{both_med['coap+tcp'] / both_med['h2-posts']:.2f})", flush=True)


def registrations(args: argparse.Namespace) -> None:
    h2load = shutil.which("h2load")
    if h2load is None:
        print("2. Registrations: h2load not installed (Debian nghttp2-client); skipped")
        return
    # h2load's clients each go through its URI list from the start: to give every Register
    # its own endpoint name, each of the processes gets a slice and one connection.
    procs, streams = 8, 32
    print(f"2. Registrations with h2load: {args.h2load} Registers (distinct endpoints), "
          f"{procs} connections x {streams} streams, {args.h2load_store} store", flush=True)
    server = spawn(["--role", "server", "--store", args.h2load_store], 0)
    port = int(ready(server).split()[1])
    share = args.h2load // procs
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body"
        body.write_bytes(b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</3303/0>')
        runs = []
        for p in range(procs):
            uris = Path(tmp) / f"uris-{p}"
            uris.write_text("".join(
                f"http://127.0.0.1:{port}/rd?ep=h2load-{p}-{i:07d}&lt=86400&lwm2m=1.1&b=H\n"
                for i in range(share)))
            cmd = [h2load, "-n", str(share), "-c", "1", "-m", str(streams), "-i", str(uris),
                   "-d", str(body), "-H", "content-type: application/link-format"]
            if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
                cmd = ["taskset", "-c", "1", *cmd]
            runs.append(cmd)
        started = time.monotonic()
        outs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for cmd in runs]
        texts = [proc.communicate(timeout=600)[0] for proc in outs]
        elapsed = time.monotonic() - started
    registered = int(ask(server, "count", "count"))
    stop(server)
    counts = [0, 0, 0, 0]
    for out in texts:
        found = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        if found is None:
            print("   h2load said:\n" + out)
            return
        counts = [c + int(v) for c, v in zip(counts, found.groups(), strict=True)]
    print(f"   {counts[0] / elapsed:,.0f} registrations/s ({counts[0]} answered 2xx, "
          f"{counts[2]} 4xx, {counts[3]} 5xx in {elapsed:.1f} s; {registered} registrations "
          f"held by the server)", flush=True)


def memory(args: argparse.Namespace) -> None:
    print(f"3. Memory: {args.idle} idle HTTP/2 devices (registered, downlink and answer "
          "streams open)",
          flush=True)
    server = spawn(["--role", "server", "--store", "memory"], 0)
    port = int(ready(server).split()[1])
    try:
        warm = spawn(["--role", "holder", "--port", str(port), "--count", "500"], 1)
        ready(warm)
        stop(warm)
        time.sleep(2.0)
        before = rss_kib(server.pid)
        holder = spawn(["--role", "holder", "--port", str(port), "--count", str(args.idle)],
                       1)
        line = ready(holder, 600)
        time.sleep(2.0)
        after = rss_kib(server.pid)
        held = int(line.split()[1])
        stop(holder)
    finally:
        stop(server)
    per = (after - before) * 1024 / max(1, held)
    print(f"   {held} devices held ({line}); server RSS {before / 1024:.1f} MiB -> "
          f"{after / 1024:.1f} MiB: {per / 1024:.1f} KiB per idle device (target < 16 KiB)",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", choices=["server", "devices", "holder"])
    ap.add_argument("--store", default="memory")
    ap.add_argument("--tcp", action="store_true", help="server role: serve coap+tcp too")
    ap.add_argument("--uri")
    ap.add_argument("--prefix", default="dev-")
    ap.add_argument("--port", type=int)
    ap.add_argument("--post-answers", action="store_true",
                    help="devices role: answer with a POST each, not on an answer stream")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--devices", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--h2load", type=int, default=20000)
    ap.add_argument("--h2load-store", choices=["sqlite", "memory"], default="sqlite",
                    help="the server's store for the registrations (sqlite: durable)")
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--only", choices=["reads", "h2load", "memory"],
                    help="run one of the three measurements")
    args = ap.parse_args()
    if args.role == "server":
        run_loop(server_role(args.store, args.tcp))
        return
    if args.role == "devices":
        run_loop(devices_role(args.uri, args.prefix, args.count, args.post_answers))
        return
    if args.role == "holder":
        run_loop(holder_role(args.port, args.count))
        return
    started = time.monotonic()
    if args.only in (None, "reads"):
        reads(args)
    if args.only in (None, "h2load"):
        registrations(args)
    if args.idle and args.only in (None, "memory"):
        memory(args)
    print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
