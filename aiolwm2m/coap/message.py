"""The CoAP message object shared by every transport.

Options are kept as ``(number, raw bytes)`` pairs in ascending number order; typed accessors
decode on demand, which keeps the receive path free of work a handler never asks for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, unquote

from .block import BlockValue
from .codes import Code, MessageType, code_str, is_request
from .options import OptionNumber as O
from .options import decode_uint, encode_uint, option_name

RawOption = tuple[int, bytes]
# Plain ints for the per-request option scans: comparing with an IntEnum member costs an
# attribute lookup on the enum class each time.
_URI_PATH, _URI_QUERY = int(O.URI_PATH), int(O.URI_QUERY)


class Message:
    __slots__ = ("code", "mid", "mtype", "options", "payload", "remote", "token")

    def __init__(
        self,
        mtype: int = MessageType.CON,
        code: int = Code.EMPTY,
        mid: int = 0,
        token: bytes = b"",
        options: list[RawOption] | None = None,
        payload: bytes = b"",
        remote: Any = None,
    ) -> None:
        self.mtype = mtype
        self.code = code
        self.mid = mid
        self.token = token
        self.options: list[RawOption] = options if options is not None else []
        self.payload = payload
        self.remote = remote

    # -- construction -------------------------------------------------------------------

    @classmethod
    def request(
        cls,
        method: int,
        path: str | Sequence[str] = (),
        *,
        query: Iterable[str] = (),
        payload: bytes = b"",
        content_format: int | None = None,
        accept: int | None = None,
        observe: int | None = None,
        confirmable: bool = True,
        token: bytes = b"",
    ) -> Message:
        msg = cls(MessageType.CON if confirmable else MessageType.NON, method, token=token,
                  payload=payload)
        msg.uri_path = split_path(path) if isinstance(path, str) else tuple(path)
        q = list(query)
        if q:
            msg.uri_query = q
        if observe is not None:
            msg.observe = observe
        if content_format is not None:
            msg.content_format = content_format
        if accept is not None:
            msg.accept = accept
        return msg

    def response(
        self, code: int, payload: bytes = b"", content_format: int | None = None
    ) -> Message:
        """A response to this request; the message layer fills in type and message ID."""
        resp = Message(MessageType.ACK, code, 0, self.token, [], payload, self.remote)
        if content_format is not None:
            resp.options.append((O.CONTENT_FORMAT, encode_uint(content_format)))
        return resp

    def copy(self) -> Message:
        return Message(self.mtype, self.code, self.mid, self.token, list(self.options),
                       self.payload, self.remote)

    # -- raw option access --------------------------------------------------------------

    def get_option(self, number: int) -> bytes | None:
        for n, v in self.options:
            if n == number:
                return v
            if n > number:
                break
        return None

    def add_option(self, number: int, value: bytes) -> None:
        """Append an occurrence, keeping ascending order and the order of repeats."""
        opts = self.options
        if not opts or opts[-1][0] <= number:
            opts.append((number, value))
            return
        i = len(opts)
        while i > 0 and opts[i - 1][0] > number:
            i -= 1
        opts.insert(i, (number, value))

    def remove_option(self, number: int) -> None:
        self.options = [o for o in self.options if o[0] != number]

    def set_option(self, number: int, value: bytes | None) -> None:
        if any(n == number for n, _ in self.options):
            self.remove_option(number)
        if value is not None:
            self.add_option(number, value)

    def _set_repeated(self, number: int, values: Iterable[bytes]) -> None:
        opts = self.options
        if opts:
            opts = self.options = [o for o in opts if o[0] != number]
        if not opts or opts[-1][0] <= number:
            # The usual case (a fresh response getting its Location-Path): append.
            opts.extend([(number, v) for v in values])
            return
        for v in values:
            self.add_option(number, v)

    def _get_uint(self, number: int) -> int | None:
        raw = self.get_option(number)
        # No uint option is longer than 4 bytes; a longer value is treated as unrecognized
        # (RFC 7252 5.4.3), and is no number: 2,000 bytes of one has no decimal repr.
        return None if raw is None or len(raw) > 4 else decode_uint(raw)

    def _set_uint(self, number: int, value: int | None) -> None:
        self.set_option(number, None if value is None else encode_uint(value))

    # -- typed options ------------------------------------------------------------------

    @property
    def uri_path(self) -> tuple[str, ...]:
        return tuple([v.decode("utf-8", "replace") for n, v in self.options if n == _URI_PATH])

    @uri_path.setter
    def uri_path(self, segments: Sequence[str]) -> None:
        self._set_repeated(O.URI_PATH, (s.encode() for s in segments))

    @property
    def uri_query(self) -> list[str]:
        return [v.decode("utf-8", "replace") for n, v in self.options if n == _URI_QUERY]

    @uri_query.setter
    def uri_query(self, items: Sequence[str]) -> None:
        self._set_repeated(O.URI_QUERY, (s.encode() for s in items))

    @property
    def location_path(self) -> tuple[str, ...]:
        return tuple(v.decode("utf-8", "replace") for n, v in self.options
                     if n == O.LOCATION_PATH)

    @location_path.setter
    def location_path(self, segments: Sequence[str]) -> None:
        self._set_repeated(O.LOCATION_PATH, [s.encode() for s in segments])

    @property
    def location_query(self) -> list[str]:
        return [v.decode("utf-8", "replace") for n, v in self.options
                if n == O.LOCATION_QUERY]

    @location_query.setter
    def location_query(self, items: Sequence[str]) -> None:
        self._set_repeated(O.LOCATION_QUERY, (s.encode() for s in items))

    @property
    def uri_host(self) -> str | None:
        raw = self.get_option(O.URI_HOST)
        return None if raw is None else raw.decode("utf-8", "replace")

    @uri_host.setter
    def uri_host(self, value: str | None) -> None:
        self.set_option(O.URI_HOST, None if value is None else value.encode())

    @property
    def uri_port(self) -> int | None:
        return self._get_uint(O.URI_PORT)

    @uri_port.setter
    def uri_port(self, value: int | None) -> None:
        self._set_uint(O.URI_PORT, value)

    @property
    def content_format(self) -> int | None:
        return self._get_uint(O.CONTENT_FORMAT)

    @content_format.setter
    def content_format(self, value: int | None) -> None:
        self._set_uint(O.CONTENT_FORMAT, value)

    @property
    def accept(self) -> int | None:
        return self._get_uint(O.ACCEPT)

    @accept.setter
    def accept(self, value: int | None) -> None:
        self._set_uint(O.ACCEPT, value)

    @property
    def observe(self) -> int | None:
        return self._get_uint(O.OBSERVE)

    @observe.setter
    def observe(self, value: int | None) -> None:
        self._set_uint(O.OBSERVE, value)

    @property
    def max_age(self) -> int | None:
        return self._get_uint(O.MAX_AGE)

    @max_age.setter
    def max_age(self, value: int | None) -> None:
        self._set_uint(O.MAX_AGE, value)

    @property
    def size1(self) -> int | None:
        return self._get_uint(O.SIZE1)

    @size1.setter
    def size1(self, value: int | None) -> None:
        self._set_uint(O.SIZE1, value)

    @property
    def size2(self) -> int | None:
        return self._get_uint(O.SIZE2)

    @size2.setter
    def size2(self, value: int | None) -> None:
        self._set_uint(O.SIZE2, value)

    @property
    def block1(self) -> BlockValue | None:
        v = self._get_uint(O.BLOCK1)
        return None if v is None else BlockValue.decode(v)

    @block1.setter
    def block1(self, value: BlockValue | None) -> None:
        self._set_uint(O.BLOCK1, None if value is None else value.encode())

    @property
    def block2(self) -> BlockValue | None:
        v = self._get_uint(O.BLOCK2)
        return None if v is None else BlockValue.decode(v)

    @block2.setter
    def block2(self, value: BlockValue | None) -> None:
        self._set_uint(O.BLOCK2, None if value is None else value.encode())

    @property
    def etag(self) -> bytes | None:
        return self.get_option(O.ETAG)

    @etag.setter
    def etag(self, value: bytes | None) -> None:
        self.set_option(O.ETAG, value)

    # -- conveniences -------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The Uri-Path as a percent-encoded string with a leading slash."""
        return "/" + "/".join(quote(s, safe="") for s in self.uri_path)

    def query_params(self) -> dict[str, str]:
        """Uri-Query items as ``key=value`` pairs; a bare ``key`` maps to ``""``."""
        out: dict[str, str] = {}
        for item in self.uri_query:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    @property
    def is_request(self) -> bool:
        return is_request(self.code)

    def __repr__(self) -> str:
        try:
            t = MessageType(self.mtype).name
        except ValueError:
            t = str(self.mtype)
        opts = ", ".join(f"{option_name(n)}={v.hex() if v else ''}" for n, v in self.options)
        return (f"<Message {t} {code_str(self.code)} mid={self.mid} token={self.token.hex()} "
                f"[{opts}] {len(self.payload)}B>")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.mtype == other.mtype and self.code == other.code
                and self.mid == other.mid and self.token == other.token
                and self.options == other.options and self.payload == other.payload)

    __hash__ = None  # type: ignore[assignment]


def split_path(path: str) -> tuple[str, ...]:
    """``/a/b%2Fc`` -> ``("a", "b/c")``; ``/`` and ``""`` -> ``()``; ``/a/`` -> ``("a", "")``.

    The trailing-slash form keeps its empty segment, as RFC 7252 section 6.4 requires.
    """
    p = path[1:] if path.startswith("/") else path
    if not p:
        return ()
    return tuple(unquote(s) for s in p.split("/"))
