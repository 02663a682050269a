"""The ``h2`` library's connection state machine, with our bounds and settings.

HTTP/2 framing, HPACK and the stream and flow-control state machines are python-hyper's
``h2`` (no hand-written framing here). What changes:

* ``MAX_CLOSED_STREAMS``: h2 remembers how up to 65,536 streams of each connection were
  closed (so that late frames on them are judged right); a peer cycling through streams
  would make that ~6 MB per connection. 512 is plenty for frames still in flight.
* Settings announced at the start: concurrent streams, header list size, the flow-control
  window (see :class:`~.limits.Http2Limits`); no server push.
* Speed: our header blocks are HPACK-encoded without Huffman coding (a few bytes longer,
  and neither end spends its CPU on bit-twiddling), and headers we send are not validated
  again by h2 (we make them); what a peer sends is validated as before.
* Memory: a server holds one of these per device, idle most of the time. h2 keeps every
  setting's value history in a ``collections.deque`` (a 64-slot block each, some 600
  bytes, two dozen of them per connection) and builds a dict of a dozen bound methods per
  connection to dispatch frames, and each HPACK table's entries in another deque;
  :class:`CompactSettings` and :class:`_Entries` keep the same in small lists and the frame
  dispatch looks methods up by name, which takes an idle connection's h2 state from ~17 KB
  to ~5 KB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import ChangedSetting, SettingCodes, Settings
from hpack import Encoder
from hyperframe.frame import (
    AltSvcFrame,
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from .limits import Http2Limits

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


#: Headers whose values differ in every message: sent as literals that are never indexed,
#: so that they neither cost an insertion into the HPACK table nor evict what repeats.
_UNIQUE: Final = frozenset({":path", "lwm2m-message-id", "lwm2m-parts", "lwm2m-observe",
                            "location", "content-length", "lwm2m-unknown"})


class _Entries(list[tuple[bytes, bytes]]):
    """An HPACK dynamic table's entries, newest first, as a list (see :class:`_History`);
    the table holds a few dozen entries at most, so inserting at the front is cheap."""

    __slots__ = ()

    def appendleft(self, entry: tuple[bytes, bytes]) -> None:
        self.insert(0, entry)


class _PlainEncoder(Encoder):
    """HPACK without Huffman coding (RFC 7541 5.2 leaves the choice to the encoder)."""

    def encode(self, headers: Iterable[Any], huffman: bool = True) -> bytes:
        return super().encode([(h[0], h[1], True) if h[0] in _UNIQUE else h
                               for h in headers], huffman=False)


class _History(list[int | None]):
    """A setting's value history (current value first) as a plain list: what h2 asks of
    its deque (``[0]``, ``append``, ``popleft``, ``len``) at a tenth of the memory."""

    __slots__ = ()

    def popleft(self) -> int | None:
        return self.pop(0)


class CompactSettings(Settings):
    def __init__(self, client: bool = True,
                 initial_values: dict[SettingCodes, int] | None = None) -> None:
        super().__init__(client, initial_values)
        self._compact()

    def _compact(self) -> None:
        table: dict[Any, Any] = self._settings
        for key, values in table.items():
            if type(values) is not _History:
                table[key] = _History(values)

    def acknowledge(self) -> dict[SettingCodes | int, ChangedSetting]:
        changed = super().acknowledge()
        self._compact()  # settings first set by the peer arrive as h2's deques
        return changed


#: Frame type -> the name of H2Connection's method for it (h2 keeps bound methods per
#: connection for the same purpose).
_HANDLERS: Final[dict[type, str]] = {
    HeadersFrame: "_receive_headers_frame",
    PushPromiseFrame: "_receive_push_promise_frame",
    SettingsFrame: "_receive_settings_frame",
    DataFrame: "_receive_data_frame",
    WindowUpdateFrame: "_receive_window_update_frame",
    PingFrame: "_receive_ping_frame",
    RstStreamFrame: "_receive_rst_stream_frame",
    PriorityFrame: "_receive_priority_frame",
    GoAwayFrame: "_receive_goaway_frame",
    ContinuationFrame: "_receive_naked_continuation",
    AltSvcFrame: "_receive_alt_svc_frame",
    ExtensionFrame: "_receive_unknown_frame",
}


class _Dispatch:
    """h2's frame dispatch table, looked up on the connection instead of stored in it."""

    __slots__ = ("conn",)

    def __init__(self, conn: H2Connection) -> None:
        self.conn = conn

    def __getitem__(self, kind: type) -> Any:
        return getattr(self.conn, _HANDLERS[kind])


class BoundedH2Connection(H2Connection):
    MAX_CLOSED_STREAMS = 512

    def __init__(self, config: H2Configuration) -> None:
        super().__init__(config)
        self.encoder = _PlainEncoder()
        self.remote_settings = CompactSettings(client=not config.client_side)
        for table in (self.encoder.header_table, self.decoder.header_table):
            table.dynamic_entries = _Entries()  # type: ignore[assignment]

    @property  # type: ignore[override]
    def _frame_dispatch_table(self) -> _Dispatch:
        return _Dispatch(self)

    @_frame_dispatch_table.setter
    def _frame_dispatch_table(self, value: object) -> None:
        """H2Connection.__init__ builds the table: not kept (see _Dispatch)."""


def _config(client_side: bool) -> H2Configuration:
    return H2Configuration(client_side=client_side, header_encoding=None,
                           validate_outbound_headers=False, normalize_outbound_headers=False)


def server_connection(limits: Http2Limits) -> BoundedH2Connection:
    conn = BoundedH2Connection(_config(client_side=False))
    conn.local_settings = CompactSettings(client=False, initial_values={
        SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
        SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list,
        SettingCodes.ENABLE_PUSH: 0,
    })
    # h2 gives its HPACK decoder a new bound only when an acknowledged setting *changes*;
    # ours is the initial value, so it is set here (before the peer's ACK, too).
    conn.decoder.max_header_list_size = limits.max_header_list
    conn.initiate_connection()
    return conn


def client_connection(limits: Http2Limits) -> BoundedH2Connection:
    conn = BoundedH2Connection(_config(client_side=True))
    conn.local_settings = CompactSettings(client=True, initial_values={
        SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
        SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list,
        SettingCodes.ENABLE_PUSH: 0,
    })
    # h2 gives its HPACK decoder a new bound only when an acknowledged setting *changes*;
    # ours is the initial value, so it is set here (before the peer's ACK, too).
    conn.decoder.max_header_list_size = limits.max_header_list
    conn.initiate_connection()
    return conn


def looks_like_http1(data: bytes) -> bool:
    """Whether the first bytes of a connection that should open with the HTTP/2 preface
    are an HTTP/1.x request line instead (``GET / HTTP/1.1``, an h2c Upgrade...)."""
    if PREFACE.startswith(data[:len(PREFACE)]):
        return False
    method, space, _ = data[:16].partition(b" ")
    return bool(space) and method.isalpha() and method.isupper()


_HTTP1_TEXT: Final = (b"LwM2M over HTTP/2 only: h2c with prior knowledge, or TLS with ALPN h2 "
                      b"(RFC 9113)\n")
#: The whole answer to an HTTP/1.x request: a status line a person reading a log or curl's
#: output understands, then the connection closes.
HTTP1_REFUSAL: Final = (
    b"HTTP/1.1 505 HTTP Version Not Supported\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
    + b"Content-Length: %d\r\n\r\n" % len(_HTTP1_TEXT) + _HTTP1_TEXT)
