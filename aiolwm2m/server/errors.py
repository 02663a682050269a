"""Errors raised by the server's Python API."""

from __future__ import annotations


class ServerError(Exception):
    pass


class NotRegistered(ServerError, KeyError):
    """No client is registered under that endpoint name."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        self.endpoint = endpoint

    def __str__(self) -> str:
        return f"no registration for endpoint {self.endpoint!r}"


class DeviceSleeping(ServerError):
    """The client is in queue mode and asleep; the request was queued (see ``request_id``)."""

    def __init__(self, endpoint: str, request_id: str) -> None:
        super().__init__(f"{endpoint} is sleeping; request {request_id} is queued")
        self.endpoint = endpoint
        self.request_id = request_id


class RequestFailed(ServerError):
    """The request could not be delivered or its response not understood."""
