"""The datagrams between an emulated UE and the SCEF emulator's UE side (sans-IO).

In a real network a device reaches the SCEF over the radio, the MME and T6a; the emulator
replaces all of that with one UDP socket. Each datagram is one frame::

    0      version (1)
    1      kind
    2      length of the UE's identity (1..255)
    3..    the identity: its External Identifier (local@domain) or MSISDN (digits)
    ...    the body of the kind

======== ===== ======================================================================
kind     value body
======== ===== ======================================================================
ATTACH   1     UE -> SCEF: a JSON object, ``{"groups": [External Group Ids]}``: the UE
               is reachable (its PDN connection is up); what the HSS would know of its
               group memberships travels with it
ATTACHED 2     SCEF -> UE: JSON, what the PCO would carry: ``maximumPacketSize`` (bits),
               ``apnRateControl`` (uplink packets per ``uplinkTimeUnit``, 0 none) and
               ``servingPlmnRateControl``
DETACH   3     UE -> SCEF: empty; the UE enters power saving, the SCEF buffers for it
MO_DATA  4     UE -> SCEF: RDS UE port, RDS SCEF port (one byte each, 255: none), data
MT_DATA  5     SCEF -> UE: the same layout
REJECT   6     SCEF -> UE: JSON ``{"cause": text, "retryAfter": seconds}``: an MO packet
               was not taken (rate control, too large, no configuration)
======== ===== ======================================================================

Several UEs may share one socket (the simulator): frames name their UE, and the SCEF
answers to the address that UE last attached from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

VERSION: Final = 1
ATTACH, ATTACHED, DETACH, MO_DATA, MT_DATA, REJECT = 1, 2, 3, 4, 5, 6
KIND_NAMES: Final = {ATTACH: "ATTACH", ATTACHED: "ATTACHED", DETACH: "DETACH",
                     MO_DATA: "MO_DATA", MT_DATA: "MT_DATA", REJECT: "REJECT"}
NO_PORT: Final = 255
#: Largest JSON body of a control frame.
MAX_CONTROL_BODY: Final = 4096
MAX_GROUPS: Final = 32


class UeLinkError(ValueError):
    """A datagram that is not a well-formed UE-link frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    ue: str
    #: ATTACH / ATTACHED / REJECT: the decoded JSON object
    control: dict[str, Any] = field(default_factory=dict)
    #: MO_DATA / MT_DATA: the RDS ports (None when absent) and the non-IP data
    port_ue: int | None = None
    port_scef: int | None = None
    data: bytes = b""


def encode(frame: Frame) -> bytes:
    ident = frame.ue.encode("utf-8")
    if not 1 <= len(ident) <= 255:
        raise UeLinkError("the UE identity must be 1 to 255 bytes")
    head = bytes((VERSION, frame.kind, len(ident))) + ident
    if frame.kind in (MO_DATA, MT_DATA):
        ports = bytes((_port_byte(frame.port_ue), _port_byte(frame.port_scef)))
        return head + ports + frame.data
    if frame.kind == DETACH:
        return head
    body = json.dumps(frame.control, separators=(",", ":")).encode()
    if len(body) > MAX_CONTROL_BODY:
        raise UeLinkError("control body too large")
    return head + body


def _port_byte(port: int | None) -> int:
    if port is None:
        return NO_PORT
    if not 0 <= port <= 15:
        raise UeLinkError("RDS ports are 0..15")
    return port


def decode(datagram: bytes) -> Frame:
    if len(datagram) < 4:
        raise UeLinkError("shorter than a frame header")
    version, kind, length = datagram[0], datagram[1], datagram[2]
    if version != VERSION:
        raise UeLinkError(f"version {version} is not {VERSION}")
    if kind not in KIND_NAMES:
        raise UeLinkError(f"unknown frame kind {kind}")
    end = 3 + length
    if length == 0 or end > len(datagram):
        raise UeLinkError("bad identity length")
    try:
        ue = datagram[3:end].decode("utf-8")
    except UnicodeDecodeError:
        raise UeLinkError("the identity is not UTF-8") from None
    body = datagram[end:]
    if kind in (MO_DATA, MT_DATA):
        if len(body) < 2:
            raise UeLinkError("data frame without its ports")
        return Frame(kind, ue, port_ue=_port(body[0]), port_scef=_port(body[1]),
                     data=bytes(body[2:]))
    if kind == DETACH:
        if body:
            raise UeLinkError("DETACH has no body")
        return Frame(kind, ue)
    if len(body) > MAX_CONTROL_BODY:
        raise UeLinkError("control body too large")
    try:
        control = json.loads(body) if body else {}
    except (ValueError, RecursionError):
        raise UeLinkError("control body is not JSON") from None
    if not isinstance(control, dict):
        raise UeLinkError("control body is not a JSON object")
    return Frame(kind, ue, control=control)


def _port(byte: int) -> int | None:
    if byte == NO_PORT:
        return None
    if byte > 15:
        raise UeLinkError(f"RDS port {byte} is not 0..15")
    return byte


def groups_of(frame: Frame) -> tuple[str, ...]:
    """The External Group Identifiers an ATTACH names (bounded, strings only)."""
    raw = frame.control.get("groups", [])
    if not isinstance(raw, list) or len(raw) > MAX_GROUPS:
        raise UeLinkError(f"groups must be a list of at most {MAX_GROUPS} identifiers")
    out = []
    for g in raw:
        if not isinstance(g, str) or not 1 <= len(g) <= 255 or "@" not in g:
            raise UeLinkError("a group is an External Group Identifier (local@domain)")
        out.append(g)
    return tuple(out)


def attach(ue: str, groups: tuple[str, ...] = ()) -> bytes:
    return encode(Frame(ATTACH, ue, control={"groups": list(groups)}))


def mo_data(ue: str, data: bytes, port_ue: int | None = None,
            port_scef: int | None = None) -> bytes:
    return encode(Frame(MO_DATA, ue, port_ue=port_ue, port_scef=port_scef, data=data))


def mt_data(ue: str, data: bytes, port_ue: int | None = None,
            port_scef: int | None = None) -> bytes:
    return encode(Frame(MT_DATA, ue, port_ue=port_ue, port_scef=port_scef, data=data))
