"""What the firmware service refuses, each mapped once to an HTTP status at the REST edge."""

from __future__ import annotations


class FirmwareError(Exception):
    """Base class; the message says what was wrong, for the operator."""


class BadImage(FirmwareError):
    """An upload that is not what it claims (size, sha256) or has invalid metadata."""


class ImageTooLarge(FirmwareError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"firmware image larger than {limit} bytes")
        self.limit = limit


class NotFound(FirmwareError):
    pass


class Conflict(FirmwareError):
    """The request contradicts what exists: an image in use, a campaign in a final state."""


class BadRequest(FirmwareError):
    """Invalid campaign or update parameters."""
