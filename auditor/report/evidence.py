"""Evidence shapes the report formats draw: documented evidence keys read once into typed values.

An audit's evidence is its own (any JSON object); the formats chart the keys documented in
``plugins/reports/_charts.py`` by their *shape*, so a third-party audit that writes the same keys gets
the same charts. Everything here reads evidence defensively: a key that is absent or malformed gives
an empty value, never an exception, and the evidence itself stays reachable as a mapping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChannelStat",
    "ClassCounts",
    "GradNorm",
    "LeakedPair",
    "Measurements",
    "ModuleParams",
    "SampleRef",
    "leaked_pairs",
    "measurements",
    "pair_count",
]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def split_order(names: Sequence[str]) -> list[str]:
    """``train`` first, then the evaluation splits by name."""
    return sorted(names, key=lambda n: (n != "train", n))


@dataclass(frozen=True)
class SampleRef:
    """One side of a leaked pair: a file relative to the manifest's folder, or an in-memory sample."""

    split: str
    label: str
    #: "" for an in-memory sample (then ``index`` names it).
    path: str
    index: str


@dataclass(frozen=True)
class LeakedPair:
    """Two samples a split_leakage finding calls the same, closest first in the evidence."""

    #: Where the pair sits in the evidence's list: a thumbnail budget counts list entries, not valid pairs.
    position: int
    a: SampleRef | None
    b: SampleRef | None
    distance: Any = None
    kind: str = ""
    mirrored: bool = False
    similarity: float | None = None
    #: How ``b`` was made from ``a``, in words (geometric copies: "cropped to 49% of the area ...").
    relation: str = ""
    #: The part of ``a`` that ``b`` shows: corners (fractions of ``a``'s width and height), in order.
    outline: tuple[tuple[float, float], ...] = ()


def _outline(pair: Mapping[str, Any]) -> tuple[tuple[float, float], ...]:
    """The corners of ``region`` (x0, y0, x1, y1) turned by ``angle`` about its centre, or ()."""
    import math

    region, angle = pair.get("region"), pair.get("angle", 0.0)
    if not _sequence(region) or len(region) != 4 or not isinstance(angle, (int, float)):
        return ()
    try:
        x0, y0, x1, y1 = (float(v) for v in region)
    except (TypeError, ValueError):
        return ()
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1, angle)):
        return ()
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    # ``angle`` turns a's region into b (counter-clockwise on screen); the region itself is
    # a's square turned the other way.
    theta = math.radians(-angle)
    cos, sin = math.cos(theta), math.sin(theta)
    return tuple(
        (cx + cos * u + sin * v, cy - sin * u + cos * v)
        for u, v in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy))
    )


def _sample(raw: Any) -> SampleRef | None:
    if not isinstance(raw, Mapping):
        return None
    label = raw.get("label")
    return SampleRef(
        split=str(raw.get("split", "?")),
        label="" if label is None else str(label),
        path=str(raw.get("path")) if raw.get("path") else "",
        index=f"{raw.get('index', '?')}",
    )


def leaked_pairs(evidence: Mapping[str, Any]) -> tuple[LeakedPair, ...]:
    """``evidence["pairs"]``: ``{"a", "b", "distance", "kind", "mirrored", "similarity"}`` entries, or the
    SPEC's short form ``[path_a, path_b]``; other entries are left out."""
    pairs = evidence.get("pairs")
    if not _sequence(pairs):
        return ()
    out = []
    for position, pair in enumerate(pairs):
        if isinstance(pair, Mapping):
            similarity = pair.get("similarity")
            out.append(
                LeakedPair(
                    position,
                    _sample(pair.get("a")),
                    _sample(pair.get("b")),
                    pair.get("distance"),
                    str(pair["kind"]) if pair.get("kind") else "",
                    bool(pair.get("mirrored")),
                    similarity if isinstance(similarity, (int, float)) else None,
                    str(pair["relation"]) if pair.get("relation") else "",
                    _outline(pair),
                )
            )
        elif _sequence(pair) and len(pair) == 2:
            out.append(LeakedPair(position, _sample({"path": pair[0]}), _sample({"path": pair[1]})))
    return tuple(out)


def pair_count(evidence: Mapping[str, Any]) -> int:
    """How many pairs the finding counts (``count``), else how many its evidence lists."""
    count = evidence.get("count")
    if isinstance(count, int):
        return count
    pairs = evidence.get("pairs") or []
    try:
        return len(pairs)
    except TypeError:
        return 0


@dataclass(frozen=True)
class ClassCounts:
    """``counts``: samples per class in one split (``None`` where a count is not a number)."""

    split: str
    counts: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True)
class ModuleParams:
    """``modules``: parameters of a top-level module that train and that are frozen."""

    name: str
    trainable: float
    frozen: float


@dataclass(frozen=True)
class GradNorm:
    """``grad_norms``: the gradient norm of one parameter tensor after a probe step."""

    name: str
    norm: float | None


@dataclass(frozen=True)
class ChannelStat:
    """``stats`` / ``channel_stats``: measured vs expected statistics of one input channel."""

    label: str
    mean: float | None
    std: float | None
    expected_mean: float | None
    expected_std: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Measurements:
    """The documented keys of an audit's evidence, each empty when absent or malformed."""

    class_counts: tuple[ClassCounts, ...] = ()
    modules: tuple[ModuleParams, ...] = ()
    grad_norms: tuple[GradNorm, ...] = ()
    #: Loss per probe step; NaN where the step's loss was null (diverged), None where not a number.
    loss_curve: tuple[float | None, ...] = ()
    overfit_curve: tuple[float | None, ...] = ()
    channel_stats: tuple[ChannelStat, ...] = ()
    #: transform_parity's pipelines as text columns, one per split.
    side_by_side: str = ""
    #: feature_fit's divergence per BatchNorm layer, input to output, and the gap threshold.
    bn_divergence: tuple[tuple[str, float | None], ...] = ()
    bn_threshold: float | None = None
    #: gradient_probe's learning-rate dry run: the rate at evenly spaced optimizer steps, and the spacing.
    lr_curve: tuple[float | None, ...] = ()
    lr_curve_every_steps: float | None = None


def _class_counts(evidence: Mapping[str, Any]) -> tuple[ClassCounts, ...]:
    counts = evidence.get("counts")
    if not isinstance(counts, Mapping) or not counts:
        return ()
    splits = split_order([str(s) for s in counts if isinstance(counts[s], Mapping)])
    return tuple(
        ClassCounts(split, tuple((str(name), _number(n)) for name, n in counts[split].items()))
        for split in splits
    )


def _modules(raw: Any) -> tuple[ModuleParams, ...]:
    items: list[tuple[Any, Any]] = []
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif _sequence(raw):
        items = [(r.get("name"), r) for r in raw if isinstance(r, Mapping)]
    rows = []
    for name, entry in items:
        if not isinstance(entry, Mapping):
            continue
        trainable, frozen = _number(entry.get("trainable")), _number(entry.get("frozen"))
        if trainable is None and frozen is None:
            continue
        rows.append(
            ModuleParams(str(name if name not in (None, "") else "(root)"), trainable or 0.0, frozen or 0.0)
        )
    return tuple(rows)


def _grad_norms(raw: Any) -> tuple[GradNorm, ...]:
    if not _sequence(raw):
        return ()
    return tuple(
        GradNorm(str(r.get("name", "?")), _number(r.get("grad_norm"))) for r in raw if isinstance(r, Mapping)
    )


def _curve(value: Any) -> tuple[float | None, ...]:
    if not _sequence(value) or not value:
        return ()
    return tuple(_number(v) if v is not None else math.nan for v in value)


def _channels(value: Any) -> list[float | None]:
    return [_number(v) for v in value] if _sequence(value) else []


def _pick(xs: Sequence[Any], c: int) -> Any:
    """Channel ``c`` of ``xs``, or None where ``xs`` has fewer channels."""
    return xs[c] if c < len(xs) else None


def _channel_stats(evidence: Mapping[str, Any]) -> tuple[ChannelStat, ...]:
    rows = evidence.get("stats")
    if _sequence(rows):
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
        return tuple(
            ChannelStat(
                f"{r.get('split', '?')} channel {r.get('channel', '?')}", *(_number(r.get(k)) for k in keys)
            )
            for r in entries
        )
    stats = evidence.get("channel_stats")
    if not isinstance(stats, Mapping):
        return ()
    out = []
    for split in split_order([str(s) for s in stats if isinstance(stats[s], Mapping)]):
        entry = stats[split]
        mean, std = _channels(entry.get("mean")), _channels(entry.get("std"))
        want_mean, want_std = _channels(entry.get("expected_mean")), _channels(entry.get("expected_std"))
        for c in range(max(len(mean), len(want_mean))):
            out.append(
                ChannelStat(
                    f"{split} channel {c}",
                    _pick(mean, c),
                    _pick(std, c),
                    _pick(want_mean, c),
                    _pick(want_std, c),
                )
            )
    return tuple(out)


def measurements(evidence: Mapping[str, Any], *, strict: bool = False) -> Measurements:
    """Every documented shape ``evidence`` holds; the rest of it stays in the evidence mapping.

    Evidence is an audit's own data, and a third-party audit's may be odd: a shape that trips over it
    is left empty (no chart) rather than failing the whole report. ``strict`` lets the error out
    instead, so tests see a reader's bugs rather than a missing chart.
    """

    def read(reader: Callable[[Any], tuple[Any, ...]], value: Any) -> tuple[Any, ...]:
        try:
            return reader(value)
        except Exception:
            if strict:
                raise
            return ()

    side_by_side = evidence.get("side_by_side")
    return Measurements(
        class_counts=read(_class_counts, evidence),
        modules=read(_modules, evidence.get("modules")),
        grad_norms=read(_grad_norms, evidence.get("grad_norms")),
        loss_curve=read(_curve, evidence.get("loss_curve")),
        overfit_curve=read(_curve, evidence.get("overfit_curve")),
        channel_stats=read(_channel_stats, evidence),
        side_by_side=side_by_side if isinstance(side_by_side, str) else "",
        bn_divergence=read(_bn_divergence, evidence.get("bn_divergence")),
        bn_threshold=_number(evidence.get("bn_threshold")),
        lr_curve=read(_curve, evidence.get("lr_curve")),
        lr_curve_every_steps=_number(evidence.get("lr_curve_every_steps")),
    )


def _bn_divergence(raw: Any) -> tuple[tuple[str, float | None], ...]:
    if not _sequence(raw):
        return ()
    return tuple(
        (str(r.get("name", "?")), _number(r.get("divergence"))) for r in raw if isinstance(r, Mapping)
    )
