"""Sends the notifications the observation engine finds due, on the client's clock."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .events import NotificationSent
from .observations import ClientObservation, ObservationEngine
from .waiting import event_or_deadline

if TYPE_CHECKING:
    from .client import LwM2MClient

log = logging.getLogger(__name__)


def split_key(obs: ClientObservation) -> tuple[Any, bytes]:
    """The (peer, token) an observation is keyed by in the transport's observer list."""
    key: tuple[Any, bytes] = obs.key  # type: ignore[assignment]
    return key


class Notifier:
    def __init__(self, client: LwM2MClient) -> None:
        self.client = client
        self.wakeup = asyncio.Event()

    def poke(self) -> None:
        """Something changed (a value, an observation, attributes): look again now."""
        self.wakeup.set()

    async def run(self) -> None:
        client = self.client
        while True:
            self.wakeup.clear()
            for obs in client.observations.poll(client.clock.now()):
                try:
                    await self.notify(obs)
                except Exception:
                    log.exception("notification for %s failed", obs)
            await event_or_deadline(client.clock, self.wakeup,
                                    client.observations.next_deadline())

    async def notify(self, obs: ClientObservation,
                     engine: ObservationEngine | None = None) -> None:
        """Send ``obs``'s notification; ``engine`` holds it (the client's own by default,
        an end device's behind a gateway)."""
        client = self.client
        if engine is None:
            engine = client.observations
        peer, token = split_key(obs)
        session = client.sessions.get(obs.ssid)
        link = session.link if session is not None else None
        transport_observation = (link.dispatcher.observers.get(peer, token)
                                 if link is not None and not link.closed else None)
        if link is None or transport_observation is None:
            engine.remove(obs.key)  # the observer (or its connection) went away
            return
        if client.asleep:
            await client.wake()
        client.radio.touch()
        link.dispatcher.notify_observation(transport_observation)
        engine.notified(obs, client.clock.now())
        client.events.emit(NotificationSent(obs.ssid, tuple(str(p) for p in obs.paths)))
