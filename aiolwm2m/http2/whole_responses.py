"""Responses over HTTP/2 travel whole: the dispatcher's block-wise server, turned off."""

from __future__ import annotations

from aiolwm2m.coap.blockwise import Block2Server
from aiolwm2m.coap.message import Message


class WholeResponses(Block2Server):
    """HTTP/2 frames a body of any size (flow control paces it), so a large response is
    never cut into Block2 pieces; a request for a later block finds nothing stored."""

    def needs_slicing(self, request: Message, response: Message) -> bool:
        return False

    def serve(self, request: Message, response: Message, now: float) -> Message:
        return response
