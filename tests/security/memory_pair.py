"""Drive a ``DtlsClient`` against a ``DtlsServer`` in memory (no sockets)."""

from __future__ import annotations

from collections.abc import Hashable

from aiolwm2m.security import DtlsClient, DtlsServer, Event


class Wire:
    """Carries datagrams between one server and any number of clients, recording events."""

    def __init__(self, server: DtlsServer) -> None:
        self.server = server
        self.server_events: list[Event] = []
        self.client_events: dict[Hashable, list[Event]] = {}
        self.clients: dict[Hashable, DtlsClient] = {}
        self.captured: list[tuple[Hashable, bytes]] = []  # client -> server datagrams

    def attach(self, client: DtlsClient, peer: Hashable) -> None:
        self.clients[peer] = client
        self.client_events.setdefault(peer, [])

    def pump(self, now: float, rounds: int = 20) -> None:
        for _ in range(rounds):
            moved = False
            for peer, client in self.clients.items():
                for datagram in client.outgoing():
                    moved = True
                    self.captured.append((peer, datagram))
                    self.server_events += self.server.receive_datagram(datagram, peer, now)
            for datagram, to in self.server.outgoing():
                moved = True
                receiver = self.clients.get(to)
                if receiver is not None:
                    self.client_events[to] += receiver.receive_datagram(datagram, now)
            if not moved:
                return

    def connect(self, client: DtlsClient, peer: Hashable, now: float) -> list[Event]:
        self.attach(client, peer)
        self.client_events[peer] += client.start(now)
        self.pump(now)
        return self.client_events[peer]
