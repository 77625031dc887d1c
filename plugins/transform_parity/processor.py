"""Hugging Face image processors as the pretrained source: double rescaling and a switched-off normalization.

An image processor (``preprocessor_config.json``, or the object given to
``auditor.check(pretrained=processor)``) rescales (``do_rescale``: times
``rescale_factor``, 1/255) and normalizes (``do_normalize``: ``image_mean`` /
``image_std``). Two mistakes are its own:

* TP010: inputs already in [0, 1] (``ToTensor()`` ran first) are rescaled again, so
  every pixel lands within one 1/255 step. Transformers only logs a warning. The
  measurement sees it: the whole range of every channel is narrower than what one
  step of 1/255 (through the processor's std) can span.
* TP011: ``do_normalize`` is off although the processor carries the mean/std the
  weights were trained with: they are never applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding

__all__ = ["check_processor"]

#: Slack over one rescale step: float error and a little interpolation overshoot.
_SPAN_SLACK = 1.5


def _identity(mean: Any, std: Any) -> bool:
    return bool(mean) and bool(std) and all(m == 0 for m in mean) and all(s == 1 for s in std)


def check_processor(ctx: AuditContext, views: list[Any], expected: Any) -> Iterator[Finding]:
    """TP010 per split whose measured inputs were rescaled twice; TP011 once for the processor."""
    if expected is None or "do_rescale" not in expected.extra:
        return
    extra = expected.extra
    name = extra.get("image_processor") or "the image processor"
    mean, std = extra.get("processor_mean"), extra.get("processor_std")
    if not extra.get("do_normalize") and mean and std and not _identity(mean, std):
        yield ctx.finding(
            "TP011",
            f"{expected.source}: do_normalize is off, so the mean {mean} and std {std} the weights were "
            "trained with are never applied; the model sees values in [0, 1]",
            hint="turn it back on (processor.do_normalize = True, or do_normalize=True in "
            "preprocessor_config.json), or add Normalize(image_mean, image_std) to the pipeline",
            location="model.pretrained",
            evidence={"processor": name, "image_mean": mean, "image_std": std, "do_normalize": False},
        )
    if not extra.get("do_rescale"):
        return
    factor = float(extra.get("rescale_factor") or 1 / 255)
    scale = min(std) if extra.get("do_normalize") and std else 1.0
    limit = _SPAN_SLACK * factor / scale
    for view in views:
        measured = view.measured
        if measured is None or not measured.measured or not measured.min:
            continue
        spans = [high - low for low, high in zip(measured.min, measured.max, strict=False)]
        if not spans or max(spans) <= 0 or max(spans) > limit:
            continue  # a constant image says nothing; a wider range was rescaled once
        yield ctx.finding(
            "TP010",
            f"'{view.name}': every channel of the measured inputs spans at most {max(spans):.4f} "
            f"(one rescale step of {factor:.5f} through std {scale:.3f} spans {factor / scale:.4f}): "
            f"{name} rescaled inputs that were already in [0, 1] (do_rescale=True after ToTensor)",
            hint="rescale once: pass do_rescale=False to the processor when its inputs are float tensors "
            "in [0, 1], or give it PIL images / uint8 arrays and drop ToTensor()",
            location=view.location,
            evidence={
                "split": view.name,
                "spans": [round(s, 6) for s in spans],
                "limit": round(limit, 6),
                "rescale_factor": factor,
                "measured_min": [round(v, 4) for v in measured.min],
                "measured_max": [round(v, 4) for v in measured.max],
            },
        )
