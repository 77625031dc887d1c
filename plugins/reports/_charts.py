"""Which charts an audit's evidence yields: documented evidence keys -> inline SVG.

The HTML report charts an audit's ``evidence`` (the audit-level dict, kept even
when there is no finding) by the *shape* of documented keys, so a third-party
audit that writes the same keys gets the same charts; :mod:`auditor.report.evidence`
reads them into :class:`auditor.report.evidence.Measurements` (``AuditView.measurements``):

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

``lr_curve`` (with ``lr_curve_every_steps``)
    ``[float]`` -> the learning rate over the planned run, from the schedule's dry run
    (gradient_probe).

A key that is absent or malformed gives no chart, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from auditor.report.evidence import Measurements
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


def class_counts(evidence: Measurements) -> Chart | None:
    splits = [entry.split for entry in evidence.class_counts]
    if not splits:
        return None
    totals: dict[str, float] = {}
    for entry in evidence.class_counts:
        for name, count in entry.counts:
            totals[name] = totals.get(name, 0.0) + (count or 0.0)
    if not totals:
        return None
    classes = sorted(totals)
    note = ""
    if len(classes) > MAX_CLASSES:
        # Keep the largest classes, shown in name order; say how many are left out.
        kept = set(sorted(classes, key=lambda c: (-totals[c], c))[:MAX_CLASSES])
        note = f"{len(classes) - MAX_CLASSES} smaller classes not shown"
        classes = [c for c in classes if c in kept]
    lookup = {entry.split: dict(entry.counts) for entry in evidence.class_counts}
    series = [_svg.Series(split, [lookup[split].get(c, 0.0) for c in classes]) for split in splits]
    svg = _svg.grouped_bars("class counts per split", classes, series, note)
    caption = f"{len(totals)} classes in {len(splits)} split{'s' if len(splits) != 1 else ''}"
    return Chart("counts", "Class counts per split", svg, caption)


def trainable_frozen(evidence: Measurements) -> Chart | None:
    rows = [(m.name, m.trainable, m.frozen) for m in evidence.modules]
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


def grad_norms(evidence: Measurements) -> Chart | None:
    rows = [(g.name, g.norm) for g in evidence.grad_norms]
    if not rows:
        return None
    shown, note = _sample(rows, MAX_LAYERS)
    svg = _svg.log_bars("gradient norm per parameter (log scale)", shown, note)
    positive = [v for _, v in rows if v is not None and math.isfinite(v) and v > 0]
    caption = f"{len(rows)} trainable parameter tensors"
    if positive:
        caption += f", norms from {_svg.fmt_number(min(positive))} to {_svg.fmt_number(max(positive))}"
    return Chart("grad_norms", "Gradient norm per layer", svg, caption)


def loss_curve(evidence: Measurements) -> Chart | None:
    series = [
        _svg.Series(name, list(curve))
        for curve, name in (
            (evidence.loss_curve, "probe steps"),
            (evidence.overfit_curve, "overfitting one batch"),
        )
        if curve
    ]
    if not series:
        return None
    svg = _svg.line_chart("loss per probe step", series, y_label="loss")
    first = series[0].values
    caption = f"{series[0].name}: {_svg.fmt_number(first[0])} -> {_svg.fmt_number(first[-1])}"
    return Chart("loss_curve", "Probe loss curve", svg, caption)


def channel_stats(evidence: Measurements) -> Chart | None:
    rows = [
        _svg.Interval(s.label, s.mean, s.std, s.expected_mean, s.expected_std, s.low, s.high)
        for s in evidence.channel_stats
    ]
    if not rows:
        return None
    note = f"{len(rows) - 48} more channels not shown" if len(rows) > 48 else ""
    svg = _svg.interval_chart("measured vs expected per-channel input statistics", rows[:48], note)
    caption = (
        "statistics of transformed samples per split; expected: what the pretrained normalization should give"
    )
    return Chart("channel_stats", "Input statistics per channel", svg, caption)


def bn_divergence(evidence: Measurements) -> Chart | None:
    rows = list(evidence.bn_divergence)
    if not rows:
        return None
    shown, note = _sample(rows, MAX_LAYERS)
    svg = _svg.log_bars("BatchNorm divergence per layer, input to output (log scale)", shown, note)
    caption = (
        f"{len(rows)} BatchNorm layers by depth; KL of the data's channel statistics from the stored ones"
    )
    if evidence.bn_threshold is not None:
        caption += f"; above {_svg.fmt_number(evidence.bn_threshold)} is a gap"
    return Chart("bn_divergence", "BatchNorm divergence per layer", svg, caption)


def lr_curve(evidence: Measurements) -> Chart | None:
    values = list(evidence.lr_curve)
    if len(values) < 2:
        return None
    every = evidence.lr_curve_every_steps
    x_label = f"optimizer step / {_svg.fmt_number(every)}" if every and every != 1 else "optimizer step"
    svg = _svg.line_chart(
        "learning rate over the planned run",
        [_svg.Series("learning rate", values)],
        x_label=x_label,
        y_label="lr",
    )
    finite = [v for v in values if v is not None and math.isfinite(v)]
    caption = "dry run of the schedule on a copy of the optimizer"
    if finite:
        caption += (
            f": starts at {_svg.fmt_number(finite[0])}, ranges {_svg.fmt_number(min(finite))} to "
            f"{_svg.fmt_number(max(finite))}"
        )
    return Chart("lr_curve", "Learning-rate schedule", svg, caption)


_BUILDERS: tuple[Callable[[Measurements], Chart | None], ...] = (
    class_counts,
    trainable_frozen,
    grad_norms,
    loss_curve,
    channel_stats,
    bn_divergence,
    lr_curve,
)


def charts_for(evidence: Measurements) -> list[Chart]:
    """Every chart ``evidence`` supports; a builder that trips over odd data is left out."""
    charts = []
    for build in _BUILDERS:
        try:
            chart = build(evidence)
        except Exception:
            chart = None
        if chart is not None:
            charts.append(chart)
    return charts
