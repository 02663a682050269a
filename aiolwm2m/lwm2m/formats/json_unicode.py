"""Whether a parsed JSON document holds text that is not Unicode.

A JSON text that is valid UTF-8 can still spell a lone UTF-16 surrogate with an escape
(``"\\ud800"``). Python's decoder keeps it, and the string then fails wherever it is
encoded again: a SQLite write (one such value failed the value history's whole batch, every
device's values with it), a JSON answer. SenML (RFC 8428) and LwM2M JSON carry UTF-8 text,
so the decoders refuse such a payload as malformed (and so does the Resource Directory's
link patch, whose attribute values would otherwise break every lookup listing the link).
"""

from __future__ import annotations

from typing import Any


def lone_surrogate(text: str | bytes, document: Any) -> bool:
    """Whether a string in ``document`` (parsed from ``text``) holds a lone surrogate."""
    escaped = b"\\u" in text if isinstance(text, bytes) else "\\u" in text
    if not escaped:
        return False  # no escape: the text was valid UTF-8, so every string is Unicode
    # Iterative: the document may nest as deep as the parser allowed.
    stack = [document]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif kind is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False
