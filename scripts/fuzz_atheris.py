"""Coverage-guided fuzzing of every decoder with atheris (libFuzzer), over the same targets as
the hypothesis tests in tests/fuzz. The test suite runs it for 20 s where atheris installs
(tests/fuzz/test_atheris.py; `scripts/setup.sh test` tries to install it); longer hunts by
hand:

    .venv/bin/pip install atheris                      # a manylinux wheel; no compiler needed
    .venv/bin/python scripts/fuzz_atheris.py -max_len=65536 -timeout=2 -max_total_time=600
    .venv/bin/python scripts/fuzz_atheris.py crash-<sha1>            # replay one finding

The first input byte picks the target, the rest is its input. A target may return a value or
raise its layer's own error (LwM2MError, CoapError, RegistrationError...); any other
exception is a finding (libFuzzer writes the input to ./crash-*), and so is an input slower
than ``-timeout`` seconds. The compiled core is turned off so that coverage covers it too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

os.environ.setdefault("AIOLWM2M_PURE_PYTHON", "1")

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("atheris is not installed: .venv/bin/pip install atheris")

with atheris.instrument_imports(include=["aiolwm2m"]):
    from aiolwm2m.client.request_paths import lwm2m_path, payload_format
    from aiolwm2m.coap.codec import decode_udp
    from aiolwm2m.coap.errors import CoapError
    from aiolwm2m.coap.linkformat import LinkFormatError, parse_link_format
    from aiolwm2m.coap.tcp_framing import FrameParser
    from aiolwm2m.lwm2m import (
        SUPPORTED_FORMATS,
        InvalidAttribute,
        InvalidPath,
        LwM2MError,
        LwM2MPath,
        ModelRegistry,
        decode_composite,
        decode_node,
        decode_paths,
        decode_timestamped,
        parse_write_attributes,
    )
    from aiolwm2m.lwm2m.formats import decode_create, decode_discover, decode_object_list
    from aiolwm2m.server.registration_params import (
        RegistrationError,
        parse_register,
        parse_update,
    )

MODEL = ModelRegistry.with_core_objects()
PINNED = MODEL.pinned({10: "1.1", 3: "1.0"})
PATHS = [LwM2MPath.parse(p) for p in ("/3", "/3/0", "/3/0/7", "/3/0/7/1", "/10/0", "/3303/0",
                                      "/9999/0")]
FORMATS = sorted(SUPPORTED_FORMATS)
VERSIONS = frozenset({"1.0", "1.1"})


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _content(data: bytes) -> None:
    if len(data) < 2:
        return
    fmt, path = FORMATS[data[0] % len(FORMATS)], PATHS[data[1] % len(PATHS)]
    model = PINNED if data[0] & 0x80 else MODEL
    payload = data[2:]
    for call in (lambda: decode_node(fmt, payload, path, model),
                 lambda: decode_composite(fmt, payload, [path], model),
                 lambda: decode_timestamped(fmt, payload, path, model),
                 lambda: decode_create(fmt, payload, LwM2MPath(path[0]), model, 1),
                 lambda: decode_paths(fmt, payload)):
        try:
            call()
        except LwM2MError:
            pass


def _links(data: bytes) -> None:
    text = _text(data)
    for call, allowed in ((lambda: parse_link_format(text), LinkFormatError),
                          (lambda: decode_discover(text), LwM2MError),
                          (lambda: decode_object_list(text, max_entries=1000), LwM2MError)):
        try:
            call()
        except allowed:
            pass


def _paths_and_attributes(data: bytes) -> None:
    text = _text(data)
    try:
        LwM2MPath.parse(text)
    except InvalidPath:
        pass
    try:
        parse_write_attributes(text)
    except InvalidAttribute:
        pass


def _registration(data: bytes) -> None:
    query, _, payload = data.partition(b"\n")
    items = _text(query).split("&")
    try:
        parse_register(items, payload, 40, accepted_versions=VERSIONS, default_lifetime=60,
                       max_objects=1000, max_payload=1 << 16)
    except RegistrationError:
        pass
    try:
        parse_update(items, payload, 40, "1.1", "dev", max_objects=1000, max_payload=1 << 16)
    except RegistrationError:
        pass


def _coap(data: bytes) -> None:
    try:
        msg = decode_udp(data)
        lwm2m_path(msg.uri_path)
        payload_format(msg.content_format)
    except CoapError:
        pass
    parser = FrameParser(1 << 20)
    try:
        for msg in parser.feed(data[: len(data) // 2]) + parser.feed(data[len(data) // 2:]):
            lwm2m_path(msg.uri_path)
    except CoapError:
        pass


TARGETS: list[Callable[[bytes], None]] = [_content, _links, _paths_and_attributes,
                                          _registration, _coap]


def one_input(data: bytes) -> None:
    if data:
        TARGETS[data[0] % len(TARGETS)](data[1:])


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
