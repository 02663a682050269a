"""Decimal integers from peer input, range-checked before they are converted.

``int()`` on text is quadratic in its length and refuses more than 4300 digits with a bare
ValueError (Python 3.11's limit), so a 4,301-digit object id used to escape every decoder as
an unexpected exception. Every number an LwM2M field carries has a known range; checking the
digit count against that range first keeps the conversion cheap and the error precise.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_UINT16", "MAX_UINT32", "parse_decimal"]

MAX_UINT16: Final = 0xFFFF
MAX_UINT32: Final = 0xFFFFFFFF
# Leading zeros are legal in decimal text, and harmless; a few are allowed beyond the digits
# of the maximum so that "00001" still reads as 1, while the length stays bounded.
_SPARE_DIGITS: Final = 2


def parse_decimal(text: str, maximum: int, minimum: int = 0) -> int | None:
    """``text`` as an int when it is ASCII digits only (no sign, no blanks, no ``_``) and
    within ``minimum..maximum``; None otherwise."""
    if not text or len(text) > len(str(maximum)) + _SPARE_DIGITS:
        return None
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None
