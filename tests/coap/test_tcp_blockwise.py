"""Block-wise on streams: whole messages when they fit, BERT when agreed, 1024 otherwise."""

from __future__ import annotations

from collections.abc import Hashable

from aiolwm2m.coap.block import BERT_SZX, BlockValue
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.peer_observers import PeerIndexedObserverRegistry
from aiolwm2m.coap.stream_blockwise import (
    StreamBlock1Assembler,
    StreamBlock1Sender,
    StreamBlock2Collector,
    StreamBlock2Server,
    bert_room,
)
from aiolwm2m.coap.tcp_framing import frame_size

BODY = bytes(i % 251 for i in range(100_000))
LIMITS: dict[Hashable, tuple[int, bool]] = {
    "big": (8_000_000, True),     # everything fits
    "bert": (16_384, True),       # BERT blocks of 15 KiB
    "plain": (16_384, False),     # no BERT agreed: 1024-byte blocks
}


def limits(remote: Hashable) -> tuple[int, bool]:
    return LIMITS[remote]


def get(remote: str, block2: BlockValue | None = None) -> Message:
    req = Message.request(Code.GET, "/fw", token=b"tk")
    req.remote = remote
    if block2 is not None:
        req.block2 = block2
    return req


def download(server: StreamBlock2Server, remote: str, bert: bool) -> tuple[bytes, list[int]]:
    req = get(remote)
    first = server.serve(req, req.response(Code.CONTENT, BODY, 42), 0.0)
    sizes = [len(first.payload)]
    if first.block2 is None:
        return first.payload, sizes
    collector = StreamBlock2Collector(req, first, bert)
    while collector.more:
        nxt = collector.next_request()
        nxt.remote = remote
        part = server.cached_block(nxt, 0.0)
        assert part is not None
        assert frame_size(part) <= LIMITS[remote][0]
        sizes.append(len(part.payload))
        collector.add(part)
    return collector.result().payload, sizes


def test_whole_response_when_it_fits() -> None:
    body, sizes = download(StreamBlock2Server(limits), "big", True)
    assert body == BODY and sizes == [100_000]


def test_bert_blocks_when_agreed() -> None:
    server = StreamBlock2Server(limits)
    body, sizes = download(server, "bert", True)
    assert body == BODY
    assert sizes[0] == 15 * 1024 and all(s % 1024 == 0 for s in sizes[:-1])
    req = get("bert")
    first = server.serve(req, req.response(Code.CONTENT, BODY), 0.0)
    assert first.block2 == BlockValue(0, True, BERT_SZX) and first.size2 == len(BODY)


def test_plain_blocks_without_bert() -> None:
    server = StreamBlock2Server(limits)
    body, sizes = download(server, "plain", False)
    assert body == BODY and set(sizes[:-1]) == {1024}
    # A BERT request on a connection without BERT reads as SZX 6.
    part = server.cached_block(get("plain", BlockValue(3, False, BERT_SZX)), 0.0)
    assert part is not None and part.block2 == BlockValue(3, True, 6)


def test_client_asked_block_size_is_honoured() -> None:
    server = StreamBlock2Server(limits)
    req = get("big", BlockValue(0, False, 2))
    first = server.serve(req, req.response(Code.CONTENT, BODY), 0.0)
    assert first.block2 == BlockValue(0, True, 2) and len(first.payload) == 64


def test_bert_upload_round_trip() -> None:
    assembler = StreamBlock1Assembler(limits)
    template = Message.request(Code.PUT, "/fw", payload=BODY)
    template.remote = "bert"
    room = bert_room(16_384, template)
    sender = StreamBlock1Sender(template, BERT_SZX, room)
    rounds = 0
    while True:
        part = sender.next_request()
        part.remote = "bert"
        assert frame_size(part) <= 16_384
        result = assembler.feed(part, 0.0)
        rounds += 1
        if result is part:
            assert part.payload == BODY
            break
        assert result.code == Code.CONTINUE and result.block1 is not None
        assert result.block1.szx == BERT_SZX
        assert not sender.on_response(result)
    assert rounds == -(-len(BODY) // room)


def test_upload_falls_back_when_the_server_wants_smaller_blocks() -> None:
    template = Message.request(Code.PUT, "/fw", payload=b"a" * 5000)
    sender = StreamBlock1Sender(template, BERT_SZX, 2048)
    first = sender.next_request()
    assert len(first.payload) == 2048
    cont = first.response(Code.CONTINUE)
    cont.block1 = BlockValue(0, True, 4)  # the server prefers 256-byte blocks
    assert not sender.on_response(cont)
    nxt = sender.next_request()
    assert nxt.block1 == BlockValue(8, True, 4) and len(nxt.payload) == 256
    done = nxt.response(Code.CHANGED)
    assert sender.on_response(done)


def test_peer_indexed_observers() -> None:
    reg = PeerIndexedObserverRegistry()
    for peer in ("a", "b"):
        for i in range(100):
            req = Message.request(Code.GET, f"/r{i}", observe=0, token=bytes([i]))
            req.remote = peer
            reg.add(req, f"r{i}", 0.0)
    assert len(reg) == 200 and reg.peers() == 2
    assert reg.remove("a", bytes([5])) is not None
    gone = reg.remove_peer("a")
    assert len(gone) == 99 and len(reg) == 100 and reg.peers() == 1
    # Re-registering the same resource with new tokens keeps the index bounded.
    for i in range(300):
        req = Message.request(Code.GET, "/r0", observe=0, token=i.to_bytes(2, "big"))
        req.remote = "b"
        reg.add(req, "r0", 0.0)
    assert len(reg) == 100
    assert len(reg.remove_peer("b")) == 100 and len(reg) == 0
