"""Which registration interface a ``POST /rd`` is for: LwM2M's or the generic RD's.

``/rd`` is both the LwM2M registration interface and RFC 9176's registration interface.
The rule, in order:

1. a Register carrying any LwM2M parameter (``lwm2m``, ``b``, ``Q``, ``sms``, ``pid``) is an
   LwM2M Register, handled exactly as before the RD existed;
2. otherwise one carrying an RD-only parameter (``d``, ``base``, ``et``) is a generic RD
   registration;
3. otherwise (``ep``, ``lt`` and other attributes only) the payload decides: an empty one,
   one that does not parse, one with an ``rt="oma.lwm2m"`` link, or one whose every link
   is an object or object-instance path (``</3>``, ``</3303/0>``) stays LwM2M (LwM2M 1.0
   makes ``lwm2m=`` optional); anything else is a generic registration.

So a plain CoAP node registers with ``ep`` and its links, and an LwM2M client never becomes a
generic registration. A node whose links look like an object list gives ``d`` or ``et`` to
be taken as a generic one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from aiolwm2m.coap.linkformat import LinkFormatError, parse_link_format
from aiolwm2m.coap.options import OptionNumber

_URI_QUERY = int(OptionNumber.URI_QUERY)
LWM2M_KEYS = frozenset({b"lwm2m", b"b", b"Q", b"sms", b"pid"})
RD_KEYS = frozenset({b"d", b"base", b"et"})
_OBJECT_PATH = re.compile(r"/\d{1,5}(/\d{1,5})?")


def is_lwm2m_register(options: Iterable[tuple[int, bytes]], payload: bytes) -> bool:
    """Whether a ``POST /rd`` with these options and payload is an LwM2M Register. Costs a
    few byte comparisons per query item on the LwM2M path (rule 1 ends the loop at
    ``lwm2m=``, which every deployed client sends)."""
    generic = False
    for number, value in options:
        if number == _URI_QUERY:
            key = value.partition(b"=")[0]
            if key in LWM2M_KEYS:
                return True
            if key in RD_KEYS:
                generic = True
    if generic:
        return False
    return looks_like_object_list(payload)


def looks_like_object_list(payload: bytes) -> bool:
    if not payload:
        return True
    if len(payload) <= _CACHED_PAYLOAD:
        return _cached_verdict(payload)
    return _verdict(payload)


_CACHED_PAYLOAD = 4096


@functools.lru_cache(maxsize=1024)
def _cached_verdict(payload: bytes) -> bool:
    return _verdict(payload)


def _verdict(payload: bytes) -> bool:
    try:
        links = parse_link_format(payload)
    except LinkFormatError:
        return True  # the LwM2M interface answers it with its precise error
    for link in links:
        if "oma.lwm2m" in link.values("rt"):
            return True
    return all(_OBJECT_PATH.fullmatch(link.target) for link in links)
