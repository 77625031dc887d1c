"""Which charts an audit's evidence yields: documented evidence keys -> inline SVG.

The HTML report charts an audit's ``evidence`` (the audit-level dict, kept even
when there is no finding) by the *shape* of documented keys, so a third-party
audit that writes the same keys gets the same charts:

``counts``
    ``{split: {class: count}}`` -> class counts per split (label_distribution).
``modules``
    ``[{"name", "trainable", "frozen"}]`` (or ``{name: {"trainable", "frozen"}}``):
    parameter counts per top-level module -> trainable vs frozen (frozen_coverage).
``grad_norms``
    ``[{"name", "grad_norm", ...}]`` -> gradient norm per parameter, log scale
    (gradient_probe).
``loss_curve`` / ``overfit_curve``
    ``[float]`` -> loss per probe step (gradient_probe).
``stats``
    ``[{"split", "channel", "mean", "std", "min", "max", "expected_mean", "expected_std"}]``
    (or ``channel_stats``: ``{split: {"mean": [..], "std": [..], "expected_mean": [..],
    "expected_std": [..]}}``) -> measured per-channel statistics of transformed
    inputs vs what the pretrained normalization should give (transform_parity).

``bn_divergence``
    ``[{"name", "divergence"}]`` in depth order -> divergence of the data from the stored
    running statistics at each BatchNorm layer, log scale (feature_fit).

A key that is absent or malformed gives no chart, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from auditor_plugins.reports import _svg

__all__ = ["MAX_CLASSES", "MAX_LAYERS", "Chart", "charts_for"]

MAX_CLASSES = 40
MAX_LAYERS = 60
MAX_MODULES = 30


class Chart(NamedTuple):
    key: str
    title: str
    svg: str
    caption: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _split_order(names: Sequence[str]) -> list[str]:
    """``train`` first, then the evaluation splits by name."""
    return sorted(names, key=lambda n: (n != "train", n))


def class_counts(evidence: Mapping[str, Any]) -> Chart | None:
    counts = evidence.get("counts")
    if not isinstance(counts, Mapping) or not counts:
        return None
    splits = [str(s) for s in counts if isinstance(counts[s], Mapping)]
    if not splits:
        return None
    splits = _split_order(splits)
    totals: dict[str, float] = {}
    for split in splits:
        for name, count in counts[split].items():
            totals[str(name)] = totals.get(str(name), 0.0) + (_number(count) or 0.0)
    if not totals:
        return None
    classes = sorted(totals)
    note = ""
    if len(classes) > MAX_CLASSES:
        # Keep the largest classes, shown in name order; say how many are left out.
        kept = set(sorted(classes, key=lambda c: (-totals[c], c))[:MAX_CLASSES])
        note = f"{len(classes) - MAX_CLASSES} smaller classes not shown"
        classes = [c for c in classes if c in kept]
    lookup = {split: {str(k): v for k, v in counts[split].items()} for split in splits}
    series = [_svg.Series(split, [_number(lookup[split].get(c, 0)) for c in classes]) for split in splits]
    svg = _svg.grouped_bars("class counts per split", classes, series, note)
    caption = f"{len(totals)} classes in {len(splits)} split{'s' if len(splits) != 1 else ''}"
    return Chart("counts", "Class counts per split", svg, caption)


def _module_rows(raw: Any) -> list[tuple[str, float, float]]:
    items: list[tuple[Any, Any]] = []
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        items = [(r.get("name"), r) for r in raw if isinstance(r, Mapping)]
    rows = []
    for name, entry in items:
        if not isinstance(entry, Mapping):
            continue
        trainable, frozen = _number(entry.get("trainable")), _number(entry.get("frozen"))
        if trainable is None and frozen is None:
            continue
        rows.append((str(name if name not in (None, "") else "(root)"), trainable or 0.0, frozen or 0.0))
    return rows


def trainable_frozen(evidence: Mapping[str, Any]) -> Chart | None:
    rows = _module_rows(evidence.get("modules"))
    if not rows:
        return None
    note = ""
    if len(rows) > MAX_MODULES:
        note = f"{len(rows) - MAX_MODULES} smaller modules not shown"
        rows = sorted(rows, key=lambda r: (-(r[1] + r[2]), r[0]))[:MAX_MODULES]
    segments = [_svg.Segment("trainable", _svg.PALETTE[2]), _svg.Segment("frozen", "#9aa4b1")]
    svg = _svg.stacked_bars(
        "trainable vs frozen parameters per top-level module",
        [(name, [t, f]) for name, t, f in rows],
        segments,
        note,
    )
    trainable = sum(r[1] for r in rows)
    total = trainable + sum(r[2] for r in rows)
    caption = f"{_svg.fmt_number(trainable)} of {_svg.fmt_number(total)} parameters trainable"
    return Chart("modules", "Trainable vs frozen parameters", svg, caption)


def _sample(rows: list[tuple[str, float | None]], limit: int) -> tuple[list[tuple[str, float | None]], str]:
    """At most ``limit`` rows in model order, always keeping the extremes and the non-finite ones."""
    if len(rows) <= limit:
        return rows, ""
    finite = [(i, v) for i, (_, v) in enumerate(rows) if v is not None and math.isfinite(v) and v > 0]
    keep = {i for i, (_, v) in enumerate(rows) if v is None or not math.isfinite(v) or v <= 0}
    if finite:
        keep |= {min(finite, key=lambda t: t[1])[0], max(finite, key=lambda t: t[1])[0]}
    keep = set(sorted(keep)[:limit])
    rest = [i for i in range(len(rows)) if i not in keep]
    need = limit - len(keep)
    if need > 0 and rest:
        step = len(rest) / need  # >= 1, so the picks are distinct
        keep |= {rest[int(j * step)] for j in range(min(need, len(rest)))}
    shown = [rows[i] for i in sorted(keep)]
    return shown, f"{len(shown)} of {len(rows)} parameters shown (evenly spaced, extremes kept)"


def grad_norms(evidence: Mapping[str, Any]) -> Chart | None:
    raw = evidence.get("grad_norms")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return None
    rows = [(str(r.get("name", "?")), _number(r.get("grad_norm"))) for r in raw if isinstance(r, Mapping)]
    if not rows:
        return None
    shown, note = _sample(rows, MAX_LAYERS)
    svg = _svg.log_bars("gradient norm per parameter (log scale)", shown, note)
    positive = [v for _, v in rows if v is not None and math.isfinite(v) and v > 0]
    caption = f"{len(rows)} trainable parameter tensors"
    if positive:
        caption += f", norms from {_svg.fmt_number(min(positive))} to {_svg.fmt_number(max(positive))}"
    return Chart("grad_norms", "Gradient norm per layer", svg, caption)


def _curve(value: Any) -> list[float | None] | None:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        return None
    return [_number(v) if v is not None else math.nan for v in value]


def loss_curve(evidence: Mapping[str, Any]) -> Chart | None:
    series = []
    for key, name in (("loss_curve", "probe steps"), ("overfit_curve", "overfitting one batch")):
        curve = _curve(evidence.get(key))
        if curve:
            series.append(_svg.Series(name, curve))
    if not series:
        return None
    svg = _svg.line_chart("loss per probe step", series, y_label="loss")
    first = series[0].values
    caption = f"{series[0].name}: {_svg.fmt_number(first[0])} -> {_svg.fmt_number(first[-1])}"
    return Chart("loss_curve", "Probe loss curve", svg, caption)


def _channels(value: Any) -> list[float | None]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_number(v) for v in value]
    return []


def _stat_rows(evidence: Mapping[str, Any]) -> list[_svg.Interval]:
    rows = evidence.get("stats")
    if isinstance(rows, Sequence) and not isinstance(rows, str):
        entries = [r for r in rows if isinstance(r, Mapping)]
        entries.sort(
            key=lambda r: (
                str(r.get("split")) != "train",
                str(r.get("split")),
                _number(r.get("channel")) or 0.0,
                str(r.get("channel")),
            )
        )
        keys = ("mean", "std", "expected_mean", "expected_std", "min", "max")
        return [
            _svg.Interval(
                f"{r.get('split', '?')} channel {r.get('channel', '?')}", *(_number(r.get(k)) for k in keys)
            )
            for r in entries
        ]
    stats = evidence.get("channel_stats")
    if not isinstance(stats, Mapping):
        return []
    out = []
    for split in _split_order([str(s) for s in stats if isinstance(stats[s], Mapping)]):
        entry = stats[split]
        mean, std = _channels(entry.get("mean")), _channels(entry.get("std"))
        want_mean, want_std = _channels(entry.get("expected_mean")), _channels(entry.get("expected_std"))
        for c in range(max(len(mean), len(want_mean))):
            out.append(
                _svg.Interval(
                    f"{split} channel {c}",
                    _pick(mean, c),
                    _pick(std, c),
                    _pick(want_mean, c),
                    _pick(want_std, c),
                )
            )
    return out


def _pick(xs: Sequence[Any], c: int) -> Any:
    """Channel ``c`` of ``xs``, or None where ``xs`` has fewer channels."""
    return xs[c] if c < len(xs) else None


def channel_stats(evidence: Mapping[str, Any]) -> Chart | None:
    rows = _stat_rows(evidence)
    if not rows:
        return None
    note = f"{len(rows) - 48} more channels not shown" if len(rows) > 48 else ""
    svg = _svg.interval_chart("measured vs expected per-channel input statistics", rows[:48], note)
    caption = (
        "statistics of transformed samples per split; expected: what the pretrained normalization should give"
    )
    return Chart("channel_stats", "Input statistics per channel", svg, caption)


def bn_divergence(evidence: Mapping[str, Any]) -> Chart | None:
    raw = evidence.get("bn_divergence")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return None
    rows = [(str(r.get("name", "?")), _number(r.get("divergence"))) for r in raw if isinstance(r, Mapping)]
    if not rows:
        return None
    shown, note = _sample(rows, MAX_LAYERS)
    threshold = _number(evidence.get("bn_threshold"))
    svg = _svg.log_bars("BatchNorm divergence per layer, input to output (log scale)", shown, note)
    caption = (
        f"{len(rows)} BatchNorm layers by depth; KL of the data's channel statistics from the stored ones"
    )
    if threshold is not None:
        caption += f"; above {_svg.fmt_number(threshold)} is a gap"
    return Chart("bn_divergence", "BatchNorm divergence per layer", svg, caption)


_BUILDERS: tuple[Callable[[Mapping[str, Any]], Chart | None], ...] = (
    class_counts,
    trainable_frozen,
    grad_norms,
    loss_curve,
    channel_stats,
    bn_divergence,
)


def charts_for(evidence: Any) -> list[Chart]:
    """Every chart ``evidence`` supports; a builder that trips over odd data is left out."""
    if not isinstance(evidence, Mapping):
        return []
    charts = []
    for build in _BUILDERS:
        try:
            chart = build(evidence)
        except Exception:
            chart = None
        if chart is not None:
            charts.append(chart)
    return charts
