from __future__ import annotations

import pytest

from aiolwm2m.coap.options import (
    REGISTRY,
    RESERVED_NUMBERS,
    OptionNumber,
    check_option,
    decode_uint,
    decode_value,
    encode_uint,
    encode_value,
    is_critical,
    is_no_cache_key,
    is_unsafe,
    option_def,
)


def test_class_bits_follow_the_number() -> None:
    assert is_critical(OptionNumber.URI_PATH) and is_unsafe(OptionNumber.URI_PATH)
    assert not is_critical(OptionNumber.ETAG) and not is_unsafe(OptionNumber.ETAG)
    assert not is_critical(OptionNumber.CONTENT_FORMAT)
    assert is_unsafe(OptionNumber.URI_HOST) and is_critical(OptionNumber.URI_HOST)
    assert is_unsafe(OptionNumber.OBSERVE) and not is_critical(OptionNumber.OBSERVE)
    assert is_no_cache_key(OptionNumber.SIZE1)
    assert not is_no_cache_key(OptionNumber.ETAG)
    assert all(not is_critical(n) for n in RESERVED_NUMBERS)


@pytest.mark.parametrize(("value", "raw"), [(0, b""), (1, b"\x01"), (255, b"\xff"),
                                            (256, b"\x01\x00"), (0x10000, b"\x01\x00\x00")])
def test_uint_is_shortest(value: int, raw: bytes) -> None:
    assert encode_uint(value) == raw
    assert decode_uint(raw) == value


def test_typed_values() -> None:
    assert encode_value(OptionNumber.URI_PATH, "é") == "é".encode()
    assert decode_value(OptionNumber.ACCEPT, b"\x2d\x16") == 11542
    assert decode_value(OptionNumber.IF_NONE_MATCH, b"") is None
    assert decode_value(9999, b"\x01") == b"\x01"
    with pytest.raises(TypeError):
        encode_value(OptionNumber.URI_PATH, 3)
    with pytest.raises(TypeError):
        encode_value(OptionNumber.ACCEPT, "json")


def test_length_rules() -> None:
    assert check_option(OptionNumber.URI_HOST, b"") is not None
    assert check_option(OptionNumber.URI_HOST, b"h") is None
    assert check_option(OptionNumber.ETAG, b"123456789") is not None
    assert check_option(12345, b"anything") is None


def test_registry_is_consistent() -> None:
    for number, d in REGISTRY.items():
        assert d.number == number
        assert option_def(d.name) is d
        assert d.min_length <= d.max_length
