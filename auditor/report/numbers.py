"""The one way reports and the console write numbers for people.

Every report format (charts, captions, tables, Markdown, the terminal) goes
through :func:`format_number`, so a count reads the same everywhere and a bug
in the scale (147,968 shown as "14.8k") can only live in one place, where the
table test in ``tests/test_numbers.py`` catches it.

Two forms:

* short (default), for chart labels and summaries: integers below 10,000 in
  full with thousands separators ("9,999"), larger magnitudes with three
  significant digits and a suffix ("148k", "1M", "1.2B"); fractions with three
  significant digits ("0.123"), tiny ones in scientific notation ("1.23e-04").
* exact (``exact=True``), for tooltips and tables where a reader compares with
  report.json: every digit of an integer ("147,968"), floats with six
  significant digits.

Non-numbers give "n/a"; NaN and infinities are written out ("NaN", "inf",
"-inf") because a dead or exploding value must stay visible, never be hidden
as a blank.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_duration", "format_number", "plural"]

#: Suffixes of the short form, one per factor of 1000 (parameter counts say "1.2B", not "1.2G").
_SUFFIXES = ("", "k", "M", "B", "T")


def _numeric(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def format_number(value: Any, *, exact: bool = False) -> str:
    """``value`` for people: ``147968 -> "148k"`` (short) or ``"147,968"`` (exact)."""
    number = _numeric(value)
    if number is None:
        return "n/a"
    if isinstance(number, float):
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
    if number == 0:
        return "0"  # also -0.0
    integral = isinstance(number, int) or number.is_integer()
    magnitude = abs(number)
    if exact:
        if integral and magnitude < 1e18:
            return f"{int(number):,}"
        return _significant(float(number), 6)
    if integral and magnitude < 10_000:
        return f"{int(number):,}"
    if magnitude >= 10_000:
        return _scaled(float(number))
    if magnitude >= 1000:
        return f"{number:,.0f}"
    return _significant(float(number), 3)


def _scaled(number: float) -> str:
    """Three significant digits and a suffix; 999,999 rounds up to "1M", never "1e+03k"."""
    step = min(int(math.log10(abs(number)) // 3), len(_SUFFIXES) - 1)
    scaled = number / 1000**step
    text = f"{scaled:.3g}"
    if abs(float(text)) >= 1000 and step + 1 < len(_SUFFIXES):
        step += 1
        text = f"{number / 1000**step:.3g}"
    if "e" in text:  # beyond the last suffix
        return f"{number:.2e}"
    return text + _SUFFIXES[step]


def _significant(number: float, digits: int) -> str:
    """``digits`` significant digits, scientific below 0.01 and where plain digits would mislead."""
    magnitude = abs(number)
    if magnitude < 0.01 or magnitude >= 10**digits:
        return f"{number:.{digits - 1}e}"
    text = f"{number:.{digits}g}"
    if "e" in text:
        return f"{number:.{digits - 1}e}"
    return text


def format_duration(seconds: Any) -> str:
    """A duration for people: "0.42 s", "12.3 s", "2 min 5 s"; "n/a" when not a number."""
    number = _numeric(seconds)
    if number is None or not math.isfinite(number):
        return "n/a"
    if number < 10:
        return f"{number:.2f} s"
    if number < 60:
        return f"{number:.1f} s"
    minutes, rest = divmod(round(number), 60)
    return f"{minutes} min {rest} s"


def plural(count: int, word: str, plural_form: str = "") -> str:
    """``"1 error"``, ``"2 errors"``, ``"no errors"``: counts in sentences without "0 infos"."""
    many = plural_form or (word if word.endswith("info") else word + "s")
    if count == 0:
        return f"no {many}"
    return f"{format_number(count, exact=True)} {word if count == 1 else many}"
