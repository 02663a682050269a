"""``aiolwm2m server``: the LwM2M server with its REST API, web UI and metrics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import secrets
import signal
import sys
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from aiolwm2m.bootstrap.server import BootstrapServer, BootstrapServerConfig
from aiolwm2m.security.credentials import RpkCredentials, X509Credentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.collector import tune_for_server
from aiolwm2m.store.records import SecurityInfo

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
    p.add_argument("--data-dir", type=Path, help="where the SQLite database lives")
    p.add_argument("--store", choices=["sqlite", "memory"], help="persistence (default "
                   "sqlite)")
    p.add_argument("--awake-time", type=float, help="seconds a queue-mode client stays "
                   "reachable after it spoke (default 93)")
    p.add_argument("--queue-ttl", type=float, help="default lifetime of queued requests, s")
    p.add_argument("--model-dir", dest="model_dirs", action="append", type=Path,
                   help="directory of OMA DDF XML files to load (repeatable)")
    p.add_argument("--credentials", type=Path,
                   help="TOML or JSON file of per-endpoint credentials to load")
    p.add_argument("--no-web-ui", dest="web_ui", action="store_const", const=False,
                   help="serve the REST API without the web UI")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def settings_from(args: argparse.Namespace) -> ServerSettings:
    names = ("coap_host", "coap_port", "coaps_port", "dtls", "tcp_port", "tls_port", "tcp",
             "bootstrap", "bootstrap_port",
             "rpk_key", "certificate",
             "private_key", "trust_anchors", "http_host", "http_port", "api_tokens", "data_dir",
             "store", "awake_time", "queue_ttl", "model_dirs", "credentials", "web_ui",
             "log_level")
    overrides = {n: getattr(args, n, None) for n in names}
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
            model_dirs=tuple(settings.model_dirs)))
        self.tokens = list(settings.api_tokens) or [secrets.token_urlsafe(18)]
        self.generated_token = not settings.api_tokens
        self.web: Any = None
        self.bootstrap: BootstrapServer | None = None
        if settings.bootstrap:
            self.bootstrap = BootstrapServer(BootstrapServerConfig(
                host=settings.coap_host, port=settings.bootstrap_port, store=settings.store,
                data_dir=settings.data_dir))

    async def start(self) -> None:
        s = self.settings
        credentials = load_credentials(s.credentials) if s.credentials else []
        try:
            await self.server.start()
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
            # Bootstrap credentials are looked up in the same security store as the
            # server's, and provisioning writes fresh credentials into it.
            self.bootstrap.security = self.server.stores.security
            try:
                await self.bootstrap.start()
            except OSError as e:
                await self.bootstrap.stop()
                await self.server.stop()
                raise SettingsError(describe_bind_error(
                    "udp (bootstrap)", s.coap_host, s.bootstrap_port, e)) from None
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
            console.print(f"  bootstrap coap:// udp {host}:{self.bootstrap.port} "
                          f"({len(self.bootstrap.configs)} configurations)")
        login = f"#token={self.tokens[0]}" if self.generated_token else ""
        console.print(f"  web UI   {self.web.url}/ui/{login}")
        console.print(f"  REST API {self.web.url}/api  (OpenAPI {self.web.url}/openapi.json, "
                      f"docs {self.web.url}/api-docs)")
        console.print(f"  metrics  {self.web.url}/metrics")
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


def run_async(main: Awaitable[None]) -> None:
    """Run on uvloop when it is installed (the ``fast`` extra), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]
        return
    uvloop.run(main)  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        import logging

        logging.getLogger().setLevel(settings.log_level)
        run_async(serve_until_stopped(settings))
    except SettingsError as e:
        print(f"aiolwm2m server: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
