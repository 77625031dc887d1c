"""The probe's watch on the pretrained layers: how fast they move and how far their features drift.

Attached to the probe's own model copy and optimizer through optimizer step hooks and a
forward pre-hook, so the probe's step loop stays as it is:

- per backbone block and per param group, the update-to-weight ratio of every step,
  ``||w_after - w_before|| / ||w_before||`` over the pretrained parameters it holds;
- the backbone's features (the head's input) on a fixed batch (the first training
  inputs the probe feeds, up to ``FIXED_SAMPLES``), in ``eval()`` mode, before the first
  step and after the last, compared by linear CKA.

Only pretrained weights are watched (see ``auditor_plugins.common.pretrained_weights``):
a random backbone is meant to move. Only imported from inside the probe.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from auditor import AuditContext, Finding

__all__ = ["FIXED_SAMPLES", "PretrainedWatch", "attach", "attach_watch", "judge"]

FIXED_SAMPLES = 32


@dataclass
class _Part:
    """A set of watched parameters (one block, or one param group) and its per-step ratios."""

    name: str
    params: list[tuple[str, torch.Tensor]]
    lr: float | None = None
    ratios: list[float] = field(default_factory=list)


@dataclass
class PretrainedWatch:
    model: Any
    head: Any
    blocks: list[_Part]
    groups: list[_Part]
    reason: str
    start: Any = None  # the model before the first step (a copy), for the features before
    fixed: list[torch.Tensor] = field(default_factory=list)
    previous: dict[int, torch.Tensor] = field(default_factory=dict)
    handles: list[Any] = field(default_factory=list)
    steps: int = 0

    # -- hooks ------------------------------------------------------------------------

    def _capture(self, _module: Any, args: tuple[Any, ...]) -> None:
        held = sum(t.shape[0] for t in self.fixed)
        if held >= FIXED_SAMPLES or not args or not isinstance(args[0], torch.Tensor) or args[0].ndim < 2:
            return
        self.fixed.append(args[0].detach()[: FIXED_SAMPLES - held].clone())

    def _before_step(self, _optimizer: Any, _args: Any, _kwargs: Any) -> None:
        for part in self.blocks:
            for _, p in part.params:
                self.previous[id(p)] = p.detach().clone()

    def _after_step(self, _optimizer: Any, _args: Any, _kwargs: Any) -> None:
        self.steps += 1
        with torch.no_grad():
            for part in (*self.blocks, *self.groups):
                moved = weight = 0.0
                terms = []
                for _, p in part.params:
                    old = self.previous.get(id(p))
                    if old is not None:
                        terms.append(
                            torch.stack([(p.detach() - old).float().norm() ** 2, old.float().norm() ** 2])
                        )
                if terms:
                    moved, weight = torch.stack(terms).sum(dim=0).tolist()
                part.ratios.append(math.sqrt(moved) / math.sqrt(weight) if weight > 0 else 0.0)
        self.previous.clear()

    # -- result -----------------------------------------------------------------------

    def _features(self, model: Any, inputs: torch.Tensor) -> torch.Tensor | None:
        seen: list[torch.Tensor] = []
        head = model.get_submodule(self.head) if self.head else None
        if head is None:
            return None
        handle = head.register_forward_pre_hook(lambda _m, a: seen.append(a[0].detach().flatten(1)))
        modes = [(m, m.training) for m in model.modules()]
        try:
            model.eval()
            with torch.no_grad():
                model(inputs)
        finally:
            handle.remove()
            for module, mode in modes:
                module.training = mode
        return seen[0] if seen else None

    def finish(
        self, notes: list[str] | None = None, seconds_left: float | None = None, step_s: float = 0.0
    ) -> dict[str, Any]:
        from auditor_plugins.common.similarity import linear_cka

        for handle in self.handles:
            handle.remove()
        result: dict[str, Any] = {
            "steps": self.steps,
            "reason": self.reason,
            "blocks": [_part_dict(p) for p in self.blocks],
            "groups": [_part_dict(p) for p in self.groups if p.params],
            "cka": None,
        }
        # Two forward passes over the fixed batch cost about one training step each: skip them (with a
        # note) rather than push the probe past its time budget.
        if (
            self.fixed
            and self.start is not None
            and self.steps
            and seconds_left is not None
            and seconds_left < 3 * step_s
        ):
            self.start = None
            if notes is not None:
                notes.append(
                    "the pretrained blocks' feature drift (CKA) was not measured: the time budget was reached"
                )
        if self.fixed and self.start is not None and self.steps:
            try:
                inputs = torch.cat(self.fixed)
                before = self._features(self.start, inputs)
                with _buffers_of(self.model, self.start):
                    after = self._features(self.model, inputs)
            except Exception as exc:  # the user's forward on the fixed batch: the ratios still stand
                before = after = None
                if notes is not None:
                    notes.append(
                        f"the pretrained blocks' feature drift (GP020) was not measured: the forward pass on "
                        f"the fixed batch failed ({type(exc).__name__}: {exc})"
                    )
            if before is not None and after is not None and before.shape[0] >= 4:
                value = linear_cka(before.cpu(), after.cpu())
                result["cka"] = round(value, 4) if math.isfinite(value) else None
                result["fixed_batch"] = int(before.shape[0])
        self.start = None
        return result


@contextlib.contextmanager
def _buffers_of(model: Any, start: Any) -> Iterator[None]:
    """``model`` with ``start``'s buffers (BatchNorm running statistics) for a while.

    The drift GP020 judges is the weights': BatchNorm layers re-estimating their statistics
    on a new domain during the probe is what FF002 asks for, not pretraining being erased.
    """
    theirs = dict(start.named_buffers())
    saved = []
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            other = theirs.get(name)
            if other is not None and other.shape == buffer.shape:
                saved.append((buffer, buffer.clone()))
                buffer.copy_(other)
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _part_dict(part: _Part) -> dict[str, Any]:
    ratios = sorted(part.ratios)
    median = ratios[len(ratios) // 2] if ratios else None
    return {
        "name": part.name,
        "lr": part.lr,
        "parameters": sum(p.numel() for _, p in part.params),
        "median_ratio": None if median is None else float(f"{median:.4g}"),
        "max_ratio": float(f"{max(ratios):.4g}") if ratios else None,
        "ratios": [float(f"{r:.4g}") for r in part.ratios],
    }


def attach_watch(ctx: Any, model: Any, optimizer: Any, notes: list[str]) -> PretrainedWatch | None:
    """:func:`attach`, or None with a note when the watch cannot be set up; the probe runs either way."""
    try:
        return attach(ctx, model, optimizer)
    except Exception as exc:
        notes.append(
            f"the pretrained blocks were not watched (GP020 not checked): {type(exc).__name__}: {exc}"
        )
        return None


def attach(ctx: Any, model: Any, optimizer: Any) -> PretrainedWatch | None:
    """Watch ``model``'s trainable pretrained blocks during the probe; None when there are none."""
    from auditor_plugins.common.model_parts import backbone_blocks, find_head
    from auditor_plugins.common.pretrained_weights import weights_origin

    origin = weights_origin(ctx.run)
    if origin.pretrained is not True:
        return None
    try:
        head = find_head(model, ctx.run.head_name)
    except LookupError:
        return None
    if head is None:
        return None

    def pretrained(name: str) -> bool:
        if name == head.name or name.startswith(head.name + "."):
            return False
        return origin.loaded is None or name in origin.loaded

    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and pretrained(n)]
    if not params:
        return None
    blocks = []
    claimed: set[int] = set()
    for block, _ in backbone_blocks(model, head.name):
        mine = [(n, p) for n, p in params if n.startswith(block + ".")]
        claimed |= {id(p) for _, p in mine}
        if mine:
            blocks.append(_Part(block, mine))
    rest = [(n, p) for n, p in params if id(p) not in claimed]
    if rest:
        blocks.append(_Part("other backbone layers", rest))
    by_id = {id(p): (n, p) for n, p in params}
    groups = [
        _Part(
            f"param group {i}",
            [by_id[id(p)] for p in group["params"] if id(p) in by_id],
            float(group.get("lr", float("nan"))),
        )
        for i, group in enumerate(optimizer.param_groups)
    ]
    watch = PretrainedWatch(model, head.name, blocks, groups, origin.reason, start=copy.deepcopy(model))
    watch.handles = [
        model.register_forward_pre_hook(watch._capture),
        optimizer.register_step_pre_hook(watch._before_step),
        optimizer.register_step_post_hook(watch._after_step),
    ]
    return watch


def _round_lr(value: float) -> float:
    """``value`` rounded down to 1, 2 or 5 times a power of ten."""
    if value <= 0 or not math.isfinite(value):
        return value
    decade = 10 ** math.floor(math.log10(value))
    for step in (5, 2, 1):
        if value >= step * decade:
            return step * decade
    return decade


def judge(
    ctx: AuditContext, watched: dict[str, Any] | None, losses: list[float], thresholds: dict[str, float]
) -> Iterator[Finding]:
    """GP020: the pretrained blocks move faster than fine-tuning should, or their features drift away."""
    if not watched:
        return
    ctx.evidence["pretrained_watch"] = watched
    if not watched.get("steps"):
        return
    limit = float(thresholds["pretrained_update_ratio"])
    min_cka = float(thresholds["pretrained_min_cka"])
    fast = [b for b in watched["blocks"] if (b["median_ratio"] or 0) > limit]
    cka = watched.get("cka")
    drifted = cka is not None and cka < min_cka
    if not fast:
        if drifted:
            # Features that move at a sane per-step rate are fine-tuning doing its job, most of all
            # where the pretrained features do not fit the data (feature_fit): a note, not a verdict.
            ctx.note(
                f"the backbone's features moved to linear CKA {cka:.2f} with their start at a sane update rate "
                f"(at most {max((b['median_ratio'] or 0) for b in watched['blocks']):.2%} per step): expected "
                "when the pretrained features must adapt to this data"
            )
        return
    groups = [g for g in watched["groups"] if (g["median_ratio"] or 0) > limit] or [
        g for g in watched["groups"] if g["parameters"]
    ]
    worst = max(watched["blocks"], key=lambda b: b["median_ratio"] or 0)
    parts = []
    if fast:
        parts.append(
            "the pretrained blocks "
            + ", ".join(f"'{b['name']}' ({b['median_ratio']:.2%} of their norm per step)" for b in fast[:6])
            + f" change faster than fine-tuning should (threshold {limit:.2%} per step)"
        )
    if drifted:
        parts.append(
            f"the backbone's features on a fixed batch of {watched.get('fixed_batch')} samples drift to linear CKA "
            f"{cka:.2f} with their start after {watched['steps']} steps (threshold {min_cka:g})"
        )
    trend = ""
    if len(losses) >= 2 and all(math.isfinite(v) for v in (losses[0], losses[-1])):
        falling = losses[-1] < losses[0]
        trend = f"; the loss {'still falls' if falling else 'goes'} {losses[0]:.3g} -> {losses[-1]:.3g}" + (
            ", so the head learns while the pretrained features are overwritten" if falling else ""
        )
    lrs = ", ".join(f"{g['name']} (lr {g['lr']:g})" for g in groups if g["lr"] is not None)
    ratio = worst["median_ratio"] or 0
    backbone_lr = [g["lr"] for g in groups if g["lr"]]
    suggested = _round_lr(min(backbone_lr) * limit / ratio / 2) if backbone_lr and ratio > limit else None
    hint = (
        "give the backbone its own param group with a lower learning rate"
        + (
            f" (about {suggested:g}, {limit / ratio / 2:.2g}x the current one)"
            if suggested
            else " (10x lower than the head's)"
        )
        + ", add a warm-up of a few hundred steps, or keep the backbone frozen until the head has converged"
    )
    yield ctx.finding(
        "GP020",
        "; ".join(parts)[0].upper() + "; ".join(parts)[1:] + trend + (f"; groups: {lrs}" if lrs else ""),
        hint=hint,
        location="optimizer",
        evidence={
            "blocks": [{k: v for k, v in b.items() if k != "ratios"} for b in watched["blocks"]],
            "groups": [{k: v for k, v in g.items() if k != "ratios"} for g in watched["groups"]],
            "cka": cka,
            "fixed_batch": watched.get("fixed_batch"),
            "steps": watched["steps"],
            "update_ratio_threshold": limit,
            "min_cka": min_cka,
            "suggested_lr": suggested,
        },
    )
