"""An unreachable server: the client backs off exponentially with jitter on its clock,
never busy-loops and never crashes."""

from __future__ import annotations

import asyncio
import random
import socket

from aiolwm2m.client import (
    Backoff,
    ClientConfig,
    LwM2MClient,
    ManualClock,
    RegistrationFailed,
    RetryPolicy,
)
from aiolwm2m.coap.params import TransmissionParameters

# One attempt fails after 0.04 + 0.08 s of CoAP retransmission.
QUICK = TransmissionParameters(ack_timeout=0.04, ack_random_factor=1.0, max_retransmit=1)


def dead_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_backoff_schedule_on_the_injected_clock() -> None:
    clock = ManualClock()
    policy = RetryPolicy(initial=2.0, factor=2.0, maximum=30.0, jitter=0.5, minimum=0.5)
    config = ClientConfig.development("lonely", f"coap://[::1]:{dead_port()}", host="::1",
                                      transmission=QUICK, retry=policy, clock=clock,
                                      rng=random.Random(42))
    client = LwM2MClient(config)
    expected = Backoff(policy, random.Random(42))
    delays: list[float] = []
    stream = client.events.stream()
    await client.start()
    try:
        for attempt in range(7):
            failed = await stream.until(RegistrationFailed, timeout=3)
            assert isinstance(failed, RegistrationFailed)
            delay = expected.next_delay()
            delays.append(delay)
            assert failed.retry_in == delay and failed.failures == attempt + 1
            base = min(30.0, 2.0 * 2**attempt)
            assert 0.5 * base <= failed.retry_in <= 1.5 * base
            # No new attempt while the back-off runs: nothing leaves the socket.
            sent = client.traffic()[2]
            await asyncio.sleep(0.3)
            assert client.traffic()[2] == sent
            await clock.advance(delay)
        assert [s for s in clock.sleeps if s in delays] == delays  # slept exactly these
        assert not client.registered
        assert client._supervisor is not None and not client._supervisor.done()
    finally:
        await client.stop(deregister=False)
