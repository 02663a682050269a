"""Object 5, Firmware Update: the State (3) / Update Result (5) machine of the TS.

=================  ==========================================================================
Idle (0)           write Package (0) -> Downloaded; write Package URI (1) -> Downloading
Downloading (1)    download done -> Downloaded; failed -> Idle with the failure's result
Downloaded (2)     execute Update (2) -> Updating
Updating (3)       the update hook succeeded -> Idle, result 1; failed -> Downloaded, result 8
any state          write an empty Package or Package URI, or execute Cancel (10), -> Idle
=================  ==========================================================================

Results: 0 initial, 1 success, 2 not enough flash, 3 out of RAM, 4 connection lost,
5 integrity check failure, 6 unsupported package type, 7 invalid URI, 8 update failed,
9 unsupported protocol, 10 cancelled. Errors are reported through Update Result only; a
write or execute that the current state does not allow is answered 4.05.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from aiolwm2m.coap.errors import MethodNotAllowed
from aiolwm2m.coap.uri import UriError, parse_uri

from ..control import DownloadError
from ..instance import Instance, execute, resource

log = logging.getLogger(__name__)

IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3
(INITIAL, SUCCESS, NOT_ENOUGH_FLASH, OUT_OF_RAM, CONNECTION_LOST, INTEGRITY_FAILURE,
 UNSUPPORTED_PACKAGE, INVALID_URI, UPDATE_FAILED, UNSUPPORTED_PROTOCOL, CANCELLED) = range(11)
COAP, COAPS, HTTP, HTTPS, COAP_TCP, COAP_TLS = range(6)
PULL_ONLY, PUSH_ONLY, BOTH = 0, 1, 2

#: Firmware Update Protocol Support (/5/0/8) values and their schemes: the client pulls
#: over all of them (see ``aiolwm2m.client.firmware_download``).
SCHEMES = {COAP: "coap", COAPS: "coaps", HTTP: "http", HTTPS: "https", COAP_TCP: "coap+tcp",
           COAP_TLS: "coaps+tcp"}

Updater = Callable[[bytes], Awaitable[bool | None]]
Verifier = Callable[[bytes], bool]


class FirmwareUpdateInstance(Instance, object_id=5):
    package = resource(0)
    package_uri = resource(1, default="")
    state = resource(3, default=IDLE)
    update_result = resource(5, default=INITIAL)
    package_name = resource(6)
    package_version = resource(7)
    protocol_support = resource(8, default=dict(enumerate(SCHEMES)))
    delivery_method = resource(9, default=BOTH)

    def __init__(self, iid: int = 0, *, updater: Updater | None = None,
                 verifier: Verifier | None = None, max_package_size: int = 1 << 20,
                 protocols: Iterable[str] | None = None, **values: Any) -> None:
        """``protocols``: the schemes to pull over (default: all six); /5/0/8 says which,
        and a Package URI of another scheme gets Update Result 9."""
        if protocols is not None:
            numbers = {v: k for k, v in SCHEMES.items()}
            chosen = sorted(numbers[p] for p in protocols)
            values.setdefault("protocol_support", dict(enumerate(chosen)))
        super().__init__(iid, **values)
        self.updater = updater
        self.verifier = verifier
        self.max_package_size = max_package_size
        self.image = b""
        self._work: asyncio.Task[None] | None = None

    # -- state ----------------------------------------------------------------------------

    def _move(self, state: int, result: int | None = None) -> None:
        if result is not None and self.get(5) != result:
            self.set(5, result)
        if self.get(3) != state:
            self.set(3, state)

    def _reset(self, result: int = INITIAL) -> None:
        if self._work is not None and not self._work.done():
            self._work.cancel()
        self._work = None
        self.image = b""
        self._move(IDLE, result)

    def _accept_image(self, image: bytes) -> None:
        """A complete package is here (pushed or downloaded): check it, then Downloaded."""
        if len(image) > self.max_package_size:
            self.image = b""
            self._move(IDLE, NOT_ENOUGH_FLASH)
            return
        if self.verifier is not None and not self.verifier(image):
            self.image = b""
            self._move(IDLE, INTEGRITY_FAILURE)
            return
        self.image = image
        self._move(DOWNLOADED, INITIAL)

    # -- push: Package (0) ----------------------------------------------------------------

    @package.on_write
    def _package_written(self, value: bytes) -> None:
        if not value:
            self._reset()
            return
        if self.get(3) != IDLE:
            raise MethodNotAllowed("a package can only be written in the Idle state")
        self._move(DOWNLOADING, INITIAL)
        self._accept_image(value)

    def write_resource(self, node: Any, resource_id: int, *, merge: bool = False) -> None:
        super().write_resource(node, resource_id, merge=merge)
        if resource_id == 0:
            # Package is write-only: the image lives in self.image, not in the tree.
            self._values.pop(0, None)

    # -- pull: Package URI (1) ------------------------------------------------------------

    @package_uri.on_write
    def _uri_written(self, value: str) -> None:
        if not value:
            self._reset()
            return
        if self.get(3) != IDLE:
            raise MethodNotAllowed("a package URI can only be written in the Idle state")
        try:
            parts = urlsplit(value)
            scheme = parts.scheme.lower()
            if scheme in ("coap", "coaps", "coap+tcp", "coaps+tcp"):
                parse_uri(value)
            elif not parts.hostname or parts.port == -1:
                raise ValueError("no host")
        except (UriError, ValueError):
            self._move(IDLE, INVALID_URI)
            return
        supported = {SCHEMES.get(int(p)) for p in (self.get(8) or {}).values()}
        if scheme not in supported:
            self._move(IDLE, UNSUPPORTED_PROTOCOL)
            return
        self._move(DOWNLOADING, INITIAL)
        self._work = _task(self._download(value))

    async def _download(self, uri: str) -> None:
        control = self.control
        try:
            if control is None:
                raise DownloadError(CONNECTION_LOST, "the client is not running")
            image = await control.download(uri, self.max_package_size)
        except DownloadError as e:
            log.info("firmware download from %s failed: %s", uri, e.reason)
            self._move(IDLE, e.result)
            return
        if self.get(3) == DOWNLOADING:
            self._accept_image(image)

    # -- Update (2) and Cancel (10) -------------------------------------------------------

    @execute(2)
    def update(self, arguments: str) -> None:
        if self.get(3) != DOWNLOADED:
            raise MethodNotAllowed("Update needs a downloaded package (State 2)")
        self._move(UPDATING)
        self._work = _task(self._install(self.image))

    async def _install(self, image: bytes) -> None:
        ok: bool | None = True
        try:
            if self.updater is not None:
                outcome = self.updater(image)
                ok = await outcome if inspect.isawaitable(outcome) else outcome
        except Exception:
            log.exception("firmware update hook failed")
            ok = False
        if ok is False:
            self._move(DOWNLOADED, UPDATE_FAILED)
            return
        self.image = b""
        self._move(IDLE, SUCCESS)

    @execute(10)
    def cancel(self, arguments: str) -> None:
        if self.get(3) == UPDATING:
            raise MethodNotAllowed("an update in progress cannot be cancelled")
        if self.get(3) == IDLE:
            return
        self._reset(CANCELLED)


def _task(work: Awaitable[None]) -> asyncio.Task[None]:
    task = asyncio.ensure_future(work)
    task.add_done_callback(_log_failure)
    return task


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("firmware task failed", exc_info=task.exception())
