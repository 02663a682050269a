"""The NIDD flags of ``aiolwm2m server`` (``--scef`` and its companions), and what they
become: ``ServerConfig.scef_url`` and ``ServerConfig.nidd``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from aiolwm2m.nidd.devices import NiddDevice, NiddGroup
from aiolwm2m.nidd.settings import NiddSettings
from aiolwm2m.nidd.t8_fields import T8FormatError, external_id

from .settings import ServerSettings, SettingsError

if TYPE_CHECKING:
    from aiolwm2m.client import ClientConfig
    from aiolwm2m.simulator import FleetConfig, FleetProfile

NIDD_SETTINGS = ("scef", "scef_scs_as_id", "scef_token", "scef_callback_url", "nidd_devices",
                 "nidd_groups", "nidd_ttl", "nidd_max_callback_body", "nidd_app_id",
                 "nidd_rds_ports")


def add_server_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "NIDD", "non-IP devices (binding N) reached through a 3GPP SCEF's T8 NIDD API; "
        "the SCEF posts their data to this server's HTTP port")
    g.add_argument("--scef", metavar="URL",
                   help="T8 API root of the SCEF, e.g. http://127.0.0.1:8800 (off by default)")
    g.add_argument("--scef-scs-as-id", metavar="ID",
                   help="this server's SCS/AS identifier at the SCEF (default aiolwm2m)")
    g.add_argument("--scef-token", metavar="TOKEN", help="bearer token for T8 requests")
    g.add_argument("--scef-callback-url", metavar="URL",
                   help="base URL the SCEF reaches this server's HTTP port at (default "
                        "http://<http-host>:<http-port>)")
    g.add_argument("--nidd-device", dest="nidd_devices", action="append",
                   metavar="EXTID[=ENDPOINT]",
                   help="a device the SCEF serves, by External Identifier (or MSISDN), bound "
                        "to ENDPOINT when given (repeatable; also PUT /api/nidd/devices/{id})")
    g.add_argument("--nidd-group", dest="nidd_groups", action="append", metavar="GROUPID",
                   help="a group (External Group Identifier) whose members the SCEF serves "
                        "(repeatable)")
    g.add_argument("--nidd-ttl", type=float, metavar="S",
                   help="time to live of downlink data without one of its own (default 3600)")
    g.add_argument("--nidd-max-callback-body", type=int, metavar="BYTES",
                   help="largest SCEF notification read, 413 above (default 64 KiB)")
    g.add_argument("--nidd-app-id", metavar="APPID",
                   help="application id this server reserves its RDS ports under (OSR-001)")
    g.add_argument("--nidd-rds-ports", metavar="UE:SCEF",
                   help="the RDS port pair devices reach this server at, 0..15 each")


def _rds_ports(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    ue, sep, scef = text.partition(":")
    try:
        pair = (int(ue), int(scef))
    except ValueError:
        pair = (-1, -1)
    if not sep or not all(0 <= p <= 15 for p in pair):
        raise SettingsError(f"nidd_rds_ports {text!r} is not UE:SCEF with ports 0..15")
    return pair


def nidd_settings(s: ServerSettings) -> NiddSettings:
    """What the flags say, checked (SettingsError names the bad one)."""
    if s.scef is not None and not s.scef.startswith(("http://", "https://")):
        raise SettingsError(f"scef {s.scef!r} is not an http(s) URL")
    callback = s.scef_callback_url
    if s.scef is not None and callback is None:
        if s.http_port == 0:
            raise SettingsError("--scef with --http-port 0 needs --scef-callback-url (the "
                                "SCEF must know where to post)")
        host = f"[{s.http_host}]" if ":" in s.http_host else s.http_host
        scheme = "http" if s.http_certificate is None else "https"
        callback = f"{scheme}://{host}:{s.http_port}"
    try:
        devices = tuple(NiddDevice.from_text(d) for d in s.nidd_devices)
        groups = tuple(NiddGroup(external_id(g.strip(), "group")) for g in s.nidd_groups)
    except T8FormatError as e:
        raise SettingsError(f"NIDD device or group: {e.reason}") from None
    if not 1 <= s.nidd_ttl <= 366 * 86400:
        raise SettingsError("nidd_ttl is 1 s to a year")
    if s.nidd_max_callback_body < 1024:
        raise SettingsError("nidd_max_callback_body must be at least 1024 bytes")
    return NiddSettings(scs_as_id=s.scef_scs_as_id, token=s.scef_token, callback_url=callback,
                        devices=devices, groups=groups, ttl=s.nidd_ttl,
                        max_callback_body=s.nidd_max_callback_body, app_id=s.nidd_app_id,
                        rds_ports=_rds_ports(s.nidd_rds_ports))


def banner(server: Any) -> str | None:
    service = server.nidd
    if service is None:
        return None
    return (f"  nidd     SCEF {service.client.api_root} as {service.settings.scs_as_id}; "
            f"{len(service.directory.devices)} devices, {len(service.directory.groups)} "
            "groups; notifications to "
            f"{service.callback_url.rsplit('/', 1)[0]}/…")


def nidd_client_config(args: argparse.Namespace) -> ClientConfig:
    """``aiolwm2m client --nidd URL --external-id ID``: a device on the SCEF emulator
    (ValueError says what is missing)."""
    from aiolwm2m.client import ClientConfig
    from aiolwm2m.nidd.attachment import (
        CLIENT_NIDD_TRANSMISSION,
        NIDD_SERVER_URI,
        NiddAttachment,
    )

    if not args.external_id:
        raise ValueError("--nidd needs --external-id (the device's External Identifier)")
    if not args.nidd.startswith(("http://", "https://")):
        raise ValueError(f"--nidd {args.nidd!r} is not the SCEF emulator's http(s) URL")
    return ClientConfig.development(
        args.endpoint, NIDD_SERVER_URI, development_short_server_id=args.short_server_id,
        lifetime=args.lifetime, queue_mode=args.queue, awake_time=args.awake_time,
        host=args.host, port=args.port, binding="N", transmission=CLIENT_NIDD_TRANSMISSION,
        nidd=NiddAttachment(args.nidd, args.external_id), lwm2m_version=args.lwm2m_version,
        content_formats=args.content_format)


async def nidd_fleet_config(args: argparse.Namespace, profile: FleetProfile) -> FleetConfig:
    """``aiolwm2m simulate --nidd URL``: the fleet on the SCEF emulator's UE socket."""
    import httpx

    from aiolwm2m.nidd.attachment import CLIENT_NIDD_TRANSMISSION, NIDD_SERVER_URI
    from aiolwm2m.simulator import FleetConfig
    from aiolwm2m.simulator.nidd_fleet_link import NiddFleetLink

    try:
        link = await NiddFleetLink.resolve(args.nidd, args.nidd_group, args.nidd_domain)
    except (httpx.HTTPError, KeyError, ValueError) as e:
        raise ValueError(f"cannot reach the SCEF emulator at {args.nidd}: {e}") from None
    return FleetConfig(args.count, NIDD_SERVER_URI, None, args.rate, profile,
                       transmission=CLIENT_NIDD_TRANSMISSION, seed=args.seed,
                       lwm2m_version=args.lwm2m_version, content_formats=args.content_format,
                       nidd=link)
