"""Datagram triage on real ClientHellos produced by GnuTLS."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.security import DtlsClient, PskCredentials, RpkCredentials, TlsClientConnection
from aiolwm2m.security.records import (
    client_hello_random,
    dtls_hello_accepts_server_rpk,
    is_initial_client_hello,
    tls_first_record,
    tls_hello_accepts_server_rpk,
    well_framed,
)


def _first_flight(client: DtlsClient) -> bytes:
    client.start(time.monotonic())
    (hello,) = client.outgoing()
    client.close()
    return hello


def test_client_hello_is_recognised(psk: PskCredentials) -> None:
    hello = _first_flight(DtlsClient(psk))
    assert well_framed(hello)
    assert is_initial_client_hello(hello)
    random = client_hello_random(hello)
    assert random is not None and len(random) == 32
    assert not dtls_hello_accepts_server_rpk(hello)
    # Epoch 1 (encrypted) handshake records are never taken for an initial ClientHello.
    bumped = hello[:3] + b"\x00\x01" + hello[5:]
    assert not is_initial_client_hello(bumped)


def test_rpk_client_hello_lists_raw_public_keys(client_rpk: RpkCredentials,
                                                server_rpk: RpkCredentials) -> None:
    hello = _first_flight(DtlsClient(client_rpk, server_public_key=server_rpk.public_key_der))
    assert dtls_hello_accepts_server_rpk(hello)
    tls = TlsClientConnection(client_rpk, server_public_key=server_rpk.public_key_der)
    tls.start(time.monotonic())
    stream = tls.outgoing()
    tls.close()
    record = tls_first_record(stream)
    assert record is not None and tls_hello_accepts_server_rpk(record)
    assert tls_first_record(stream[:10]) is None


def test_framing_rejects_truncation_and_trailing_bytes(psk: PskCredentials) -> None:
    hello = _first_flight(DtlsClient(psk))
    assert not well_framed(hello[:-1])
    assert not well_framed(hello + b"\x00")
    assert not well_framed(b"\x17\xfe\xfd" + b"\x00" * 8 + b"\xff\xff")  # length > datagram
    assert well_framed(hello + hello)  # two records in one datagram


@given(st.binary(max_size=200))
def test_triage_never_raises_on_garbage(data: bytes) -> None:
    well_framed(data)
    is_initial_client_hello(data)
    client_hello_random(data)
    dtls_hello_accepts_server_rpk(data)
    tls_hello_accepts_server_rpk(data)
