"""The downlink stream over real sockets, with a bare HTTP/2 peer: presence is queue mode,
a newer stream replaces an older one, requests lost with a connection are written again
once, answers that answer nothing are refused precisely, and bundles (multipart-core)
answer several requests in one message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.http2.bearer import bearer_token
from aiolwm2m.http2.messages import format_parts
from aiolwm2m.http2.multipart import encode_multipart
from aiolwm2m.lwm2m import ContentFormat
from aiolwm2m.lwm2m.operations import ReadRequest
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Awake, QueuedRequestFinished, Refused, Sleeping
from aiolwm2m.store.records import QueuedRequest, SecurityInfo

from .raw_device import RawH2, register_headers

KEY = b"downlink-secret!"
TEXT = ContentFormat.TEXT


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, http2_port=0, store="memory"))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("auth-dev", psk_identity=b"auth-dev",
                                               psk_key=KEY))
    yield srv
    await srv.stop()


async def device(server: LwM2MServer, ep: str = "raw-dev", *, auth: bool = False
                 ) -> tuple[RawH2, str, list[tuple[str, str]]]:
    raw = await RawH2.open("127.0.0.1", server.port_of("http2"))
    headers = [("authorization", f"Bearer {bearer_token(b'auth-dev', KEY)}")] if auth else []
    state = await raw.exchange("POST", f"/rd?ep={ep}&lt=300&lwm2m=1.1&b=H",
                               register_headers() + headers, b"</3/0>")
    assert state.status == 201
    return raw, state.headers["location"], headers


def answer_headers(status: int, headers: list[tuple[str, str]], ctype: str | None = None
                   ) -> list[tuple[str, str]]:
    out = [("lwm2m-status", str(status)), *headers]
    if ctype:
        out.append(("content-type", ctype))
    return out


async def test_presence_is_queue_mode(server: LwM2MServer) -> None:
    raw, location, _ = await device(server)
    events = server.events.stream()
    try:
        reg = server.registrations["raw-dev"]
        assert not server.queue.is_awake(reg)
        # Asleep: requests wait in the queue, as for a sleeping CoAP client.
        queued = await server.submit("raw-dev", ReadRequest(LwM2MPath(3, 0, 0), TEXT))
        assert isinstance(queued, QueuedRequest)
        sid = await raw.downlink(location)
        assert raw.streams[sid].status == 200
        assert raw.streams[sid].headers["content-type"] == "application/cbor-seq"
        assert isinstance(await events.until(Awake), Awake)
        (request,) = await raw.next_requests(sid)
        assert (request.method, request.path, request.accept) == (Code.GET, "/3/0/0", 0)
        state = await raw.exchange("POST", f"{location}/responses/{request.identity}",
                                   answer_headers(200, [], "text/plain"), b"ACME")
        assert state.status == 204
        done = await events.until(QueuedRequestFinished)
        assert done.request.result["senml"][0]["vs"] == "ACME"  # type: ignore[index]
        assert server.queue.is_awake(server.registrations["raw-dev"])
        # Closing the stream puts the device to sleep again.
        raw.reset(sid)
        assert isinstance(await events.until(Sleeping), Sleeping)
        assert not server.queue.is_awake(server.registrations["raw-dev"])
    finally:
        await raw.close()


async def test_newer_downlink_replaces_older_and_gets_what_is_unanswered(
        server: LwM2MServer) -> None:
    raw, location, _ = await device(server)
    try:
        first = await raw.downlink(location)
        read = asyncio.create_task(server.read("raw-dev", "/3/0/0", format=TEXT, timeout=10))
        (request,) = await raw.next_requests(first)
        second = await raw.downlink(location)
        await asyncio.wait_for(raw.streams[first].ended.wait(), 5)
        assert raw.streams[first].trailers == {
            "lwm2m-closed": "replaced by a newer downlink stream"}
        # The unanswered read is written again on the new stream, same identity.
        (again,) = await raw.next_requests(second)
        assert again.identity == request.identity and again.path == "/3/0/0"
        state = await raw.exchange("POST", f"{location}/responses/{again.identity}",
                                   answer_headers(200, [], "text/plain"), b"ACME")
        assert state.status == 204
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
        assert server.queue.is_awake(server.registrations["raw-dev"])
    finally:
        await raw.close()


async def test_request_lost_with_the_connection_is_sent_again_once(
        server: LwM2MServer) -> None:
    raw, location, auth = await device(server, "auth-dev", auth=True)
    try:
        sid = await raw.downlink(location, auth)
        execute = asyncio.create_task(server.execute("auth-dev", "/3/0/4", timeout=10))
        (request,) = await raw.next_requests(sid)
        raw.abort()  # the connection breaks before the device answers
        raw2 = await RawH2.open("127.0.0.1", server.port_of("http2"))
        try:
            assert (await raw2.exchange("POST", f"{location}", auth)).status == 204
            sid2 = await raw2.downlink(location, auth)
            (again,) = await raw2.next_requests(sid2)
            assert again.identity == request.identity and again.path == "/3/0/4"
            assert (await raw2.exchange("POST", f"{location}/responses/{again.identity}",
                                        answer_headers(204, auth))).status == 204
            assert (await execute).code == Code.CHANGED
            # Lost twice: the request fails instead of being written a third time.
            read = asyncio.create_task(server.read("auth-dev", "/3/0/0", timeout=10))
            await raw2.next_requests(sid2)
            raw2.reset(sid2)
            sid3 = await raw2.downlink(location, auth)
            await raw2.next_requests(sid3)
            raw2.reset(sid3)
            await raw2.downlink(location, auth)
            with pytest.raises(Exception, match="ended twice"):
                await read
        finally:
            await raw2.close()
    finally:
        await raw.close()


async def test_answers_that_answer_nothing_are_refused(server: LwM2MServer) -> None:
    raw, location, _ = await device(server)
    other, _, _ = await device(server, "other-dev")
    events = server.events.stream()
    try:
        sid = await raw.downlink(location)
        read = asyncio.create_task(server.read("raw-dev", "/3/0/0", format=TEXT, timeout=10))
        (request,) = await raw.next_requests(sid)
        cases = [
            # (path, headers, body, status, words)
            (f"{location}/responses/nope", answer_headers(200, []), b"", 404,
             b"no request with this identity"),
            (f"{location}/responses/{request.identity}", [], b"", 400, b"lwm2m-status"),
            (f"{location}/responses/{request.identity}", answer_headers(299, []), b"", 400,
             b"no CoAP code"),
            (f"{location}/responses/{request.identity}",
             answer_headers(200, [], "image/png"), b"x", 415, b"media type"),
            (f"{location}/responses/{request.identity}",
             [("lwm2m-status", "200"), ("lwm2m-observe", "x")], b"", 400, b"lwm2m-observe"),
            (f"{location}/responses", answer_headers(200, [], "text/plain"), b"x", 415,
             b"multipart-core"),
            (f"{location}/requests", [], b"", 405, b"GET"),
            ("/rd/unknown-reg/requests", [], b"", 404, b"no such registration"),
        ]
        for path, headers, body, status, words in cases:
            method = "GET" if path.endswith("/requests") and status != 405 else "POST"
            state = await raw.exchange(method, path, headers, body)
            assert (state.status, words in bytes(state.body)) == (status, True), path
        # Another device may not answer (or open the downlink of) this registration.
        state = await other.exchange("POST", f"{location}/responses/{request.identity}",
                                     answer_headers(200, [], "text/plain"), b"EVIL")
        assert state.status == 404 and bytes(state.body) == b"no such registration"
        refused = await events.until(Refused)
        assert isinstance(refused, Refused) and refused.transport == "http2"
        # Nothing was lost: the real answer still completes the read.
        state = await raw.exchange("POST", f"{location}/responses/{request.identity}",
                                   answer_headers(200, [], "text/plain"), b"ACME")
        assert state.status == 204
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
        assert server.refusals.by_reason["unknown-registration"] >= 1
    finally:
        await raw.close()
        await other.close()


async def test_batches_and_bundles(server: LwM2MServer) -> None:
    raw, location, _ = await device(server)
    try:
        sid = await raw.downlink(location)
        reads = [asyncio.create_task(server.read("raw-dev", f"/3/0/{r}", format=TEXT,
                                                 timeout=10)) for r in (0, 1, 2)]
        # Issued in the same loop iteration: one envelope, a batch of three (HTT-002).
        batch = await raw.next_requests(sid)
        assert [r.path for r in batch] == ["/3/0/0", "/3/0/1", "/3/0/2"]
        parts = [(r.identity, 200, None) for r in batch]
        body = encode_multipart([(0, b"ACME"), (0, b"Model"), (0, b"SN-1")])
        headers = [("content-type", "application/multipart-core"),
                   ("lwm2m-parts", format_parts(parts))]
        state = await raw.exchange("POST", f"{location}/responses", headers, body)
        assert state.status == 204
        values = [(await r).content.value for r in reads]  # type: ignore[union-attr]
        assert values == ["ACME", "Model", "SN-1"]
        # A bundle whose description and body disagree is refused whole.
        state = await raw.exchange("POST", f"{location}/responses", [
            ("content-type", "application/multipart-core"),
            ("lwm2m-parts", format_parts(parts[:2]))], body)
        assert state.status == 400 and b"describes 2 parts" in bytes(state.body)
        # Parts answering nothing are named back (they are the device's own identities).
        state = await raw.exchange("POST", f"{location}/responses", headers, body)
        assert state.status == 404
        assert state.headers["lwm2m-unknown"] == ", ".join(p[0] for p in parts)
    finally:
        await raw.close()


async def test_an_answer_retried_with_its_identity_is_delivered_once(
        server: LwM2MServer) -> None:
    raw, location, _ = await device(server)
    try:
        sid = await raw.downlink(location)
        read = asyncio.create_task(server.read("raw-dev", "/3/0/0", format=TEXT, timeout=10))
        (request,) = await raw.next_requests(sid)
        path = f"{location}/responses/{request.identity}"
        headers = [*answer_headers(200, [], "text/plain"), ("lwm2m-message-id", "answer-1")]
        assert (await raw.exchange("POST", path, headers, b"ACME")).status == 204
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
        # The device never saw the 204 and sends the answer again: the same 204, and
        # nothing is delivered twice; without the identity it is an unknown answer.
        assert (await raw.exchange("POST", path, headers, b"ACME")).status == 204
        endpoint = server.transports["http2"]
        assert endpoint.replies.duplicates == 1  # type: ignore[attr-defined]
        state = await raw.exchange("POST", path, answer_headers(200, [], "text/plain"), b"X")
        assert state.status == 404
    finally:
        await raw.close()
