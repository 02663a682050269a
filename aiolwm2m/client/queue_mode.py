"""Queue mode on the client side: sleep after the awake window, wake on own activity.

Asleep, the client's radio is off: the endpoint drops what arrives. Anything the client
itself sends (an Update when the lifetime is due, a notification, a Send) wakes it; a
wake-up that is not itself an Update sends one to each queue-mode server first, which tells
the server the client is reachable and makes it deliver the requests it queued.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiolwm2m.coap.errors import CoapError

from .events import Awake, Sleeping
from .registration import RegistrationRejected
from .waiting import event_or_deadline

if TYPE_CHECKING:
    from .client import LwM2MClient

log = logging.getLogger(__name__)


class QueueModeRadio:
    def __init__(self, client: LwM2MClient) -> None:
        self.client = client
        self.asleep = False
        self.last_activity = 0.0
        self._activity = asyncio.Event()

    def touch(self) -> None:
        """Something was sent or received: the awake window starts again."""
        self.last_activity = self.client.clock.now()
        self._activity.set()

    async def run(self) -> None:
        client = self.client
        clock = client.clock
        while True:
            if self.asleep:
                self._activity.clear()
                await self._activity.wait()
                continue
            deadline = self.last_activity + client.config.awake_time
            if clock.now() < deadline:
                self._activity.clear()
                await event_or_deadline(clock, self._activity, deadline)
                continue
            busy = client.pending_exchanges()
            if busy or not client.registered or client.bootstrapping:
                self.touch()
                continue
            self.asleep = True
            client.set_radio(asleep=True)
            log.info("queue mode: going to sleep")
            client.events.emit(Sleeping())

    def radio_on(self) -> None:
        if not self.asleep:
            return
        self.asleep = False
        self.client.set_radio(asleep=False)
        self.touch()
        self.client.events.emit(Awake())

    async def wake(self) -> None:
        if not self.asleep:
            return
        self.radio_on()
        for session in list(self.client.sessions.values()):
            if session.registered and session.queue_mode:
                try:
                    await session.update()
                except (CoapError, RegistrationRejected, OSError) as e:
                    log.info("update on wake failed for %d: %s", session.ssid, e)
                    session.registered = False
                    session.update_requested.set()
