"""Numbers from the wire are range-checked before conversion, and errors quote input short.

``int()`` refuses text of more than 4300 digits with a bare ValueError, and ``repr()`` refuses
such ints: both used to escape the decoders (a 5.00 with a traceback, or a REST 500)."""

from __future__ import annotations

import cbor2
import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import (
    ContentFormat,
    InvalidAttribute,
    InvalidPath,
    InvalidPayload,
    InvalidValue,
    LwM2MError,
    LwM2MPath,
    ModelRegistry,
    decode_node,
    decode_timestamped,
    parse_write_attributes,
)
from aiolwm2m.lwm2m.bounded_int import parse_decimal
from aiolwm2m.lwm2m.errors import shown
from aiolwm2m.lwm2m.formats import decode_discover
from aiolwm2m.lwm2m.node_builder import build_node

CF = ContentFormat
P = LwM2MPath.parse
HUGE = "9" * 4301


def test_parse_decimal() -> None:
    assert parse_decimal("65535", 65535) == 65535
    assert parse_decimal("0000065535", 65535) is None  # too many digits, even as zeros
    assert parse_decimal("0065535", 65535) == 65535
    for text in ("", "65536", "-1", "+1", " 1", "1_0", "\u0661", HUGE):
        assert parse_decimal(text, 65535) is None, text
    assert parse_decimal("0", 10, 1) is None


def test_shown_never_raises() -> None:
    assert shown(2**20000) == "<an integer of 20001 bits>"
    assert shown("x" * 500, 20) == "'xxxxxxxxxxxxxxxx..."
    assert shown([2**20000]) == "<a list>"


@pytest.mark.parametrize("text", [f"/{HUGE}", f"/3/{HUGE}", f"/3/0/{'0' * 5000}1",
                                  "/3/0/1/" + "/" * 30000])
def test_paths(text: str) -> None:
    with pytest.raises(InvalidPath) as info:
        LwM2MPath.parse(text)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("query", [f"pmin={HUGE}", "pmax=4294967296", f"epmin={HUGE}",
                                   f"hqmax={HUGE}", "gt=1e999", f"lt={HUGE}e9999"])
def test_attributes(query: str) -> None:
    with pytest.raises(InvalidAttribute) as info:
        parse_write_attributes(query)
    assert len(str(info.value)) < 200
    assert parse_write_attributes("pmin=4294967295").set.pmin == 2**32 - 1


@pytest.mark.parametrize(("fmt", "payload", "path"), [
    (CF.SENML_JSON, f'[{{"n":"/{HUGE}/0/9","v":1}}]'.encode(), "/3/0"),
    (CF.SENML_JSON, f'[{{"bn":"/3/0/","n":"{HUGE}","v":1}}]'.encode(), "/3/0"),
    (CF.SENML_JSON, f'[{{"n":"/3/0/9","v":{HUGE}}}]'.encode(), "/3/0"),
    (CF.SENML_CBOR, cbor2.dumps([{0: "/3/0/9", 2: 2**20000}]), "/3/0"),
    (CF.SENML_CBOR, cbor2.dumps([{0: "/9999/0/9", 2: 2**20000}]), "/9999/0"),
    (CF.LWM2M_JSON, f'{{"e":[{{"n":"/3/0/{HUGE}","v":1}}]}}'.encode(), "/3/0"),
    (CF.LWM2M_CBOR, cbor2.dumps({(3, 0): {9: 2**20000}}), "/3/0"),
    (CF.LWM2M_CBOR, cbor2.dumps({(3, 0): {2**20000: 1}}), "/3/0"),
    (CF.LWM2M_CBOR, cbor2.dumps({(10, 0): {6: 2**20000}}), "/10/0"),
    (CF.CBOR, cbor2.dumps(2**20000), "/3/0/13"),
])
def test_content_formats(fmt: int, payload: bytes, path: str) -> None:
    with pytest.raises(LwM2MError) as info:
        decode_node(fmt, payload, P(path), ModelRegistry.with_core_objects())
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(("fmt", "payload"), [
    (CF.SENML_JSON, b'[{"bt":1e999,"n":"/3/0/9","v":1}]'),
    (CF.SENML_CBOR, cbor2.dumps([{-3: 10**40, 0: "/3/0/9", 2: 1}])),
    (CF.SENML_CBOR, cbor2.dumps([{0: "/3/0/9", 6: 2**20000, 2: 1}])),
    (CF.LWM2M_JSON, b'{"bt":1e999,"e":[{"n":"/3/0/9","v":1}]}'),
    (CF.LWM2M_JSON, f'{{"bt":{"9" * 60},"e":[{{"n":"/3/0/9","v":1}}]}}'.encode()),
])
def test_times_are_seconds_not_any_number(fmt: int, payload: bytes) -> None:
    with pytest.raises(InvalidPayload, match="number of seconds"):
        decode_timestamped(fmt, payload, LwM2MPath(), ModelRegistry.with_core_objects())


def test_discover_dim_and_rest_ids() -> None:
    with pytest.raises(InvalidPayload, match="is not a count"):
        decode_discover(f"</3/0/7>;dim={HUGE}")
    assert decode_discover("</3/0/7>;dim=65536")[0].dim == 65536
    model = ModelRegistry.with_core_objects()
    with pytest.raises(InvalidValue, match=r"is not a number in 0\.\.65535"):
        build_node(model, P("/3303"), {HUGE: {"5700": 1.0}})
    with pytest.raises(InvalidValue, match=r"is not a number in 0\.\.65535"):
        build_node(model, P("/3/0"), {"7": {HUGE: 1}})


def test_long_uint_options_read_as_absent() -> None:
    # A Content-Format of 2,000 bytes is a legal option on the wire, but no number.
    msg = Message.request(Code.POST, ["3", "0"], payload=b"x")
    msg.options.append((12, b"\xff" * 2000))
    assert msg.content_format is None
    msg.options[-1] = (12, b"\x2d\x16")
    assert msg.content_format == 11542
