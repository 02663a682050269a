from __future__ import annotations

import pytest

from aiolwm2m.coap.block import BlockValue, size_to_szx
from aiolwm2m.coap.blockwise import (
    Block1Assembler,
    Block1Sender,
    Block2Collector,
    Block2Server,
    BlockwiseError,
)
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message

PEER = ("192.0.2.1", 1)
BODY = bytes(range(256)) * 20  # 5120 bytes


def put(num: int, more: bool, szx: int, payload: bytes, peer: object = PEER) -> Message:
    m = Message.request(Code.PUT, "/fw")
    m.remote = peer
    m.block1 = BlockValue(num, more, szx)
    m.payload = payload
    return m


def test_block_value_codec() -> None:
    b = BlockValue(5, True, 6)
    assert BlockValue.decode(b.encode()) == b
    assert b.size == 1024 and b.offset == 5120
    assert size_to_szx(16) == 0 and size_to_szx(1024) == 6 and size_to_szx(100) == 2


def test_block1_sender_and_assembler_roundtrip_with_late_negotiation() -> None:
    asm = Block1Assembler(preferred_szx=5)  # the server prefers 512-byte blocks
    request = Message.request(Code.PUT, "/fw", payload=BODY)
    request.remote = PEER
    sender = Block1Sender(request, szx=6)
    final = None
    rounds = 0
    while True:
        part = sender.next_request()
        part.remote = PEER
        out = asm.feed(part, 0.0)
        rounds += 1
        if out is part and not (part.block1 and part.block1.more):
            final = out
            assert sender.on_response(part.response(Code.CHANGED))
            break
        assert out.code == Code.CONTINUE
        assert not sender.on_response(out)
    assert final is not None and final.payload == BODY
    # first block 1024 bytes, then 512-byte blocks: 1 + ceil(4096/512)
    assert rounds == 9
    assert len(asm) == 0


def test_block1_out_of_order_gives_408() -> None:
    asm = Block1Assembler()
    assert asm.feed(put(0, True, 2, b"a" * 64), 0.0).code == Code.CONTINUE
    resp = asm.feed(put(2, True, 2, b"b" * 64), 0.0)
    assert resp.code == Code.REQUEST_ENTITY_INCOMPLETE
    assert asm.feed(put(3, False, 2, b"c"), 0.0).code == Code.REQUEST_ENTITY_INCOMPLETE


def test_block1_too_large_gives_413_with_size1() -> None:
    asm = Block1Assembler(max_body_size=100)
    assert asm.feed(put(0, True, 2, b"a" * 64), 0.0).code == Code.CONTINUE
    resp = asm.feed(put(1, True, 2, b"a" * 64), 0.0)
    assert resp.code == Code.REQUEST_ENTITY_TOO_LARGE and resp.size1 == 100
    big = put(0, True, 2, b"a" * 64)
    big.size1 = 10_000
    assert asm.feed(big, 0.0).code == Code.REQUEST_ENTITY_TOO_LARGE


def test_block1_transfers_are_bounded_and_expire() -> None:
    asm = Block1Assembler(max_transfers=3, lifetime=10.0)
    for i in range(10):
        asm.feed(put(0, True, 0, b"x" * 16, peer=("p", i)), 0.0)
    assert len(asm) == 3
    asm.feed(put(0, True, 0, b"x" * 16, peer=("q", 0)), 11.0)
    assert len(asm) == 1


def test_block1_wrong_block_size_is_bad_request() -> None:
    asm = Block1Assembler()
    assert asm.feed(put(0, True, 2, b"a" * 10), 0.0).code == Code.BAD_REQUEST


def test_block2_server_and_collector() -> None:
    srv = Block2Server(preferred_szx=4)
    req = Message.request(Code.GET, "/big")
    req.remote = PEER
    full = req.response(Code.CONTENT, BODY, 42)
    first = srv.serve(req, full, 0.0)
    assert first.block2 == BlockValue(0, True, 4) and first.size2 == len(BODY)
    assert first.etag is not None and len(first.payload) == 256
    col = Block2Collector(req, first)
    while col.more:
        nxt = col.next_request()
        nxt.remote = PEER
        part = srv.cached_block(nxt, 1.0)
        assert part is not None
        col.add(part)
    result = col.result()
    assert result.payload == BODY and result.content_format == 42 and result.block2 is None


def test_block2_client_may_ask_for_smaller_blocks() -> None:
    srv = Block2Server()
    req = Message.request(Code.GET, "/big")
    req.remote = PEER
    req.block2 = BlockValue(3, False, 0)
    part = srv.serve(req, req.response(Code.CONTENT, BODY), 0.0)
    assert part.payload == BODY[48:64] and part.block2 == BlockValue(3, True, 0)


def test_block2_beyond_end() -> None:
    srv = Block2Server()
    req = Message.request(Code.GET, "/big")
    req.remote = PEER
    req.block2 = BlockValue(100, False, 6)
    assert srv.serve(req, req.response(Code.CONTENT, b"small"), 0.0).code == Code.BAD_OPTION


def test_collector_detects_changed_representation() -> None:
    srv = Block2Server(preferred_szx=4)
    req = Message.request(Code.GET, "/big")
    req.remote = PEER
    first = srv.serve(req, req.response(Code.CONTENT, BODY), 0.0)
    col = Block2Collector(req, first)
    nxt = col.next_request()
    nxt.remote = PEER
    other = Block2Server(preferred_szx=4).serve(nxt, nxt.response(Code.CONTENT, BODY[::-1]),
                                                0.0)
    with pytest.raises(BlockwiseError):
        col.add(other)
