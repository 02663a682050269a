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
import sqlite3
import ssl
import sys
import tomllib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from rich.console import Console

from aiolwm2m.bootstrap.server import BootstrapServer, BootstrapServerConfig
from aiolwm2m.cluster.settings import ClusterSettings
from aiolwm2m.coap.reassembly_limits import ReassemblyLimits
from aiolwm2m.coap.tcp_connection import TcpParameters
from aiolwm2m.firmware.service import FirmwareService
from aiolwm2m.groups.limits import GroupLimits
from aiolwm2m.http2.limits import Http2Limits
from aiolwm2m.rd.config import RdLimits
from aiolwm2m.rd.policy import parse_policy
from aiolwm2m.security.config import DtlsServerConfig
from aiolwm2m.security.credentials import RpkCredentials, X509Credentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.collector import tune_for_server
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.store.selection import StoreOpenError, describe_store
from aiolwm2m.transport.listener_probe import ListenerCheckFailed
from aiolwm2m.transport.stream_limits import StreamLimits

from . import broker_flags, event_loop, nidd_flags
from .broker_embed import EmbeddedBroker
from .credential_files import server_credentials
from .nidd_flags import NIDD_SETTINGS
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
    p.add_argument("--http2-port", type=int, metavar="PORT",
                   help="TCP port for LwM2M over HTTP/2 (off by default): h2c with prior "
                        "knowledge, or https (TLS, ALPN h2) with --certificate/--private-key")
    p.add_argument("--http2-max-body", type=int, metavar="BYTES",
                   help="largest HTTP/2 request body from a device, 413 above (default 1 MiB)")
    p.add_argument("--http2-max-concurrent-streams", type=int, metavar="N",
                   help="HTTP/2 streams one device connection may have open (default 32)")
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
    p.add_argument("--http-certificate", type=Path, metavar="FILE",
                   help="serve the REST API, UI and firmware downloads over HTTPS with this "
                        "certificate chain (PEM; with --http-private-key); devices then "
                        "pull firmware over https://, so name the certificate's host with "
                        "--firmware-public-host")
    p.add_argument("--http-private-key", type=Path, metavar="FILE",
                   help="the private key of --http-certificate (PEM)")
    p.add_argument("--api-token", dest="api_tokens", action="append",
                   help="bearer token accepted by the API (repeatable; default: a random "
                        "one, printed at start)")
    p.add_argument("--http-max-body", type=int, metavar="BYTES",
                   help="largest REST API request body, 413 above (default 2 MiB)")
    p.add_argument("--http-max-upload", type=int, metavar="BYTES",
                   help="largest raw body of POST .../write-opaque, e.g. a firmware package "
                        "(default 16 MiB)")
    p.add_argument("--firmware-max-image", type=int, metavar="BYTES",
                   help="largest firmware image POST /api/firmware/images takes, 413 above "
                        "(default 64 MiB)")
    p.add_argument("--firmware-public-host", metavar="HOST",
                   help="host name or address put in the Package URIs devices download "
                        "firmware from (default: the local address that routes to each "
                        "device)")
    p.add_argument("--metrics-access", choices=["open", "loopback-or-token", "token"],
                   help="who may read /metrics (default loopback-or-token: requests from "
                        "this host, or with an API token)")
    p.add_argument("--data-dir", type=Path, help="where the SQLite database lives")
    p.add_argument("--store", metavar="STORE", help="persistence: sqlite (default), memory, "
                   "redis://HOST:PORT or redis+cluster://HOST:PORT")
    cluster = p.add_argument_group(
        "Several nodes", "server nodes sharing one Redis store serve as one: each device is "
        "owned by the node it talks to, any node answers the REST API for any device")
    cluster.add_argument("--node-id", metavar="NAME",
                         help="this node's name (letters, digits, . _ -), unique among the "
                              "nodes of one Redis store and namespace")
    cluster.add_argument("--cluster-node-ttl", type=float, metavar="S",
                         help="a node that stops beating counts as dead after this, and its "
                              "devices go to the nodes they talk to next (default 10)")
    cluster.add_argument("--cluster-route-timeout", type=float, metavar="S",
                         help="how long a REST request routed to a device's node waits, on "
                              "top of its own timeout (default 100)")
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
    registrations.add_argument("--max-end-devices-per-gateway", type=int, metavar="N",
                               help="end devices kept behind one gateway (/25 instances; "
                                    "default 10000)")
    registrations.add_argument("--max-end-device-objects", type=int, metavar="N",
                               help="object links one end device's /25/x/3 may list "
                                    "(default 1000)")
    broker_flags.add_server_flags(p)
    nidd_flags.add_server_flags(p)
    rd = p.add_argument_group(
        "Resource Directory", "RFC 9176 registration and lookup of any CoAP endpoint, at the "
        "paths /.well-known/core?rt=core.rd* announces")
    rd.add_argument("--no-rd", dest="rd", action="store_const", const=False,
                    help="serve /rd for LwM2M registration only: no generic registration, "
                         "simple registration or lookups")
    rd.add_argument("--rd-max-links", type=int, metavar="N",
                    help="links one RD registration may hold (default 1000; 4.13 beyond)")
    rd.add_argument("--rd-max-registration-bytes", type=int, metavar="BYTES",
                    help="size of an RD registration's links (default 64 KiB; 4.13 beyond)")
    rd.add_argument("--rd-max-registrations", type=int, metavar="N",
                    help="RD registrations in all (default 200000; 5.03 beyond)")
    rd.add_argument("--rd-max-registrations-per-address", type=int, metavar="N",
                    help="RD registrations made by unauthenticated peers of one IP address "
                         "(default 100; 4.29 beyond; 0 turns the limit off)")
    rd.add_argument("--rd-max-lookup-results", type=int, metavar="N",
                    help="links in one lookup answer; larger sets are paged with page and "
                         "count (default 256)")
    rd.add_argument("--rd-policy", metavar="FILE",
                    help="the RD's authorisation policy (who may register which ep/d, what "
                         "lookups see), a TOML or JSON file; the same table may be "
                         "[rd_policy] in --config. Default: the policy last set through "
                         "/api/rd/policy")
    groups = p.add_argument_group("Device groups", "group operations fanned out to members")
    groups.add_argument("--group-max-members", type=int, metavar="N",
                        help="members one group may have (default 100000)")
    groups.add_argument("--group-concurrency", type=int, metavar="N",
                        help="requests a group operation has in flight at once unless it "
                             "asks otherwise (default 64)")
    values = p.add_argument_group("values kept", "every value read, observed or sent, "
                                  "with its time (GET /api/clients/EP/values)")
    values.add_argument("--values-store", choices=["auto", "sqlite", "memory", "off"],
                        help="where (default auto: values.sqlite3 in --data-dir with the "
                             "SQLite store, memory otherwise)")
    values.add_argument("--values-max-age", type=float, metavar="SECONDS",
                        help="values older than this go (default 604800: 7 days)")
    values.add_argument("--values-max-samples", type=int, metavar="N",
                        help="values kept at most; the earliest recorded go first "
                             "(default 1000000)")


def settings_from(args: argparse.Namespace) -> ServerSettings:
    names = ("coap_host", "coap_port", "coaps_port", "dtls", "tcp_port", "tls_port", "tcp",
             "http2_port", "http2_max_body", "http2_max_concurrent_streams",
             "bootstrap", "bootstrap_port", "bootstrap_coaps_port", "bootstrap_dtls",
             "rpk_key", "certificate",
             "private_key", "trust_anchors", "http_host", "http_port", "http_certificate",
             "http_private_key", "api_tokens",
             "http_max_body", "http_max_upload", "metrics_access", "data_dir",
             "store", "node_id", "cluster_node_ttl", "cluster_route_timeout",
             "awake_time", "queue_ttl", "model_dirs", "credentials", "web_ui",
             "log_level", "allow_address_change", "event_loop", "tcp_idle_timeout",
             "tcp_frame_timeout", "tls_handshake_timeout", "tcp_max_connections",
             "tcp_max_connections_per_address", "reassembly_budget",
             "reassembly_peer_budget", "reassembly_unregistered_budget",
             "dtls_max_handshakes", "dtls_handshakes_per_address",
             "max_objects_per_registration", "max_registration_payload",
             "max_end_devices_per_gateway", "max_end_device_objects", "rd",
             "rd_max_links", "rd_max_registration_bytes", "rd_max_registrations",
             "rd_max_registrations_per_address", "rd_max_lookup_results", "rd_policy",
             "group_max_members", "group_concurrency", *NIDD_SETTINGS,
             "values_store", "values_max_age", "values_max_samples",
             "firmware_max_image", "firmware_public_host")
    overrides = {n: getattr(args, n, None) for n in names}
    overrides.update({n: getattr(args, n, None) for n in broker_flags.SERVER_SETTINGS})
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


def http2_limits(s: ServerSettings) -> Http2Limits:
    return Http2Limits(max_body=s.http2_max_body,
                       connection_body_budget=max(2 << 20, 2 * s.http2_max_body),
                       max_concurrent_streams=s.http2_max_concurrent_streams)


def https_settings(settings: ServerSettings) -> ssl.SSLContext | None:
    """The REST API's TLS context from http_certificate / http_private_key (None: HTTP)."""
    if settings.http_certificate is None or settings.http_private_key is None:
        return None
    from aiolwm2m.web.serve import https_context  # here: the web stack is heavy

    try:
        return https_context(settings.http_certificate, settings.http_private_key)
    except ValueError as e:
        raise SettingsError(f"http_certificate: {e}") from None


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
            http2_port=settings.http2_port, http2_limits=http2_limits(settings),
            dtls_x509=x509, data_dir=settings.data_dir,
            store=settings.store, node_id=settings.node_id or None,
            cluster=ClusterSettings(node_ttl=settings.cluster_node_ttl,
                                    route_timeout=settings.cluster_route_timeout),
            lwm2m_versions=frozenset(settings.lwm2m_versions),
            awake_time=settings.awake_time, queue_ttl=settings.queue_ttl,
            model_dirs=tuple(settings.model_dirs),
            allow_address_change=settings.allow_address_change,
            http_max_body=settings.http_max_body, http_max_upload=settings.http_max_upload,
            firmware_max_image=settings.firmware_max_image,
            firmware_public_host=settings.firmware_public_host or None,
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
            max_registration_payload=settings.max_registration_payload,
            max_end_devices_per_gateway=settings.max_end_devices_per_gateway,
            max_end_device_objects=settings.max_end_device_objects,
            rd=settings.rd, rd_limits=RdLimits(
                max_links=settings.rd_max_links,
                max_registration_bytes=settings.rd_max_registration_bytes,
                max_registrations=settings.rd_max_registrations,
                max_registrations_per_address=settings.rd_max_registrations_per_address,
                max_lookup_results=settings.rd_max_lookup_results),
            rd_policy=(parse_policy(settings.rd_policy) if settings.rd_policy is not None
                       else None),
            group_limits=GroupLimits(
                max_members=settings.group_max_members,
                default_concurrency=settings.group_concurrency,
                max_concurrency=max(settings.group_concurrency,
                                    GroupLimits.max_concurrency)),
            scef_url=settings.scef, nidd=nidd_flags.nidd_settings(settings),
            values_store=settings.values_store, values_max_age=settings.values_max_age,
            values_max_samples=settings.values_max_samples))
        self.https = https_settings(settings)
        self.tokens = list(settings.api_tokens) or [secrets.token_urlsafe(18)]
        self.generated_token = not settings.api_tokens
        self.web: Any = None
        # Made before the server starts: its /fw resource is there from the first packet.
        self.firmware = FirmwareService(self.server)
        self.broker = EmbeddedBroker(None, None)
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
        except (ListenerCheckFailed, StoreOpenError) as e:
            await self.server.stop()
            raise SettingsError(str(e)) from None
        except OSError as e:
            await self.server.stop()
            t = self.server.transports
            what, port = (("udp", s.coap_port) if "udp" not in t else
                          ("udp (dtls)", s.coaps_port) if s.dtls and "dtls" not in t else
                          ("tcp", s.tcp_port) if s.tcp and "tcp" not in t else
                          ("tcp (tls)", s.tls_port) if s.tcp and "tls" not in t else
                          ("tcp (http2)", s.http2_port or 0))
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
            except StoreOpenError as e:
                await self.bootstrap.stop()
                await self.server.stop()
                raise SettingsError(str(e)) from None
            except OSError as e:
                dtls = self.bootstrap.failed_listener == "dtls"
                await self.bootstrap.stop()
                await self.server.stop()
                raise SettingsError(describe_bind_error(
                    "udp (bootstrap dtls)" if dtls else "udp (bootstrap)", s.coap_host,
                    s.bootstrap_coaps_port if dtls else s.bootstrap_port, e)) from None
        try:
            self.broker = await EmbeddedBroker.start(s, self.server.refusals)
        except SettingsError:
            if self.bootstrap is not None:
                await self.bootstrap.stop()
            await self.server.stop()
            raise
        try:
            await self.firmware.start()
        except (OSError, sqlite3.Error) as e:
            await self.broker.stop()
            if self.bootstrap is not None:
                await self.bootstrap.stop()
            await self.server.stop()
            raise SettingsError(f"cannot open the firmware store in {s.data_dir}: {e}") from None
        from aiolwm2m.web.app import create_app
        from aiolwm2m.web.serve import WebServer

        self.web = WebServer(create_app(self.server, self.tokens, self.bootstrap,
                                        firmware=self.firmware),
                             s.http_host, s.http_port, tls=self.https)
        self.web.app.state.broker_view = self.broker.view
        try:
            await self.web.start()
        except OSError as e:
            await self.broker.stop()
            if self.bootstrap is not None:
                await self.bootstrap.stop()
            await self.server.stop()
            raise SettingsError(describe_bind_error("http", s.http_host, s.http_port, e)) from None
        if self.server.cluster is not None:
            self.server.cluster.http_url = self.web.url  # shown to the other nodes
        # Devices pulling firmware over HTTP come to this port.
        self.firmware.deliveries.http_port = self.web.port
        self.firmware.deliveries.http_host = s.http_host
        self.firmware.deliveries.http_scheme = self.web.scheme

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        await self.firmware.stop()
        await self.broker.stop()
        if self.bootstrap is not None:
            await self.bootstrap.stop()
        await self.server.stop()

    def banner(self) -> None:
        s = self.settings
        host = f"[{s.coap_host}]" if ":" in s.coap_host else s.coap_host
        schemes = {"udp": "coap:// udp", "dtls": "coaps:// udp", "tcp": "coap+tcp:// tcp",
                   "tls": "coaps+tcp:// tcp"}
        http2 = self.server.transports.get("http2")
        if http2 is not None:
            schemes["http2"] = f"{getattr(http2, 'scheme', 'http2')}:// tcp"
        listening = ", ".join(f"{schemes[n]} {host}:{self.server.port_of(n)}"
                              for n in schemes if n in self.server.transports)
        console.print(f"[bold]aiolwm2m server[/bold] {listening}; "
                      f"{len(self.server.registrations)} registrations loaded")
        if self.bootstrap is not None:
            bs = self.bootstrap
            bs_listening = ", ".join(f"{schemes[n]} {host}:{bs.port_of(n)}"
                                     for n in schemes if n in bs.transports)
            console.print(f"  bootstrap {bs_listening} ({len(bs.configs)} configurations)")
        broker_line = self.broker.banner(s.coap_host)
        if broker_line is not None:
            console.print(broker_line)
        nidd_line = nidd_flags.banner(self.server)
        if nidd_line is not None:
            console.print(nidd_line)
        login = f"#token={self.tokens[0]}" if self.generated_token else ""
        console.print(f"  web UI   {self.web.url}/ui/{login}")
        console.print(f"  REST API {self.web.url}/api  (OpenAPI {self.web.url}/openapi.json, "
                      f"docs {self.web.url}/api-docs)")
        console.print(f"  metrics  {self.web.url}/metrics")
        console.print(f"  loop     {event_loop.running()}")
        console.print(f"  data     {describe_store(s.store, s.data_dir)}")
        if s.node_id:
            console.print(f"  node     {s.node_id}, one of several sharing that store")
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
