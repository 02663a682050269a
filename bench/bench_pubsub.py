"""The pub/sub broker: notifications delivered per second for one topic with 1,000
subscribers, against a bare observable CoAP resource on the same stack in the same run;
and memory per topic with 100,000 topics.

    .venv/bin/python bench/bench_pubsub.py [--seconds 10] [--subscribers 1000]
                                           [--topics 100000]

Each target runs in a child process pinned to core 0: (a) a bare CoAP server whose one
observable resource notifies its observers on every PUT, (b) the broker with one topic.
This process (core 1) holds the subscribers, one UDP socket each, acknowledging the
Confirmable notifications, and a publisher that keeps ``--window`` PUTs in flight. Printed:
publications/s and notifications delivered/s for both, and the ratio b/a. Then a child
creates ``--topics`` topics with a 16-byte value each and prints the RSS per topic.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from loadgen import pinned, start_target

from aiolwm2m.cli.event_loop import resolve, run
from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message

HERE = Path(__file__).resolve()


# -- targets (child processes) ----------------------------------------------------------------

async def serve_bare() -> None:
    from aiolwm2m.cli.coap_server import StoreResource
    from aiolwm2m.transport.site import Site
    from aiolwm2m.transport.udp import UdpEndpoint

    site = Site()
    site.add("obs", StoreResource(b"0", 0))
    endpoint = await UdpEndpoint.create("127.0.0.1", 0, site=site)
    print(f"ready {endpoint.port} /obs", flush=True)
    await asyncio.Event().wait()


async def serve_broker() -> None:
    from aiolwm2m.pubsub import Broker, BrokerConfig, BrokerLimits, TopicConfig

    broker = Broker(BrokerConfig(hosts=("127.0.0.1",), port=0, store="memory",
                                 limits=BrokerLimits(publish_rate=0,
                                                     max_subscribers_per_topic=100_000,
                                                     max_subscribers_per_address=100_000)))
    await broker.start()
    topic = await broker.create_topic(TopicConfig(name="bench", content_format=0))
    broker.publish(topic, b"0", 0)
    print(f"ready {broker.port} {topic.data_path}", flush=True)
    await asyncio.Event().wait()


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def topics_memory(count: int) -> None:
    from aiolwm2m.pubsub import Broker, BrokerConfig, BrokerLimits, TopicConfig

    broker = Broker(BrokerConfig(hosts=("127.0.0.1",), port=0, store="memory",
                                 limits=BrokerLimits(max_topics=count,
                                                     max_topics_per_address=count)))
    await broker.start()
    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    value = b"x" * 16
    for i in range(count):
        topic = await broker.create_topic(TopicConfig(name=f"sensor-{i:06d}", content_format=0,
                                                      topic_type="temperature"))
        broker.publish(topic, value, 0)
    took = time.perf_counter() - started
    gc.collect()
    after = rss_kib()
    print(f"result {count} {(after - before) * 1024 / count:.0f} {took:.1f} "
          f"{after / 1024:.1f}", flush=True)
    await broker.stop()


# -- the subscriber farm and the publisher (this process) --------------------------------------

_ACK = 2 << 4


class Subscriber(asyncio.DatagramProtocol):
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.transport: Any = None
        self.subscribed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 4:
            return
        if (data[0] >> 4) & 3 == 0:  # CON: acknowledge, or the subscription is dropped
            self.transport.sendto(bytes((0x40 | _ACK, 0, data[2], data[3])))
        if data[1] == Code.CONTENT:
            if not self.subscribed.done():
                self.subscribed.set_result(True)
            else:
                self.counts["notifications"] += 1


class Publisher(asyncio.DatagramProtocol):
    def __init__(self, path: str, window: int) -> None:
        self.path = path
        self.window = window
        self.transport: Any = None
        self.done = 0
        self.mid = random.randrange(65536)
        self.running = True

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def send_one(self) -> None:
        self.mid = (self.mid + 1) & 0xFFFF
        msg = Message.request(Code.PUT, self.path, payload=str(self.mid).encode(),
                              content_format=0, token=struct.pack(">H", self.mid))
        msg.mid = self.mid
        self.transport.sendto(encode_udp(msg))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        reply = decode_udp(data)
        if reply.code in (Code.CHANGED, Code.CREATED):
            self.done += 1
            if self.running:
                self.send_one()


async def drive(port: int, path: str, subscribers: int, seconds: float, window: int
                ) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    counts = {"notifications": 0}
    subs: list[Subscriber] = []
    for _ in range(subscribers):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        sock.bind(("127.0.0.1", 0))
        sock.connect(("127.0.0.1", port))
        _, proto = await loop.create_datagram_endpoint(lambda: Subscriber(counts), sock=sock)
        subs.append(proto)
    for i, sub in enumerate(subs):
        msg = Message.request(Code.GET, path, observe=0, token=struct.pack(">I", i))
        msg.mid = i & 0xFFFF
        sub.transport.sendto(encode_udp(msg))
        if i % 100 == 99:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*(s.subscribed for s in subs)), 30)
    _, pub = await loop.create_datagram_endpoint(lambda: Publisher(path, window),
                                                 remote_addr=("127.0.0.1", port))
    for _ in range(window):
        pub.send_one()
    await asyncio.sleep(1.0)  # warm-up
    n0, p0, t0 = counts["notifications"], pub.done, time.perf_counter()
    await asyncio.sleep(seconds)
    n1, p1, t1 = counts["notifications"], pub.done, time.perf_counter()
    pub.running = False
    for s in subs:
        s.transport.close()
    pub.transport.close()
    return (p1 - p0) / (t1 - t0), (n1 - n0) / (t1 - t0)


def measure(name: str, mode: str, args: argparse.Namespace) -> tuple[float, float]:
    print(f"-- {name}: {args.seconds:g}s, {args.subscribers} subscribers, "
          f"{args.window} publications in flight ...", flush=True)
    target = start_target([str(HERE), "--serve", mode])
    try:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})
        pubs, notes = run(drive(target.port, target.detail, args.subscribers, args.seconds,
                                args.window), resolve(None))
    finally:
        target.stop()
    print(f"   {pubs:,.0f} publications/s, {notes:,.0f} notifications/s delivered "
          f"({notes / max(pubs, 1e-9) / args.subscribers:.0%} of publications x "
          f"subscribers)", flush=True)
    return pubs, notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--window", type=int, default=2, help="publications in flight")
    ap.add_argument("--topics", type=int, default=100_000, help="for the memory run (0: skip)")
    ap.add_argument("--serve", choices=["bare", "broker"], help=argparse.SUPPRESS)
    ap.add_argument("--topics-memory", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve == "bare":
        run(serve_bare(), resolve(None))
        return
    if args.serve == "broker":
        run(serve_broker(), resolve(None))
        return
    if args.topics_memory:
        run(topics_memory(args.topics_memory), resolve(None))
        return
    bare_pubs, bare_notes = measure("bare observable CoAP resource", "bare", args)
    pubs, notes = measure("aiolwm2m pub/sub broker", "broker", args)
    print()
    print(f"bare CoAP notifications : {bare_notes:12,.0f} /s  ({bare_pubs:,.0f} PUT/s)")
    print(f"broker notifications    : {notes:12,.0f} /s  ({pubs:,.0f} publications/s)")
    print(f"ratio b/a               : {notes / max(bare_notes, 1e-9):12.2f}")
    if args.topics:
        import subprocess

        print(f"-- memory: {args.topics:,} topics with a 16-byte value each ...", flush=True)
        out = subprocess.run(pinned([sys.executable, str(HERE), "--topics-memory",
                                     str(args.topics)], 0),
                             capture_output=True, text=True, check=True).stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("result"))
        _, count, per_topic, took, total = line.split()
        print(f"memory per topic        : {int(per_topic):12,} bytes  ({int(count):,} topics "
              f"created in {took} s, broker RSS {total} MiB)")


if __name__ == "__main__":
    main()
