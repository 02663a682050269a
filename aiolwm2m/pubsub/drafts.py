"""Every number draft-ietf-core-coap-pubsub defines, in one place.

The draft is not an RFC yet: its code points are provisional (the content format is
"TBD606") and have moved between revisions. When a new revision changes one, change it
here; the values of the previous revision that are still accepted are listed next to the
current ones, so a client written against it keeps working.

Current: draft-ietf-core-coap-pubsub-21 (July 2026). Previous: -20 (June 2026).
"""

from __future__ import annotations

from typing import Final

DRAFT: Final = "draft-ietf-core-coap-pubsub-21"
PREVIOUS_DRAFT: Final = "draft-ietf-core-coap-pubsub-20"

#: ``application/core-pubsub+cbor`` (the draft asks IANA for 606; "TBD606" until then).
CONTENT_FORMAT_PUBSUB: Final = 606
#: ``application/cbor``: the topic FETCH filter (an array of property keys) since -21.
CONTENT_FORMAT_CBOR: Final = 60
#: ``application/link-format``: topic collection listings and discovery.
CONTENT_FORMAT_LINK: Final = 40

# Resource types (rt=) of section 6.3.
RT_BROKER: Final = "core.ps"
RT_COLLECTION: Final = "core.ps.coll"
RT_TOPIC: Final = "core.ps.conf"
RT_DATA: Final = "core.ps.data"

#: Values the "resource-type" topic property may take. -20 and -21 name "core.ps.data";
#: drafts up to -13 put "core.ps.conf" there, which clients of those revisions still send.
DATA_RESOURCE_TYPES: Final = frozenset({RT_DATA, RT_TOPIC})

# Topic property CBOR keys (section 4, table 1), the same in -20 and -21.
TOPIC_NAME: Final = 0
TOPIC_DATA: Final = 1
RESOURCE_TYPE: Final = 2
TOPIC_CONTENT_FORMAT: Final = 3
TOPIC_TYPE: Final = 4
EXPIRATION_DATE: Final = 5
MAX_SUBSCRIBERS: Final = 6
OBSERVER_CHECK: Final = 7
INITIALIZE: Final = 8

#: -20's topic FETCH filter: a map ``{9: [keys...]}`` in application/core-pubsub+cbor.
#: -21 sends the bare array in application/cbor and dropped key 9 from the registry.
PREVIOUS_CONF_FILTER: Final = 9

#: The epoch-based date/time tag (RFC 8949 section 3.4.2) "expiration-date" is wrapped in.
TAG_EPOCH_DATE: Final = 1

#: "observer-check" when a topic does not set it: RFC 7641's 24 hours.
DEFAULT_OBSERVER_CHECK: Final = 86400

PROPERTY_NAMES: Final = {
    TOPIC_NAME: "topic-name",
    TOPIC_DATA: "topic-data",
    RESOURCE_TYPE: "resource-type",
    TOPIC_CONTENT_FORMAT: "topic-content-format",
    TOPIC_TYPE: "topic-type",
    EXPIRATION_DATE: "expiration-date",
    MAX_SUBSCRIBERS: "max-subscribers",
    OBSERVER_CHECK: "observer-check",
    INITIALIZE: "initialize",
}

#: Properties fixed once a topic exists (section 2.5.3): a replace or iPATCH may repeat
#: their current value, never change it.
IMMUTABLE: Final = frozenset({TOPIC_NAME, TOPIC_DATA, RESOURCE_TYPE})


def property_name(key: object) -> str:
    """How a diagnostic names a key: its draft name, or the key itself (shortened)."""
    if type(key) is int and key in PROPERTY_NAMES:
        return PROPERTY_NAMES[key]
    text = repr(key)
    return f"property {text[:20]}" + ("..." if len(text) > 20 else "")
