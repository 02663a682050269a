from __future__ import annotations

import pytest

from aiolwm2m.coap.block import BlockValue, size_to_szx
from aiolwm2m.coap.blockwise import (
    RETRY_AFTER,
    Block1Assembler,
    Block1Sender,
    Block2Collector,
    Block2Server,
    BlockwiseError,
)
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.reassembly_limits import ReassemblyLimits
from aiolwm2m.coap.stream_blockwise import StreamBlock1Assembler, StreamBlock2Server

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


# -- reassembly budgets ---------------------------------------------------------------------

SMALL = ReassemblyLimits(transport_bytes=4096, peer_bytes=3072, untrusted_peer_bytes=2048,
                         peer_transfers=2)


def upload(asm: Block1Assembler, peer: object, blocks: int, path: str = "/fw",
           now: float = 0.0, more: bool = True) -> Message:
    """Blocks 0..blocks-1 of 1024 bytes to ``path``; the answer to the last one."""
    answer = Message()
    for num in range(blocks):
        m = put(num, more or num < blocks - 1, 6, b"u" * 1024, peer=peer)
        m.uri_path = [path.strip("/")]
        answer = asm.feed(m, now)
        if answer.code != Code.CONTINUE:
            break
    return answer


def trusting(*trusted: object) -> Block1Assembler:
    return Block1Assembler(limits=SMALL, is_trusted=lambda peer: peer in trusted)


def test_an_untrusted_peer_gets_the_smaller_budget_with_size1() -> None:
    asm = trusting("registered")
    refused = upload(asm, "stranger", 3)
    assert refused.code == Code.REQUEST_ENTITY_TOO_LARGE and refused.size1 == 2048
    assert upload(asm, "registered", 3).code == Code.CONTINUE
    assert asm.buffered == 3072 and len(asm) == 1  # the refused upload let go of its bytes
    # Size1 announcing too much is refused before anything is kept.
    big = put(0, True, 6, b"u" * 1024, peer="stranger")
    big.size1 = 5000
    assert asm.feed(big, 0.0).size1 == 2048 and asm.buffered == 3072


def test_a_peer_budget_covers_all_its_uploads() -> None:
    asm = trusting()
    assert upload(asm, "p", 1, "/a").code == Code.CONTINUE
    assert upload(asm, "p", 1, "/b").code == Code.CONTINUE
    assert upload(asm, "p", 1, "/a", more=True).code == Code.CONTINUE  # /a starts over
    third = put(1, True, 6, b"u" * 1024, peer="p")
    third.uri_path = ["b"]
    assert asm.feed(third, 0.0).code == Code.REQUEST_ENTITY_TOO_LARGE  # 3 KiB > 2 KiB
    # A third upload of the peer's replaces its least recently active one.
    assert upload(asm, "q", 1, "/a").code == Code.CONTINUE
    assert upload(asm, "q", 1, "/b").code == Code.CONTINUE
    assert upload(asm, "q", 1, "/c").code == Code.CONTINUE
    assert len(asm) == 3 and asm.evicted == 1


def test_under_pressure_untrusted_uploads_go_first_and_trusted_ones_never() -> None:
    asm = trusting("t1", "t2")
    assert upload(asm, "t1", 2).code == Code.CONTINUE
    assert upload(asm, "u1", 1).code == Code.CONTINUE
    assert upload(asm, "u2", 1).code == Code.CONTINUE
    assert asm.buffered == 4096
    # A trusted upload takes the untrusted ones' room, least recently active first...
    assert upload(asm, "t2", 1).code == Code.CONTINUE
    assert asm.evicted == 1 and upload(asm, "u2", 1, more=True).code == Code.CONTINUE
    # ...and when only trusted uploads are left, the next one waits: 5.03 with Max-Age.
    assert upload(asm, "t2", 1, "/other").code == Code.CONTINUE  # evicts u2
    busy = upload(asm, "u3", 1)
    assert busy.code == Code.SERVICE_UNAVAILABLE and busy.max_age == RETRY_AFTER
    more = put(1, True, 6, b"u" * 1024, peer="t2")
    assert asm.feed(more, 0.0).code == Code.SERVICE_UNAVAILABLE
    assert asm.buffered <= SMALL.transport_bytes
    for peer in ("t1", "t2"):
        assert any(a.peer == peer for a in asm._trusted.values())


def test_without_a_trust_predicate_the_least_recently_active_upload_goes() -> None:
    asm = Block1Assembler(max_transfers=2)
    assert upload(asm, "a", 1).code == Code.CONTINUE
    assert upload(asm, "b", 1).code == Code.CONTINUE
    assert upload(asm, "c", 1).code == Code.CONTINUE
    gone = put(1, True, 6, b"u" * 1024, peer="a")
    assert asm.feed(gone, 0.0).code == Code.REQUEST_ENTITY_INCOMPLETE
    assert upload(asm, "big", 900).code == Code.CONTINUE  # the 1 MiB body limit applies


def test_bert_is_refused_on_datagram_transports_only() -> None:
    asm = Block1Assembler()
    refused = asm.feed(put(0, True, 7, b"x" * 2048), 0.0)
    assert refused.code == Code.BAD_REQUEST and b"BERT" in refused.payload
    assert len(asm) == 0
    req = Message.request(Code.GET, "/big")
    req.remote = PEER
    req.block2 = BlockValue(0, False, 7)
    answer = Block2Server().cached_block(req, 0.0)
    assert answer is not None and answer.code == Code.BAD_REQUEST
    stream = StreamBlock1Assembler(lambda peer: (1 << 20, True))
    assert stream.feed(put(0, True, 7, b"x" * 2048), 0.0).code == Code.CONTINUE
    assert StreamBlock2Server(lambda peer: (1 << 20, True)).cached_block(req, 0.0) is None
