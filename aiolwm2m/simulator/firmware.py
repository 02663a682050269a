"""Simulated devices' firmware updates: Object 5 with pull over coap:// (block-wise, through
the fleet's shared message layer), installation, reboot and re-registration, and failures
injected at chosen rates.

A simulated device keeps no image: it hashes the blocks as they arrive and remembers the
version the image names. Images for simulated devices start with a header line,
``aiolwm2m-sim-firmware <version>\\n`` (:func:`sim_image` makes one); the device reports
that version in /3/0/3 after the update (an image without the header is refused as an
unsupported package type, Update Result 6).

Which devices fail is decided from the device index (the same devices in every run, and on
every attempt, except ``transient_rate``, which fails only a device's first download).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiolwm2m.client.instance import Instance, execute, resource
from aiolwm2m.coap.block import BlockValue
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError, MethodNotAllowed
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.uri import CoapUri, UriError, parse_uri

from .device import REGISTERED, RETRYING, STOPPED, SimDevice

if TYPE_CHECKING:
    from .fleet import Fleet

log = logging.getLogger(__name__)

K_FIRMWARE = 100  # the fleet's request kind for firmware blocks
MAGIC = b"aiolwm2m-sim-firmware "
IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3
(INITIAL, SUCCESS, CONNECTION_LOST, INTEGRITY_FAILURE, UNSUPPORTED_PACKAGE, INVALID_URI,
 UPDATE_FAILED, UNSUPPORTED_PROTOCOL, CANCELLED) = (0, 1, 4, 5, 6, 7, 8, 9, 10)
COAP_PROTOCOL, PULL_ONLY = 0, 0
_RATES = {"download": "download_failure_rate", "update": "update_failure_rate",
          "vanish": "vanish_rate", "old": "old_version_rate", "transient": "transient_rate"}


def sim_image(version: str, size: int, filler: bytes = b"\x5a") -> bytes:
    """An image a simulated device installs as ``version``, ``size`` bytes long."""
    head = MAGIC + version.encode() + b"\n"
    if size < len(head):
        raise ValueError(f"an image for version {version} takes at least {len(head)} bytes")
    return head + (filler * (size - len(head)))[:size - len(head)]


@dataclass(frozen=True)
class SimFirmwareProfile:
    """How simulated devices take a firmware update."""

    #: /3/0/3 before any update.
    version: str = "1.0.0"
    #: Seconds from Execute Update to the reboot.
    install_seconds: float = 0.5
    #: Seconds a reboot takes before the device registers again.
    reboot_seconds: float = 0.2
    #: Fractions of devices whose download fails its integrity check (Update Result 5),
    #: whose installation fails (8), that never come back after Update, that come back
    #: with the old version; and whose first download only is lost (4), to be retried.
    download_failure_rate: float = 0.0
    update_failure_rate: float = 0.0
    vanish_rate: float = 0.0
    old_version_rate: float = 0.0
    transient_rate: float = 0.0
    #: Block size asked for (SZX: 6 is 1024 bytes).
    block_szx: int = 6

    def picked(self, index: int, what: str) -> bool:
        """Whether device ``index`` is one of the ``what`` failures (see _RATES)."""
        rate: float = getattr(self, _RATES[what])
        if rate <= 0:
            return False
        return zlib.crc32(f"{what}:{index}".encode()) % 10000 < rate * 10000


class SimulatedFirmware(Instance, object_id=5):
    """Object 5 of a simulated device: pull over coap:// only."""

    package = resource(0)
    package_uri = resource(1, default="")
    state = resource(3, default=IDLE)
    update_result = resource(5, default=INITIAL)
    protocol_support = resource(8, default={0: COAP_PROTOCOL})
    delivery_method = resource(9, default=PULL_ONLY)

    def __init__(self, fleet: Fleet, device: SimDevice) -> None:
        super().__init__(0)
        self.fleet = fleet
        self.device = device
        self.download: SimDownload | None = None
        self.new_version: str | None = None

    def move(self, state: int, result: int | None = None) -> None:
        if result is not None and self.get(5) != result:
            self.set(5, result)
        if self.get(3) != state:
            self.set(3, state)

    def reset(self, result: int = INITIAL) -> None:
        self.download = None
        self.new_version = None
        self.move(IDLE, result)

    @package.on_write
    def _package_written(self, value: bytes) -> None:
        if value:
            raise MethodNotAllowed("this simulated device pulls its firmware (/5/0/9 = 0)")
        self.reset()

    @package_uri.on_write
    def _uri_written(self, value: str) -> None:
        if not value:
            self.reset()
            return
        if self.get(3) != IDLE:
            raise MethodNotAllowed("a package URI can only be written in the Idle state")
        try:
            uri = parse_uri(value)
        except UriError:
            self.move(IDLE, INVALID_URI)
            return
        if uri.scheme != "coap":
            self.move(IDLE, UNSUPPORTED_PROTOCOL)
            return
        try:
            address = self.fleet.firmware.address_of(uri.host, uri.port)
        except OSError:
            self.move(IDLE, INVALID_URI)
            return
        self.move(DOWNLOADING, INITIAL)
        self.download = SimDownload(self, uri, address)
        self.download.request_next()

    def downloaded(self, digest: str, version: str | None) -> None:
        self.download = None
        profile = self.fleet.profile.firmware
        index = self.device.index
        if version is None:
            self.move(IDLE, UNSUPPORTED_PACKAGE)
        elif profile.picked(index, "download"):
            self.move(IDLE, INTEGRITY_FAILURE)
        else:
            self.new_version = version
            self.move(DOWNLOADED, INITIAL)

    def download_failed(self, result: int) -> None:
        self.download = None
        self.move(IDLE, result)

    @execute(2)
    def update(self, arguments: str) -> None:
        if self.get(3) != DOWNLOADED:
            raise MethodNotAllowed("Update needs a downloaded package (State 2)")
        self.move(UPDATING)
        self.fleet.firmware.install_later(self.device, self)

    @execute(10)
    def cancel(self, arguments: str) -> None:
        if self.get(3) == UPDATING:
            raise MethodNotAllowed("an update in progress cannot be cancelled")
        if self.get(3) != IDLE:
            self.reset(CANCELLED)


class SimDownload:
    """One device's pull of an image, block by block, hashed as it arrives."""

    __slots__ = ("address", "etag", "failures", "hash", "head", "instance", "offset", "szx",
                 "uri", "version")

    def __init__(self, instance: SimulatedFirmware, uri: CoapUri, address: Any) -> None:
        self.instance = instance
        self.uri = uri
        self.address = address
        self.hash = hashlib.sha256()
        self.offset = 0
        self.szx = instance.fleet.profile.firmware.block_szx
        self.etag: bytes | None = None
        self.head = b""
        self.version: str | None = None
        self.failures = 0

    def request_next(self) -> None:
        fleet = self.instance.fleet
        device = self.instance.device
        size = 1 << (self.szx + 4)
        msg = Message.request(Code.GET, self.uri.path, query=self.uri.query)
        msg.block2 = BlockValue(self.offset // size, False, self.szx)
        fleet.transport.request(device.index, msg, self.address, (device, K_FIRMWARE))

    def on_response(self, response: Message) -> None:
        if response.code == Code.NOT_FOUND:
            self.instance.download_failed(INVALID_URI)
            return
        if response.code != Code.CONTENT:
            self.on_failure(CoapError(f"{response.code >> 5}.{response.code & 31:02d}"))
            return
        block = response.block2
        if block is None:  # the whole image in one response
            self._restart()
            self._take(response.payload)
            self.instance.downloaded(self.hash.hexdigest(), self.version)
            return
        if (self.etag is not None and response.etag != self.etag) or (
                block.offset != self.offset):
            # Another image, or not the block asked for: start over.
            self._restart()
            self.etag = response.etag
            if block.offset != 0:
                self.request_next()
                return
        self.etag = response.etag
        self.failures = 0
        self._take(response.payload)
        device = self.instance.device
        fleet = self.instance.fleet
        if (not device.firmware_lost and self.offset >= 4096
                and fleet.profile.firmware.picked(device.index, "transient")):
            # Such a device loses its first download midway (Update Result 4).
            device.firmware_lost = True
            self.instance.download_failed(CONNECTION_LOST)
            return
        if block.szx < self.szx:
            self.szx = block.szx
        if block.more:
            self.request_next()
            return
        self.instance.downloaded(self.hash.hexdigest(), self.version)

    def _restart(self) -> None:
        self.hash, self.offset, self.head, self.version = hashlib.sha256(), 0, b"", None

    def _take(self, payload: bytes) -> None:
        self.hash.update(payload)
        if self.version is None and len(self.head) < 256:
            self.head += payload[:256]
            line, newline, _ = self.head.partition(b"\n")
            if newline and line.startswith(MAGIC):
                self.version = line[len(MAGIC):].decode("utf-8", "replace")
        self.offset += len(payload)
        self.instance.fleet.stats.firmware_blocks += 1

    def on_failure(self, error: BaseException) -> None:
        self.failures += 1
        if self.failures >= 3:
            self.instance.download_failed(CONNECTION_LOST)
            return
        # Resume where it stopped, a little later.
        loop = self.instance.fleet.transport.loop
        loop.call_later(0.5 * self.failures, self._retry)

    def _retry(self) -> None:
        if self.instance.download is self:
            self.request_next()


class FleetFirmware:
    """The fleet's side of its devices' firmware updates."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._addresses: dict[tuple[str, int], Any] = {}

    def address_of(self, host: str, port: int) -> Any:
        key = (host, port)
        found = self._addresses.get(key)
        if found is None:
            server = self.fleet.server.address
            family = socket.AF_INET6 if len(server) == 4 else socket.AF_INET
            infos = socket.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
            found = self._addresses[key] = tuple(infos[0][4])
        return found

    def on_response(self, device: SimDevice, response: Message) -> None:
        download = self._download(device)
        if download is not None:
            download.on_response(response)

    def on_failure(self, device: SimDevice, error: BaseException) -> None:
        download = self._download(device)
        if download is not None:
            download.on_failure(error)

    def _download(self, device: SimDevice) -> SimDownload | None:
        from .device_model import DeviceModel

        model = device.extras
        if not isinstance(model, DeviceModel):
            return None
        instance = model.tree.get(5, 0)
        return instance.download if isinstance(instance, SimulatedFirmware) else None

    def install_later(self, device: SimDevice, instance: SimulatedFirmware) -> None:
        loop = self.fleet.transport.loop
        loop.call_later(self.fleet.profile.firmware.install_seconds, self._installed, device,
                        instance)

    def _installed(self, device: SimDevice, instance: SimulatedFirmware) -> None:
        fleet = self.fleet
        profile = fleet.profile.firmware
        index = device.index
        if device.state != REGISTERED or device.extras is None:
            return
        if profile.picked(index, "update"):
            instance.move(DOWNLOADED, UPDATE_FAILED)
            return
        if profile.picked(index, "vanish"):
            # Gone for good: no De-register, the registration simply expires.
            device.extras = None
            fleet._set_state(device, STOPPED)
            return
        if not profile.picked(index, "old") and instance.new_version is not None:
            device.firmware_version = instance.new_version
        fleet.stats.firmware_updates += 1
        self.reboot(device)

    def reboot(self, device: SimDevice) -> None:
        """The device restarts: its state is gone, it registers again shortly."""
        fleet = self.fleet
        device.extras = None
        device.failures = 0
        fleet._set_state(device, RETRYING)
        fleet._schedule(device, fleet.now() + fleet.profile.firmware.reboot_seconds)
