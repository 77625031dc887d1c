"""Inline SVG charts drawn in Python: readable without JavaScript, network or fonts.

Every function takes plain numbers and labels and returns one ``<svg>`` string.
All text goes through :func:`_esc` (labels are class names, layer names and
split names: user-controlled), numbers are formatted with a fixed precision so
the same data gives the same bytes, and non-finite or non-positive values are
drawn as marked exceptions instead of breaking the scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import NamedTuple

from auditor.report.numbers import format_number

__all__ = [
    "PALETTE",
    "Segment",
    "Series",
    "fmt_number",
    "grouped_bars",
    "interval_chart",
    "line_chart",
    "log_bars",
    "stacked_bars",
]

#: Colour-blind-safe (Okabe-Ito) series colours.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_BAD = "#C0392B"
_AXIS = "#8a8f98"
_TEXT = "#1f2328"
_LABEL_W = 190
_WIDTH = 720
_FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif" font-size="11"'


class Series(NamedTuple):
    name: str
    values: Sequence[float | None]


class Segment(NamedTuple):
    name: str
    colour: str


def _esc(text: object) -> str:
    return escape(str(text), quote=True)


def _f(x: float) -> str:
    """Coordinates with one decimal: fixed text for fixed input."""
    text = f"{x:.1f}"
    return text.removesuffix(".0")


def fmt_number(value: object, *, exact: bool = False) -> str:
    """Numbers in charts: the shared :func:`auditor.report.numbers.format_number` (short labels, exact tooltips)."""
    return format_number(value, exact=exact)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _clamp(value: float) -> float:
    """Keep absurd magnitudes (1e308) from overflowing the scale arithmetic to inf/nan."""
    return max(-1e12, min(1e12, float(value)))


def _short(label: str, limit: int = 30) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{_f(width)}" '
        f'height="{_f(height)}" viewBox="0 0 {_f(width)} {_f(height)}" {_FONT} aria-label="{_esc(title)}">'
        f"<title>{_esc(title)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", fill: str = _TEXT, extra: str = "") -> str:
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" fill="{fill}"{extra}>{_esc(text)}</text>'


def _label(x: float, y: float, label: str) -> str:
    """A row label, shortened, with the full text as a tooltip."""
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="end" fill="{_TEXT}">'
        f"<title>{_esc(label)}</title>{_esc(_short(label))}</text>"
    )


def _legend(entries: Sequence[tuple[str, str]], y: float = 12) -> list[str]:
    body, x = [], float(_LABEL_W)
    for name, colour in entries:
        body.append(f'<rect x="{_f(x)}" y="{_f(y - 9)}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(x + 14, y, _short(name, 24)))
        x += 26 + 6.5 * min(len(name), 24)
    return body


def grouped_bars(title: str, categories: Sequence[str], series: Sequence[Series], note: str = "") -> str:
    """One row per category, one bar per series (e.g. class counts per split), linear scale."""
    bar_h, gap = 9, 7
    row_h = bar_h * max(1, len(series)) + gap
    top, plot_w = 26, _WIDTH - _LABEL_W - 60
    values = [v for s in series for v in s.values if _finite(v)]
    peak = max([v for v in values if v > 0], default=1.0)
    height = top + row_h * len(categories) + 24
    body = _legend([(s.name, PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)])
    for row, category in enumerate(categories):
        y0 = top + row * row_h
        body.append(_label(_LABEL_W - 8, y0 + row_h / 2 + 1, category))
        for i, s in enumerate(series):
            value = s.values[row] if row < len(s.values) else None
            y = y0 + i * bar_h
            if not _finite(value):
                body.append(_text(_LABEL_W + 2, y + bar_h - 1, "n/a", fill=_AXIS))
                continue
            width = max(0.0, float(value)) / peak * plot_w
            colour = PALETTE[i % len(PALETTE)]
            body.append(
                f'<rect x="{_LABEL_W}" y="{_f(y)}" width="{_f(width)}" height="{bar_h - 1}" '
                f'fill="{colour}"><title>{_esc(f"{category} in {s.name}: {fmt_number(value, exact=True)}")}'
                "</title></rect>"
            )
            body.append(_text(_LABEL_W + width + 4, y + bar_h - 1, fmt_number(value), fill=_AXIS))
    body.append(
        f'<line x1="{_LABEL_W}" y1="{top - 3}" x2="{_LABEL_W}" y2="{_f(height - 22)}" stroke="{_AXIS}"/>'
    )
    if note:
        body.append(_text(_LABEL_W, height - 6, note, fill=_AXIS))
    return _svg(_WIDTH, height, title, body)


def stacked_bars(
    title: str, rows: Sequence[tuple[str, Sequence[float]]], segments: Sequence[Segment], note: str = ""
) -> str:
    """One bar per row split into segments (e.g. trainable and frozen parameters per module)."""
    bar_h, top, plot_w = 16, 26, _WIDTH - _LABEL_W - 180
    totals = [sum(v for v in values if _finite(v) and v > 0) for _, values in rows]
    peak = max(totals, default=0.0) or 1.0
    height = top + 22 * len(rows) + 24
    body = _legend([(s.name, s.colour) for s in segments])
    for row, ((label, values), total) in enumerate(zip(rows, totals, strict=False)):
        y = top + row * 22
        body.append(_label(_LABEL_W - 8, y + 12, label))
        x = float(_LABEL_W)
        parts = []
        for segment, value in zip(segments, values, strict=False):
            if not _finite(value) or value <= 0:
                parts.append(f"{segment.name} 0")
                continue
            width = max(
                2.0, value / peak * plot_w
            )  # a 1k-parameter head next to an 11M backbone stays visible
            body.append(
                f'<rect x="{_f(x)}" y="{y}" width="{_f(width)}" height="{bar_h}" fill="{segment.colour}">'
                f"<title>{_esc(f'{label}: {fmt_number(value, exact=True)} {segment.name}')}</title></rect>"
            )
            x += width
            parts.append(f"{segment.name} {fmt_number(value)}")
        body.append(_text(x + 4, y + 12, " / ".join(parts) if total else "no parameters", fill=_AXIS))
    if note:
        body.append(_text(_LABEL_W, height - 6, note, fill=_AXIS))
    return _svg(_WIDTH, height, title, body)


def _decades(low: float, high: float) -> tuple[int, int]:
    lo, hi = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return lo, hi if hi > lo else lo + 1


def log_bars(title: str, rows: Sequence[tuple[str, float | None]], note: str = "") -> str:
    """Horizontal bars on a log10 axis (e.g. gradient norm per parameter).

    Zero and non-finite values cannot sit on a log axis: they get a red marker
    and their value written out, so a dead or exploding layer stands out.
    """
    bar_h, top, plot_w = 11, 30, _WIDTH - _LABEL_W - 70
    positive = [float(v) for _, v in rows if _finite(v) and v > 0]
    lo, hi = _decades(min(positive, default=1e-3), max(positive, default=1.0))
    span = hi - lo

    def x_of(value: float) -> float:
        return _LABEL_W + (math.log10(value) - lo) / span * plot_w

    height = top + (bar_h + 3) * len(rows) + 30
    body = [_text(_LABEL_W, 12, "log10 scale; red: zero or non-finite", fill=_AXIS)]
    for decade in range(lo, hi + 1):
        x = _LABEL_W + (decade - lo) / span * plot_w
        body.append(
            f'<line x1="{_f(x)}" y1="{top - 6}" x2="{_f(x)}" y2="{_f(height - 26)}" stroke="#e3e6ea"/>'
        )
        body.append(_text(x, height - 14, f"1e{decade}", anchor="middle", fill=_AXIS))
    for row, (label, value) in enumerate(rows):
        y = top + row * (bar_h + 3)
        body.append(_label(_LABEL_W - 8, y + bar_h - 2, label))
        if _finite(value) and value > 0:
            width = max(1.0, x_of(float(value)) - _LABEL_W)
            body.append(
                f'<rect x="{_LABEL_W}" y="{y}" width="{_f(width)}" height="{bar_h}" fill="{PALETTE[0]}">'
                f"<title>{_esc(f'{label}: {fmt_number(value, exact=True)}')}</title></rect>"
            )
            body.append(_text(_LABEL_W + width + 4, y + bar_h - 2, fmt_number(value), fill=_AXIS))
        else:
            body.append(f'<rect x="{_LABEL_W}" y="{y}" width="4" height="{bar_h}" fill="{_BAD}"/>')
            body.append(_text(_LABEL_W + 8, y + bar_h - 2, fmt_number(value), fill=_BAD))
    if note:
        body.append(_text(_LABEL_W, height - 2, note, fill=_AXIS))
    return _svg(_WIDTH, height, title, body)


def line_chart(title: str, series: Sequence[Series], x_label: str = "step", y_label: str = "") -> str:
    """Lines over their index (e.g. loss per step); non-finite points break the line and are marked."""
    left, top, width, height = 60, 26, _WIDTH - 80, 200
    series = [Series(s.name, [_clamp(v) if _finite(v) else v for v in s.values]) for s in series]
    points = [float(v) for s in series for v in s.values if _finite(v)]
    low, high = min(points, default=0.0), max(points, default=1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    low = min(low, 0.0) if low >= 0 and low < (high - low) else low
    longest = max((len(s.values) for s in series), default=1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (i / max(1, longest - 1)) * width
        return x, top + height - (v - low) / (high - low) * height

    body = _legend([(s.name, PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)])
    for k in range(5):
        value = low + (high - low) * k / 4
        _, y = xy(0, value)
        body.append(f'<line x1="{left}" y1="{_f(y)}" x2="{left + width}" y2="{_f(y)}" stroke="#e3e6ea"/>')
        body.append(_text(left - 6, y + 4, fmt_number(round(value, 6)), anchor="end", fill=_AXIS))
    for i, s in enumerate(series):
        colour, runs, run = PALETTE[i % len(PALETTE)], [], []
        for step, value in enumerate(s.values):
            if _finite(value):
                run.append(xy(step, float(value)))
                continue
            if run:
                runs.append(run)
            run = []
            x, _ = xy(step, high)
            tip = _esc(f"{s.name} step {step}: {fmt_number(value, exact=True)}")
            body.append(
                f'<text x="{_f(x)}" y="{top - 2}" text-anchor="middle" fill="{_BAD}" font-size="14">'
                f"<title>{tip}</title>\u00d7</text>"
            )
        if run:
            runs.append(run)
        for part in runs:
            path = " ".join(f"{_f(x)},{_f(y)}" for x, y in part)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for x, y in part if len(part) <= 60 else ():
                body.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="2.5" fill="{colour}"/>')
    body.append(
        f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" stroke="{_AXIS}"/>'
    )
    body.append(_text(left, top + height + 14, "0", anchor="middle", fill=_AXIS))
    body.append(_text(left + width, top + height + 14, str(max(0, longest - 1)), anchor="middle", fill=_AXIS))
    body.append(_text(left + width / 2, top + height + 26, x_label, anchor="middle", fill=_AXIS))
    if y_label:
        body.append(
            _text(
                12,
                top + height / 2,
                y_label,
                anchor="middle",
                fill=_AXIS,
                extra=f' transform="rotate(-90 12 {_f(top + height / 2)})"',
            )
        )
    return _svg(_WIDTH, top + height + 34, title, body)


class Interval(NamedTuple):
    label: str
    measured_mean: float | None
    measured_std: float | None
    expected_mean: float | None
    expected_std: float | None
    low: float | None = None  # measured min and max, drawn as a thin range behind the intervals
    high: float | None = None


def interval_chart(title: str, rows: Sequence[Interval], note: str = "") -> str:
    """Measured mean +- std against expected mean +- std per row (e.g. per input channel)."""
    top, row_h, plot_w = 30, 26, _WIDTH - _LABEL_W - 40
    rows = [Interval(r.label, *(_clamp(v) if _finite(v) else None for v in r[1:])) for r in rows]
    ends: list[float] = [v for r in rows for v in (r.low, r.high) if _finite(v)]
    for r in rows:
        for mean, std in ((r.measured_mean, r.measured_std), (r.expected_mean, r.expected_std)):
            if _finite(mean):
                spread = abs(std) if _finite(std) else 0.0
                ends += [mean - spread, mean + spread]
    low, high = min(ends, default=-1.0), max(ends, default=1.0)
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low < 1e-9:
        low, high = low - 1, high + 1

    def x_of(value: float) -> float:
        return _LABEL_W + (value - low) / (high - low) * plot_w

    height = top + row_h * len(rows) + 34
    body = _legend(
        [
            ("measured mean \u00b1 std", PALETTE[0]),
            ("expected mean \u00b1 std", PALETTE[1]),
            ("measured min..max", "#c8ced6"),
        ]
    )
    for k in range(5):
        value = low + (high - low) * k / 4
        body.append(
            f'<line x1="{_f(x_of(value))}" y1="{top - 6}" x2="{_f(x_of(value))}" y2="{_f(height - 28)}" '
            'stroke="#e3e6ea"/>'
        )
        body.append(_text(x_of(value), height - 16, fmt_number(round(value, 4)), anchor="middle", fill=_AXIS))
    for row, r in enumerate(rows):
        y = top + row * row_h
        body.append(_label(_LABEL_W - 8, y + 12, r.label))
        if _finite(r.low) and _finite(r.high):
            tip = _esc(
                f"{r.label}: min {fmt_number(r.low, exact=True)}, max {fmt_number(r.high, exact=True)}"
            )
            body.append(
                f'<line x1="{_f(x_of(r.low))}" y1="{y + 6}" x2="{_f(x_of(r.high))}" y2="{y + 6}" '
                f'stroke="#c8ced6" stroke-width="6"><title>{tip}</title></line>'
            )
        marks = (
            (6, r.measured_mean, r.measured_std, PALETTE[0], ""),
            (15, r.expected_mean, r.expected_std, PALETTE[1], ' stroke-dasharray="3 2"'),
        )
        for offset, mean, std, colour, dash in marks:
            if not _finite(mean):
                continue
            spread = abs(std) if _finite(std) else 0.0
            tip = f"{r.label}: mean {fmt_number(mean, exact=True)}, std {fmt_number(std, exact=True)}"
            body.append(
                f'<line x1="{_f(x_of(mean - spread))}" y1="{y + offset}" x2="{_f(x_of(mean + spread))}" '
                f'y2="{y + offset}" stroke="{colour}" stroke-width="2"{dash}/>'
            )
            body.append(
                f'<circle cx="{_f(x_of(mean))}" cy="{y + offset}" r="4" fill="{colour}">'
                f"<title>{_esc(tip)}</title></circle>"
            )
    if note:
        body.append(_text(_LABEL_W, height - 2, note, fill=_AXIS))
    return _svg(_WIDTH, height, title, body)
