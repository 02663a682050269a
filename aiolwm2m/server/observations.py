"""The server's observations of client resources: establish, receive, cancel, persist, resume.

An observation is a CoAP exchange that outlives its first response; its token is the key
under which the store keeps it, so that after a restart the same token is routed again and
the client's notifications keep arriving without the client noticing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import Exchange
from aiolwm2m.lwm2m.coap_mapping import (
    DeviceContext,
    ResponseDecodeError,
    cancel_request,
    decode_notification,
    encode_request,
)
from aiolwm2m.lwm2m.operations import (
    ObserveCompositeRequest,
    ObserveRequest,
    ObserveResponse,
)
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.store.interfaces import ObservationStore
from aiolwm2m.store.records import Address, Observation, Registration

from .events import Event, NotificationReceived, ObservationEnded

log = logging.getLogger(__name__)


class ObservingTransport(Protocol):
    def new_token(self) -> bytes: ...

    async def observe_with(self, request: Message, remote: Address, sink: Any) -> Exchange: ...

    async def resume_observation(self, request: Message, remote: Address, sink: Any
                                 ) -> Exchange: ...

    def forget(self, exchange: Exchange) -> None: ...

    async def request(self, request: Message, remote: Address, *,
                      timeout: float | None = None, block_szx: int = 6) -> Message: ...

    async def complete_blocks(self, request: Message, first: Message, remote: Address,
                              timeout: float | None = None) -> Message: ...


@dataclass
class _Active:
    record: Observation
    exchange: Exchange
    transport: ObservingTransport
    request: Message


class _Sink:
    """Receives every response of one observation exchange."""

    def __init__(self, manager: ObservationManager, token: bytes) -> None:
        self.manager = manager
        self.token = token
        self.first: asyncio.Future[Message] | None = None

    def on_response(self, msg: Message) -> None:
        if self.first is not None and not self.first.done():
            self.first.set_result(msg)
            return
        self.manager._notification(self.token, msg)

    def on_error(self, error: BaseException) -> None:
        if self.first is not None and not self.first.done():
            self.first.set_exception(error)
            return
        self.manager._ended(self.token, f"exchange failed: {error}")


def _operation(record: Observation) -> ObserveRequest | ObserveCompositeRequest:
    paths = tuple(LwM2MPath.parse(p) for p in record.paths)
    if record.composite:
        return ObserveCompositeRequest(paths, record.content_format)
    return ObserveRequest(paths[0], record.content_format)


class ObservationManager:
    def __init__(self, store: ObservationStore, emit: Callable[[Event], None],
                 registration: Callable[[str], Registration | None],
                 context: Callable[[Registration], DeviceContext],
                 woke: Callable[[Registration], None]) -> None:
        self.store = store
        self.emit = emit
        self.registration = registration
        self.context = context
        self.woke = woke
        self.active: dict[bytes, _Active] = {}
        self._tasks = BackgroundTasks(log, "observation bookkeeping")

    def __len__(self) -> int:
        return len(self.active)

    async def observe(self, reg: Registration, op: ObserveRequest | ObserveCompositeRequest,
                      transport: ObservingTransport, *, timeout: float | None = None,
                      now: float = 0.0) -> ObserveResponse:
        ctx = self.context(reg)
        msg = encode_request(op, ctx)
        msg.token = transport.new_token()
        sink = _Sink(self, msg.token)
        sink.first = asyncio.get_running_loop().create_future()
        template = msg.copy()
        exchange = await transport.observe_with(msg, reg.address, sink)
        try:
            if timeout is not None:
                first = await asyncio.wait_for(sink.first, timeout)
            else:
                first = await sink.first
        except BaseException:
            transport.forget(exchange)
            raise
        if first.block2 is not None and first.block2.more:
            first = await transport.complete_blocks(template, first, reg.address, timeout)
        response = self._decode(reg, op, first)
        if not response.success or first.observe is None:
            transport.forget(exchange)
            return response
        paths = (op.path,) if isinstance(op, ObserveRequest) else op.paths
        record = Observation(msg.token, reg.id, reg.endpoint, tuple(str(p) for p in paths),
                             isinstance(op, ObserveCompositeRequest), op.format, now,
                             response.format)
        self.active[msg.token] = _Active(record, exchange, transport, template)
        await self.store.add(record)
        return response

    def _decode(self, reg: Registration, op: ObserveRequest | ObserveCompositeRequest,
                msg: Message) -> ObserveResponse:
        paths = (op.path,) if isinstance(op, ObserveRequest) else op.paths
        return decode_notification(paths, isinstance(op, ObserveCompositeRequest), msg,
                                   self.context(reg))

    def _notification(self, token: bytes, msg: Message) -> None:
        active = self.active.get(token)
        if active is None:
            return
        reg = self.registration(active.record.registration_id)
        if reg is None:
            return
        if msg.block2 is not None and msg.block2.more:
            self._tasks.spawn(self._complete(active, reg, msg))
            return
        self._deliver(active, reg, msg)

    async def _complete(self, active: _Active, reg: Registration, first: Message) -> None:
        try:
            full = await active.transport.complete_blocks(active.request, first, reg.address)
        except CoapError as e:
            log.warning("notification of %s from %s: block transfer failed: %s",
                        active.record.paths, reg.endpoint, e)
            return
        self._deliver(active, reg, full)

    def _deliver(self, active: _Active, reg: Registration, msg: Message) -> None:
        self.woke(reg)
        try:
            response = self._decode(reg, _operation(active.record), msg)
        except ResponseDecodeError as e:
            log.warning("undecodable notification from %s: %s", reg.endpoint, e)
            return
        if not response.success or msg.observe is None:
            self._ended(active.record.token, f"client ended it with {response.code_text}")
            if not response.success:
                return
        self.emit(NotificationReceived(reg, active.record, response))

    def _ended(self, token: bytes, reason: str) -> None:
        active = self.active.pop(token, None)
        if active is None:
            return
        self._tasks.spawn(self.store.remove(token))
        self.emit(ObservationEnded(self.registration(active.record.registration_id),
                                   active.record, reason))

    def for_registration(self, registration_id: str) -> list[Observation]:
        return [a.record for a in self.active.values()
                if a.record.registration_id == registration_id]

    def find(self, registration_id: str, paths: tuple[str, ...]) -> Observation | None:
        for a in self.active.values():
            if a.record.registration_id == registration_id and a.record.paths == paths:
                return a.record
        return None

    async def cancel(self, reg: Registration, token: bytes, *, active: bool = True,
                     timeout: float | None = 10.0) -> bool:
        """End an observation: actively (GET/FETCH with Observe=1) or passively (forget
        the token; the client's next notification is answered with a Reset)."""
        entry = self.active.pop(token, None)
        if entry is None:
            return False
        entry.transport.forget(entry.exchange)
        await self.store.remove(token)
        if active:
            record = entry.record
            paths = tuple(LwM2MPath.parse(p) for p in record.paths)
            msg = cancel_request(paths, record.composite, token, self.context(reg),
                                 record.content_format)
            try:
                await entry.transport.request(msg, reg.address, timeout=timeout)
            except CoapError as e:
                log.info("active cancel of %s on %s failed: %s", record.paths, reg.endpoint, e)
        self.emit(ObservationEnded(reg, entry.record, "cancelled"))
        return True

    async def drop_registration(self, reg: Registration, reason: str) -> None:
        """The registration ended or was replaced: its observations go with it."""
        for token in [t for t, a in self.active.items()
                      if a.record.registration_id == reg.id]:
            entry = self.active.pop(token)
            entry.transport.forget(entry.exchange)
            self.emit(ObservationEnded(reg, entry.record, reason))
        await self.store.remove_for_registration(reg.id)

    async def resume(self, transports: dict[str, ObservingTransport]) -> int:
        """After a restart: route the stored observations' tokens again."""
        return await self.adopt(await self.store.all(), transports)

    async def adopt(self, records: list[Observation],
                    transports: dict[str, ObservingTransport]) -> int:
        """Route the tokens of ``records`` again (after a restart, or when a device another
        node had comes to this one, ``aiolwm2m.cluster``): the client's notifications keep
        arriving without it noticing."""
        resumed = 0
        for record in records:
            reg = self.registration(record.registration_id)
            transport = transports.get(reg.transport) if reg is not None else None
            if reg is None or transport is None:
                await self.store.remove(record.token)
                continue
            request = encode_request(_operation(record), self.context(reg))
            request.token = record.token
            exchange = await transport.resume_observation(request, reg.address,
                                                          _Sink(self, record.token))
            self.active[record.token] = _Active(record, exchange, transport, request)
            resumed += 1
        return resumed

    def readdress(self, reg: Registration) -> None:
        """``reg`` now speaks from another address (a NAT that rebound its port, or a load
        balancer that sends it through another node): its notifications come from there."""
        for token, entry in list(self.active.items()):
            if entry.record.registration_id == reg.id:
                entry.transport.forget(entry.exchange)
                self._tasks.spawn(self._follow(token, entry, reg))

    async def _follow(self, token: bytes, entry: _Active, reg: Registration) -> None:
        exchange = await entry.transport.resume_observation(entry.request.copy(), reg.address,
                                                            _Sink(self, token))
        if self.active.get(token) is entry:
            entry.exchange = exchange
        else:
            entry.transport.forget(exchange)

    def release(self, registration_id: str) -> list[Observation]:
        """Forget the registration's observations here, telling no one (another node took
        its device over and carries them on; the store keeps them)."""
        gone = [t for t, a in self.active.items()
                if a.record.registration_id == registration_id]
        records = []
        for token in gone:
            entry = self.active.pop(token)
            entry.transport.forget(entry.exchange)
            records.append(entry.record)
        return records

    def close(self) -> None:
        self._tasks.cancel_all()
