"""A started frame must complete in time, and what we accept is bounded (sans-IO)."""

from __future__ import annotations

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.signals import Capabilities, build_csm
from aiolwm2m.coap.tcp_connection import (
    MAX_MAX_MESSAGE_SIZE,
    AbortSent,
    ConnectionState,
    TcpConnection,
    TcpParameters,
)
from aiolwm2m.coap.tcp_framing import encode_tcp

CSM = encode_tcp(build_csm(Capabilities(65536, True)))


def big_put(size: int) -> bytes:
    return encode_tcp(Message.request(Code.PUT, "/big", payload=b"x" * size, token=b"t"))


def test_a_partial_frame_is_aborted_after_the_frame_timeout() -> None:
    conn = TcpConnection(("peer", 1), 0.0, TcpParameters(frame_timeout=5.0))
    frame = big_put(64000)
    assert conn.receive_data(CSM + frame[:60000], 1.0) == []
    assert conn.next_deadline() == 6.0  # 5 s after the frame's first bytes
    # More bytes of the same frame do not restart the clock.
    assert conn.receive_data(frame[60000:62000], 4.0) == []
    assert conn.next_deadline() == 6.0
    conn.handle_timers(5.9)
    assert conn.state is ConnectionState.OPEN
    conn.handle_timers(6.0)
    assert conn.state is ConnectionState.CLOSED
    aborts = [e for e in conn.events if isinstance(e, AbortSent)]
    assert [a.abort.diagnostic for a in aborts] == ["frame not completed within 5s"]


def test_each_new_frame_gets_its_own_time() -> None:
    conn = TcpConnection(("peer", 1), 0.0, TcpParameters(frame_timeout=5.0, csm_timeout=100))
    first, second = big_put(3000), big_put(3000)
    conn.receive_data(CSM + first[:1000], 1.0)
    # The first completes at 4.0 while the second starts: its clock starts at 4.0.
    assert len(conn.receive_data(first[1000:] + second[:10], 4.0)) == 1
    assert conn.next_deadline() == 9.0
    assert len(conn.receive_data(second[10:], 8.0)) == 1
    assert conn.next_deadline() is None  # nothing partial, no other timer
    conn.handle_timers(50.0)
    assert conn.state is ConnectionState.OPEN


def test_without_a_frame_timeout_partial_frames_wait() -> None:
    conn = TcpConnection(("peer", 1), 0.0, TcpParameters(frame_timeout=None))
    conn.receive_data(CSM + big_put(5000)[:100], 1.0)
    assert conn.next_deadline() is None
    conn.handle_timers(1e6)
    assert conn.state is ConnectionState.OPEN


def test_max_message_size_is_bounded() -> None:
    TcpParameters(max_message_size=MAX_MAX_MESSAGE_SIZE)
    with pytest.raises(ValueError, match="memory"):
        TcpParameters(max_message_size=MAX_MAX_MESSAGE_SIZE + 1)
