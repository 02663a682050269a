"""``aiolwm2m client``, ``aiolwm2m bootstrap-server`` and ``aiolwm2m simulate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aiolwm2m.coap.uri import UriError, parse_uri

from . import event_loop
from .credential_files import read_file
from .credential_flags import add_credential_flags

if TYPE_CHECKING:
    from aiolwm2m.bootstrap import BootstrapServerConfig
    from aiolwm2m.client import AccountSecurity


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_client(sub)
    _add_bootstrap_server(sub)
    _add_simulate(sub)


# -- aiolwm2m client ----------------------------------------------------------------------


def _add_client(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "client", help="run an LwM2M 1.1 client (device) until Ctrl-C",
        description="An LwM2M 1.1 client with the standard objects (0-7) and a temperature "
                    "sensor (3303). The normal provisioning path is a bootstrap server "
                    "(--bootstrap); --server configures an LwM2M server directly, which is "
                    "a factory bootstrap and meant for development only (OSR-002). Either "
                    "URI may be coap://, coaps:// (DTLS), coap+tcp:// or coaps+tcp:// "
                    "(TLS); --server may also be http2:// (LwM2M over HTTP/2, h2c) or "
                    "https:// (HTTP/2 over TLS). A secure one takes the credentials below "
                    "(PSK, RPK or X.509), which become that account's Security object "
                    "instance; a PSK with http2:// is sent as a bearer token (trusted "
                    "networks only).")
    p.add_argument("--endpoint", "-e", default=socket.gethostname(),
                   help="endpoint name (default: the host name)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--bootstrap", "-b", metavar="URI",
                       help="bootstrap server, e.g. coap://bs.example:5683 or "
                            "coaps://bs.example:5684 (normal path)")
    group.add_argument("--server", "-s", metavar="URI",
                       help="DEVELOPMENT ONLY: register directly with this LwM2M server "
                            "(factory bootstrap)")
    group.add_argument("--nidd", metavar="URL",
                       help="DEVELOPMENT ONLY: register over NIDD (binding N) through the SCEF "
                            "emulator at URL, as --external-id (factory bootstrap)")
    p.add_argument("--external-id", metavar="ID",
                   help="--nidd: the device's External Identifier (local@domain) or MSISDN")
    p.add_argument("--short-server-id", type=int, default=1,
                   help="Short Server ID for --server (development only)")
    p.add_argument("--lifetime", type=int, default=300, help="registration lifetime (s)")
    p.add_argument("--queue", action="store_true", help="queue mode (sleep when idle)")
    p.add_argument("--awake-time", type=float, default=93.0,
                   help="queue mode: seconds awake after the last exchange")
    p.add_argument("--host", default="::", help="local address to bind")
    p.add_argument("--port", type=int, default=0, help="local port (0: any)")
    _add_register_format_flags(p)
    p.add_argument("--send-interval", type=float, default=0.0,
                   help="Send the temperature every this many seconds (0: never)")
    p.add_argument("--firmware-ca", type=Path, metavar="FILE",
                   help="CA certificates (PEM) trusted for https:// firmware downloads, "
                        "besides the system's")
    add_credential_flags(
        p, "security",
        "credentials for a coaps:// or coaps+tcp:// --bootstrap (or --server) URI: one of "
        "PSK (--psk-identity, --psk-key), RPK (--rpk-key, --server-public-key) or X.509 "
        "(--certificate, --private-key, --trust-anchor[, --certificate-usage])",
        peer="server")
    event_loop.add_flag(p)
    p.set_defaults(handler=run_client)


def client_security(args: argparse.Namespace) -> AccountSecurity | None:
    """The account credentials the security flags describe (None: no flag given)."""
    from aiolwm2m.client import AccountSecurity
    from aiolwm2m.security.credentials import (
        CertificateUsage,
        PskCredentials,
        RpkCredentials,
        X509Credentials,
    )
    from aiolwm2m.security.errors import SecurityError

    psk = args.psk_identity is not None or args.psk_key is not None
    rpk = args.rpk_key is not None or args.server_public_key is not None
    x509 = any(v is not None for v in (args.certificate, args.private_key, args.trust_anchor))
    if psk + rpk + x509 > 1:
        raise ValueError("give the credentials of one security mode: PSK, RPK or X.509")
    try:
        if psk:
            if args.psk_identity is None or args.psk_key is None:
                raise ValueError("PSK needs --psk-identity and --psk-key")
            try:
                key = bytes.fromhex(args.psk_key)
            except ValueError:
                raise ValueError("--psk-key is hex, e.g. 000102030405060708090a0b0c0d0e0f"
                                 ) from None
            return AccountSecurity(PskCredentials(args.psk_identity.encode("utf-8"), key),
                                   sni=args.sni)
        if rpk:
            if args.rpk_key is None or args.server_public_key is None:
                raise ValueError("RPK needs --rpk-key and --server-public-key")
            return AccountSecurity(RpkCredentials(read_file(args.rpk_key, "--rpk-key")),
                                   read_file(args.server_public_key, "--server-public-key"),
                                   args.sni)
        if x509:
            if args.certificate is None or args.private_key is None or (
                    args.trust_anchor is None):
                raise ValueError("X.509 needs --certificate, --private-key and "
                                 "--trust-anchor")
            return AccountSecurity(X509Credentials(
                read_file(args.certificate, "--certificate"),
                read_file(args.private_key, "--private-key"),
                read_file(args.trust_anchor, "--trust-anchor"),
                CertificateUsage(args.certificate_usage)), sni=args.sni)
    except SecurityError as e:
        raise ValueError(e.reason) from None
    return None


async def _client(args: argparse.Namespace) -> int:
    from aiolwm2m.client import ClientConfig, LwM2MClient, TemperatureInstance

    try:
        for uri in (args.bootstrap, args.server):
            if uri is not None:
                parse_uri(uri)
        security = client_security(args)
        firmware_trust = (read_file(args.firmware_ca, "--firmware-ca")
                          if args.firmware_ca is not None else None)
        if args.nidd is not None:
            from .nidd_flags import nidd_client_config

            config = nidd_client_config(args)
        elif args.server is not None:
            config = ClientConfig.development(
                args.endpoint, args.server, development_short_server_id=args.short_server_id,
                lifetime=args.lifetime, queue_mode=args.queue, awake_time=args.awake_time,
                host=args.host, port=args.port, development_security=security,
                lwm2m_version=args.lwm2m_version, content_formats=args.content_format,
                firmware_trust_pem=firmware_trust)
        else:
            config = ClientConfig(args.endpoint, bootstrap_uri=args.bootstrap,
                                  lifetime=args.lifetime, queue_mode=args.queue,
                                  awake_time=args.awake_time, host=args.host, port=args.port,
                                  bootstrap_security=security,
                                  lwm2m_version=args.lwm2m_version,
                                  content_formats=args.content_format,
                                  firmware_trust_pem=firmware_trust)
    except (UriError, ValueError) as e:
        print(f"aiolwm2m client: {e}", file=sys.stderr)
        return 2
    if args.server is not None or args.nidd is not None:
        print("aiolwm2m client: --server is a factory bootstrap, for development only",
              file=sys.stderr)
    temperature = TemperatureInstance(0)
    client = LwM2MClient(config, objects=[temperature])
    client.events.subscribe(lambda e: print(f"{e.name}: {e}", flush=True))
    stop = event_loop.stop_event()
    await client.start()
    print(f"client {args.endpoint} listening on port {client.port} ({event_loop.running()})",
          flush=True)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.send_interval or 3600.0)
            if args.send_interval and client.registered and not stop.is_set():
                try:
                    await client.send(["/3303/0/5700"])
                except Exception as e:
                    print(f"send failed: {e}", file=sys.stderr)
    finally:
        await client.stop()
    return 0


def run_client(args: argparse.Namespace) -> int:
    return event_loop.run_command(_client(args), args, "client")


# -- aiolwm2m bootstrap-server ------------------------------------------------------------


def _add_bootstrap_server(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bootstrap-server", help="run the LwM2M bootstrap server until Ctrl-C",
        description="Bootstrap-Server: answers POST /bs?ep=NAME and writes the endpoint's "
                    "configuration (Security, Server, Access Control objects). Serves "
                    "coap:// (--port) and, when their ports are given, coaps:// (DTLS), "
                    "coap+tcp:// and coaps+tcp:// (TLS); clients authenticate to the secure "
                    "ones with the bootstrap_credentials of their configuration (PSK, or "
                    "RPK / X.509 with --rpk-key / --certificate).")
    p.add_argument("--config", "-c", type=Path,
                   help="endpoint configurations, TOML or JSON (format: the docstring of "
                        "aiolwm2m/bootstrap/configuration.py)")
    p.add_argument("--server", "-s", metavar="URI",
                   help="shortcut: configure every endpoint ('*') for this NoSec LwM2M "
                        "server (coap://, coap+tcp:// or http2://; secure servers need "
                        "per-device credentials: give them in --config)")
    p.add_argument("--short-server-id", type=int, default=1)
    p.add_argument("--lifetime", type=int, default=300)
    p.add_argument("--host", default="::")
    p.add_argument("--port", type=int, default=5683, help="UDP port for coap://")
    p.add_argument("--no-udp", action="store_true", help="do not serve coap:// (NoSec UDP)")
    p.add_argument("--coaps-port", type=int, help="UDP port for coaps:// (DTLS), e.g. 5684")
    p.add_argument("--tcp-port", type=int, help="TCP port for coap+tcp://, e.g. 5683")
    p.add_argument("--tls-port", type=int, help="TCP port for coaps+tcp://, e.g. 5684")
    p.add_argument("--http2-port", type=int,
                   help="TCP port for http2:// (LwM2M over HTTP/2, h2c; bootstrap "
                        "credentials as bearer tokens), e.g. 5690")
    p.add_argument("--rpk-key", type=Path, metavar="FILE",
                   help="our EC key pair (PEM or DER private key), offered to RPK clients")
    p.add_argument("--certificate", type=Path, metavar="FILE",
                   help="our certificate chain (PEM), for X.509 clients")
    p.add_argument("--private-key", type=Path, metavar="FILE",
                   help="the private key of --certificate")
    p.add_argument("--trust-anchors", type=Path, metavar="FILE",
                   help="CA certificates (PEM) client certificates must chain to")
    p.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    p.add_argument("--data-dir", type=Path, default=Path("aiolwm2m-data"))
    event_loop.add_flag(p)
    p.set_defaults(handler=run_bootstrap_server)


def bootstrap_server_config(args: argparse.Namespace) -> BootstrapServerConfig:
    """The Bootstrap-Server's configuration from its flags (ValueError with the reason)."""
    from aiolwm2m.bootstrap import BootstrapServerConfig

    from .credential_files import server_credentials

    rpk, x509 = server_credentials(args.rpk_key, args.certificate, args.private_key,
                                   args.trust_anchors)
    if args.no_udp and args.coaps_port is None and args.tcp_port is None and (
            args.tls_port is None):
        raise ValueError("--no-udp leaves no transport: give --coaps-port, --tcp-port or "
                         "--tls-port")
    return BootstrapServerConfig(
        host=args.host, port=None if args.no_udp else args.port, coaps_port=args.coaps_port,
        tcp_port=args.tcp_port, tls_port=args.tls_port, dtls_rpk=rpk, dtls_x509=x509,
        store=args.store, data_dir=args.data_dir, config_file=args.config)


async def _bootstrap_server(args: argparse.Namespace) -> int:
    from aiolwm2m.bootstrap import BootstrapServer, EndpointConfig
    from aiolwm2m.security.errors import SecurityError

    try:
        config = bootstrap_server_config(args)
    except ValueError as e:
        print(f"aiolwm2m bootstrap-server: {e}", file=sys.stderr)
        return 2
    server = BootstrapServer(config)
    server.events.subscribe(lambda e: print(f"{e.name}: {e}", flush=True))
    try:
        await server.start()
        if args.http2_port is not None:
            from aiolwm2m.http2.bootstrap_binding import open_bootstrap_http2

            await open_bootstrap_http2(server, args.host, args.http2_port)
        if args.server is not None:
            over_http2 = parse_uri(args.server).scheme in ("http2", "https")
            await server.set_config("*", EndpointConfig.for_server(
                args.server, args.short_server_id, lifetime=args.lifetime,
                binding="H" if over_http2 else None))
    except (ValueError, OSError, SecurityError) as e:
        # ValueError: ConfigurationError, UriError, no transport at all.
        print(f"aiolwm2m bootstrap-server: {e}", file=sys.stderr)
        await server.stop()
        return 2
    if not server.configs:
        print("aiolwm2m bootstrap-server: warning: no configuration (use --config or "
              "--server); every Bootstrap-Request will be refused", file=sys.stderr)
    ports = ", ".join(f"{name} {server.port_of(name)}" for name in server.transports)
    print(f"bootstrap server on port {server.port} ({ports}) with "
          f"{len(server.configs)} configuration(s)", flush=True)
    stop = event_loop.stop_event()
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0


def run_bootstrap_server(args: argparse.Namespace) -> int:
    return event_loop.run_command(_bootstrap_server(args), args, "bootstrap-server")


# -- aiolwm2m simulate --------------------------------------------------------------------


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate", help="simulate many LwM2M devices in one process",
        description="N simulated devices (Device, Server and Temperature objects; the "
                    "temperature drifts, observations are honoured, each device Sends every "
                    "--send-interval seconds), started at --rate per second, with a live "
                    "progress display and a summary.")
    p.add_argument("--count", "-n", type=int, required=True, help="number of devices")
    p.add_argument("--server", "-s", metavar="URI",
                   help="the LwM2M server, coap:// or http2:// (LwM2M over HTTP/2, a "
                        "connection per device); with --bootstrap, only the default")
    p.add_argument("--bootstrap", "-b", metavar="URI",
                   help="bootstrap each device from this bootstrap server first")
    p.add_argument("--rate", "-r", type=float, default=200.0, help="devices started per s")
    p.add_argument("--duration", "-d", type=float, default=None,
                   help="seconds to run once all are registered (default: until Ctrl-C)")
    p.add_argument("--register-timeout", type=float, default=None,
                   help="stop waiting for all registrations after this many seconds")
    p.add_argument("--lifetime", type=int, default=300, help="registration lifetime (s)")
    p.add_argument("--send-interval", type=float, default=300.0,
                   help="seconds between two Sends of a device")
    p.add_argument("--prefix", default="sim-", help="endpoint name prefix")
    p.add_argument("--progress", choices=["auto", "rich", "lines", "none"], default="auto")
    p.add_argument("--interval", type=float, default=1.0, help="progress update period (s)")
    p.add_argument("--json-summary", type=Path, help="also write the summary as JSON")
    p.add_argument("--no-deregister", action="store_true",
                   help="do not De-register the devices when stopping")
    p.add_argument("--seed", type=int, default=None, help="random seed (jitter)")
    p.add_argument("--nidd", metavar="URL",
                   help="instead of --server: non-IP devices (binding N) on the SCEF emulator "
                        "at URL, UEs <endpoint>@--nidd-domain in group --nidd-group (serve "
                        "it with aiolwm2m server --nidd-group)")
    p.add_argument("--nidd-group", default="sim@nidd.example", metavar="GROUPID")
    p.add_argument("--nidd-domain", default="nidd.example", metavar="DOMAIN")
    p.add_argument("--gateways", type=int, default=0, metavar="G",
                   help="also run G LwM2M Gateways (endpoints <prefix>gw-000000 ...), each "
                        "fronting --end-devices simulated end devices; --count may then be 0")
    p.add_argument("--end-devices", type=int, default=10, metavar="N",
                   help="simulated end devices behind each gateway (default 10)")
    _add_register_format_flags(p)
    event_loop.add_flag(p)
    p.set_defaults(handler=run_simulate)


async def _simulate(args: argparse.Namespace) -> int:
    from aiolwm2m.simulator import FleetConfig, FleetProfile, run_fleet
    from aiolwm2m.simulator.progress import print_summary

    if args.count < (0 if args.gateways > 0 else 1) or args.rate <= 0:
        print("aiolwm2m simulate: --count and --rate must be positive", file=sys.stderr)
        return 2
    if (args.server is None) == (args.nidd is None):
        print("aiolwm2m simulate: give --server URI or --nidd URL", file=sys.stderr)
        return 2
    gateways = None
    if args.gateways:
        from aiolwm2m.simulator.gateways import GatewayFleet, GatewayFleetConfig

        try:
            gateways = GatewayFleet(GatewayFleetConfig(
                args.gateways, args.server or "", end_devices=args.end_devices,
                endpoint_prefix=f"{args.prefix}gw-", lifetime=args.lifetime))
        except (UriError, ValueError) as e:
            print(f"aiolwm2m simulate: --gateways: {e}", file=sys.stderr)
            return 2
    profile = FleetProfile(endpoint_prefix=args.prefix, lifetime=args.lifetime,
                           send_interval=args.send_interval,
                           deregister_on_stop=not args.no_deregister)
    try:
        if args.nidd is not None:
            from .nidd_flags import nidd_fleet_config

            config = await nidd_fleet_config(args, profile)
        else:
            config = FleetConfig(args.count, args.server, args.bootstrap, args.rate, profile,
                                 seed=args.seed, lwm2m_version=args.lwm2m_version,
                                 content_formats=args.content_format)
        summary = await run_fleet(config, duration=args.duration,
                                  register_timeout=args.register_timeout,
                                  progress=args.progress, interval=args.interval,
                                  json_summary=args.json_summary, gateways=gateways)
    except (UriError, ValueError, OSError, RuntimeError) as e:
        print(f"aiolwm2m simulate: {e}", file=sys.stderr)
        return 1
    if args.progress == "none":
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    if gateways is not None and summary["gateways_registered"] != args.gateways:
        return 1
    return 0 if summary["registered"] == args.count else 1


def run_simulate(args: argparse.Namespace) -> int:
    return event_loop.run_command(_simulate(args), args, "simulate")


# -- shared ---------------------------------------------------------------------------------


def content_formats_arg(text: str) -> tuple[int, ...]:
    """``--content-format``: numbers or names (``senml-json``, ``tlv``...), comma-separated;
    ``none`` for no ``ct`` at all."""
    from aiolwm2m.lwm2m.formats import ContentFormat

    if text.strip().lower() == "none":
        return ()
    formats = []
    for item in text.split(","):
        name = item.strip()
        if name.isdigit():
            formats.append(int(name))
            continue
        try:
            formats.append(int(ContentFormat[name.upper().replace("-", "_")]))
        except KeyError:
            raise argparse.ArgumentTypeError(
                f"{name!r} is not a content format (a number, or a name such as "
                "senml-json, senml-cbor, tlv, lwm2m-cbor)") from None
    return tuple(formats)


def _add_register_format_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lwm2m-version", choices=["1.1", "1.2"], default="1.1",
                   help="the LwM2M version to register as (1.2 changes only the content "
                        "formats the Register announces)")
    p.add_argument("--content-format", type=content_formats_arg, default=None,
                   metavar="LIST",
                   help="what the Register's root link announces (ct): one format under "
                        "1.1 (default senml-json, 110), a comma-separated list under 1.2 "
                        "(default: all the client handles), or 'none'")
