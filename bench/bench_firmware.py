"""Benchmark: a firmware campaign, a 1 MiB image to 1,000 simulated devices.

    .venv/bin/python bench/bench_firmware.py [--devices 1000] [--size 1048576]
        [--concurrency 100] [--skip-baseline]

``aiolwm2m server`` (the product: SQLite store, REST API) runs in its own process; the
simulated devices run here (one process, the fleet simulator). The image is uploaded over
the REST API and a campaign over every device is started there; each device pulls the image
block by block (1 KiB Block2 over coap://), installs it, reboots and registers again, and
the server verifies its new version. Reported: total time, blocks and MiB per second, the
server's CPU time (in all, per device, per MiB delivered) and memory (RSS before, peak,
after), and the devices' (this process's) CPU.

Baseline, in the same run: the same devices fetch the same image, as many at a time, from a
bare CoAP server (a UdpEndpoint whose resource returns the image and whose dispatcher cuts
and caches the blocks): what moving the bytes costs without any of the update machinery.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile
from aiolwm2m.simulator.device_model import DeviceModel
from aiolwm2m.simulator.firmware import DOWNLOADED, SimFirmwareProfile, SimulatedFirmware, sim_image
from aiolwm2m.simulator.stats import cpu_seconds, rss_bytes

PYTHON = sys.executable
TOKEN = "bench-firmware-token"
TICK = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20

BARE_SERVER = r"""
import asyncio, sys
from aiolwm2m.coap.codes import Code
from aiolwm2m.transport.site import Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint
IMAGE = open(sys.argv[1], "rb").read()
class Image(Resource):
    def render_get(self, request):
        return request.response(Code.CONTENT, IMAGE, 42)
class Rd(Resource):  # accepts every Register and Update, so the devices stay registered
    def render_post(self, request):
        response = request.response(Code.CREATED if not self.subpath(request) else Code.CHANGED)
        if not self.subpath(request):
            response.location_path = ("rd", str(request.remote[0]))
        return response
async def main():
    site = Site()
    site.add("fw/image", Image())
    site.add("rd", Rd(), prefix=True)
    endpoint = await UdpEndpoint.create("127.0.0.1", 0, site=site)
    endpoint.dispatcher.block2.max_entries = 100_000
    print("ready", endpoint.port, flush=True)
    await asyncio.Event().wait()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def process_memory(pid: int) -> tuple[int, int]:
    """(RSS now, peak RSS) in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


async def read_until(stream: asyncio.StreamReader, marker: str, timeout: float = 60) -> str:
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise RuntimeError("process exited: " + "".join(seen[-20:]))
            seen.append(line)
            if marker in line:
                return line


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()


async def start_fleet(count: int, port: int) -> Fleet:
    profile = FleetProfile(send_interval=86400, lifetime=3600, firmware=SimFirmwareProfile(
        install_seconds=0.5, reboot_seconds=0.2))
    fleet = Fleet(FleetConfig(count, f"coap://127.0.0.1:{port}", rate=2000, profile=profile))
    await fleet.start()
    return fleet


async def baseline(args: argparse.Namespace, image_path: Path) -> dict[str, float]:
    """The devices fetch the image from a bare CoAP server, ``concurrency`` at a time."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON, "-c", BARE_SERVER, str(image_path), stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    port = int((await read_until(proc.stdout, "ready")).split()[1])
    # Registered with the bare server (which takes any Register): only their download
    # machinery is used.
    fleet = await start_fleet(args.devices, port)
    try:
        async with asyncio.timeout(60):
            while fleet.stats.registrations < args.devices:
                await asyncio.sleep(0.05)
        cpu0, own0 = process_cpu(proc.pid), cpu_seconds()
        started = time.perf_counter()
        waiting = list(fleet.devices)
        running: list[SimulatedFirmware] = []
        done = 0
        while waiting or running:
            while waiting and len(running) < args.concurrency:
                device = waiting.pop(0)
                model = DeviceModel(fleet, device, bootstrapping=False)
                model.keep = True
                device.extras = model
                instance = model.tree.get(5, 0)
                assert isinstance(instance, SimulatedFirmware)
                instance._uri_written(f"coap://127.0.0.1:{port}/fw/image")
                running.append(instance)
            await asyncio.sleep(0.02)
            finished = [i for i in running if i.get(3) != 1]
            for instance in finished:
                running.remove(instance)
                done += instance.get(3) == DOWNLOADED
        elapsed = time.perf_counter() - started
        return {"seconds": elapsed, "server_cpu": process_cpu(proc.pid) - cpu0,
                "devices_cpu": cpu_seconds() - own0, "downloaded": done}
    finally:
        await fleet.stop(deregister=False)
        await stop(proc)


async def campaign(args: argparse.Namespace, image: bytes) -> dict[str, Any]:
    coap_port, http_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    with tempfile.TemporaryDirectory(prefix="aiolwm2m-bench-fw-") as data:
        proc = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "aiolwm2m", "server", "--coap-host", "127.0.0.1", "--coap-port",
            str(coap_port), "--no-dtls", "--no-tcp", "--no-bootstrap", "--http-port",
            str(http_port), "--api-token", TOKEN, "--data-dir", data, "--log-level", "WARNING",
            stderr=asyncio.subprocess.PIPE)
        assert proc.stderr is not None
        await read_until(proc.stderr, " data ")
        drain = asyncio.ensure_future(proc.stderr.read())
        fleet = await start_fleet(args.devices, coap_port)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=60,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                async with asyncio.timeout(120):
                    while (await http.get("/api/registrations", params={"limit": 1})
                           ).json()["total"] < args.devices:
                        await asyncio.sleep(0.2)
                rss_before, _ = process_memory(proc.pid)
                r = await http.post("/api/firmware/images", params={
                    "name": "bench", "version": "2.0.0"}, content=image)
                r.raise_for_status()
                cpu0, own0 = process_cpu(proc.pid), cpu_seconds()
                started = time.perf_counter()
                r = await http.post("/api/firmware/campaigns", json={
                    "name": "bench", "image": r.json()["sha256"],
                    "targets": {"filter": {"endpoint": "sim-*"}},
                    "limits": {"concurrency": args.concurrency, "update_timeout": 120,
                               "download_timeout": 1800}})
                r.raise_for_status()
                cid = r.json()["id"]
                last = 0.0
                while True:
                    body = (await http.get(f"/api/firmware/campaigns/{cid}")).json()
                    if body["state"] == "finished":
                        break
                    now = time.perf_counter()
                    if now - last >= 10:
                        last = now
                        print(f"  {now - started:6.1f} s  {body['progress']:.0%}  "
                              f"{body['counts']}", flush=True)
                    await asyncio.sleep(0.5)
                elapsed = time.perf_counter() - started
                rss_after, rss_peak = process_memory(proc.pid)
                return {"seconds": elapsed, "server_cpu": process_cpu(proc.pid) - cpu0,
                        "devices_cpu": cpu_seconds() - own0, "counts": body["counts"],
                        "rss_before": rss_before, "rss_peak": rss_peak,
                        "rss_after": rss_after, "blocks": fleet.stats.firmware_blocks,
                        "fleet_rss": rss_bytes()}
        finally:
            await fleet.stop(deregister=False)
            await stop(proc)
            drain.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--size", type=int, default=MiB)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    image = sim_image("2.0.0", args.size, os.urandom(4096))
    mib = args.devices * args.size / MiB
    print(f"firmware campaign: {args.size} bytes to {args.devices} simulated devices, "
          f"{args.concurrency} at a time ({mib:.0f} MiB in all)")
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    result = runner(campaign(args, image))
    secs = result["seconds"]
    print(f"campaign   {secs:7.1f} s   {result['counts']}")
    print(f"           {result['blocks'] / secs:7.0f} blocks/s   {mib / secs:6.1f} MiB/s "
          "delivered")
    print(f"server CPU {result['server_cpu']:7.1f} s   "
          f"{result['server_cpu'] / args.devices * 1000:.1f} ms/device   "
          f"{result['server_cpu'] / mib * 1000:.1f} ms/MiB")
    print(f"server RSS {result['rss_before'] / MiB:7.1f} MiB before, "
          f"{result['rss_peak'] / MiB:.1f} MiB peak, {result['rss_after'] / MiB:.1f} MiB after")
    print(f"devices    {result['devices_cpu']:7.1f} s CPU (this process), "
          f"{result['fleet_rss'] / MiB:.0f} MiB RSS")
    if args.skip_baseline:
        return
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(image)
        f.flush()
        base = runner(baseline(args, Path(f.name)))
    print(f"baseline   {base['seconds']:7.1f} s   bare CoAP block server, "
          f"{base['downloaded']} downloads, server CPU {base['server_cpu']:.1f} s, "
          f"devices CPU {base['devices_cpu']:.1f} s")
    print(f"ratio      campaign / bare download: time {secs / base['seconds']:.2f}, "
          f"server CPU {result['server_cpu'] / max(base['server_cpu'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
