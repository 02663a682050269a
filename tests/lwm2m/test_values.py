from __future__ import annotations

import datetime as dt

import pytest

from aiolwm2m.lwm2m import InvalidValue, ObjectLink, ResourceType, coerce_value, from_text, to_text

T = ResourceType
UTC = dt.UTC


@pytest.mark.parametrize(
    ("rtype", "value", "expected"),
    [
        (T.STRING, "abc", "abc"),
        (T.INTEGER, -(2**63), -(2**63)),
        (T.INTEGER, 5.0, 5),
        (T.UNSIGNED_INTEGER, 2**64 - 1, 2**64 - 1),
        (T.FLOAT, 3, 3.0),
        (T.BOOLEAN, True, True),
        (T.OPAQUE, bytearray(b"\x01"), b"\x01"),
        (T.TIME, 0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
        (T.TIME, 1.9, dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
        (
            T.TIME,
            dt.datetime(2020, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            dt.datetime(2020, 1, 1, tzinfo=UTC),
        ),
        (T.OBJLNK, (3, 0), ObjectLink(3, 0)),
        (T.CORELNK, "</3/0>", "</3/0>"),
    ],
)
def test_coerce_accepts(rtype: ResourceType, value: object, expected: object) -> None:
    assert coerce_value(rtype, value) == expected
    assert type(coerce_value(rtype, value)) is type(expected)


@pytest.mark.parametrize(
    ("rtype", "value", "reason"),
    [
        (T.STRING, 1, "expected str"),
        (T.INTEGER, 2**63, "signed 64-bit"),
        (T.INTEGER, True, "expected int"),
        (T.INTEGER, 1.5, "expected int"),
        (T.UNSIGNED_INTEGER, -1, "0..2\\*\\*64-1"),
        (T.UNSIGNED_INTEGER, 2**64, "0..2\\*\\*64-1"),
        (T.FLOAT, "1", "expected float"),
        (T.FLOAT, 10**400, "too large"),
        (T.BOOLEAN, 1, "expected bool"),
        (T.OPAQUE, "ab", "expected bytes"),
        (T.TIME, dt.datetime(2020, 1, 1), "naive"),
        (T.TIME, 10**12, "years 1..9999"),
        (T.OBJLNK, (3, 70000), "not in 0..65535"),
        (T.NONE, 1, "executable"),
    ],
)
def test_coerce_rejects(rtype: ResourceType, value: object, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        coerce_value(rtype, value)


@pytest.mark.parametrize(
    ("rtype", "value", "text"),
    [
        (T.STRING, "héllo", "héllo"),
        (T.INTEGER, -12, "-12"),
        (T.UNSIGNED_INTEGER, 2**64 - 1, "18446744073709551615"),
        (T.FLOAT, 21.5, "21.5"),
        (T.BOOLEAN, True, "1"),
        (T.BOOLEAN, False, "0"),
        (T.OPAQUE, b"\x01\x02\x03\x04\x05", "AQIDBAU="),
        (T.TIME, dt.datetime(2013, 5, 2, 10, 40, 15, tzinfo=UTC), "1367491215"),
        (T.OBJLNK, ObjectLink(33606, 0), "33606:0"),
    ],
)
def test_text_round_trip(rtype: ResourceType, value: object, text: str) -> None:
    assert to_text(rtype, value) == text  # type: ignore[arg-type]
    assert from_text(rtype, text) == value


@pytest.mark.parametrize(
    ("rtype", "text", "reason"),
    [
        (T.INTEGER, "1.0", "not a decimal integer"),
        (T.INTEGER, "", "not a decimal integer"),
        (T.INTEGER, "99999999999999999999", "signed 64-bit"),
        (T.FLOAT, "abc", "not a number"),
        (T.FLOAT, " 1", "not a number"),
        (T.BOOLEAN, "2", "expected 0 or 1"),
        (T.OPAQUE, "@@", "not base64"),
        (T.TIME, "yesterday", "ISO 8601"),
        (T.OBJLNK, "3-0", "not 'oid:iid'"),
    ],
)
def test_from_text_rejects(rtype: ResourceType, text: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        from_text(rtype, text)


def test_time_iso_text_and_objlnk_helpers() -> None:
    assert from_text(T.TIME, "2013-05-02T10:40:15+00:00") == dt.datetime(
        2013, 5, 2, 10, 40, 15, tzinfo=UTC
    )
    assert ObjectLink(65535, 65535).is_null and not ObjectLink(3, 0).is_null
    assert ResourceType.from_ddf_name("unsigned  integer") is T.UNSIGNED_INTEGER
    assert ResourceType.from_ddf_name("") is T.NONE
    with pytest.raises(ValueError, match="unknown resource type"):
        ResourceType.from_ddf_name("Decimal")
