"""Benchmark: LwM2M over NIDD (the SCEF emulator's T8 API) against plain CoAP over UDP, in
the same run, and 10,000 NIDD devices registered.

    .venv/bin/python bench/bench_nidd.py [--devices 200] [--window 10] [--fleet 10000]

Processes: ``aiolwm2m scef-emulator``, one server (UDP and NIDD, its HTTP server taking
the SCEF's callbacks, a group configuration for the simulated devices, uvloop when
installed) and ``aiolwm2m simulate`` fleets, each in its own process.

* Downlink-initiated: the server reads ``/3/0/0`` from ``--devices`` registered devices,
  ``--concurrency`` at a time, for ``--window`` seconds: reads per second, each one MT
  delivery (T8 POST) and one MO notification (T8 callback) over NIDD, or one datagram each
  way over UDP.
* Uplink-initiated: ``--concurrency`` devices driven from this process register, then each
  Sends (CON POST /dp) as soon as its previous Send was answered, for ``--window``
  seconds: Sends per second (each one MO notification and one MT delivery of its 2.04
  over NIDD, a datagram each way over UDP). Closed loops both ways: an offered load above
  what the path carries would only measure its queues.
* Fleet: ``--fleet`` devices register over NIDD through one group configuration; the time
  it took and the server's memory per registered NIDD device (RSS growth / devices).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent
GROUP = "bench@nidd.example"

SERVER = r"""
import asyncio, json, sys, time
from aiolwm2m.lwm2m.operations import ReadRequest
from aiolwm2m.nidd.devices import NiddGroup
from aiolwm2m.nidd.settings import NiddSettings
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import SendReceived
from aiolwm2m.simulator.stats import rss_bytes
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

async def reads(srv, prefix, concurrency, seconds):
    eps = [ep for ep in srv.registrations if ep.startswith(prefix)]
    done = failed = 0
    end = time.monotonic() + seconds
    async def worker(i):
        nonlocal done, failed
        k = i
        while time.monotonic() < end:
            try:
                r = await srv.read(eps[k % len(eps)], "/3/0/0", timeout=30)
                done += r.code == 69
            except Exception:
                failed += 1
            k += concurrency
    t0 = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return {"reads": done, "failed": failed, "seconds": time.monotonic() - t0}

async def main():
    scef, http_port = sys.argv[1], int(sys.argv[2])
    srv = LwM2MServer(ServerConfig(
        host="127.0.0.1", port=0, store="memory", scef_url=scef,
        nidd=NiddSettings(groups=(NiddGroup(sys.argv[3]),),
                          callback_url=f"http://127.0.0.1:{http_port}")))
    web = WebServer(create_app(srv, ["t"]), "127.0.0.1", http_port)
    await web.start()
    await srv.start()
    sends = [0]
    srv.events.subscribe(lambda e: isinstance(e, SendReceived) and sends.__setitem__(
        0, sends[0] + 1))
    print("ready", srv.port, flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        words = (await reader.readline()).decode().split()
        if not words:
            break
        if words[0] == "stats":
            out = {"registrations": len(srv.registrations), "rss": rss_bytes(),
                   "sends": sends[0], "nidd": srv.nidd.status()}
        elif words[0] == "reads":
            out = await reads(srv, words[1], int(words[2]), float(words[3]))
        else:
            out = {"error": words[0]}
        print(json.dumps(out), flush=True)
    await srv.stop()
    await web.stop()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def stop_process(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    if proc.returncode is None:
        proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class ServerProcess:
    def __init__(self, proc: asyncio.subprocess.Process, udp_port: int) -> None:
        self.proc = proc
        self.udp_port = udp_port

    @classmethod
    async def start(cls, scef_url: str, http_port: int) -> ServerProcess:
        proc = await asyncio.create_subprocess_exec(
            PYTHON, "-c", SERVER, scef_url, str(http_port), GROUP, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"server did not start: {line}")
        return cls(proc, int(line[1]))

    async def ask(self, command: str, timeout: float = 600.0) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        result: dict[str, Any] = json.loads(line)
        return result

    async def wait_registered(self, prefix_count: int, timeout: float) -> float:
        start = time.monotonic()
        async with asyncio.timeout(timeout):
            while (await self.ask("stats"))["registrations"] < prefix_count:
                await asyncio.sleep(0.5)
        return time.monotonic() - start


async def fleet(count: int, target: list[str], prefix: str, send_interval: float,
                rate: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PYTHON, "-m", "aiolwm2m", "simulate", "--count", str(count), *target,
        "--prefix", prefix, "--rate", str(rate), "--send-interval", str(send_interval),
        "--lifetime", "3600", "--progress", "none", "--no-deregister", "--seed", "1",
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def measure_reads(server: ServerProcess, label: str, target: list[str],
                        args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"{label}-"
    before = (await server.ask("stats"))["registrations"]
    proc = await fleet(args.devices, target, prefix, 3600.0, 1000.0)
    try:
        took = await server.wait_registered(before + args.devices, 300)
        print(f"  {label}: {args.devices} devices registered in {took:.1f} s", flush=True)
        read = await server.ask(f"reads {prefix} {args.concurrency} {args.window}")
    finally:
        await stop_process(proc, signal.SIGINT)
    reads = read["reads"] / read["seconds"]
    print(f"  {label}: {reads:,.0f} reads/s ({read['failed']} failed)", flush=True)
    return {"reads_per_s": reads, "read_failures": read["failed"]}


class UplinkDriver(asyncio.DatagramProtocol):
    """Devices of our own: each registers, then Sends back to back (closed loop). Over UDP
    a socket each (the server knows a NoSec device by its address); over NIDD one socket
    on the UE link, frames naming the device."""

    def __init__(self, nidd: bool, target: tuple[str, int], prefix: str) -> None:
        self.nidd = nidd
        self.target = target
        self.prefix = prefix
        self.waiting: dict[bytes, asyncio.Future[Any]] = {}
        self.transports: list[asyncio.DatagramTransport] = []
        self.mid = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        from aiolwm2m.coap.codec import decode_udp
        from aiolwm2m.coap.codes import MessageType
        from aiolwm2m.coap.message import Message
        from aiolwm2m.nidd import ue_link

        ident = None
        if self.nidd:
            frame = ue_link.decode(data)
            if frame.kind != ue_link.MT_DATA:
                return
            data, ident = frame.data, frame.ue
        msg = decode_udp(data)
        if msg.mtype == MessageType.CON:  # a separate response: acknowledge it
            self._send(Message(MessageType.ACK, 0, msg.mid), ident, addr)
        fut = self.waiting.get(msg.token)
        if msg.code and fut is not None and not fut.done():
            fut.set_result(msg)

    def _send(self, msg: Any, ident: str | None, via: Any) -> None:
        from aiolwm2m.coap.codec import encode_udp
        from aiolwm2m.nidd import ue_link

        data = encode_udp(msg)
        transport = self.transports[0] if self.nidd else via
        if self.nidd:
            assert ident is not None
            data = ue_link.mo_data(ident, data)
        transport.sendto(data, self.target)

    async def exchange(self, transport: Any, ident: str | None, msg: Any) -> Any:
        self.mid = (self.mid + 1) & 0xFFFF
        msg.mid = self.mid
        msg.token = os.urandom(8)
        fut = asyncio.get_running_loop().create_future()
        self.waiting[msg.token] = fut
        try:
            self._send(msg, ident, transport)
            return await asyncio.wait_for(fut, 30)
        finally:
            del self.waiting[msg.token]

    async def run(self, count: int, seconds: float, group: str) -> dict[str, Any]:
        from aiolwm2m.coap.codes import Code
        from aiolwm2m.coap.message import Message
        from aiolwm2m.nidd import ue_link

        loop = asyncio.get_running_loop()
        for _ in range(1 if self.nidd else count):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self, local_addr=("127.0.0.1", 0))
            self.transports.append(transport)  # type: ignore[arg-type]
        sent = failed = 0
        end = 0.0

        async def device(i: int) -> None:
            nonlocal sent, failed
            ep = f"{self.prefix}{i:04d}"
            ident = f"{ep}@nidd.example" if self.nidd else None
            transport = self.transports[0 if self.nidd else i]
            if ident is not None:
                transport.sendto(ue_link.attach(ident, (group,)), self.target)
                await asyncio.sleep(0.2)
            reply = await self.exchange(transport, ident, Message.request(
                Code.POST, ["rd"], query=[f"ep={ep}", "lt=3600", "lwm2m=1.1",
                                          "b=N" if self.nidd else "b=U"],
                payload=b"</3303/0>", content_format=40))
            assert reply.code == Code.CREATED, reply
            await started.wait()
            while time.monotonic() < end:
                try:
                    reply = await self.exchange(transport, ident, Message.request(
                        Code.POST, ["dp"], payload=b'[{"n":"/3303/0/5700","v":21.5}]',
                        content_format=110))
                    sent += reply.code == Code.CHANGED
                except TimeoutError:
                    failed += 1

        started = asyncio.Event()
        tasks = [asyncio.create_task(device(i)) for i in range(count)]
        await asyncio.sleep(1.0 if not self.nidd else 5.0)  # the registrations
        t0 = time.monotonic()
        end = t0 + seconds
        started.set()
        await asyncio.gather(*tasks)
        took = time.monotonic() - t0
        for t in self.transports:
            t.close()
        return {"sends_per_s": sent / took, "send_failures": failed}


async def measure_sends(label: str, nidd: bool, target: tuple[str, int],
                        args: argparse.Namespace) -> dict[str, Any]:
    result = await UplinkDriver(nidd, target, f"up-{label}-").run(args.concurrency,
                                                                  args.window, GROUP)
    print(f"  {label}: {result['sends_per_s']:,.0f} Sends/s "
          f"({result['send_failures']} failed)", flush=True)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--fleet", type=int, default=10_000)
    parser.add_argument("--fleet-rate", type=float, default=200.0)
    args = parser.parse_args()
    started = time.monotonic()
    scef_port, http_port = free_port(), free_port()
    scef = await asyncio.create_subprocess_exec(
        PYTHON, "-m", "aiolwm2m", "scef-emulator", "--port", str(scef_port), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert scef.stdout is not None
    await asyncio.wait_for(scef.stdout.readline(), 60)
    scef_url = f"http://127.0.0.1:{scef_port}"
    ue_socket = ("127.0.0.1", scef_port)
    server = await ServerProcess.start(scef_url, http_port)
    results: dict[str, Any] = {}
    try:
        await asyncio.sleep(1.0)  # the group configuration
        print(f"== reads: {args.devices} devices each way, {args.concurrency} in flight, "
              f"{args.window:g} s windows", flush=True)
        results["udp"] = await measure_reads(
            server, "udp", ["--server", f"coap://127.0.0.1:{server.udp_port}"], args)
        results["nidd"] = await measure_reads(
            server, "nidd", ["--nidd", scef_url, "--nidd-group", GROUP], args)
        print(f"== Sends: {args.concurrency} devices, each Sends when answered", flush=True)
        results["udp"].update(await measure_sends(
            "udp", False, ("127.0.0.1", server.udp_port), args))
        results["nidd"].update(await measure_sends("nidd", True, ue_socket, args))
        print(f"== {args.fleet:,} NIDD devices", flush=True)
        before = await server.ask("stats")
        proc = await fleet(args.fleet, ["--nidd", scef_url, "--nidd-group", GROUP], "fleet-",
                           3600.0, args.fleet_rate)
        try:
            took = await server.wait_registered(before["registrations"] + args.fleet, 1800)
            after = await server.ask("stats")
        finally:
            await stop_process(proc, signal.SIGINT)
        results["fleet"] = {
            "devices": args.fleet, "seconds": took,
            "registered_per_s": args.fleet / took,
            "server_rss_growth_per_device_kb": (after["rss"] - before["rss"]) / args.fleet
            / 1024,
            "server_rss_mb": after["rss"] / 2**20}
    finally:
        if server.proc.stdin is not None:
            server.proc.stdin.close()
        await stop_process(server.proc)
        await stop_process(scef)
    udp, nidd, f = results["udp"], results["nidd"], results["fleet"]
    print()
    print(f"NIDD (T8 through the SCEF emulator) vs CoAP/UDP, same server; {os.cpu_count()} "
          f"cores; total {time.monotonic() - started:.0f} s")
    print(f"{'':28} {'UDP':>10} {'NIDD':>10} {'NIDD/UDP':>9}")
    for key, name in (("reads_per_s", "server reads/s (down+up)"),
                      ("sends_per_s", "device Sends/s (up+down)")):
        ratio = nidd[key] / udp[key] if udp[key] else 0.0
        print(f"{name:28} {udp[key]:>10,.0f} {nidd[key]:>10,.0f} {ratio:>9.3f}")
    print(f"{f['devices']:,} NIDD devices registered in {f['seconds']:.1f} s "
          f"({f['registered_per_s']:,.0f}/s); server RSS {f['server_rss_mb']:,.0f} MB, "
          f"{f['server_rss_growth_per_device_kb']:.2f} KB per NIDD device")
    print(json.dumps(results))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
