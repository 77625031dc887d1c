"""The one "did you mean ...?" helper: the closest known name to a misspelt one.

Every place that rejects a name (a manifest key, an audit, a data or report format, a finding code, an
attribute of a module, a torchvision model) suggests the same way, so the same typo gets the same hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]

#: difflib's similarity ratio a candidate must reach; 0.6 catches one or two wrong letters in a short name.
CUTOFF = 0.6


def closest(name: object, candidates: Iterable[object]) -> str | None:
    """The known name most like ``name``, or None when nothing is close (ties: alphabetical order)."""
    close = difflib.get_close_matches(str(name), sorted({str(c) for c in candidates}), n=1, cutoff=CUTOFF)
    return close[0] if close else None


def did_you_mean(name: object, candidates: Iterable[object]) -> str:
    """``"did you mean 'x'?"`` for the closest candidate, or ``""``: ready to use as an error's hint."""
    match = closest(name, candidates)
    return f"did you mean {match!r}?" if match else ""
