"""The learning-rate dry run (GP025-GP028): a copy of the schedule stepped over the planned steps.

The schedule (``RunContext.lr_schedule``: the manifest's ``lr_scheduler``, ``auditor.check``'s
or the Lightning module's) is stepped exactly as the loop will step it, on an optimizer copy
that shares only the parameters, with no forward pass. What it says:

- GP025: after its peak the rate falls below 1% of the base before the run's midpoint (a
  cosine ``T_max`` given in epochs but stepped every batch reaches ~0 within a few steps);
- GP026: the rate barely moves because the scheduler is stepped far fewer times than its own
  length (``OneCycleLR`` sized in steps but left at ``interval='epoch'`` never leaves warm-up);
- GP027: the rate exceeds the base by more than the schedule's declared peak;
- GP028: building or stepping the scheduler raises within the planned run.

The curve goes to the evidence as ``lr_curve`` (sampled) for the HTML report's chart.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor import AuditContext, Finding

__all__ = ["check_schedule"]

#: Scheduler calls the dry run makes at most (a 100-epoch, 2,000-step-per-epoch per-step plan is 200,000).
MAX_CALLS = 200_000
#: Points kept for the chart.
CURVE_POINTS = 200
#: GP025: below this share of the base, before the midpoint, after the peak.
LOW_SHARE = 0.01
#: GP026: a schedule stepped fewer times than this share of its declared length barely moves.
COVERED_SHARE = 0.25
#: GP027: tolerance above the declared peak (float rounding of closed forms).
PEAK_TOLERANCE = 1.01


@dataclass
class DryRun:
    """The learning rate of param group 0 at each scheduler call, and what the plan was."""

    steps: int  # optimizer steps planned
    span: int  # optimizer steps between two scheduler calls
    lrs: list[float] = field(default_factory=list)  # lr before call i (so lrs[0] is the start)
    base: float = 0.0
    peak: float = 0.0
    peak_source: str = "the base learning rate"
    length: int | None = None  # the scheduler's own length in calls, where it declares one
    length_name: str = ""
    failed: str = ""
    failed_at: int | None = None
    truncated: bool = False
    #: Why the schedule cannot be dry-run (it steps on a metric), else "".
    not_run: str = ""

    def at_step(self, index: int) -> int:
        """The optimizer step scheduler call ``index`` happens after."""
        return index * self.span


def check_schedule(ctx: AuditContext, batch_size: int) -> Iterator[Finding]:
    plan = ctx.run.lr_schedule
    if plan is None:
        return
    where = plan.location
    if plan.epochs is None:
        ctx.note(
            f"{plan.described}: no planned epochs, so the learning-rate dry run (GP025-GP028) was not done; "
            "pass lr_scheduler={'scheduler': ..., 'epochs': N}"
        )
        return
    per_epoch, how = _steps_per_epoch(ctx, plan, batch_size)
    try:
        optimizer = ctx.run.optimizer if plan.scheduler is None else None
        run = ctx.call(
            _dry_run, plan, optimizer, per_epoch, what=f"the learning-rate dry run of {plan.described}"
        )
    except Exception as exc:
        yield ctx.finding(
            "GP028",
            f"{plan.described} could not be built on a copy of the optimizer: {type(exc).__name__}: {exc}",
            hint="the factory is called as factory(optimizer, **kwargs); make it return the scheduler",
            location=where,
            evidence={"error": f"{type(exc).__name__}: {exc}"},
        )
        return
    if run.not_run:
        ctx.note(f"{plan.described}: {run.not_run}; the learning-rate dry run (GP025-GP028) was not done")
        return
    ctx.evidence.update(_evidence(run, plan, per_epoch, how))
    if run.truncated:
        ctx.note(
            f"the learning-rate dry run stopped after {MAX_CALLS:,} scheduler steps of {run.steps:,} planned"
        )
    if run.failed:
        step = run.at_step(run.failed_at or 0)
        yield ctx.finding(
            "GP028",
            f"{plan.described} raises at scheduler step {run.failed_at} (optimizer step {step:,} of {run.steps:,}, "
            f"epoch {step // per_epoch + 1} of {plan.epochs}): {run.failed}",
            hint=_length_hint(run, plan, per_epoch) or "size the schedule to the planned run",
            location=where,
            evidence={"scheduler_step": run.failed_at, "optimizer_step": step, "error": run.failed},
        )
    if not run.failed:  # a curve cut short by the exception would only repeat it in other words
        yield from _judge(ctx, run, plan, per_epoch)


def _steps_per_epoch(ctx: AuditContext, plan: Any, batch_size: int) -> tuple[int, str]:
    if plan.steps_per_epoch:
        return int(plan.steps_per_epoch), "as given"
    train = ctx.train
    size = len(train) if train is not None else 0
    batch = (train.batch_size if train is not None else None) or batch_size
    whose = (
        "the train loader's batch size"
        if train is not None and train.batch_size
        else "gradient_probe's batch_size"
    )
    steps = max(1, math.ceil(size / batch)) if size else 1
    return steps, f"{size} train samples / batch {batch} ({whose})"


def _dry_run(plan: Any, optimizer: Any, per_epoch: int) -> DryRun:
    epochs = int(plan.epochs)
    steps = epochs * per_epoch
    frequency = max(1, int(plan.frequency))
    span = frequency if plan.interval == "step" else per_epoch * frequency
    calls = steps // span
    run = DryRun(steps=steps, span=span)
    optimizer_copy, scheduler = plan.copies(optimizer)
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        run.not_run = "ReduceLROnPlateau steps on a validation metric, which only training gives"
        return run
    group = optimizer_copy.param_groups[0]
    bases = list(getattr(scheduler, "base_lrs", None) or [group.get("initial_lr", group["lr"])])
    run.base = float(bases[0])
    run.peak, run.peak_source = _declared_peak(scheduler, group, run.base)
    run.length, run.length_name = _declared_length(scheduler)
    deadline = time.monotonic() + 60.0
    with warnings.catch_warnings():
        # No optimizer.step() happens here: torch warns about the order; the real loop has it right.
        warnings.simplefilter("ignore")
        for index in range(min(calls, MAX_CALLS)):
            run.lrs.append(float(optimizer_copy.param_groups[0]["lr"]))
            try:
                scheduler.step()
            except Exception as exc:
                run.failed, run.failed_at = f"{type(exc).__name__}: {exc}", index + 1
                return run
            if index % 1024 == 0 and time.monotonic() > deadline:
                run.truncated = True
                return run
        run.lrs.append(float(optimizer_copy.param_groups[0]["lr"]))
    run.truncated = run.truncated or calls > MAX_CALLS
    return run


def _declared_peak(scheduler: Any, group: Any, base: float) -> tuple[float, str]:
    """The highest rate the schedule means to reach: OneCycleLR's/CyclicLR's max_lr, else the base."""
    inner = [scheduler, *list(getattr(scheduler, "_schedulers", ()) or ())]
    peaks = []
    for each in inner:
        max_lrs = getattr(each, "max_lrs", None)
        if max_lrs:
            peaks.append((float(max_lrs[0]), f"{type(each).__name__}'s max_lr"))
    if "max_lr" in group:
        peaks.append((float(group["max_lr"]), "the schedule's max_lr"))
    if peaks:
        return max(peaks)
    return base, "the base learning rate"


def _declared_length(scheduler: Any) -> tuple[int | None, str]:
    """How many calls the scheduler says it spans (T_max, total_steps, total_iters, T_0)."""
    for attribute in ("total_steps", "T_max", "total_iters", "T_0"):
        value = getattr(scheduler, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, f"{type(scheduler).__name__}.{attribute}"
    return None, ""


def _judge(ctx: AuditContext, run: DryRun, plan: Any, per_epoch: int) -> Iterator[Finding]:
    lrs, base = run.lrs, run.base
    if len(lrs) < 2 or base <= 0:
        return
    where = plan.location
    top = max(lrs)
    # The first time the peak is reached; a periodic schedule's later peaks differ only by rounding.
    peak_at = next(i for i, v in enumerate(lrs) if v >= top * (1 - 1e-6))
    mid_call = (run.steps / 2) / run.span
    low = next((i for i in range(peak_at, len(lrs)) if i < mid_call and lrs[i] < LOW_SHARE * base), None)
    curve = {"lr_start": lrs[0], "lr_min": min(lrs), "lr_max": max(lrs), "base_lr": base}
    length_hint = _length_hint(run, plan, per_epoch)
    if low is not None:
        step = run.at_step(low)
        yield ctx.finding(
            "GP025",
            f"the learning rate of {plan.described} falls to {lrs[low]:.3g} ({lrs[low] / base:.2%} of its base "
            f"{base:.3g}) at optimizer step {step:,} of {run.steps:,} (epoch {step // per_epoch + 1} of "
            f"{plan.epochs}), before the run's midpoint; stepped per {plan.interval}",
            hint=length_hint
            or "size the schedule to the planned run (T_max / total_steps in the unit it is stepped in)",
            location=where,
            evidence={**curve, "low_step": step, "planned_steps": run.steps, "interval": plan.interval},
        )
    covered = len(lrs) - 1
    flat = max(lrs) - min(lrs) <= 1e-3 * max(abs(v) for v in lrs)
    sliver = run.length is not None and covered < COVERED_SHARE * run.length
    if not run.failed and not run.truncated and (sliver or (flat and covered >= 2)):
        why = (
            f"{run.length_name} is {run.length:,}, so the schedule covers {covered / (run.length or 1):.1%} of its "
            "length"
            if sliver
            else "the rate never changes"
        )
        yield ctx.finding(
            "GP026",
            f"the learning rate of {plan.described} stays between {min(lrs):.3g} and {max(lrs):.3g} over the "
            f"planned run: it is stepped {covered:,} times (per {plan.interval}) and {why}"
            + (f"; it never reaches its peak {run.peak:.3g}" if max(lrs) < 0.5 * run.peak else ""),
            hint=length_hint or "step the scheduler in the unit its length is given in",
            location=where,
            evidence={
                **curve,
                "scheduler_steps": covered,
                "declared_length": run.length,
                "interval": plan.interval,
            },
        )
    high = max(lrs)
    if high > PEAK_TOLERANCE * run.peak:
        at = run.at_step(lrs.index(high))
        yield ctx.finding(
            "GP027",
            f"the learning rate of {plan.described} reaches {high:.3g}, {high / base:.1f}x its base {base:.3g} and "
            f"above {run.peak_source} ({run.peak:.3g}), at optimizer step {at:,} of {run.steps:,}",
            hint="a warm-up factor must end at 1 (LambdaLR: lambda s: min(1.0, (s + 1) / warmup)); set the "
            "peak with max_lr (OneCycleLR) or the optimizer's lr",
            location=where,
            evidence={**curve, "high_step": at, "declared_peak": run.peak},
        )


def _length_hint(run: DryRun, plan: Any, per_epoch: int) -> str:
    """What to set when the scheduler's length is in the other unit than it is stepped in."""
    if run.length is None:
        return ""
    calls = run.steps // run.span
    name = run.length_name.rsplit(".", 1)[-1]
    if plan.interval == "step" and run.length <= int(plan.epochs) * 1.5 and calls > 2 * run.length:
        return (
            f"{run.length_name} is {run.length}, which looks like epochs, but the scheduler is stepped every "
            f"optimizer step ({calls:,} times): set {name}={int(plan.epochs) * per_epoch} (epochs x steps per "
            f"epoch), or step it per epoch (interval: epoch)"
        )
    if plan.interval == "epoch" and calls < COVERED_SHARE * run.length:
        return (
            f"{run.length_name} is {run.length:,} (optimizer steps) but the scheduler is stepped once per epoch "
            f"({calls} times): step it every optimizer step (Lightning: 'interval': 'step'; manifest: "
            f"lr_scheduler.interval: step), or size {name} in epochs"
        )
    return ""


def _evidence(run: DryRun, plan: Any, per_epoch: int, how: str) -> dict[str, Any]:
    """The curve for the chart: the rate at up to CURVE_POINTS evenly spaced scheduler calls."""
    lrs = run.lrs
    every = max(1, math.ceil(len(lrs) / CURVE_POINTS))
    points = lrs[::every]
    return {
        "lr_curve": points,
        "lr_curve_every_steps": every * run.span,
        "lr_schedule": {
            "described": plan.described,
            "interval": plan.interval,
            "frequency": plan.frequency,
            "epochs": plan.epochs,
            "steps_per_epoch": per_epoch,
            "steps_per_epoch_from": how,
            "planned_steps": run.steps,
            "scheduler_steps": max(0, len(lrs) - 1),
            "base_lr": run.base,
            "declared_peak": run.peak,
            "declared_length": run.length,
        },
    }
