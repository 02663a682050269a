"""The NIDD decoders on hostile input: UE-link frames (the emulator's UE socket) and T8 JSON
bodies (the server's callback endpoint, the emulator's API) give a value or their own error
(UeLinkError, T8FormatError), quickly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.nidd import t8_model as m
from aiolwm2m.nidd import ue_link
from aiolwm2m.nidd.quota_extension import ByteQuota
from aiolwm2m.nidd.t8_fields import T8FormatError

from .harness import FUZZ, survives
from .strategies import BIG_INTS, blobs

FRAME_HEADS = st.builds(lambda kind, ident: bytes((1, kind, len(ident))) + ident,
                        st.integers(0, 8), st.binary(min_size=0, max_size=40))
FRAMES = st.one_of(blobs(), st.builds(bytes.__add__, FRAME_HEADS, blobs()))


@FUZZ
@given(FRAMES)
def test_ue_link_frames(datagram: bytes) -> None:
    frame = survives(ue_link.UeLinkError, ue_link.decode, datagram)
    if frame is not None and frame.kind == ue_link.ATTACH:
        survives(ue_link.UeLinkError, ue_link.groups_of, frame)


_KEYS = ["niddConfiguration", "externalId", "msisdn", "externalGroupId", "data", "status",
         "deliveryStatus", "niddDownlinkDataTransfer", "gmdResults", "managedPorts",
         "notificationDestination", "rdsPort", "rdsPorts", "portUE", "portSCEF",
         "maximumLatency", "duration", "problemDetail", "invalidParams", "param",
         "supportedFeatures", "appId", "requestedRetransmissionTime", "downlinkBytes",
         "windowSeconds"]
_SCALARS = st.one_of(st.none(), st.booleans(), BIG_INTS, st.floats(allow_nan=True),
                     st.text(max_size=30),
                     st.sampled_from(["a@b", "12345", "QUJD", "QUI", "2024-02-30T00:00:00Z",
                                      "2024-01-01T00:00:00Z", "ue1-ef2", "http://x/y",
                                      "ff", "SUCCESS", "", "@", "a@b@c"]))
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.sampled_from(_KEYS), inner, max_size=8)),
    max_leaves=40)
TYPES = [m.NiddConfiguration, m.NiddConfigurationPatch, m.NiddDownlinkDataTransfer,
         m.NiddDownlinkDataTransferPatch, m.NiddDownlinkDataDeliveryFailure, m.ManagePort,
         m.ProblemDetails]


@FUZZ
@given(JSON_VALUES)
def test_t8_bodies(body: Any) -> None:
    survives(T8FormatError, m.parse_notification, body)
    for cls in TYPES:
        parsed = survives(T8FormatError, cls.from_json, body)
        if parsed is not None:
            # What parses serialises back to a body that parses to the same object.
            assert cls.from_json(json.loads(json.dumps(parsed.to_json()))) == parsed
    survives(T8FormatError, ByteQuota.from_json, body, "/q")


@FUZZ
@given(blobs())
def test_t8_bodies_from_raw_bytes(raw: bytes) -> None:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return
    survives(T8FormatError, m.parse_notification, body)
