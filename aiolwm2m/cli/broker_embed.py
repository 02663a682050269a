"""The broker ``aiolwm2m server`` runs (``--broker-port``) or reads (``--broker-uri``) for
its REST API and web UI."""

from __future__ import annotations

from aiolwm2m.pubsub import Broker, BrokerConfig
from aiolwm2m.pubsub.view import BrokerView, LocalBrokerView, RemoteBrokerView
from aiolwm2m.server.refusals import Refusals

from .broker_flags import limits_from
from .settings import ServerSettings, SettingsError


class EmbeddedBroker:
    def __init__(self, broker: Broker | None, view: BrokerView | None) -> None:
        self.broker = broker
        self.view = view

    @classmethod
    async def start(cls, s: ServerSettings, refusals: Refusals) -> EmbeddedBroker:
        """Start what the settings ask for (possibly nothing); SettingsError otherwise."""
        if s.broker_port is not None and s.broker_uri:
            raise SettingsError("broker_port and broker_uri exclude each other: run a broker "
                                "here, or show one elsewhere")
        if s.broker_uri:
            try:
                return cls(None, await RemoteBrokerView.create(s.broker_uri))
            except ValueError as e:
                raise SettingsError(str(e)) from None
        if s.broker_port is None:
            return cls(None, None)
        limits = limits_from(s, SettingsError)
        try:
            config = BrokerConfig(hosts=(s.coap_host,), port=s.broker_port, store=s.store,
                                  data_dir=s.data_dir, limits=limits, rd=s.broker_rd)
        except ValueError as e:
            raise SettingsError(str(e)) from None
        broker = Broker(config, refusals=refusals)
        try:
            await broker.start()
        except OSError as e:
            from .server_cmd import describe_bind_error

            raise SettingsError(describe_bind_error("udp (broker)", s.coap_host,
                                                    s.broker_port, e)) from None
        return cls(broker, LocalBrokerView(broker))

    async def stop(self) -> None:
        if self.view is not None:
            await self.view.close()
        if self.broker is not None:
            await self.broker.stop()

    def banner(self, host: str) -> str | None:
        if self.broker is not None:
            shown = f"[{host}]" if ":" in host else host
            return (f"  broker   coap:// udp {shown}:{self.broker.port} /ps "
                    f"({len(self.broker.table)} topics)")
        if isinstance(self.view, RemoteBrokerView):
            return f"  broker   {self.view.uri} (read over CoAP)"
        return None
