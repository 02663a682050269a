"""Keeping error replies to unauthenticated datagram peers no larger than their requests.

A UDP source address can be forged, so whatever we answer may land on a victim: a reply
much larger than its request turns the server into an amplifier (RFC 7252 section 11.3).
Diagnostics are written short and fixed where they are raised; this is the last line
behind them, for the message layer of a NoSec endpoint: an error reply's diagnostic payload
is cut so that the reply is at most ``ERROR_REPLY_SLACK`` bytes larger than the request.

Only error replies (4.xx, 5.xx) are cut. Success replies are the content a client asked
for, which is what CoAP is for: the LwM2M registration and bootstrap interfaces answer
with a few bytes of options, and a site that serves larger content (the ``coap serve``
demo) serves it in 1024-byte blocks, one per request.
"""

from __future__ import annotations

from typing import Final

from .codec import encode_udp
from .message import Message

#: How many bytes an error reply may exceed its request by. An error reply's fixed part
#: (header, the request's own token, Content-Format, payload marker: at most 16 bytes)
#: is never larger than the request's; 64 leaves any request, even a 4-byte one, room
#: for a one-line diagnostic ("Uri-Path length 300 outside 0..255"), while the reply
#: stays within a small constant of what the sender spent.
ERROR_REPLY_SLACK: Final = 64


def bound_error_reply(request: Message, response: Message, slack: int) -> None:
    """Cut ``response``'s diagnostic so its encoding is at most ``slack`` bytes larger
    than ``request``'s (no-op for success codes and payload-less replies)."""
    if response.code < 128 or not response.payload:
        return
    excess = len(encode_udp(response)) - len(encode_udp(request)) - slack
    if excess <= 0:
        return
    keep = len(response.payload) - excess
    if keep <= 0:
        response.payload = b""
        return
    # Diagnostics are UTF-8 (RFC 7252 section 5.5.2): do not leave half a character.
    response.payload = response.payload[:keep].decode("utf-8", "ignore").encode()
