"""A registered device floods the server with Sends of ever new paths and oversized values:
what the values store keeps stays within its bounds (samples, latest values, value size)
and the server goes on serving."""

from __future__ import annotations

import json
from pathlib import Path

import aiocoap
from aiocoap.numbers.codes import Code as C

from aiolwm2m.history.memory import MemoryValueStore
from aiolwm2m.history.sqlite import SQLiteValueStore
from aiolwm2m.server import LwM2MServer, ServerConfig

from ..server.aiocoap_device import started_device

MAX_SAMPLES = 500
SENDS = 40
PER_SEND = 100  # values per Send, each on a path never seen before


def flood_payload(n: int) -> bytes:
    first = n * PER_SEND
    records: list[dict[str, object]] = [{"bn": "/3303/", "n": f"{first}/5700", "v": 1.5}]
    records += [{"n": f"{first + i}/5700", "v": float(i)} for i in range(1, PER_SEND)]
    records.append({"n": f"{first}/5701", "vs": "x" * 5000})  # over values_max_value_bytes
    return json.dumps(records).encode()


async def flood(store: str, tmp: Path) -> None:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store=store, data_dir=tmp,
                                      values_max_samples=MAX_SAMPLES,
                                      values_max_value_bytes=1024))
    await server.start()
    device = await started_device("flooder")
    try:
        assert (await device.register(f"coap://[::1]:{server.port}")).code.is_successful()
        assert device.context is not None
        for n in range(SENDS):
            reply = await device.context.request(aiocoap.Message(
                code=C.POST, uri=f"{device.server_uri}/dp", payload=flood_payload(n),
                content_format=110)).response
            assert reply.code.is_successful()
        values = server.values
        assert values is not None and server.value_recorder is not None
        assert server.value_recorder.skipped == SENDS  # every oversized string, not kept
        await values.flush()
        await values.prune(server.config.clock())
        history = await values.history("flooder", limit=10_000)
        latest = await values.latest("flooder")
        assert len(history) <= MAX_SAMPLES and len(latest) <= MAX_SAMPLES
        # The newest are what is kept.
        assert history[-1].path == f"/3303/{SENDS * PER_SEND - 1}/5700"
        if isinstance(values, MemoryValueStore):
            assert len(values._all) <= MAX_SAMPLES
        else:
            assert isinstance(values, SQLiteValueStore)
            rows = values._reader.execute("SELECT sum(count) FROM value_groups").fetchone()
            assert rows[0] <= MAX_SAMPLES
        # Still serving.
        assert (await server.read("flooder", "/3/0/9")).content is not None
    finally:
        await device.stop()
        await server.stop()


async def test_flood_of_new_paths_memory(tmp_path: Path) -> None:
    await flood("memory", tmp_path)


async def test_flood_of_new_paths_sqlite(tmp_path: Path) -> None:
    await flood("sqlite", tmp_path)


async def test_text_that_is_no_unicode_is_refused_and_others_values_kept(tmp_path: Path
                                                                         ) -> None:
    # A lone surrogate, escaped in valid UTF-8 JSON: once it reached the values writer and
    # failed the commit of every device's values in its batch.
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="sqlite", data_dir=tmp_path))
    await server.start()
    device = await started_device("sender")
    try:
        assert (await device.register(f"coap://[::1]:{server.port}")).code.is_successful()
        assert device.context is not None

        async def send(payload: bytes) -> aiocoap.Message:
            return await device.context.request(aiocoap.Message(  # type: ignore[union-attr]
                code=C.POST, uri=f"{device.server_uri}/dp", payload=payload,
                content_format=110)).response

        bad = await send(rb'[{"bn":"/3/0/","n":"0","vs":"a\ud800b"},{"n":"9","v":7}]')
        assert bad.code == C.BAD_REQUEST and b"lone surrogate" in bad.payload
        good = await send(rb'[{"bn":"/3/0/","n":"0","vs":"ok \ud83d\ude00"},{"n":"9","v":8}]')
        assert good.code.is_successful()
        values = server.values
        assert values is not None
        await values.flush()
        assert values.stats.dropped == 0
        got = {s.path: s.value for s in await values.latest("sender")}
        assert got == {"/3/0/0": "ok \U0001f600", "/3/0/9": 8}
    finally:
        await device.stop()
        await server.stop()
