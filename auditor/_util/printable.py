"""Text from user data made safe to print: no terminal control sequences.

File, class and split names come from the user's disk and manifest; an ESC in
one would reach the terminal raw and could recolour, move the cursor, retitle
the window or hide what follows. Every control character (and the Unicode
bidirectional overrides that reorder what is displayed) is shown as a visible
escape instead, e.g. ``\\x1b``; newlines and tabs stay unless asked otherwise.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 controls, DEL, and the bidi embedding/override/isolate characters.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_WITH_LINES = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_lines: bool = True) -> str:
    """``str(text)`` with control characters written as visible escapes (``\\x1b``)."""
    pattern = _UNSAFE if keep_lines else _UNSAFE_WITH_LINES
    return pattern.sub(_escaped, str(text))
