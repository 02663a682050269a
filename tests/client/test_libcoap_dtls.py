"""The client's coaps:// transport, configured from its Security object, against libcoap's
GnuTLS server (a third-party DTLS peer). libcoap's example server has no /rd, so a Register
that crosses the DTLS session comes back as a CoAP error code; with the wrong key nothing
comes back at all."""

from __future__ import annotations

from aiolwm2m.client import ClientConfig, LwM2MClient, RegistrationFailed, RetryPolicy
from aiolwm2m.security.credentials import PskCredentials

from ..security.libcoap import coap_server, requires_libcoap
from .conftest import FAST

KEY = b"secretPSK-interop"


async def first_failure(port: int, key: bytes) -> RegistrationFailed:
    client = LwM2MClient(ClientConfig.development(
        "interop-dev", f"coaps://127.0.0.1:{port}", host="127.0.0.1", transmission=FAST,
        request_timeout=2.0, development_security=PskCredentials(b"interop-dev", key),
        retry=RetryPolicy(initial=5.0, jitter=0.0)))
    stream = client.events.stream()
    await client.start()
    try:
        failed = await stream.until(RegistrationFailed, timeout=10)
        assert isinstance(failed, RegistrationFailed)
        return failed
    finally:
        await client.stop(deregister=False)


@requires_libcoap
async def test_register_crosses_a_dtls_psk_session_with_libcoap() -> None:
    async with coap_server("coap-server-gnutls", ["-k", KEY.decode()]) as port:
        answered = await first_failure(port, KEY)
        assert "Register rejected with 4." in answered.reason, answered.reason
        silent = await first_failure(port, b"another key......")
        assert "rejected with" not in silent.reason, silent.reason
