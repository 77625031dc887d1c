"""Pipelines that train badly although every step is valid: TP007 (channels) and TP008 (normalized twice).

TP007 compares the channel count each split's pipeline really produces (measured) with the
``in_channels`` of the model's first convolution. TP008 walks the pipeline for every step that
normalizes (``Normalize``, a torchvision weights preset such as ``weights.transforms()``, an
image processor with ``do_normalize``) and reports a second one applied to every sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding
from auditor_plugins.transform_parity.pipeline import _children

__all__ = ["check_contracts", "first_conv", "normalizing_steps"]


def first_conv(model: Any) -> tuple[str, int] | None:
    """(name, in_channels) of the first convolution the model declares, or None."""
    for name, module in model.named_modules():
        channels = getattr(module, "in_channels", None)
        if type(module).__name__.startswith("Conv") and isinstance(channels, int):
            return name, channels
    return None


def _normalizer(obj: Any) -> str | None:
    """How ``obj`` names itself when it normalizes every sample it is given, else None."""
    name = type(obj).__name__
    module = type(obj).__module__ or ""
    if name == "Normalize" or ("normaliz" in name.lower() and hasattr(obj, "mean") and hasattr(obj, "std")):
        return f"{name}(mean={_short(obj.mean)}, std={_short(obj.std)})" if hasattr(obj, "mean") else name
    if module.startswith("torchvision.transforms._presets") and hasattr(obj, "mean") and hasattr(obj, "std"):
        return f"the weights preset {name} (weights.transforms(); normalizes with mean={_short(obj.mean)})"
    if getattr(obj, "do_normalize", False) and hasattr(obj, "image_mean"):
        return f"the image processor {name} (do_normalize=True, image_mean={_short(obj.image_mean)})"
    return None


def _short(values: Any) -> str:
    try:
        return "[" + ", ".join(f"{float(v):.3g}" for v in list(values)) + "]"
    except (TypeError, ValueError):
        return str(values)


def normalizing_steps(transform: Any, conditional: bool = False) -> list[str]:
    """Every step of ``transform`` that normalizes every sample, in application order."""
    if transform is None:
        return []
    own = _normalizer(transform)
    if own is not None:
        return [] if conditional else [own]
    children = _children(transform)
    if children is None:
        return []
    name = type(transform).__name__
    p = getattr(transform, "p", 1.0)
    inner = (
        conditional
        or name in ("RandomChoice", "RandomOrder")
        or (name == "RandomApply" and isinstance(p, (int, float)) and p < 1)
    )
    return [step for child in children for step in normalizing_steps(child, inner)]


def check_contracts(ctx: AuditContext, views: list[Any], transforms: dict[str, Any]) -> Iterator[Finding]:
    yield from _normalized_twice(ctx, views, transforms)
    yield from _channels(ctx, views)


def _normalized_twice(ctx: AuditContext, views: list[Any], transforms: dict[str, Any]) -> Iterator[Finding]:
    for view in views:
        steps = normalizing_steps(transforms.get(view.name))
        if len(steps) < 2:
            continue
        measured = view.measured
        stats = ""
        if measured is not None and measured.mean:
            low, high = min(measured.min), max(measured.max)
            stats = (
                f"; measured on {len(measured.indices)} samples: mean {sum(measured.mean) / len(measured.mean):.2g}, "
                f"values {low:.3g}..{high:.3g} (a single normalization gives mean about 0, values about -2..3)"
            )
        yield ctx.finding(
            "TP008",
            f"'{view.name}': inputs are normalized twice, first by {steps[0]}, then by {steps[1]}{stats}",
            hint=f"keep one of the two: drop the second step ({steps[1].split('(')[0]}) from the pipeline of "
            f"'{view.name}', or build the pipeline without the first",
            location=f"{view.location}.transform",
            evidence={"split": view.name, "steps": steps},
        )


def _channels(ctx: AuditContext, views: list[Any]) -> Iterator[Finding]:
    if not ctx.run.has("model"):
        return
    try:
        conv = first_conv(ctx.run.model)
    except Exception:  # a model that cannot be built is reported by the audits that need it
        return
    if conv is None:
        return
    name, expected = conv
    for view in views:
        measured = view.measured
        found = measured.channels if measured is not None else None
        if found is None or found == expected:
            continue
        gray = found == 1 and expected == 3
        hint = (
            "use `Grayscale(num_output_channels=3)` instead of `Grayscale(1)`, or convert images with "
            "`.convert('RGB')` in the dataset"
            if gray
            else f"make the pipeline produce {expected}-channel images (e.g. `.convert('RGB')` for RGBA or "
            f"grayscale files), or rebuild `{name}` with in_channels={found} (its pretrained weights are then lost)"
        )
        yield ctx.finding(
            "TP007",
            f"'{view.name}': the pipeline gives {found}-channel inputs {list(measured.shape or ())} but the model's "
            f"first conv `{name}` takes {expected} channels: the first forward pass raises",
            hint=hint,
            location=f"{view.location}.transform",
            evidence={"split": view.name, "channels": found, "expected_channels": expected, "layer": name},
        )
