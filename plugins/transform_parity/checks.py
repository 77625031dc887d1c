"""The TP001-TP006 decisions, from a static reading and a measurement of each split's pipeline.

Static analysis says what a pipeline *declares*; the measurement says what it
*does*. Where they disagree (an opaque Lambda that rescales, a dataset that
normalizes on its own) the measurement decides, and TP006 reports the
contradiction.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor_plugins.transform_parity.stats import OUT_OF_RANGE

if TYPE_CHECKING:  # pragma: no cover
    from auditor import AuditContext, Finding
    from auditor_plugins.transform_parity.pipeline import Normalization, Pipeline
    from auditor_plugins.transform_parity.pretrained import Expected
    from auditor_plugins.transform_parity.stats import Measured

__all__ = ["SplitView", "check_all", "fmt", "norm_distance"]


@dataclass
class SplitView:
    """One split as the checks see it."""

    name: str
    location: str
    is_train: bool
    pipe: Pipeline
    measured: Measured | None

    @property
    def kind(self) -> str | None:
        """What the measured values look like: byte | unit | normalized (None: not measured)."""
        return self.measured.kind if self.measured and self.measured.measured else None

    @property
    def status(self) -> str:
        """How this split normalizes: static | none | opaque | unknown."""
        if self.pipe.normalize is not None:
            return "static"
        if self.kind in ("unit", "byte"):
            return "none"
        if self.kind == "normalized":
            return "opaque"  # something the static reading cannot see normalizes (Lambda, dataset)
        if self.pipe.present and not self.pipe.opaque_steps:
            return "none"
        return "unknown"

    def describe_norm(self) -> str:
        status = self.status
        if status == "static" and self.pipe.normalize is not None:
            n = self.pipe.normalize
            twice = f" ({n.count} Normalize steps combined)" if n.count > 1 else ""
            return f"mean {fmt(n.mean)} std {fmt(n.std)}{twice}"
        if status == "opaque":
            mean = fmt(self.measured.mean) if self.measured else "?"
            return f"an opaque step (measured channel means {mean})"
        if status == "none":
            return "no normalization"
        return "an unknown normalization (opaque steps, nothing measured)"


def fmt(values: Sequence[float] | None, digits: int = 3) -> str:
    if values is None:
        return "none"
    return (
        "["
        + ", ".join(f"{v:.{digits}f}".rstrip("0").rstrip(".") if not math.isnan(v) else "nan" for v in values)
        + "]"
    )


def _broadcast(values: Sequence[float], n: int) -> list[float]:
    return list(values) * n if len(values) == 1 else list(values)


def norm_distance(
    mean_a: Sequence[float], std_a: Sequence[float], mean_b: Sequence[float], std_b: Sequence[float]
) -> float:
    """Largest per-channel difference of mean or std; ``inf`` for incompatible channel counts."""
    n = max(len(mean_a), len(mean_b), len(std_a), len(std_b))
    vectors = [_broadcast(v, n) for v in (mean_a, std_a, mean_b, std_b)]
    if any(len(v) != n for v in vectors):
        return math.inf
    ma, sa, mb, sb = vectors
    return max(
        max(abs(x - y) for x, y in zip(ma, mb, strict=False)),
        max(abs(x - y) for x, y in zip(sa, sb, strict=False)),
    )


def _expected_distance(norm: Normalization, expected: Expected) -> float:
    assert expected.mean is not None and expected.std is not None
    distance = norm_distance(norm.mean, norm.std, expected.mean, expected.std)
    if norm.scale == "unknown":
        # Applied where the scale cannot be read statically: accept either reading.
        scaled = norm_distance(
            [m / 255 for m in norm.mean], [s / 255 for s in norm.std], expected.mean, expected.std
        )
        distance = min(distance, scaled)
    if expected.byte_scale:
        distance = min(
            distance,
            norm_distance(
                [m * 255 for m in norm.mean], [s * 255 for s in norm.std], expected.mean, expected.std
            ),
        )
    return distance


def _add_normalize_hint(view: SplitView, expected: Expected) -> str:
    mean, std = fmt(expected.mean, 4), fmt(expected.std, 4)
    if view.pipe.flavor == "v2":
        return (
            f"add v2.Normalize(mean={mean}, std={std}) after v2.ToDtype(torch.float32, scale=True), "
            "the same step in every split"
        )
    return f"add transforms.Normalize(mean={mean}, std={std}) after ToTensor(), the same step in every split"


def check_all(ctx: AuditContext, views: list[SplitView], expected: Expected | None) -> Iterator[Finding]:
    tolerance = float(ctx.options["tolerance"])
    for view in views:
        if expected is not None and expected.mean is not None:
            yield from _normalization(ctx, view, expected, tolerance)
        if not view.is_train:
            yield from _randomness(ctx, view)
        yield from _statistics(ctx, view, expected)
        yield from _sizes(ctx, view, expected)
    train = next((v for v in views if v.is_train), None)
    if train is not None:
        for view in views:
            if not view.is_train:
                yield from _train_vs_eval(ctx, train, view, tolerance)


def _normalization(
    ctx: AuditContext, view: SplitView, expected: Expected, tolerance: float
) -> Iterator[Finding]:
    status = view.status
    evidence: dict[str, Any] = {
        "split": view.name,
        "expected": {"mean": expected.mean, "std": expected.std},
        "source": expected.source,
    }
    if view.measured and view.measured.mean:
        evidence["measured_mean"] = [round(v, 4) for v in view.measured.mean]
    if status == "none":
        extra = ""
        if view.pipe.conditional_normalize:
            extra = " (a Normalize sits inside RandomApply/RandomChoice, so most samples skip it)"
        elif not view.pipe.present:
            extra = " (the split has no transform)"
        measured = ""
        if view.kind == "unit":
            measured = f"; measured values lie in [0, 1] with channel means {fmt(view.measured.mean)}"  # type: ignore[union-attr]
        yield ctx.finding(
            "TP001",
            f"'{view.name}' feeds the model unnormalized inputs{extra}; {expected.source} expects "
            f"mean {fmt(expected.mean)} std {fmt(expected.std)}{measured}",
            hint=_add_normalize_hint(view, expected),
            location=view.location,
            evidence=evidence,
        )
        return
    if status == "unknown":
        ctx.note(
            f"'{view.name}': normalization unknown (opaque steps and no measured sample): TP001/TP002 "
            "not checked for this split"
        )
        return
    if status != "static" or view.pipe.normalize is None:
        return
    norm = view.pipe.normalize
    distance = _expected_distance(norm, expected)
    if distance <= tolerance:
        return
    evidence.update(
        {
            "declared": norm.to_dict(),
            "distance": round(distance, 6) if distance != math.inf else None,
            "tolerance": tolerance,
        }
    )
    twice = ""
    if norm.count > 1:
        twice = f" after {norm.count} Normalize steps in a row (normalized more than once)"
    scale = " (applied to 0..255 values, shown here in [0, 1] units)" if norm.scale == "byte" else ""
    yield ctx.finding(
        "TP002",
        f"'{view.name}' normalizes with mean {fmt(norm.mean)} std {fmt(norm.std)}{scale}{twice}; "
        f"{expected.source} expects mean {fmt(expected.mean)} std {fmt(expected.std)}",
        hint=f"use exactly the pretrained statistics: Normalize(mean={fmt(expected.mean, 4)}, "
        f"std={fmt(expected.std, 4)}), once, after the [0, 1] scaling step",
        location=view.location,
        evidence=evidence,
    )


def _random_leaves(pipe: Pipeline) -> list[Any]:
    """Random steps, leaving out a random container whose own children already show the randomness."""
    steps = pipe.steps
    shown = []
    for index, step in enumerate(steps):
        if not step.random:
            continue
        if step.kind == "container":
            children = []
            for later in steps[index + 1 :]:
                if later.depth <= step.depth:
                    break
                children.append(later)
            if any(c.random for c in children):
                continue
        shown.append(step)
    return shown


def _randomness(ctx: AuditContext, view: SplitView) -> Iterator[Finding]:
    names = [s.text for s in _random_leaves(view.pipe)]
    if names:
        yield ctx.finding(
            "TP004",
            f"evaluation split '{view.name}' applies random augmentation: {'; '.join(names[:5])}",
            hint="evaluation must be deterministic: remove the random steps, e.g. "
            "Resize + CenterCrop instead of RandomResizedCrop, and no flips or color jitter",
            location=view.location,
            evidence={"split": view.name, "random_steps": names},
        )
    elif view.measured is not None and view.measured.nondeterministic:
        opaque = [s.text for s in view.pipe.opaque_steps]
        yield ctx.finding(
            "TP004",
            f"evaluation split '{view.name}' gives different outputs for the same image on two calls"
            + (f"; the random step is among the opaque ones: {'; '.join(opaque[:3])}" if opaque else ""),
            hint="find the step that draws random numbers and remove it from the evaluation pipeline",
            location=view.location,
            evidence={"split": view.name, "opaque_steps": opaque, "measured": True},
        )


def _reference(
    view: SplitView, expected: Expected | None
) -> tuple[Sequence[float], Sequence[float], str] | None:
    """The normalization the measured values should reflect, and where it comes from."""
    norm = view.pipe.normalize
    if norm is not None and norm.scale in ("unit", "byte") and not view.pipe.opaque_after_normalize:
        return norm.mean, norm.std, "its Normalize"
    if norm is not None:
        return norm.mean, norm.std, "its Normalize (values scaled to [0, 1] assumed)"
    if view.kind == "normalized" and expected is not None and expected.mean and expected.std:
        return expected.mean, expected.std, f"the {expected.source} normalization"
    return None


def _statistics(ctx: AuditContext, view: SplitView, expected: Expected | None) -> Iterator[Finding]:
    measured = view.measured
    if measured is None or not measured.measured:
        return
    reasons: list[str] = []
    kind = view.kind
    peak = max(max(abs(v) for v in measured.min), max(abs(v) for v in measured.max))
    byte_expected = expected is not None and expected.byte_scale
    if kind == "byte" and not byte_expected:
        reasons.append(f"values reach {peak:.1f}: the images were not scaled to [0, 1] (0..255 inputs)")
    elif kind == "unit" and _normalize_never_ran(view):
        reasons.append("a Normalize is declared but every value lies in [0, 1], as if it never ran")
    reference = _reference(view, expected)
    if reference is not None and not reasons and not byte_expected and not _erases_after_normalize(view.pipe):
        mean, std, source = reference
        n = len(measured.mean)
        ref_mean, ref_std = _broadcast(mean, n), _broadcast(std, n)
        if len(ref_mean) == n and len(ref_std) == n:
            for c in range(n):
                low, high = (0 - ref_mean[c]) / ref_std[c], (1 - ref_mean[c]) / ref_std[c]
                margin = 0.5 + 0.1 * (high - low)
                if (
                    measured.min[c] < low - margin
                    or measured.max[c] > high + margin
                    or not (low <= measured.mean[c] <= high)
                ):
                    reasons.append(
                        f"channel {c} spans [{measured.min[c]:.2f}, {measured.max[c]:.2f}] (mean "
                        f"{measured.mean[c]:.2f}); {source} of [0, 1] images gives values in "
                        f"[{low:.2f}, {high:.2f}]"
                    )
                    break
    if not reasons and peak > OUT_OF_RANGE and not byte_expected:
        reasons.append(
            f"values reach {peak:.1f}, beyond what [0, 1] images give under any usual normalization"
        )
    if not reasons:
        return
    opaque = [s.text for s in view.pipe.opaque_steps]
    suspects = f"; suspect the opaque step(s): {'; '.join(opaque[:3])}" if opaque else ""
    yield ctx.finding(
        "TP006",
        f"'{view.name}': measured statistics contradict the declared normalization: {reasons[0]}" + suspects,
        hint="scale to [0, 1] exactly once (ToTensor, or v2.ToDtype(torch.float32, scale=True)), then "
        "normalize exactly once with the pretrained mean/std; check custom steps for extra rescaling",
        location=view.location,
        evidence={
            "split": view.name,
            "reasons": reasons,
            "measured": measured.to_dict(),
            "opaque_steps": opaque,
        },
    )


def _normalize_never_ran(view: SplitView) -> bool:
    """[0, 1] outputs although a Normalize would have made dark pixels negative.

    Mapped back through the declared normalization, the darkest measured value of
    every channel would be brighter than 0.25: implausible for `samples` natural
    images, while an identity-like ``Normalize([0]*3, [1]*3)`` is accepted.
    """
    norm, measured = view.pipe.normalize, view.measured
    if norm is None or measured is None or view.pipe.conditional_normalize:
        return False
    n = len(measured.min)
    mean, std = _broadcast(norm.mean, n), _broadcast(norm.std, n)
    if len(mean) != n or len(std) != n:
        return False
    return all(measured.min[c] * std[c] + mean[c] > 0.25 for c in range(n))


def _erases_after_normalize(pipe: Pipeline) -> bool:
    # RandomErasing(value="random") writes N(0, 1) noise: legitimately outside the natural-image range.
    return any(s.name == "RandomErasing" for s in pipe.steps)


def _sizes(ctx: AuditContext, view: SplitView, expected: Expected | None) -> Iterator[Finding]:
    measured = view.measured
    evidence: dict[str, Any] = {"split": view.name}
    if measured is not None and measured.shapes:
        distinct = {s[1:] for s in measured.shapes}
        channels = {s[0] for s in measured.shapes}
        if len(distinct) > 1 or len(channels) > 1:
            shown = ", ".join(f"{'x'.join(map(str, s))} ({n})" for s, n in measured.shapes.most_common(4))
            yield ctx.finding(
                "TP005",
                f"'{view.name}' produces {len(measured.shapes)} different input shapes: {shown}",
                hint="samples of one batch must share a shape: end the pipeline with CenterCrop (or Resize "
                "to (H, W)), and convert every image to RGB",
                location=view.location,
                evidence={
                    **evidence,
                    "shapes": {"x".join(map(str, s)): n for s, n in measured.shapes.items()},
                },
            )
    produced = measured.hw if measured is not None and measured.hw else view.pipe.size
    channels_now = measured.channels if measured is not None else None
    if expected is None or expected.input_size is None:
        return
    want_c, want_h, want_w = expected.input_size
    if channels_now is not None and channels_now != want_c:
        yield ctx.finding(
            "TP005",
            f"'{view.name}' produces {channels_now}-channel inputs; {expected.source} has a "
            f"{want_c}-channel stem",
            hint="convert images with .convert('RGB') or Grayscale(num_output_channels=3) before ToTensor"
            if channels_now == 1
            else "drop the extra channels (e.g. RGBA alpha) with .convert('RGB')",
            location=view.location,
            evidence={**evidence, "channels": channels_now, "expected_channels": want_c},
        )
    if produced is not None and tuple(produced) != (want_h, want_w):
        if view.is_train:
            how = f"RandomResizedCrop({want_h})"
        else:
            how = (
                f"Resize({expected.resize}) + CenterCrop({want_h})"
                if expected.resize
                else f"CenterCrop({want_h})"
            )
        fixed = expected.extra.get("fixed_input_size")
        consequence = (
            " (this architecture accepts only that size)"
            if fixed
            else "; features pretrained at one scale lose accuracy at another"
        )
        yield ctx.finding(
            "TP005",
            f"'{view.name}' feeds {produced[0]}x{produced[1]} inputs; {expected.source} was trained "
            f"at {want_h}x{want_w}{consequence}",
            hint=f"use {how} in this split"
            + (f" ({expected.interpolation} interpolation)" if expected.interpolation else ""),
            location=view.location,
            evidence={
                **evidence,
                "size": list(produced),
                "expected_size": [want_h, want_w],
                "measured": measured is not None and bool(measured.hw),
            },
        )


def _train_vs_eval(
    ctx: AuditContext, train: SplitView, view: SplitView, tolerance: float
) -> Iterator[Finding]:
    differs = False
    a, b = train.status, view.status
    if a == "static" and b == "static":
        ta, tb = train.pipe.normalize, view.pipe.normalize
        assert ta is not None and tb is not None
        differs = norm_distance(ta.mean, ta.std, tb.mean, tb.std) > tolerance
    elif ({a, b} <= {"static", "opaque", "none"} and (a == "none") != (b == "none")) or (
        train.kind and view.kind and train.kind != view.kind
    ):
        differs = True
    if differs:
        yield ctx.finding(
            "TP003",
            f"'train' normalizes with {train.describe_norm()}, '{view.name}' with {view.describe_norm()}",
            hint="build both pipelines from the same constants (one MEAN/STD pair imported by both), so "
            "evaluation sees inputs distributed like the training inputs",
            location=view.location,
            evidence={
                "split": view.name,
                "train": train.pipe.to_dict()["normalize"],
                view.name: view.pipe.to_dict()["normalize"],
                "measured_kind": {"train": train.kind, view.name: view.kind},
            },
        )
    train_hw = train.measured.hw if train.measured is not None and train.measured.hw else train.pipe.size
    eval_hw = view.measured.hw if view.measured is not None and view.measured.hw else view.pipe.size
    if train_hw and eval_hw and tuple(train_hw) != tuple(eval_hw):
        yield ctx.finding(
            "TP005",
            f"'train' feeds {train_hw[0]}x{train_hw[1]} inputs, '{view.name}' {eval_hw[0]}x{eval_hw[1]}",
            hint="evaluate at the training resolution (or deliberately slightly above it, as FixRes does); "
            "Resize + CenterCrop to the training crop size",
            location=view.location,
            evidence={"train": list(train_hw), view.name: list(eval_hw)},
        )
