"""Group delivery through ``externalGroupId`` (LPW-006): one MT delivery for a whole group,
each member's response and each member's delivery result (``gmdResults``) mapped back to
that member.

The request goes once, NON, to the group's configuration; every member that gets it
answers with the request's token from its own identifier, and those answers are routed
here rather than to the message layer (which only knows one peer per exchange). The SCEF's
GmdNiddDownlinkDataDeliveryNotification then says per member whether the packet arrived:
a FAILURE_* result fails that member's request at once; members the SCEF reached answer in
their own time, until the timeout.

Members are named by the caller (endpoint names): the RD groups of issue 11 plug in by
handing their member list to :meth:`GroupDeliveries.send` when every member is registered
over NIDD through that group's configuration; this module keeps no membership of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import MessageType
from aiolwm2m.coap.errors import MessageFormatError
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.coap_mapping import decode_response, encode_request
from aiolwm2m.lwm2m.operations import Operation, Response
from aiolwm2m.server.errors import NotRegistered, RequestFailed

from . import t8_model as m
from .scef_client import T8Error
from .transport import TTL_SHARE, NiddDeliveryFailed

if TYPE_CHECKING:
    from .service import NiddService

log = logging.getLogger(__name__)
NON, ACK, CON = MessageType.NON, MessageType.ACK, MessageType.CON


@dataclass(eq=False)
class GroupRequest:
    token: bytes
    op: Operation
    #: member identifier -> endpoint name, and what each one came to
    members: dict[str, str]
    results: dict[str, asyncio.Future[Message]] = field(default_factory=dict)
    url: str | None = None


class GroupDeliveries:
    def __init__(self, service: NiddService) -> None:
        self.service = service
        self.by_token: dict[bytes, GroupRequest] = {}
        self.by_url: dict[str, GroupRequest] = {}

    async def send(self, group_id: str, op: Operation, endpoints: Iterable[str], *,
                   timeout: float = 60.0) -> dict[str, Response | Exception]:
        """Send ``op`` to every member of ``group_id`` at once; each endpoint's Response,
        or the exception that ended its part (RequestFailed, NiddDeliveryFailed...)."""
        service = self.service
        server = service.server
        entry = service.configurations.active(("externalGroupId", group_id))
        if entry is None or entry.url is None:
            raise RequestFailed(f"no active NIDD configuration for group {group_id}")
        regs = {}
        for ep in endpoints:
            reg = server.registrations.get(ep)
            if reg is None:
                raise NotRegistered(ep)
            if reg.transport != "nidd":
                raise RequestFailed(f"{ep} is registered over {reg.transport}, not NIDD")
            regs[str(reg.address[0])] = reg
        if not regs:
            return {}
        first = next(iter(regs.values()))
        message = encode_request(op, server.registry.context(first))
        message.mtype = NON
        message.token = service.endpoint.new_token()
        message.mid = service.endpoint.layer.new_mid()
        loop = asyncio.get_running_loop()
        request = GroupRequest(message.token, op, {i: r.endpoint for i, r in regs.items()})
        for ident in regs:
            request.results[ident] = loop.create_future()
        self.by_token[request.token] = request
        try:
            # Leave the SCEF's verdict (gmdResults) time to arrive within ``timeout``.
            transfer = m.NiddDownlinkDataTransfer(
                data=encode_udp(message), externalGroupId=group_id,
                maximumLatency=max(1, int(timeout * TTL_SHARE)))
            try:
                answer = await service.client.deliver(entry.url, transfer)
            except T8Error as e:
                raise RequestFailed(f"group delivery to {group_id}: {e}") from e
            if answer.location is not None:
                request.url = answer.location
                self.by_url[answer.location] = request
            await asyncio.wait(request.results.values(), timeout=timeout)
            out: dict[str, Response | Exception] = {}
            for ident, reg in regs.items():
                fut = request.results[ident]
                if not fut.done():
                    out[reg.endpoint] = RequestFailed(f"{reg.endpoint}: no answer in "
                                                      f"{timeout:g} s")
                elif fut.exception() is not None:
                    error = fut.exception()
                    assert isinstance(error, Exception)
                    out[reg.endpoint] = error
                else:
                    out[reg.endpoint] = decode_response(
                        op, fut.result(), server.registry.context(reg))
            return out
        finally:
            self.by_token.pop(request.token, None)
            if request.url is not None:
                self.by_url.pop(request.url, None)
            for fut in request.results.values():
                if not fut.done():
                    fut.cancel()

    def intercept(self, peer: Any, data: bytes) -> bool:
        """An uplink that answers a group request is taken here (True)."""
        if not self.by_token or len(data) < 4 or data[1] < 64:
            return False
        tkl = data[0] & 0x0F
        request = self.by_token.get(bytes(data[4:4 + tkl]))
        if request is None:
            return False
        try:
            msg = decode_udp(data)
        except MessageFormatError:
            return False
        fut = request.results.get(str(peer[0]))
        if fut is not None and not fut.done():
            fut.set_result(msg)
        if msg.mtype == CON:
            self.service.downlink.submit(peer, encode_udp(Message(ACK, 0, msg.mid)),
                                         self.service.endpoint.clock() + 60.0)
        return True

    def on_results(self, note: m.GmdNiddDownlinkDataDeliveryNotification) -> None:
        request = self.by_url.get(note.niddDownlinkDataTransfer)
        if request is None:
            log.info("group delivery results for an unknown delivery")
            return
        for result in note.gmdResults:
            ident = result.externalId or result.msisdn or ""
            fut = request.results.get(ident)
            if fut is not None and not fut.done() and m.is_failure(result.deliveryStatus):
                fut.set_exception(NiddDeliveryFailed(result.deliveryStatus))
