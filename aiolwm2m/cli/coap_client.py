"""``aiolwm2m coap get|post|put|delete|fetch|ipatch|observe URI``: a command-line CoAP client."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from aiolwm2m.coap.codes import Code, code_str, is_success
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.uri import CoapUri, UriError, parse_uri
from aiolwm2m.transport.udp import UdpEndpoint

CONTENT_FORMAT_NAMES = {
    "text/plain": 0,
    "text": 0,
    "application/link-format": 40,
    "link": 40,
    "application/xml": 41,
    "application/octet-stream": 42,
    "opaque": 42,
    "application/exi": 47,
    "application/json": 50,
    "json": 50,
    "application/cbor": 60,
    "cbor": 60,
    "application/senml+json": 110,
    "senml+json": 110,
    "application/senml+cbor": 112,
    "senml+cbor": 112,
    "application/vnd.oma.lwm2m+tlv": 11542,
    "tlv": 11542,
    "application/vnd.oma.lwm2m+json": 11543,
    "lwm2m+json": 11543,
    "application/vnd.oma.lwm2m+cbor": 11544,
    "lwm2m+cbor": 11544,
}
_TEXTUAL = {0, 40, 41, 50, 110, 11543}
METHODS = {"get": Code.GET, "post": Code.POST, "put": Code.PUT, "delete": Code.DELETE,
           "fetch": Code.FETCH, "patch": Code.PATCH, "ipatch": Code.IPATCH}


def content_format(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return CONTENT_FORMAT_NAMES[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"unknown content format {text!r}") from None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    coap = sub.add_parser("coap", help="CoAP client commands and a demo CoAP server",
                          description="Talk CoAP from the command line.")
    verbs = coap.add_subparsers(dest="verb", required=True)
    for name in (*METHODS, "observe"):
        p = verbs.add_parser(name, help=f"send a {name.upper()} request" if name != "observe"
                             else "observe a resource and print its notifications")
        p.add_argument("uri", help="coap://host[:port]/path[?query]")
        p.add_argument("--payload", "-p", help="request payload (text)")
        p.add_argument("--payload-file", type=Path, help="read the payload from a file")
        p.add_argument("--content-format", "-c", type=content_format,
                       help="Content-Format of the payload (number or name)")
        p.add_argument("--accept", "-a", type=content_format, help="Accept option")
        p.add_argument("--non", action="store_true", help="send as Non-confirmable")
        p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
        p.add_argument("--block-size", type=int, default=1024, choices=[16, 32, 64, 128, 256,
                                                                         512, 1024])
        p.add_argument("--quiet", "-q", action="store_true", help="print the payload only")
        p.add_argument("--output", "-o", type=Path, help="write the payload to a file")
        if name == "observe":
            p.add_argument("--count", "-n", type=int, default=0,
                           help="stop after this many notifications (0: run until Ctrl-C)")
        p.set_defaults(handler=run)
    from .coap_server import add_parser as add_server
    add_server(verbs)


def build_request(args: argparse.Namespace, uri: CoapUri) -> Message:
    method = Code.GET if args.verb == "observe" else METHODS[args.verb]
    payload = b""
    if args.payload_file is not None:
        payload = args.payload_file.read_bytes()
    elif args.payload is not None:
        payload = args.payload.encode()
    msg = Message.request(method, uri.path, query=uri.query, payload=payload,
                          content_format=args.content_format, accept=args.accept,
                          confirmable=not args.non)
    return msg


def render_payload(msg: Message) -> str:
    cf = msg.content_format
    data = msg.payload
    if cf == 60 or cf == 112 or cf == 11544:
        import cbor2

        try:
            return repr(cbor2.loads(data))
        except Exception:
            return data.hex()
    if cf in _TEXTUAL or cf is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data.hex()
        if cf in (50, 110, 11543):
            try:
                return json.dumps(json.loads(text), indent=2)
            except ValueError:
                return text
        return text
    return data.hex()


def print_response(args: argparse.Namespace, msg: Message) -> None:
    if not args.quiet:
        cf = msg.content_format
        extra = f" (Content-Format {cf})" if cf is not None else ""
        obs = f" [Observe {msg.observe}]" if msg.observe is not None else ""
        print(f"{code_str(msg.code)}{extra}{obs}", file=sys.stderr)
    if args.output is not None:
        args.output.write_bytes(msg.payload)
    elif msg.payload:
        print(render_payload(msg), flush=True)


async def _run(args: argparse.Namespace) -> int:
    try:
        uri = parse_uri(args.uri)
    except UriError as e:
        print(f"aiolwm2m coap: {e}", file=sys.stderr)
        return 2
    if uri.scheme != "coap":
        print(f"aiolwm2m coap: {uri.scheme}:// is not supported by this command yet",
              file=sys.stderr)
        return 2
    request = build_request(args, uri)
    szx = (args.block_size.bit_length() - 5)
    host = "::" if ":" in uri.host else "0.0.0.0"
    endpoint = await UdpEndpoint.create(host, 0)
    try:
        remote = await endpoint.resolve(uri.host, uri.port)
        if args.verb == "observe":
            sub = await asyncio.wait_for(endpoint.observe(request, remote), args.timeout)
            first = await sub.first
            print_response(args, first)
            if not is_success(first.code) or first.observe is None:
                return 0 if is_success(first.code) else 1
            seen = 0
            async for note in sub:
                print_response(args, note)
                seen += 1
                if args.count and seen >= args.count:
                    break
            await sub.cancel()
            return 0
        response = await asyncio.wait_for(
            endpoint.request(request, remote, timeout=args.timeout, block_szx=szx),
            args.timeout)
        print_response(args, response)
        return 0 if is_success(response.code) else 1
    except (CoapError, TimeoutError, OSError) as e:
        print(f"aiolwm2m coap: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        await endpoint.close()


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
