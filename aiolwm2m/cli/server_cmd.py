"""``aiolwm2m server``: the LwM2M server with its REST API, web UI and metrics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import secrets
import signal
import sys
import tomllib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from rich.console import Console

from aiolwm2m.bootstrap.server import BootstrapServer, BootstrapServerConfig
from aiolwm2m.coap.reassembly_limits import ReassemblyLimits
from aiolwm2m.coap.tcp_connection import TcpParameters
from aiolwm2m.security.config import DtlsServerConfig
from aiolwm2m.security.credentials import RpkCredentials, X509Credentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.collector import tune_for_server
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.listener_probe import ListenerCheckFailed
from aiolwm2m.transport.stream_limits import StreamLimits

from . import event_loop
from .credential_files import server_credentials
from .settings import ServerSettings, SettingsError, environment, load_settings

console = Console(stderr=True, highlight=False, soft_wrap=True)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "server", help="run the LwM2M server, its REST API and web UI",
        description="Run the LwM2M server. With no arguments: CoAP on UDP 5683 (IPv4 and "
                    "IPv6), the REST API and web UI on http://127.0.0.1:8080, data in "
                    "./aiolwm2m-data. Settings come from --config FILE (TOML), then "
                    "AIOLWM2M_* environment variables, then these flags.")
    add_server_flags(p)
    p.set_defaults(handler=run)


def add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML settings file")
    p.add_argument("--coap-host", help="address for CoAP (default :: = all, IPv4 and IPv6)")
    p.add_argument("--coap-port", type=int, help="UDP port for CoAP (default 5683)")
    p.add_argument("--coaps-port", type=int, help="UDP port for CoAP over DTLS (default 5684)")
    p.add_argument("--no-dtls", dest="dtls", action="store_const", const=False,
                   help="do not serve coaps:// (DTLS)")
    p.add_argument("--tcp-port", type=int, help="TCP port for coap+tcp:// (default 5683)")
    p.add_argument("--tls-port", type=int, help="TCP port for coaps+tcp:// (default 5684)")
    p.add_argument("--no-tcp", dest="tcp", action="store_const", const=False,
                   help="do not serve CoAP over TCP and TLS")
    p.add_argument("--bootstrap-port", type=int,
                   help="UDP port of the embedded Bootstrap-Server (default 5783)")
    p.add_argument("--no-bootstrap", dest="bootstrap", action="store_const", const=False,
                   help="do not run the embedded Bootstrap-Server")
    p.add_argument("--bootstrap-coaps-port", type=int,
                   help="UDP port of the embedded Bootstrap-Server's coaps:// (DTLS) "
                        "listener (default 5784)")
    p.add_argument("--no-bootstrap-dtls", dest="bootstrap_dtls", action="store_const",
                   const=False, help="the embedded Bootstrap-Server serves coap:// only "
                   "(configurations then cannot carry bootstrap credentials)")
    p.add_argument("--rpk-key", type=Path, help="PEM file with the server's EC P-256 key pair, "
                   "offered to RPK clients")
    p.add_argument("--certificate", type=Path, help="PEM certificate chain for X.509 clients")
    p.add_argument("--private-key", type=Path, help="PEM private key of --certificate")
    p.add_argument("--trust-anchors", type=Path,
                   help="PEM CA certificates client certificates must chain to")
    p.add_argument("--http-host", help="address of the REST API and UI (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, help="port of the REST API and UI (default 8080)")
    p.add_argument("--api-token", dest="api_tokens", action="append",
                   help="bearer token accepted by the API (repeatable; default: a random "
                        "one, printed at start)")
    p.add_argument("--http-max-body", type=int, metavar="BYTES",
                   help="largest REST API request body, 413 above (default 2 MiB)")
    p.add_argument("--http-max-upload", type=int, metavar="BYTES",
                   help="largest raw body of POST .../write-opaque, e.g. a firmware package "
                        "(default 16 MiB)")
    p.add_argument("--metrics-access", choices=["open", "loopback-or-token", "token"],
                   help="who may read /metrics (default loopback-or-token: requests from "
                        "this host, or with an API token)")
    p.add_argument("--data-dir", type=Path, help="where the SQLite database lives")
    p.add_argument("--store", choices=["sqlite", "memory"], help="persistence (default "
                   "sqlite)")
    p.add_argument("--awake-time", type=float, help="seconds a queue-mode client stays "
                   "reachable after it spoke (default 93)")
    p.add_argument("--queue-ttl", type=float, help="default lifetime of queued requests, s")
    p.add_argument("--allow-address-change", action="store_const", const=True,
                   help="accept a NoSec registration Update from a new address when it "
                        "carries ep=<its endpoint name> (clients behind a rebinding NAT)")
    p.add_argument("--model-dir", dest="model_dirs", action="append", type=Path,
                   help="directory of OMA DDF XML files to load (repeatable)")
    p.add_argument("--credentials", type=Path,
                   help="TOML or JSON file of per-endpoint credentials to load")
    p.add_argument("--no-web-ui", dest="web_ui", action="store_const", const=False,
                   help="serve the REST API without the web UI")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"],
                   help="event loop (default auto: uvloop when installed)")
    limits = p.add_argument_group(
        "TCP/TLS limits", "what coap+tcp:// and coaps+tcp:// peers may hold (0 turns a limit "
        "off)")
    limits.add_argument("--tcp-idle-timeout", type=float, metavar="S",
                        help="close connections that carry no registration after this many "
                             "seconds of silence (default 60)")
    limits.add_argument("--tcp-frame-timeout", type=float, metavar="S",
                        help="a started CoAP frame must be complete within this (default 30)")
    limits.add_argument("--tls-handshake-timeout", type=float, metavar="S",
                        help="a TLS handshake must finish within this (default 15)")
    limits.add_argument("--tcp-max-connections", type=int, metavar="N",
                        help="connections per listener (default 10000; always lowered to "
                             "fit the open-files limit, 0 leaves only that bound)")
    limits.add_argument("--tcp-max-connections-per-address", type=int, metavar="N",
                        help="connections from one IP address per listener (default 256; "
                             "raise it for devices behind a carrier-grade NAT)")
    udp = p.add_argument_group(
        "UDP/DTLS limits", "what coap:// and coaps:// peers may hold")
    udp.add_argument("--reassembly-budget", type=int, metavar="BYTES",
                     help="block-wise upload buffers per transport (default 16 MiB)")
    udp.add_argument("--reassembly-peer-budget", type=int, metavar="BYTES",
                     help="block-wise upload buffers of a registered or DTLS-authenticated "
                          "peer (default 1 MiB)")
    udp.add_argument("--reassembly-unregistered-budget", type=int, metavar="BYTES",
                     help="block-wise upload buffers of any other peer, which bounds a "
                          "Register's object list (default 256 KiB)")
    udp.add_argument("--dtls-max-handshakes", type=int, metavar="N",
                     help="DTLS handshakes in progress; beyond, the oldest gives way "
                          "(default 512)")
    udp.add_argument("--dtls-handshakes-per-address", type=int, metavar="N",
                     help="DTLS handshakes in progress from one IPv4 address or IPv6 /64 "
                          "(default 8)")
    registrations = p.add_argument_group(
        "Registration limits", "what one Register or Update may list (4.13 beyond)")
    registrations.add_argument("--max-objects-per-registration", type=int, metavar="N",
                               help="object and object-instance links (default 10000)")
    registrations.add_argument("--max-registration-payload", type=int, metavar="BYTES",
                               help="size of the object list (default 256 KiB)")


def settings_from(args: argparse.Namespace) -> ServerSettings:
    names = ("coap_host", "coap_port", "coaps_port", "dtls", "tcp_port", "tls_port", "tcp",
             "bootstrap", "bootstrap_port", "bootstrap_coaps_port", "bootstrap_dtls",
             "rpk_key", "certificate",
             "private_key", "trust_anchors", "http_host", "http_port", "api_tokens",
             "http_max_body", "http_max_upload", "metrics_access", "data_dir",
             "store", "awake_time", "queue_ttl", "model_dirs", "credentials", "web_ui",
             "log_level", "allow_address_change", "event_loop", "tcp_idle_timeout",
             "tcp_frame_timeout", "tls_handshake_timeout", "tcp_max_connections",
             "tcp_max_connections_per_address", "reassembly_budget",
             "reassembly_peer_budget", "reassembly_unregistered_budget",
             "dtls_max_handshakes", "dtls_handshakes_per_address",
             "max_objects_per_registration", "max_registration_payload")
    overrides = {n: getattr(args, n, None) for n in names}
    # ``aiolwm2m --log-level X server`` is a flag too, after the subcommand's own.
    overrides["log_level"] = overrides["log_level"] or getattr(args, "global_log_level", None)
    return load_settings(args.config, environment(), overrides)


def load_credentials(path: Path) -> list[SecurityInfo]:
    """``[[credential]]`` tables (TOML) or a JSON list of objects with ``endpoint`` and one
    of ``psk_identity`` + ``psk_key`` (hex), ``rpk_public_key`` (hex DER), ``x509_identity``."""
    try:
        text = path.read_text()
    except OSError as e:
        raise SettingsError(f"cannot read credentials file {path}: {e.strerror or e}") from None
    try:
        entries: Any = (json.loads(text) if path.suffix == ".json"
                        else tomllib.loads(text).get("credential", []))
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise SettingsError(f"credentials file {path} is not valid: {e}") from None
    if not isinstance(entries, list):
        raise SettingsError(f"credentials file {path}: expected a list of credentials")
    out = []
    for i, entry in enumerate(entries):
        where = f"credentials file {path}, entry {i + 1}"
        if not isinstance(entry, dict) or not entry.get("endpoint"):
            raise SettingsError(f"{where}: needs an endpoint")
        try:
            fields = {name: str(entry[name]) for name in ("psk_identity", "psk_key",
                                                          "rpk_public_key", "x509_identity")
                      if entry.get(name) is not None}
            out.append(SecurityInfo.from_text(str(entry["endpoint"]), **fields))
        except ValueError as e:
            raise SettingsError(f"{where}: {e}") from None
    return out


def describe_bind_error(what: str, host: str, port: int, e: OSError) -> str:
    reason = {errno.EADDRINUSE: "the port is already in use",
              errno.EACCES: "permission denied (ports below 1024 need privileges)",
              errno.EADDRNOTAVAIL: "no such local address"}.get(e.errno or 0,
                                                                e.strerror or str(e))
    shown = f"[{host}]" if ":" in host else host
    return f"cannot listen on {what} {shown}:{port}: {reason}"


def dtls_credentials(s: ServerSettings) -> tuple[RpkCredentials | None, X509Credentials | None]:
    try:
        return server_credentials(s.rpk_key, s.certificate, s.private_key, s.trust_anchors)
    except ValueError as e:
        raise SettingsError(str(e)) from None


def stream_limits(s: ServerSettings) -> StreamLimits:
    return StreamLimits(unbound_idle_timeout=s.tcp_idle_timeout or None,
                        handshake_timeout=s.tls_handshake_timeout or None,
                        max_connections=s.tcp_max_connections or None,
                        max_connections_per_address=s.tcp_max_connections_per_address or None)


class RunningServer:
    """The LwM2M server and its web front end, started together."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        rpk, x509 = dtls_credentials(settings)
        self.server = LwM2MServer(ServerConfig(
            host=settings.coap_host, port=settings.coap_port,
            coaps_port=settings.coaps_port if settings.dtls else None,
            tcp_port=settings.tcp_port if settings.tcp else None,
            tls_port=settings.tls_port if settings.tcp else None, dtls_rpk=rpk,
            dtls_x509=x509, data_dir=settings.data_dir,
            store=settings.store, lwm2m_versions=frozenset(settings.lwm2m_versions),
            awake_time=settings.awake_time, queue_ttl=settings.queue_ttl,
            model_dirs=tuple(settings.model_dirs),
            allow_address_change=settings.allow_address_change,
            http_max_body=settings.http_max_body, http_max_upload=settings.http_max_upload,
            metrics_access=settings.metrics_access,
            tcp_parameters=TcpParameters(frame_timeout=settings.tcp_frame_timeout or None),
            tcp_limits=stream_limits(settings),
            reassembly=ReassemblyLimits(
                transport_bytes=settings.reassembly_budget,
                peer_bytes=settings.reassembly_peer_budget,
                untrusted_peer_bytes=settings.reassembly_unregistered_budget),
            dtls_limits=DtlsServerConfig(
                max_handshakes=settings.dtls_max_handshakes,
                max_handshakes_per_address=settings.dtls_handshakes_per_address),
            max_objects_per_registration=settings.max_objects_per_registration,
            max_registration_payload=settings.max_registration_payload))
        self.tokens = list(settings.api_tokens) or [secrets.token_urlsafe(18)]
        self.generated_token = not settings.api_tokens
        self.web: Any = None
        self.bootstrap: BootstrapServer | None = None
        if settings.bootstrap:
            # It offers the server's own RPK / certificate to RPK and X.509 devices too.
            self.bootstrap = BootstrapServer(BootstrapServerConfig(
                host=settings.coap_host, port=settings.bootstrap_port,
                coaps_port=settings.bootstrap_coaps_port if settings.bootstrap_dtls else None,
                dtls_rpk=rpk, dtls_x509=x509, store=settings.store,
                data_dir=settings.data_dir))

    async def start(self) -> None:
        s = self.settings
        credentials = load_credentials(s.credentials) if s.credentials else []
        try:
            await self.server.start()
        except ListenerCheckFailed as e:
            await self.server.stop()
            raise SettingsError(str(e)) from None
        except OSError as e:
            await self.server.stop()
            t = self.server.transports
            what, port = (("udp", s.coap_port) if "udp" not in t else
                          ("udp (dtls)", s.coaps_port) if s.dtls and "dtls" not in t else
                          ("tcp", s.tcp_port) if "tcp" not in t else ("tcp (tls)", s.tls_port))
            raise SettingsError(describe_bind_error(what, s.coap_host, port, e)) from None
        for info in credentials:
            try:
                await self.server.stores.security.put(info)
            except ValueError as e:
                await self.server.stop()
                raise SettingsError(f"credentials of {info.endpoint}: {e}") from None
        if self.bootstrap is not None:
            # Configurations install the server accounts they provision in the server's
            # security store (bootstrap credentials stay with the configurations), and
            # refused Bootstrap-Requests count in the server's refusals and events.
            self.bootstrap.server_security = self.server.stores.security
            self.bootstrap.refusals.sink = self.server.refusals
            try:
                await self.bootstrap.start()
            except OSError as e:
                dtls = self.bootstrap.failed_listener == "dtls"
                await self.bootstrap.stop()
                await self.server.stop()
                raise SettingsError(describe_bind_error(
                    "udp (bootstrap dtls)" if dtls else "udp (bootstrap)", s.coap_host,
                    s.bootstrap_coaps_port if dtls else s.bootstrap_port, e)) from None
        from aiolwm2m.web.app import create_app
        from aiolwm2m.web.serve import WebServer

        self.web = WebServer(create_app(self.server, self.tokens, self.bootstrap),
                             s.http_host, s.http_port)
        try:
            await self.web.start()
        except OSError as e:
            if self.bootstrap is not None:
                await self.bootstrap.stop()
            await self.server.stop()
            raise SettingsError(describe_bind_error("http", s.http_host, s.http_port, e)) from None

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        if self.bootstrap is not None:
            await self.bootstrap.stop()
        await self.server.stop()

    def banner(self) -> None:
        s = self.settings
        host = f"[{s.coap_host}]" if ":" in s.coap_host else s.coap_host
        schemes = {"udp": "coap:// udp", "dtls": "coaps:// udp", "tcp": "coap+tcp:// tcp",
                   "tls": "coaps+tcp:// tcp"}
        listening = ", ".join(f"{schemes[n]} {host}:{self.server.port_of(n)}"
                              for n in schemes if n in self.server.transports)
        console.print(f"[bold]aiolwm2m server[/bold] {listening}; "
                      f"{len(self.server.registrations)} registrations loaded")
        if self.bootstrap is not None:
            bs = self.bootstrap
            bs_listening = ", ".join(f"{schemes[n]} {host}:{bs.port_of(n)}"
                                     for n in schemes if n in bs.transports)
            console.print(f"  bootstrap {bs_listening} ({len(bs.configs)} configurations)")
        login = f"#token={self.tokens[0]}" if self.generated_token else ""
        console.print(f"  web UI   {self.web.url}/ui/{login}")
        console.print(f"  REST API {self.web.url}/api  (OpenAPI {self.web.url}/openapi.json, "
                      f"docs {self.web.url}/api-docs)")
        console.print(f"  metrics  {self.web.url}/metrics")
        console.print(f"  loop     {event_loop.running()}")
        store = s.data_dir / "aiolwm2m.sqlite3" if s.store == "sqlite" else "memory (not kept)"
        console.print(f"  data     {store}")
        if self.generated_token:
            console.print(f"  API token (generated for this run): [bold]{self.tokens[0]}"
                          "[/bold]")


async def serve_until_stopped(
        settings: ServerSettings,
        also: Callable[[RunningServer], Awaitable[Callable[[], Awaitable[None]]]] | None = None
        ) -> None:
    """Run until SIGINT/SIGTERM. ``also`` starts extra work (the demo's devices) once the
    server is up and returns how to stop it."""
    # Here rather than in each command's run(): ``demo`` shares this and had no level.
    logging.getLogger().setLevel(settings.log_level)
    tune_for_server()
    running = RunningServer(settings)
    await running.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    cleanup: Callable[[], Awaitable[None]] | None = None
    try:
        running.banner()
        if also is not None:
            cleanup = await also(running)
        await stop.wait()
    finally:
        console.print("stopping ...")
        if cleanup is not None:
            await cleanup()
        await running.stop()


def run_async(main: Coroutine[Any, Any, None], choice: str = "auto") -> None:
    """Run on the event loop ``choice`` names ("auto": uvloop when it is installed, the
    ``fast`` extra, else asyncio)."""
    try:
        loop = event_loop.resolve(choice)
    except ValueError as e:
        main.close()
        raise SettingsError(str(e)) from None
    event_loop.run(main, loop)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        run_async(serve_until_stopped(settings), settings.event_loop)
    except SettingsError as e:
        print(f"aiolwm2m server: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
