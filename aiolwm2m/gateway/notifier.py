"""The gateway's notifier: the gateway's own observations and those of its end devices."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiolwm2m.client.notifier import Notifier
from aiolwm2m.client.observations import ClientObservation, ObservationEngine
from aiolwm2m.client.waiting import event_or_deadline

if TYPE_CHECKING:
    from .gateway import LwM2MGateway

log = logging.getLogger(__name__)


class GatewayNotifier(Notifier):
    """Polls the gateway's observation engine and the engine of every end device that
    holds observations (only those: a gateway may front thousands of quiet devices)."""

    def __init__(self, gateway: LwM2MGateway) -> None:
        super().__init__(gateway)
        self.gateway = gateway

    async def run(self) -> None:
        gateway = self.gateway
        while True:
            self.wakeup.clear()
            now = gateway.clock.now()
            await self._notify_due(gateway.observations, now)
            deadlines = [gateway.observations.next_deadline()]
            for device in list(gateway.observed):
                engine = device.observations
                await self._notify_due(engine, now)
                if not len(engine):
                    gateway.observed.discard(device)
                    continue
                deadlines.append(engine.next_deadline())
            due = [d for d in deadlines if d is not None]
            await event_or_deadline(gateway.clock, self.wakeup, min(due) if due else None)

    async def _notify_due(self, engine: ObservationEngine, now: float) -> None:
        for obs in engine.poll(now):
            try:
                await self.notify(obs, engine)
            except Exception:
                log.exception("notification for %s failed", obs)

    async def notify(self, obs: ClientObservation,
                     engine: ObservationEngine | None = None) -> None:
        await super().notify(obs, engine)
        if engine is not None and engine.get(obs.key) is None:
            self.gateway.forget_inner(obs.key)
