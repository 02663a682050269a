"""Firmware updates over the air: an image store, delivery of images to devices (CoAP
block-wise and HTTP pull from this server, or push by Block1 Write of /5/0/0), the Object 5
state machine walked per device, and campaigns over many devices.

Kept import-free on purpose: the server's event types import :mod:`.events`, and the
service (:mod:`.service`) imports the server.
"""
