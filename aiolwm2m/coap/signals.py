"""RFC 8323 section 5 signalling messages (codes 7.01-7.05): building and reading them.

Signal option numbers are scoped to their code (option 2 is Max-Message-Size in a CSM,
Custody in a Ping, Alternative-Address in a Release), so each code has its own table. As with
ordinary options, odd numbers are critical: an unknown critical signal option, or a CSM option
whose value cannot be processed, is a reason to abort the connection (section 5.3/5.6), while
unknown elective ones are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .codes import Code
from .errors import CoapError
from .message import Message
from .options import decode_uint, encode_uint

#: What a peer may assume of us until our CSM says otherwise (RFC 8323 section 5.3.1).
BASE_MAX_MESSAGE_SIZE = 1152
# BERT blocks are multiples of this many bytes (RFC 8323 section 6).
BERT_UNIT = 1024


class CsmOption(IntEnum):
    MAX_MESSAGE_SIZE = 2
    BLOCK_WISE_TRANSFER = 4


class PingPongOption(IntEnum):
    CUSTODY = 2


class ReleaseOption(IntEnum):
    ALTERNATIVE_ADDRESS = 2
    HOLD_OFF = 4


class AbortOption(IntEnum):
    BAD_CSM_OPTION = 2


# Per code: option number -> (name, minimum length, maximum length).
_KNOWN: dict[int, dict[int, tuple[str, int, int]]] = {
    Code.CSM: {2: ("Max-Message-Size", 0, 4), 4: ("Block-Wise-Transfer", 0, 0)},
    Code.PING: {2: ("Custody", 0, 0)},
    Code.PONG: {2: ("Custody", 0, 0)},
    Code.RELEASE: {2: ("Alternative-Address", 1, 255), 4: ("Hold-Off", 0, 3)},
    Code.ABORT: {2: ("Bad-CSM-Option", 0, 2)},
}

SIGNAL_NAMES: dict[int, str] = {Code.CSM: "CSM", Code.PING: "Ping", Code.PONG: "Pong",
                Code.RELEASE: "Release", Code.ABORT: "Abort"}


class SignalError(CoapError):
    """A signalling message we cannot process; ``option`` names the offending option."""

    def __init__(self, reason: str, option: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.option = option


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one side of a connection announced in its CSMs (cumulatively)."""

    max_message_size: int = BASE_MAX_MESSAGE_SIZE
    block_wise: bool = False

    @property
    def bert(self) -> bool:
        """Block-Wise-Transfer with a Max-Message-Size above 1152 also announces BERT."""
        return self.block_wise and self.max_message_size > BASE_MAX_MESSAGE_SIZE


BASE_CAPABILITIES = Capabilities()


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    alternative_addresses: tuple[str, ...] = ()
    hold_off: int | None = None
    diagnostic: str = ""


@dataclass(frozen=True, slots=True)
class AbortInfo:
    diagnostic: str = ""
    bad_csm_option: int | None = None


def _diagnostic(msg: Message) -> str:
    return msg.payload.decode("utf-8", "replace")


def check_signal_options(msg: Message) -> None:
    """Raise :class:`SignalError` for an unknown critical option of ``msg``'s code.

    Elective options, known or not, pass; so do critical ones of codes we do not know."""
    known = _KNOWN.get(msg.code, {})
    for number, _ in msg.options:
        if number & 1 and number not in known:
            raise SignalError(f"unknown critical option {number} in a "
                              f"{SIGNAL_NAMES.get(msg.code, 'signal')}", number)


def _valid_length(code: int, number: int, raw: bytes) -> bool:
    spec = _KNOWN[code].get(number)
    return spec is None or spec[1] <= len(raw) <= spec[2]


# -- CSM ------------------------------------------------------------------------------------


def build_csm(capabilities: Capabilities) -> Message:
    msg = Message(0, Code.CSM)
    if capabilities.max_message_size != BASE_MAX_MESSAGE_SIZE:
        msg.options.append((CsmOption.MAX_MESSAGE_SIZE,
                            encode_uint(capabilities.max_message_size)))
    if capabilities.block_wise:
        msg.options.append((CsmOption.BLOCK_WISE_TRANSFER, b""))
    return msg


def parse_csm(msg: Message, previous: Capabilities = BASE_CAPABILITIES) -> Capabilities:
    """The peer's capabilities after ``msg``: options it carries override ``previous``,
    options it leaves out keep their earlier values (CSMs are cumulative)."""
    check_signal_options(msg)
    size = previous.max_message_size
    block_wise = previous.block_wise
    for number, raw in msg.options:
        if not _valid_length(Code.CSM, number, raw):
            raise SignalError(f"CSM option {number} has an invalid length of {len(raw)}", number)
        if number == CsmOption.MAX_MESSAGE_SIZE:
            size = decode_uint(raw)
        elif number == CsmOption.BLOCK_WISE_TRANSFER:
            block_wise = True
    return Capabilities(size, block_wise)


# -- Ping / Pong ----------------------------------------------------------------------------


def build_ping(token: bytes, custody: bool = False) -> Message:
    return Message(0, Code.PING, token=token,
                   options=[(PingPongOption.CUSTODY, b"")] if custody else [])


def build_pong(token: bytes, custody: bool = False) -> Message:
    return Message(0, Code.PONG, token=token,
                   options=[(PingPongOption.CUSTODY, b"")] if custody else [])


def has_custody(msg: Message) -> bool:
    return msg.get_option(PingPongOption.CUSTODY) is not None


# -- Release / Abort ------------------------------------------------------------------------


def build_release(diagnostic: str = "", alternative_address: str | None = None,
                  hold_off: int | None = None) -> Message:
    msg = Message(0, Code.RELEASE, payload=diagnostic.encode())
    if alternative_address is not None:
        msg.options.append((ReleaseOption.ALTERNATIVE_ADDRESS, alternative_address.encode()))
    if hold_off is not None:
        msg.options.append((ReleaseOption.HOLD_OFF, encode_uint(hold_off)))
    return msg


def parse_release(msg: Message) -> ReleaseInfo:
    check_signal_options(msg)
    addresses: list[str] = []
    hold_off: int | None = None
    for number, raw in msg.options:
        if not _valid_length(Code.RELEASE, number, raw):
            continue  # an elective option we cannot use is ignored
        if number == ReleaseOption.ALTERNATIVE_ADDRESS:
            addresses.append(raw.decode("utf-8", "replace"))
        elif number == ReleaseOption.HOLD_OFF:
            hold_off = decode_uint(raw)
    return ReleaseInfo(tuple(addresses), hold_off, _diagnostic(msg))


def build_abort(diagnostic: str, bad_csm_option: int | None = None) -> Message:
    msg = Message(0, Code.ABORT, payload=diagnostic.encode())
    if bad_csm_option is not None:
        msg.options.append((AbortOption.BAD_CSM_OPTION, encode_uint(bad_csm_option)))
    return msg


def parse_abort(msg: Message) -> AbortInfo:
    """What a peer's Abort says; never raises, since the connection ends anyway."""
    bad: int | None = None
    raw = msg.get_option(AbortOption.BAD_CSM_OPTION)
    if raw is not None and len(raw) <= 2:
        bad = decode_uint(raw)
    return AbortInfo(_diagnostic(msg), bad)
