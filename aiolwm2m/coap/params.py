"""Transmission parameters (RFC 7252 section 4.8) and the times derived from them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TransmissionParameters:
    ack_timeout: float = 2.0
    ack_random_factor: float = 1.5
    max_retransmit: int = 4
    nstart: int = 1
    default_leisure: float = 5.0
    probing_rate: float = 1.0
    max_latency: float = 100.0
    # How long a request we sent may wait for a separate response once it was acknowledged;
    # RFC 7252 leaves this open, and a device behind a slow link can take minutes.
    response_timeout: float = 93.0
    # When a request handler has not answered after this long, the request is acknowledged
    # with an empty ACK and the response follows separately, before the peer's first
    # retransmission (which comes after at least ack_timeout).
    empty_ack_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.ack_timeout <= 0:
            raise ValueError("ack_timeout must be positive")
        if self.ack_random_factor < 1.0:
            raise ValueError("ack_random_factor must be at least 1.0")
        if self.max_retransmit < 0:
            raise ValueError("max_retransmit must be non-negative")

    @property
    def max_transmit_span(self) -> float:
        return self.ack_timeout * ((1 << self.max_retransmit) - 1) * self.ack_random_factor

    @property
    def max_transmit_wait(self) -> float:
        return self.ack_timeout * ((1 << (self.max_retransmit + 1)) - 1) * self.ack_random_factor

    @property
    def processing_delay(self) -> float:
        return self.ack_timeout

    @property
    def max_rtt(self) -> float:
        return 2 * self.max_latency + self.processing_delay

    @property
    def exchange_lifetime(self) -> float:
        return self.max_transmit_span + 2 * self.max_latency + self.processing_delay

    @property
    def non_lifetime(self) -> float:
        return self.max_transmit_span + self.max_latency


DEFAULT_PARAMETERS = TransmissionParameters()
