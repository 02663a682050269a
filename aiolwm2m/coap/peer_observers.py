"""An observer list that forgets all observations of one peer without scanning every observer.

Over TCP and TLS an observation lives as long as the connection that registered it (RFC 8323
section 7.1), so each closed connection removes its peer's observations. The base registry
finds them by a scan of all observers; with thousands of connections that scan would run on
every disconnect, hence the per-peer index of tokens kept here.
"""

from __future__ import annotations

from collections.abc import Hashable

from .message import Message
from .observe import Observation, ObserverRegistry

# The index may keep tokens of observations the base class dropped on its own (replaced,
# ended by an error notification); it is pruned whenever its size reaches a power of two
# from here on, which keeps the cost amortised and the index within twice the live count.
_PRUNE_FROM = 64


class PeerIndexedObserverRegistry(ObserverRegistry):
    def __init__(self, *, con_every: int = 20, con_interval: float = 300.0) -> None:
        super().__init__(con_every=con_every, con_interval=con_interval)
        self._tokens_by_peer: dict[Hashable, set[bytes]] = {}

    def add(self, request: Message, key: Hashable, now: float) -> Observation:
        obs = super().add(request, key, now)
        tokens = self._tokens_by_peer.setdefault(obs.peer, set())
        tokens.add(obs.token)
        n = len(tokens)
        if n >= _PRUNE_FROM and n & (n - 1) == 0:
            live = {t for t in tokens if self.get(obs.peer, t) is not None}
            self._tokens_by_peer[obs.peer] = live
        return obs

    def remove(self, peer: Hashable, token: bytes) -> Observation | None:
        obs = super().remove(peer, token)
        tokens = self._tokens_by_peer.get(peer)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._tokens_by_peer[peer]
        return obs

    def remove_peer(self, peer: Hashable) -> list[Observation]:
        gone: list[Observation] = []
        for token in self._tokens_by_peer.pop(peer, ()):
            obs = super().remove(peer, token)
            if obs is not None:
                gone.append(obs)
        return gone

    def peers(self) -> int:
        return len(self._tokens_by_peer)
