"""The T8 data model and the UE-link frames: what parses, what is refused and where."""

from __future__ import annotations

import pytest

from aiolwm2m.nidd import t8_fields as f
from aiolwm2m.nidd import t8_model as m
from aiolwm2m.nidd import ue_link
from aiolwm2m.nidd.t8_fields import T8FormatError


def test_a_configuration_round_trips_with_the_schema_names() -> None:
    body = {"externalId": "dev-1@nidd.example", "notificationDestination": "http://x/cb",
            "duration": "2030-01-01T00:00:00Z", "rdsPorts": [{"portUE": 1, "portSCEF": 2}],
            "supportedFeatures": "8000000000000000", "somethingElse": 1}
    config = m.NiddConfiguration.from_json(body)
    assert config.rdsPorts == (m.RdsPort(1, 2),) and config.target == "dev-1@nidd.example"
    assert config.to_json() == {k: v for k, v in body.items() if k != "somethingElse"}


@pytest.mark.parametrize(("body", "param", "reason"), [
    ({"notificationDestination": "http://x"}, "/", "exactly one of"),
    ({"externalId": "a@b", "msisdn": "123456", "notificationDestination": "http://x"}, "/",
     "may be given"),
    ({"externalId": "no-at-sign", "notificationDestination": "http://x"}, "/externalId",
     "local-identifier@domain"),
    ({"externalId": "a@b"}, "/notificationDestination", "is required"),
    ({"externalId": "a@b", "notificationDestination": "http://x", "rdsPorts": []},
     "/rdsPorts", "at least 1"),
    ({"externalId": "a@b", "notificationDestination": "http://x",
      "rdsPorts": [{"portUE": 70000, "portSCEF": 1}]}, "/rdsPorts/0/portUE", "at most 65535"),
    ({"externalId": "a@b", "notificationDestination": "http://x", "duration": "tomorrow"},
     "/duration", "date-time"),
    ({"externalId": "a@b", "notificationDestination": None}, "/notificationDestination",
     "null"),
])
def test_refusals_name_the_attribute(body: dict[str, object], param: str, reason: str
                                     ) -> None:
    with pytest.raises(T8FormatError) as e:
        m.NiddConfiguration.from_json(body)
    assert e.value.param == param and reason in e.value.reason


def test_data_is_base64_and_bad_base64_is_refused() -> None:
    t = m.NiddDownlinkDataTransfer.from_json({"externalId": "a@b", "data": "QUJD"})
    assert t.data == b"ABC" and t.to_json()["data"] == "QUJD"
    for bad in ("QUJ", "QU=D", "****", 12):
        with pytest.raises(T8FormatError) as e:
            m.NiddDownlinkDataTransfer.from_json({"externalId": "a@b", "data": bad})
        assert e.value.param == "/data"


def test_a_merge_patch_tells_null_from_absent() -> None:
    patch = m.NiddConfigurationPatch.from_json({"duration": None,
                                                "notificationDestination": "http://y"})
    assert patch.duration is None and patch.reliableDataService is m.UNSET
    assert patch.to_json() == {"duration": None, "notificationDestination": "http://y"}
    with pytest.raises(T8FormatError):
        m.NiddConfigurationPatch.from_json({"notificationDestination": None})


def test_notifications_are_told_apart() -> None:
    assert isinstance(m.parse_notification(
        {"niddConfiguration": "l", "externalId": "a@b", "data": ""}),
        m.NiddUplinkDataNotification)
    assert isinstance(m.parse_notification(
        {"niddDownlinkDataTransfer": "l", "deliveryStatus": "SUCCESS"}),
        m.NiddDownlinkDataDeliveryStatusNotification)
    assert isinstance(m.parse_notification(
        {"niddConfiguration": "l", "msisdn": "123456", "status": "TERMINATED"}),
        m.NiddConfigurationStatusNotification)
    gmd = m.parse_notification({"niddDownlinkDataTransfer": "l", "gmdResults": [
        {"externalId": "a@b", "deliveryStatus": "FAILURE_TIMEOUT"}]})
    assert isinstance(gmd, m.GmdNiddDownlinkDataDeliveryNotification)
    assert m.is_failure(gmd.gmdResults[0].deliveryStatus)
    assert isinstance(m.parse_notification(
        {"niddConfiguration": "l", "externalId": "a@b", "managedPorts": [{"appId": "x"}]}),
        m.ManagePortNotification)
    with pytest.raises(T8FormatError):
        m.parse_notification({"hello": 1})


def test_feature_bits_follow_ts_29_500() -> None:
    assert f.feature_bits(1) == "1" and f.feature_bits(5) == "10"
    assert f.has_feature("10", 5) and not f.has_feature("10", 1)
    bits = f.feature_bits(64)
    assert len(bits) == 16 and f.has_feature(bits, 64) and not f.has_feature(bits, 63)
    assert f.common_features("8000000000000001", "1") == "0000000000000001"
    assert f.common_features("1", None) == ""


def test_date_times() -> None:
    assert f.format_date_time(0) == "1970-01-01T00:00:00Z"
    assert f.date_time("1970-01-01T01:00:00+01:00", "/d") == 0.0
    with pytest.raises(T8FormatError):
        f.date_time("2024-02-30T00:00:00Z", "/d")


def test_ue_link_frames_round_trip_and_bad_ones_are_refused() -> None:
    frame = ue_link.decode(ue_link.mo_data("a@b", b"\x40\x01", 3, 4))
    assert (frame.kind, frame.ue, frame.port_ue, frame.port_scef, frame.data) == (
        ue_link.MO_DATA, "a@b", 3, 4, b"\x40\x01")
    attach = ue_link.decode(ue_link.attach("a@b", ("g@x",)))
    assert ue_link.groups_of(attach) == ("g@x",)
    for bad in (b"", b"\x02\x01\x01a", b"\x01\x09\x01a{}", b"\x01\x04\x05a",
                b"\x01\x04\x01a\x10\x00", b"\x01\x01\x01a[1]", b"\x01\x03\x01ax"):
        with pytest.raises(ue_link.UeLinkError):
            ue_link.decode(bad)
    with pytest.raises(ue_link.UeLinkError):
        ue_link.groups_of(ue_link.decode(b'\x01\x01\x01a{"groups":["no-at"]}'))
