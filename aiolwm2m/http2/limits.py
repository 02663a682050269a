"""What one HTTP/2 peer may make the server hold, and for how long.

Connection counts, the TLS handshake deadline and the idle timeout of connections that carry
no registration are those of every stream listener
(:class:`~aiolwm2m.transport.stream_limits.StreamLimits`); these are HTTP/2's own: bodies,
streams, header blocks, flow-control windows, requests in flight to one device.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Http2Limits:
    #: Largest request body (413 beyond): a Register's object list, a Send, an answer. As
    #: much as block-wise reassembly lets a registered CoAP peer hold.
    max_body: int = 1 << 20
    #: Bodies being received on one connection at once: past it the connection's
    #: flow-control window is not reopened until requests complete, so the peer waits.
    connection_body_budget: int = 2 << 20
    #: SETTINGS_MAX_CONCURRENT_STREAMS: a device needs its downlink stream and a few
    #: requests and answers at a time.
    max_concurrent_streams: int = 32
    #: SETTINGS_MAX_HEADER_LIST_SIZE (HPACK-decoded bytes of one header block).
    max_header_list: int = 16 << 10
    #: A request whose body is not complete this long after its headers is reset (408):
    #: a slowloris holds a stream and its buffer for no longer.
    request_timeout: float = 30.0
    #: Requests to one device in flight (sent, not answered) at once; beyond, 5.03.
    downlink_pending: int = 64
    #: How long a request to a device waits for its answer when the caller gives no
    #: timeout (CoAP's MAX_TRANSMIT_WAIT).
    answer_timeout: float = 93.0
    #: Largest downlink envelope item a device is sent or our client accepts.
    max_envelope: int = 1 << 20
    #: Answers on one answer stream that the server cannot take (they answer no request
    #: or observation of ours, or are malformed) before it closes that stream: each costs
    #: the server a rejection written back.
    unmatched_answers: int = 64
    #: Streams a peer may reset (or have refused) per second on average before its
    #: connection is closed: the HTTP/2 "rapid reset" pattern costs the server work per
    #: stream and the peer almost nothing.
    resets_per_second: float = 50.0
    #: The burst allowed above that rate.
    reset_burst: int = 200
    #: Devices a Bootstrap-Server may have requests waiting for (their downlink stream not
    #: open yet) at once; beyond, a request fails at once as for a sleeping device.
    awaited_downlinks: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_body", "connection_body_budget", "max_concurrent_streams",
                     "max_header_list", "downlink_pending", "max_envelope", "reset_burst",
                     "unmatched_answers", "awaited_downlinks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("request_timeout", "answer_timeout", "resets_per_second"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.connection_body_budget < self.max_body:
            raise ValueError("connection_body_budget must hold at least one max_body")


DEFAULT_HTTP2_LIMITS = Http2Limits()
