"""Block-wise transfers (RFC 7959) for both roles, as state machines without I/O.

Server side: :class:`Block1Assembler` rebuilds request bodies, :class:`Block2Server` slices
large responses and keeps their representation for the follow-up block requests.
Client side: :class:`Block1Sender` splits a request body, :class:`Block2Collector` gathers a
response body and says which request to send next.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Hashable

from .block import BERT_SZX, BlockValue
from .codes import Code, MessageType
from .errors import CoapError
from .message import Message
from .options import OptionNumber as O

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


def _block_response(request: Message, code: int, diagnostic: str) -> Message:
    return request.response(code, diagnostic.encode(), 0 if diagnostic else None)


class _Assembly:
    __slots__ = ("body", "deadline", "szx")

    def __init__(self, deadline: float) -> None:
        self.body = bytearray()
        self.deadline = deadline
        self.szx = 6


class Block1Assembler:
    """Reassembles Block1 request bodies, bounded in size, count and age."""

    def __init__(self, *, max_body_size: int = 1 << 20, max_transfers: int = 512,
                 lifetime: float = 247.0, preferred_szx: int = 6) -> None:
        self.max_body_size = max_body_size
        self.max_transfers = max_transfers
        self.lifetime = lifetime
        self.preferred_szx = preferred_szx
        self._transfers: OrderedDict[tuple[Hashable, ...], _Assembly] = OrderedDict()

    def __len__(self) -> int:
        return len(self._transfers)

    def feed(self, request: Message, now: float) -> Message:
        """Returns the complete request (the same object, payload replaced) once the last
        block arrived; otherwise a response to send now (2.31, 4.08 or 4.13)."""
        block = request.block1
        assert block is not None
        self._expire(now)
        size1 = request.size1
        if size1 is not None and size1 > self.max_body_size:
            return self._too_large(request)
        key = request_key(request)
        if block.num == 0:
            if not block.more:
                self._transfers.pop(key, None)
                return request
            asm = _Assembly(now + self.lifetime)
            self._transfers[key] = asm
            self._transfers.move_to_end(key)
            while len(self._transfers) > self.max_transfers:
                self._transfers.popitem(last=False)
        else:
            found = self._transfers.get(key)
            if found is None:
                return _block_response(request, Code.REQUEST_ENTITY_INCOMPLETE,
                                       f"no transfer in progress for block {block.num}")
            asm = found
        if block.szx == BERT_SZX:
            offset = block.num * 1024
        else:
            offset = block.offset
            if block.more and len(request.payload) != block.size:
                self._transfers.pop(key, None)
                return _block_response(request, Code.BAD_REQUEST,
                                       f"block {block.num} carries {len(request.payload)} "
                                       f"bytes, not {block.size}")
        if offset != len(asm.body):
            self._transfers.pop(key, None)
            return _block_response(request, Code.REQUEST_ENTITY_INCOMPLETE,
                                   f"block {block.num} starts at {offset}, expected "
                                   f"{len(asm.body)}")
        if offset + len(request.payload) > self.max_body_size:
            self._transfers.pop(key, None)
            return self._too_large(request)
        asm.body += request.payload
        asm.deadline = now + self.lifetime
        if block.more:
            szx = min(block.szx, self.preferred_szx)
            resp = request.response(Code.CONTINUE)
            resp.block1 = BlockValue(block.num, True, szx)
            return resp
        del self._transfers[key]
        request.payload = bytes(asm.body)
        return request

    def _too_large(self, request: Message) -> Message:
        resp = _block_response(request, Code.REQUEST_ENTITY_TOO_LARGE,
                               f"request body limit is {self.max_body_size} bytes")
        resp.size1 = self.max_body_size
        return resp

    def _expire(self, now: float) -> None:
        transfers = self._transfers
        while transfers:
            key, asm = next(iter(transfers.items()))
            if asm.deadline > now:
                break
            del transfers[key]


class _Representation:
    __slots__ = ("deadline", "response")

    def __init__(self, response: Message, deadline: float) -> None:
        self.response = response
        self.deadline = deadline


class Block2Server:
    """Serves large responses block by block from one stored representation."""

    def __init__(self, *, max_entries: int = 1024, lifetime: float = 60.0,
                 preferred_szx: int = 6) -> None:
        self.max_entries = max_entries
        self.lifetime = lifetime
        self.preferred_szx = preferred_szx
        self._cache: OrderedDict[tuple[Hashable, ...], _Representation] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def cached_block(self, request: Message, now: float) -> Message | None:
        """The requested later block of a stored representation, if there is one."""
        block = request.block2
        if block is None or block.num == 0:
            return None
        rep = self._cache.get(request_key(request))
        if rep is None or rep.deadline <= now:
            return None
        return self._slice(request, rep.response, block)

    def needs_slicing(self, request: Message, response: Message) -> bool:
        return (request.block2 is not None
                or len(response.payload) > 1 << (self.preferred_szx + 4))

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

