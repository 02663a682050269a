"""Why the broker refuses a request, independent of CoAP; the resources map each to its
response code (and option: Size1, Max-Age) in one place, ``resources.error_reply``."""

from __future__ import annotations


class BrokerError(Exception):
    """Base of the broker's refusals; the text is the diagnostic the requester gets."""


class TopicNotFound(BrokerError):
    pass


class NoData(BrokerError):
    """The topic is half created: nothing published yet (or its data was deleted)."""


class LimitReached(BrokerError):
    """A cap of :class:`aiolwm2m.pubsub.limits.BrokerLimits` (topics) is reached."""


class ValueTooLarge(BrokerError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"representation larger than {limit} bytes")
        self.limit = limit


class WrongContentFormat(BrokerError):
    def __init__(self, expected: int) -> None:
        super().__init__(f"this topic takes content format {expected}")
        self.expected = expected


class RateLimited(BrokerError):
    def __init__(self, retry_after: int, what: str = "publishing") -> None:
        super().__init__(f"{what} too fast")
        self.retry_after = retry_after


class StoreFailed(BrokerError):
    """The change could not be made durable; nothing of it remains."""
