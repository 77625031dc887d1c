"""Class labels of a table column: integers stay integers; blank or unparsable cells are named, not guessed.

pandas reads an integer column with one blank cell as floats (``1.0``, ``NaN``) and a
text column's blank cells as NaN; turned into strings, those made classes named
``'1.0'`` and ``'-1'``. Here a column holds integer labels when it is numeric or when
at least half of its non-blank cells are whole numbers, and class names otherwise.
Blank, NaN, unparsable and negative cells are counted and their rows left out of the
split; the first of them are kept to be shown. Vectorised: a million rows stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["KEPT_PROBLEMS", "ParsedLabels", "parse_label_column"]

#: Problem rows kept (in table order) to be shown; the counts cover all of them.
KEPT_PROBLEMS = 100


@dataclass
class ParsedLabels:
    #: one target per kept row
    targets: list[int] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    #: positions (0-based, table order) of the rows whose label is usable
    kept: list[int] = field(default_factory=list)
    #: ``{"row", "value", "problem"}`` of the first rows left out; problem: blank | unparsable | negative
    problems: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def parse_label_column(series: Any) -> ParsedLabels:
    """Targets, class names and label problems of a single-label pandas column."""
    import numpy as np
    import pandas as pd

    parsed = ParsedLabels()
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("int64")
    if pd.api.types.is_numeric_dtype(series.dtype):
        numbers = pd.to_numeric(series, errors="coerce").astype("float64")
        blank = numbers.isna().to_numpy()
        whole = (~blank) & (numbers.fillna(0.5) % 1 == 0).to_numpy()
        problem = np.where(blank, "blank", np.where(~whole, "unparsable", ""))
        values = numbers.fillna(-1).to_numpy()
        problem = np.where((problem == "") & (values < 0), "negative", problem)
        kept = problem == ""
        parsed.targets = values[kept].astype("int64").tolist()
        raw = series
    else:
        text = series.astype("string")
        stripped = text.str.strip()
        blank = (stripped.isna() | (stripped == "")).to_numpy()
        integer = stripped.str.fullmatch(r"[+-]?\d+").fillna(False).astype(bool).to_numpy()
        filled = int((~blank).sum())
        if filled and int((integer & ~blank).sum()) * 2 >= filled:
            problem = np.where(blank, "blank", np.where(~integer, "unparsable", ""))
            values = np.zeros(len(series), dtype="int64")
            values[integer] = stripped[integer].astype("int64").to_numpy()
            problem = np.where((problem == "") & (values < 0), "negative", problem)
            kept = problem == ""
            parsed.targets = values[kept].tolist()
        else:
            problem = np.where(blank, "blank", "")
            kept = problem == ""
            codes, uniques = pd.factorize(text[kept], sort=True)
            parsed.targets = codes.tolist()
            parsed.classes = [str(u) for u in uniques]
        raw = text
    if not parsed.classes:
        parsed.classes = [str(i) for i in range(max(parsed.targets, default=-1) + 1)]
    parsed.kept = np.flatnonzero(kept).tolist()
    bad = np.flatnonzero(~kept)
    for kind in ("blank", "unparsable", "negative"):
        count = int((problem == kind).sum())
        if count:
            parsed.counts[kind] = count
    for row in bad[:KEPT_PROBLEMS].tolist():
        value = raw.iloc[row]
        parsed.problems.append(
            {"row": int(row), "value": "" if pd.isna(value) else str(value), "problem": str(problem[row])}
        )
    return parsed
