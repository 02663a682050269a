"""Block-wise transfers on reliable transports (RFC 8323 section 6), both roles, without I/O.

On a stream the 1152-byte datagram limit is gone: a message only has to fit the receiver's
Max-Message-Size. So a response that fits goes whole, without Block2; one that does not goes
in BERT blocks (SZX 7, a multiple of 1024 bytes per block, as many as fit) when both CSMs
announced BERT, and in ordinary 1024-byte blocks otherwise. The classes here extend the
datagram ones in :mod:`.blockwise` with that choice; ``PeerLimits`` tells them, for a request's
``remote``, the peer's Max-Message-Size and whether BERT was agreed on its connection.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from .block import BERT_SZX, BlockValue
from .blockwise import Block1Assembler, Block2Collector, Block2Server, BlockwiseError
from .codes import Code, MessageType
from .message import Message
from .options import OptionNumber as O
from .reassembly_limits import DEFAULT_REASSEMBLY_LIMITS, ReassemblyLimits
from .signals import BERT_UNIT
from .tcp_framing import frame_size

PeerLimits = Callable[[Hashable], tuple[int, bool]]

# Room left for what is added after sizing: Block2/Size2/Observe options, token changes and a
# longer length header. Sizing errs on the small side, never the large one.
_SLACK = 24


def payload_room(limit: int, msg: Message) -> int:
    """How many payload bytes fit in a message like ``msg`` under ``limit``."""
    without_payload = frame_size(Message(0, msg.code, 0, msg.token, msg.options))
    return max(0, limit - without_payload - 1 - _SLACK)


def bert_room(limit: int, msg: Message) -> int:
    """The largest BERT payload (a multiple of 1024) that fits under ``limit``; 0 if none."""
    return payload_room(limit, msg) // BERT_UNIT * BERT_UNIT


class StreamBlock2Server(Block2Server):
    """Whole responses when they fit the peer, BERT or 1024-byte blocks when they do not."""

    accepts_bert = True

    def __init__(self, peer_limits: PeerLimits, *, max_entries: int = 1024,
                 lifetime: float = 60.0, preferred_szx: int = 6) -> None:
        super().__init__(max_entries=max_entries, lifetime=lifetime,
                         preferred_szx=preferred_szx)
        self.peer_limits = peer_limits

    def serve(self, request: Message, response: Message, now: float) -> Message:
        if request.block2 is None:
            limit, bert = self.peer_limits(request.remote)
            if payload_room(limit, response) >= len(response.payload):
                return response
            if bert and bert_room(limit, response) >= 2 * BERT_UNIT:
                # The server may answer with BERT right away (RFC 8323 section 6, Figure 13).
                bert_request = request.copy()
                bert_request.block2 = BlockValue(0, False, BERT_SZX)
                return super().serve(bert_request, response, now)
        return super().serve(request, response, now)

    def _slice(self, request: Message, full: Message, block: BlockValue) -> Message:
        if block.szx != BERT_SZX:
            return super()._slice(request, full, block)
        limit, bert = self.peer_limits(request.remote)
        room = bert_room(limit, full) if bert else 0
        start = block.num * BERT_UNIT
        payload = full.payload
        if room < BERT_UNIT or start >= len(payload):
            # No BERT on this connection (or a block past the end, which the datagram code
            # answers): in control usage SZX 7 reads as SZX 6.
            return super()._slice(request, full, BlockValue(block.num, False, 6))
        part = Message(MessageType.ACK, full.code, 0, request.token,
                       [o for o in full.options if o[0] not in (O.BLOCK2, O.SIZE2)],
                       payload[start:start + room], request.remote)
        part.block2 = BlockValue(block.num, start + room < len(payload), BERT_SZX)
        if block.num == 0 or request.get_option(O.SIZE2) is not None:
            part.size2 = len(payload)
        return part


class StreamBlock1Assembler(Block1Assembler):
    """Keeps a BERT upload in BERT: 2.31 Continue echoes SZX 7 where BERT was agreed. The
    datagram assembler's byte budgets (``limits``, ``is_trusted``) apply unchanged: a
    connection proves its address, not that its uploads deserve memory."""

    accepts_bert = True

    def __init__(self, peer_limits: PeerLimits, *, max_body_size: int = 1 << 20,
                 max_transfers: int = 1024, lifetime: float = 247.0,
                 preferred_szx: int = 6, limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS,
                 is_trusted: Callable[[Hashable], bool] | None = None) -> None:
        super().__init__(max_body_size=max_body_size, max_transfers=max_transfers,
                         lifetime=lifetime, preferred_szx=preferred_szx, limits=limits,
                         is_trusted=is_trusted)
        self.peer_limits = peer_limits

    def feed(self, request: Message, now: float) -> Message:
        result = super().feed(request, now)
        block = request.block1
        if (result is not request and result.code == Code.CONTINUE and block is not None
                and block.szx == BERT_SZX and self.peer_limits(request.remote)[1]):
            result.block1 = BlockValue(block.num, True, BERT_SZX)
        return result


class StreamBlock1Sender:
    """Client side of an upload that does not fit one message: BERT chunks of
    ``chunk_size`` (a multiple of 1024) with ``szx`` 7, or ordinary blocks with ``szx`` 0-6.
    The server may ask for smaller blocks in its 2.31 or 4.13 answers."""

    def __init__(self, request: Message, szx: int, chunk_size: int | None = None) -> None:
        self.template = request
        self.body = request.payload
        self.szx = szx
        self.chunk_size = chunk_size if szx == BERT_SZX and chunk_size else 1 << (szx + 4)
        self.offset = 0
        self._sent = 0

    def next_request(self) -> Message:
        chunk = self.body[self.offset:self.offset + self.chunk_size]
        unit = BERT_UNIT if self.szx == BERT_SZX else self.chunk_size
        req = Message(self.template.mtype, self.template.code, 0, self.template.token,
                      [o for o in self.template.options if o[0] not in (O.BLOCK1, O.SIZE1)],
                      chunk, self.template.remote)
        req.block1 = BlockValue(self.offset // unit, self.offset + len(chunk) < len(self.body),
                                self.szx)
        if self.offset == 0:
            req.size1 = len(self.body)
        self._sent = len(chunk)
        return req

    def _shrink(self, ack: BlockValue | None) -> bool:
        if ack is None or ack.szx >= self.szx:
            return False
        self.szx = ack.szx
        self.chunk_size = 1 << (ack.szx + 4)
        return True

    def on_response(self, response: Message) -> bool:
        """True when ``response`` is the final answer, False when the next block is due."""
        if response.code == Code.CONTINUE:
            self.offset += self._sent
            self._shrink(response.block1)
            if self.offset >= len(self.body):
                raise BlockwiseError("server asked for a block past the end of the body")
            return False
        return not (response.code == Code.REQUEST_ENTITY_TOO_LARGE and self.offset == 0
                    and self._shrink(response.block1))


class StreamBlock2Collector(Block2Collector):
    """Client side of a download; asks for BERT blocks when ``bert`` was agreed."""

    def __init__(self, request: Message, first: Message, bert: bool) -> None:
        super().__init__(request, first)
        if bert:
            self.szx = BERT_SZX

    def next_request(self) -> Message:
        req = super().next_request()
        if self.szx == BERT_SZX:
            req.block2 = BlockValue(len(self.body) // BERT_UNIT, False, BERT_SZX)
        return req
