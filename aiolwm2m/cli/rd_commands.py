"""``aiolwm2m rd register|lookup|unregister``: a CoRE Resource Directory from the shell.

``register`` keeps the registration alive until Ctrl-C and removes it then (``--once``:
register, print the location, exit); ``lookup`` prints one link per line; ``unregister``
deletes a registration by its location (or, with ``--ep``, the one lookup finds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import event_loop
from .credential_files import read_file
from .credential_flags import add_credential_flags

if TYPE_CHECKING:
    from aiolwm2m.client import AccountSecurity
    from aiolwm2m.coap.uri import CoapUri
    from aiolwm2m.rd_client import RdRegistration

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_parser(sub: SubParsers) -> None:
    rd = sub.add_parser(
        "rd", help="register with, look up in, unregister from a CoRE Resource Directory",
        description="The registering side of a CoRE Resource Directory (RFC 9176) over "
                    "coap://, coaps:// (DTLS), coap+tcp:// or coaps+tcp:// (TLS), with RD "
                    "credentials of its own (PSK, RPK or X.509) for the secure ones. An RD "
                    "URI without a path has its interfaces discovered through "
                    "/.well-known/core.")
    verbs = rd.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_register(verbs)
    _add_lookup(verbs)
    _add_unregister(verbs)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds one request may take, retransmissions included")
    p.add_argument("--host", help="local address to bind (default: any, of the RD's family)")
    add_credential_flags(
        p, "RD credentials", "for a coaps:// or coaps+tcp:// RD (they need not be the device's "
        "LwM2M credentials): PSK (--psk-identity, --psk-key), RPK (--rpk-key, "
        "--server-public-key) or X.509 (--certificate, --private-key, --trust-anchor)",
        peer="RD")
    event_loop.add_flag(p)


def _attribute(text: str) -> tuple[str, str | None]:
    """``key=value`` (or a bare ``key``)."""
    key, eq, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return key, value if eq else None


def _add_register(verbs: SubParsers) -> None:
    p = verbs.add_parser(
        "register", help="register an endpoint and keep it registered until Ctrl-C",
        description="Register an endpoint with an RD, refresh the registration before its "
                    "lifetime ends, register again if the RD forgets it, and remove it on "
                    "Ctrl-C. --once registers, prints the location and exits.")
    p.add_argument("rd", metavar="RD_URI",
                   help="the RD, e.g. coap://rd.example (discovered) or coap://rd.example/rd")
    p.add_argument("--ep", "--endpoint", dest="endpoint", required=True,
                   help="endpoint name (ep), at most 63 bytes")
    p.add_argument("--d", "--sector", dest="sector", help="sector (d), at most 63 bytes")
    p.add_argument("--et", action="append", default=[], metavar="TYPE",
                   help="endpoint type (et); may be repeated")
    p.add_argument("--base", help="base URI of the links (default: the RD takes the "
                                  "address the registration comes from; aiocoap's RD "
                                  "needs it over TCP)")
    p.add_argument("--lt", "--lifetime", dest="lifetime", type=int, default=90000,
                   help="lifetime in seconds (default 90000)")
    links = p.add_mutually_exclusive_group()
    links.add_argument("--links", metavar="LINK-FORMAT",
                       help='the links, e.g. \'</temp>;rt="temperature"\'')
    links.add_argument("--links-file", type=Path, metavar="FILE",
                       help="read the links (link-format) from a file")
    p.add_argument("--attr", action="append", type=_attribute, default=[],
                   metavar="KEY=VALUE", help="extra registration attribute; may be repeated")
    p.add_argument("--simple", action="store_true",
                   help="simple registration (POST /.well-known/rd): the RD fetches the "
                        "links from our /.well-known/core")
    p.add_argument("--once", action="store_true",
                   help="register once, print the location URI and exit (the registration "
                        "lapses after its lifetime)")
    p.add_argument("--no-unregister", action="store_true",
                   help="leave the registration in place on Ctrl-C")
    _add_common(p)
    p.set_defaults(handler=run_register)


def _add_lookup(verbs: SubParsers) -> None:
    p = verbs.add_parser(
        "lookup", help="look registrations (ep) or resources (res) up",
        description="Endpoint or resource lookup (RFC 9176 section 7); filters are "
                    "key=value arguments, ANDed, a trailing * matching any suffix "
                    "(e.g. rt=temp*). Prints one link per line.")
    p.add_argument("rd", metavar="RD_URI",
                   help="the RD (its lookup resource discovered), or the lookup resource "
                        "itself, e.g. coap://rd.example/rd-lookup/res")
    p.add_argument("kind", choices=["ep", "res"], help="endpoint or resource lookup")
    p.add_argument("filters", nargs="*", type=_attribute, metavar="KEY=VALUE")
    p.add_argument("--page", type=int, help="page number (with --count)")
    p.add_argument("--count", type=int, help="links per page")
    _add_common(p)
    p.set_defaults(handler=run_lookup)


def _add_unregister(verbs: SubParsers) -> None:
    p = verbs.add_parser(
        "unregister", help="remove a registration",
        description="DELETE a registration resource, given by its location URI (what "
                    "'register --once' prints), or found by endpoint lookup with --ep.")
    p.add_argument("location", metavar="URI",
                   help="the registration's location, e.g. coap://rd.example/rd/4; with "
                        "--ep, the RD")
    p.add_argument("--ep", "--endpoint", dest="endpoint",
                   help="find the registration of this endpoint by lookup")
    p.add_argument("--d", "--sector", dest="sector", help="... in this sector")
    _add_common(p)
    p.set_defaults(handler=run_unregister)


# -- building blocks -------------------------------------------------------------------------


def rd_security(args: argparse.Namespace) -> AccountSecurity | None:
    """The RD credentials the flags describe (None: none given)."""
    from .client_commands import client_security

    return client_security(args)


def registration_of(args: argparse.Namespace) -> RdRegistration:
    from aiolwm2m.rd_client import RdRegistration

    links: str | None = args.links
    if args.links_file is not None:
        links = read_file(args.links_file, "--links-file").decode("utf-8", "replace")
    return RdRegistration.build(args.endpoint, sector=args.sector, endpoint_types=args.et,
                                base=args.base, lifetime=args.lifetime, links=links,
                                extra=args.attr)


def location_uri(uri: CoapUri, location: str) -> str:
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return f"{uri.scheme}://{host}:{uri.port}{location}"


def _fail(verb: str, error: BaseException) -> int:
    print(f"aiolwm2m rd {verb}: {error}", file=sys.stderr)
    return 1


# -- register --------------------------------------------------------------------------------


async def _register(args: argparse.Namespace) -> int:
    from aiolwm2m.coap.uri import UriError
    from aiolwm2m.rd_client import RdRegisterer
    from aiolwm2m.rd_client.registerer import FAILURES

    try:
        registerer = RdRegisterer(args.rd, registration_of(args), security=rd_security(args),
                                  simple=args.simple, host=args.host,
                                  request_timeout=args.timeout)
    except (UriError, ValueError) as e:
        print(f"aiolwm2m rd register: {e}", file=sys.stderr)
        return 2
    if args.once:
        try:
            location = await registerer.register()
        except FAILURES as e:
            return _fail("register", e)
        finally:
            await registerer.close(unregister=False)
        print(location_uri(registerer.uri, location) if location
              else f"registered {args.endpoint} (the RD gave no location)", flush=True)
        return 0
    registerer.events.subscribe(lambda e: print(f"{e.name}: {e}", flush=True))
    stop = event_loop.stop_event()
    await registerer.start()
    print(f"registering {args.endpoint} with {registerer.uri} ({event_loop.running()}); "
          "Ctrl-C to stop", flush=True)
    try:
        await stop.wait()
    finally:
        await registerer.close(unregister=not args.no_unregister, timeout=args.timeout)
    return 0


def run_register(args: argparse.Namespace) -> int:
    return event_loop.run_command(_register(args), args, "rd register")


# -- lookup ----------------------------------------------------------------------------------


async def _lookup(args: argparse.Namespace) -> int:
    from aiolwm2m.coap.linkformat import format_link
    from aiolwm2m.coap.uri import UriError
    from aiolwm2m.rd_client import rd_lookup
    from aiolwm2m.rd_client.registerer import FAILURES

    try:
        links = await rd_lookup(args.rd, args.kind, args.filters, page=args.page,
                                count=args.count, security=rd_security(args),
                                host=args.host, timeout=args.timeout)
    except (UriError, ValueError) as e:
        print(f"aiolwm2m rd lookup: {e}", file=sys.stderr)
        return 2
    except FAILURES as e:
        return _fail("lookup", e)
    for link in links:
        print(format_link(link))
    return 0


def run_lookup(args: argparse.Namespace) -> int:
    return event_loop.run_command(_lookup(args), args, "rd lookup")


# -- unregister ------------------------------------------------------------------------------


async def _unregister(args: argparse.Namespace) -> int:
    from aiolwm2m.coap.uri import UriError
    from aiolwm2m.rd_client import rd_remove
    from aiolwm2m.rd_client.oneshot import rd_remove_endpoint
    from aiolwm2m.rd_client.registerer import FAILURES

    try:
        security = rd_security(args)
        if args.endpoint is not None:
            location = await rd_remove_endpoint(args.location, args.endpoint, args.sector,
                                                security=security, host=args.host,
                                                timeout=args.timeout)
            if not location:
                print(f"aiolwm2m rd unregister: the RD knows no endpoint {args.endpoint}",
                      file=sys.stderr)
                return 1
            print(f"removed {location}")
            return 0
        await rd_remove(args.location, security=security, host=args.host,
                        timeout=args.timeout)
    except (UriError, ValueError) as e:
        print(f"aiolwm2m rd unregister: {e}", file=sys.stderr)
        return 2
    except FAILURES as e:
        return _fail("unregister", e)
    print(f"removed {args.location}")
    return 0


def run_unregister(args: argparse.Namespace) -> int:
    return event_loop.run_command(_unregister(args), args, "rd unregister")
