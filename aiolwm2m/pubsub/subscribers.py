"""The observer list of a broker endpoint: subscriptions counted per topic and address,
each topic's "observer-check", and notifications that wait for a subscriber to prove its
address.

A subscribe is one small datagram whose source address nobody checked; its notifications
may be a thousand times its size for as long as the topic is busy. So notifications to a
new subscriber go Confirmable, one at a time, until one is acknowledged: a subscriber that
never asked (a forged address) receives its first notification and that notification's
retransmissions, and is dropped when they time out, instead of receiving every
publication for twenty notifications or five minutes. Publications meanwhile are not
lost: when the acknowledgement comes, the subscriber gets the newest value.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from aiolwm2m.coap.message import Message
from aiolwm2m.coap.observe import Observation, ObserverRegistry


class SubscriberState:
    """Kept in ``Observation.user`` for every subscription of a broker endpoint."""

    __slots__ = ("pending", "seen", "validated")

    def __init__(self) -> None:
        #: A Confirmable notification to it was acknowledged: its address is real.
        self.validated = False
        #: A notification to it (unvalidated) is out and not acknowledged yet.
        self.pending = False
        #: The topic's publication count when it was last notified (see ``Broker``).
        self.seen = -1


def state_of(obs: Observation) -> SubscriberState | None:
    state = obs.user
    return state if isinstance(state, SubscriberState) else None


class SubscriberRegistry(ObserverRegistry):
    def __init__(self, *, observer_check: Callable[[Hashable], int | None],
                 on_add: Callable[[Observation], None],
                 on_drop: Callable[[Observation], None],
                 on_acknowledged: Callable[[Observation], None],
                 con_every: int = 20, con_interval: float = 300.0) -> None:
        """``observer_check(key)``: the topic's observer-check for an observed resource
        (None: the registry's own interval); the ``on_*`` callbacks keep the broker's counts
        and node states, and catch a subscriber up once it proved its address."""
        super().__init__(con_every=con_every, con_interval=con_interval)
        self._observer_check = observer_check
        self._on_add = on_add
        self._on_drop = on_drop
        self._on_acknowledged = on_acknowledged

    def add(self, request: Message, key: Hashable, now: float) -> Observation:
        obs = super().add(request, key, now)
        obs.user = SubscriberState()
        self._on_add(obs)
        return obs

    def prepare(self, obs: Observation, response: Message, now: float,
                confirmable: bool | None = None) -> Message:
        state = state_of(obs)
        if state is not None and not state.validated:
            confirmable = True
            if 64 <= response.code < 96:
                state.pending = True
        return super().prepare(obs, response, now, confirmable)

    def acknowledged(self, obs: Observation) -> None:
        state = state_of(obs)
        if state is not None:
            was_validated = state.validated
            state.validated = True
            state.pending = False
            if not was_validated:
                self._on_acknowledged(obs)

    def dropped(self, obs: Observation) -> None:
        self._on_drop(obs)

    def interval_for(self, obs: Observation) -> float:
        check = self._observer_check(obs.key)
        if check is None:
            return self.con_interval
        return min(self.con_interval, float(check))
