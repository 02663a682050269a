"""Block-wise transfers (RFC 7959) for both roles, as state machines without I/O.

Server side: :class:`Block1Assembler` rebuilds request bodies, :class:`Block2Server` slices
large responses and keeps their representation for the follow-up block requests.
Client side: :class:`Block1Sender` splits a request body, :class:`Block2Collector` gathers a
response body and says which request to send next.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .block import BERT_SZX, BlockValue
from .codes import Code, MessageType
from .errors import CoapError
from .message import Message
from .options import OptionNumber as O
from .options import encode_uint
from .reassembly_limits import DEFAULT_REASSEMBLY_LIMITS, ReassemblyLimits

# Options that identify "the same request" across blocks: everything except the block
# options themselves, sizes, and options that are allowed to change per block.
_NOT_IN_KEY = frozenset({O.BLOCK1, O.BLOCK2, O.SIZE1, O.SIZE2, O.OBSERVE, O.ETAG, O.IF_MATCH,
                         O.IF_NONE_MATCH, O.ECHO})


def request_key(request: Message) -> tuple[Hashable, ...]:
    """Identity of a request across its blocks: peer, method and the cache-relevant options."""
    return (request.remote, request.code,
            tuple(o for o in request.options if o[0] not in _NOT_IN_KEY))


class BlockwiseError(CoapError):
    pass


#: Max-Age of a 5.03 for full reassembly buffers: when a client may try again (seconds).
RETRY_AFTER = 10


def _block_response(request: Message, code: int, diagnostic: str) -> Message:
    return request.response(code, diagnostic.encode(), 0 if diagnostic else None)


class _Assembly:
    __slots__ = ("body", "deadline", "peer", "trusted")

    def __init__(self, peer: Hashable, trusted: bool, deadline: float) -> None:
        self.body = bytearray()
        self.peer = peer
        self.trusted = trusted
        self.deadline = deadline


class _PeerUsage:
    __slots__ = ("bytes", "transfers")

    def __init__(self) -> None:
        self.bytes = 0
        self.transfers = 0


Transfers = OrderedDict[tuple[Hashable, ...], _Assembly]


class Block1Assembler:
    """Reassembles Block1 request bodies, bounded in size, count, age and bytes held.

    ``limits`` budgets the bytes buffered per peer and in total (see
    :mod:`.reassembly_limits`); ``is_trusted(peer)``, asked once per upload, says which
    per-peer budget applies, and under pressure the least recently active untrusted
    uploads are given up, never trusted ones. Without ``is_trusted`` every peer gets the
    trusted budget and none is preferred: the least recently active upload goes first.
    BERT (SZX 7) is refused with 4.00: RFC 8323 defines it for reliable transports only
    (:class:`StreamBlock1Assembler` takes it).
    """

    accepts_bert = False

    def __init__(self, *, max_body_size: int = 1 << 20, max_transfers: int = 1024,
                 lifetime: float = 247.0, preferred_szx: int = 6,
                 limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS,
                 is_trusted: Callable[[Hashable], bool] | None = None) -> None:
        self.max_body_size = max_body_size
        self.max_transfers = max_transfers
        self.lifetime = lifetime
        self.preferred_szx = preferred_szx
        self.limits = limits
        self.is_trusted = is_trusted
        # Least recently active first, each; untrusted uploads are given up before trusted.
        self._untrusted: Transfers = OrderedDict()
        self._trusted: Transfers = OrderedDict()
        self._usage: dict[Hashable, _PeerUsage] = {}
        #: Bytes buffered in all uploads in progress.
        self.buffered = 0
        #: Uploads given up to make room for others (not counting expiry).
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._untrusted) + len(self._trusted)

    def feed(self, request: Message, now: float) -> Message:
        """Returns the complete request (the same object, payload replaced) once the last
        block arrived; otherwise a response to send now (2.31, 4.00, 4.08, 4.13, 5.03)."""
        block = request.block1
        assert block is not None
        self._expire(now)
        if block.szx == BERT_SZX and not self.accepts_bert:
            return _block_response(request, Code.BAD_REQUEST,
                                   "BERT (SZX 7) needs a reliable transport")
        key = request_key(request)
        if block.num == 0:
            self._discard(key)  # a new upload to the same resource starts over
            trusted = self.is_trusted is not None and self.is_trusted(request.remote)
            size1 = request.size1
            if size1 is not None and size1 > self._body_limit(trusted):
                return self._too_large(request, trusted)
            if not block.more:
                return request
            started = self._start(key, request.remote, trusted, now)
            if started is None:
                return self._busy(request)
            asm = started
        else:
            found = self._untrusted.get(key) or self._trusted.get(key)
            if found is None:
                return _block_response(request, Code.REQUEST_ENTITY_INCOMPLETE,
                                       f"no transfer in progress for block {block.num}")
            asm = found
        if block.szx == BERT_SZX:
            offset = block.num * 1024
        else:
            offset = block.offset
            if block.more and len(request.payload) != block.size:
                self._discard(key)
                return _block_response(request, Code.BAD_REQUEST,
                                       f"block {block.num} carries {len(request.payload)} "
                                       f"bytes, not {block.size}")
        if offset != len(asm.body):
            self._discard(key)
            return _block_response(request, Code.REQUEST_ENTITY_INCOMPLETE,
                                   f"block {block.num} starts at {offset}, expected "
                                   f"{len(asm.body)}")
        refusal = self._reserve(key, asm, offset, len(request.payload), request)
        if refusal is not None:
            return refusal
        asm.body += request.payload
        asm.deadline = now + self.lifetime
        (self._trusted if asm.trusted else self._untrusted).move_to_end(key)
        if block.more:
            szx = min(block.szx, self.preferred_szx)
            resp = request.response(Code.CONTINUE)
            resp.block1 = BlockValue(block.num, True, szx)
            return resp
        self._discard(key)
        request.payload = bytes(asm.body)
        return request

    # -- budgets --------------------------------------------------------------------------

    def _peer_limit(self, trusted: bool) -> int:
        return self.limits.peer_limit(trusted or self.is_trusted is None)

    def _body_limit(self, trusted: bool) -> int:
        return min(self.max_body_size, self._peer_limit(trusted))

    def _start(self, key: tuple[Hashable, ...], peer: Hashable, trusted: bool,
               now: float) -> _Assembly | None:
        """A new upload, within the per-peer and total counts; None if there is no room."""
        usage = self._usage.get(peer)
        if usage is not None and usage.transfers >= self.limits.peer_transfers:
            self._evict_oldest(lambda a: a.peer == peer, self._untrusted, self._trusted)
        if len(self) >= self.max_transfers and not self._evict_oldest(None, self._untrusted):
            # Trusted uploads are never given up for others: that is what trust buys.
            return None
        usage = self._usage.get(peer)
        if usage is None:
            usage = self._usage[peer] = _PeerUsage()
        asm = _Assembly(peer, trusted, now + self.lifetime)
        (self._trusted if trusted else self._untrusted)[key] = asm
        usage.transfers += 1
        return asm

    def _reserve(self, key: tuple[Hashable, ...], asm: _Assembly, offset: int, size: int,
                 request: Message) -> Message | None:
        """Make room for ``size`` more bytes of ``asm``, or the answer refusing them."""
        if offset + size > self._body_limit(asm.trusted):
            self._discard(key)
            return self._too_large(request, asm.trusted)
        usage = self._usage[asm.peer]
        if usage.bytes + size > self._peer_limit(asm.trusted):
            # The peer's other uploads hold the rest of its budget.
            self._discard(key)
            return self._too_large(request, asm.trusted)
        budget = self.limits.transport_bytes
        while self.buffered + size > budget:
            if not self._evict_oldest(lambda a: a is not asm, self._untrusted):
                self._discard(key)
                return self._busy(request)
        usage.bytes += size
        self.buffered += size
        return None

    def _evict_oldest(self, which: Callable[[_Assembly], bool] | None,
                      *tables: Transfers) -> bool:
        """Give up the least recently active upload in ``tables`` that ``which`` accepts
        (None: any); False if there is none."""
        for transfers in tables:
            for key, asm in transfers.items():
                if which is None or which(asm):
                    self._discard(key)
                    self.evicted += 1
                    return True
        return False

    def _busy(self, request: Message) -> Message:
        resp = _block_response(request, Code.SERVICE_UNAVAILABLE,
                               "reassembly buffers are full")
        resp.set_option(O.MAX_AGE, encode_uint(RETRY_AFTER))
        return resp

    def _discard(self, key: tuple[Hashable, ...]) -> None:
        asm = self._untrusted.pop(key, None) or self._trusted.pop(key, None)
        if asm is None:
            return
        usage = self._usage[asm.peer]
        usage.bytes -= len(asm.body)
        usage.transfers -= 1
        if usage.transfers == 0:
            del self._usage[asm.peer]
        self.buffered -= len(asm.body)

    def _too_large(self, request: Message, trusted: bool) -> Message:
        limit = self._body_limit(trusted)
        resp = _block_response(request, Code.REQUEST_ENTITY_TOO_LARGE,
                               f"request body limit is {limit} bytes")
        resp.size1 = limit
        return resp

    def _expire(self, now: float) -> None:
        for transfers in (self._untrusted, self._trusted):
            while transfers:
                key, asm = next(iter(transfers.items()))
                if asm.deadline > now:
                    break
                self._discard(key)


class _Representation:
    __slots__ = ("deadline", "response")

    def __init__(self, response: Message, deadline: float) -> None:
        self.response = response
        self.deadline = deadline


class Block2Server:
    """Serves large responses block by block from one stored representation."""

    accepts_bert = False

    def __init__(self, *, max_entries: int = 1024, lifetime: float = 60.0,
                 preferred_szx: int = 6) -> None:
        self.max_entries = max_entries
        self.lifetime = lifetime
        self.preferred_szx = preferred_szx
        self._cache: OrderedDict[tuple[Hashable, ...], _Representation] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def cached_block(self, request: Message, now: float) -> Message | None:
        """The requested later block of a stored representation, if there is one (or the
        4.00 refusing a BERT block on a datagram transport)."""
        block = request.block2
        if block is None:
            return None
        if block.szx == BERT_SZX and not self.accepts_bert:
            return _block_response(request, Code.BAD_REQUEST,
                                   "BERT (SZX 7) needs a reliable transport")
        if block.num == 0:
            return None
        rep = self._cache.get(request_key(request))
        if rep is None or rep.deadline <= now:
            return None
        return self._slice(request, rep.response, block)

    def needs_slicing(self, request: Message, response: Message) -> bool:
        """False for a response that carries Block2 already: its resource serves its own
        blocks (a firmware image, where the server follows each block a device fetches)
        and nothing is cached for it here."""
        return (request.block2 is not None
                or len(response.payload) > 1 << (self.preferred_szx + 4)
                ) and response.get_option(O.BLOCK2) is None

    def serve(self, request: Message, response: Message, now: float) -> Message:
        """Slice ``response`` as ``request`` asks (or as the server prefers), remembering the
        full representation when more blocks will be asked for."""
        block = request.block2
        if block is None:
            block = BlockValue(0, False, self.preferred_szx)
        elif block.szx > self.preferred_szx and block.szx != BERT_SZX:
            block = BlockValue(block.num * (block.size >> (self.preferred_szx + 4)), False,
                               self.preferred_szx)
        if len(response.payload) > block.size and response.etag is None:
            response.etag = zlib.crc32(response.payload).to_bytes(4, "big")
        if len(response.payload) > block.size:
            key = request_key(request)
            self._cache[key] = _Representation(response, now + self.lifetime)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return self._slice(request, response, block)

    def _slice(self, request: Message, full: Message, block: BlockValue) -> Message:
        size = block.size
        szx = block.szx if block.szx != BERT_SZX else 6
        start = block.num * size
        payload = full.payload
        if start >= len(payload) and not (start == 0 and not payload):
            return _block_response(request, Code.BAD_OPTION,
                                   f"block {block.num} is beyond the {len(payload)}-byte body")
        part = Message(MessageType.ACK, full.code, 0, request.token,
                       [o for o in full.options if o[0] not in (O.BLOCK2, O.SIZE2)],
                       payload[start:start + size], request.remote)
        more = start + size < len(payload)
        part.block2 = BlockValue(block.num, more, szx)
        if block.num == 0 or request.get_option(O.SIZE2) is not None:
            part.size2 = len(payload)
        return part


class Block1Sender:
    """Client side of a Block1 upload: yields block requests, adapts to the server's size."""

    def __init__(self, request: Message, szx: int = 6) -> None:
        self.template = request
        self.body = request.payload
        self.szx = szx
        self.offset = 0
        self.num = 0

    def next_request(self) -> Message:
        size = 1 << (self.szx + 4)
        chunk = self.body[self.offset:self.offset + size]
        more = self.offset + size < len(self.body)
        req = Message(self.template.mtype, self.template.code, 0, self.template.token,
                      [o for o in self.template.options if o[0] not in (O.BLOCK1, O.SIZE1)],
                      chunk, self.template.remote)
        req.block1 = BlockValue(self.offset // size, more, self.szx)
        if self.offset == 0:
            req.size1 = len(self.body)
        return req

    def on_response(self, response: Message) -> bool:
        """Record the answer to the last block; True when the upload is finished (the
        response is the final one), False when the next block should be sent."""
        if response.code == Code.CONTINUE:
            ack = response.block1
            size = 1 << (self.szx + 4)
            self.offset += size
            if ack is not None and ack.szx < self.szx:
                # Late negotiation: the server asked for smaller blocks (RFC 7959 2.5).
                self.szx = ack.szx
            if self.offset >= len(self.body):
                raise BlockwiseError("server asked for a block past the end of the body")
            return False
        if response.code == Code.REQUEST_ENTITY_TOO_LARGE and self.offset == 0:
            ack = response.block1
            if ack is not None and ack.szx < self.szx:
                self.szx = ack.szx
                return False
        return True


class Block2Collector:
    """Client side of a Block2 download."""

    def __init__(self, request: Message, first: Message) -> None:
        block = first.block2
        assert block is not None
        self.request = request
        self.first = first
        self.etag = first.etag
        self.body = bytearray(first.payload)
        self.szx = block.szx if block.szx != BERT_SZX else 6
        self.more = block.more
        self.max_size = 1 << 24

    def next_request(self) -> Message:
        size = 1 << (self.szx + 4)
        num = len(self.body) // size
        req = Message(self.request.mtype, self.request.code, 0, b"",
                      [o for o in self.request.options
                       if o[0] not in (O.BLOCK2, O.OBSERVE, O.BLOCK1, O.SIZE1)],
                      self.request.payload if self.request.code == Code.FETCH else b"",
                      self.request.remote)
        req.block2 = BlockValue(num, False, self.szx)
        return req

    def add(self, response: Message) -> None:
        if not 64 <= response.code < 96:
            raise BlockwiseError(f"block request failed with {response.code >> 5}."
                                 f"{response.code & 31:02d}")
        block = response.block2
        if block is None:
            raise BlockwiseError("block response without Block2 option")
        if self.etag is not None and response.etag != self.etag:
            raise BlockwiseError("representation changed during block-wise transfer")
        if block.offset != len(self.body):
            raise BlockwiseError(f"block {block.num} at {block.offset}, expected "
                                 f"{len(self.body)}")
        self.body += response.payload
        if len(self.body) > self.max_size:
            raise BlockwiseError("response body exceeds the client's limit")
        self.more = block.more
        if block.szx < self.szx:
            self.szx = block.szx

    def result(self) -> Message:
        out = self.first.copy()
        out.payload = bytes(self.body)
        out.remove_option(O.BLOCK2)
        return out

