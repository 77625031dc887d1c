"""Verdicts of gradient_probe: what a :class:`ProbeRun` means, as GP001-GP011 findings.

Thresholds come from the audit's ``thresholds`` option (defaults and their sources
in docs/gradient_probe.md). Only imported from inside the audit's ``run``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding
from auditor_plugins.gradient_probe import pretrained_watch
from auditor_plugins.gradient_probe.runner import ProbeRun

__all__ = ["evidence", "judge"]

PROBABILITY_MODULES = {"Softmax", "Sigmoid", "Softmax2d"}
LOSS_NAMES = {
    "ce": "CrossEntropyLoss",
    "nll": "NLLLoss",
    "bce_logits": "BCEWithLogitsLoss",
    "bce_probs": "BCELoss",
    "regression": "the regression loss",
    "other": "the loss",
}


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _curve(values: list[float], limit: int = 6) -> str:
    picked = values if len(values) <= limit else [*values[: limit - 2], values[-2], values[-1]]
    return ", ".join(f"{v:.4g}" for v in picked)


def judge(ctx: AuditContext, probe: ProbeRun, thresholds: dict[str, float]) -> Iterator[Finding]:
    if probe.load_stop:
        yield _gp012(ctx, probe)
    if probe.target.problem:
        yield _gp010(ctx, probe)
    stop = None
    if probe.breach is not None:
        breach = probe.breach
        stop = ctx.finding(
            breach.code,
            f"{breach.message}. The probe stopped before any optimizer step.",
            hint=breach.hint,
            location="loss",
            evidence=breach.evidence,
        )
        yield stop
    if probe.failure is not None:
        failure = probe.failure
        stop = ctx.finding(
            "GP019",
            f"{failure.message}. Training would crash here; the probe stopped.",
            hint=failure.hint,
            location="model" if failure.phase == "forward" else "loss",
            evidence=failure.evidence,
        )
        yield stop
    yield from _warnings(ctx, probe, stop)
    if probe.trailing or probe.start:
        yield from _gp009(ctx, probe)
    if not probe.steps_done:
        return
    yield from _gp001(ctx, probe, thresholds)
    zero = _zero_gradient(probe)
    if probe.unused_outputs and zero:
        # Parameters that feed only the output fields the loss was not given (aux logits) never get a
        # gradient in the probe's step; training code that adds their loss trains them. Not GP002.
        never = [i for i in zero if probe.none_steps[i] >= probe.steps_done]
        if never:
            zero = [i for i in zero if i not in set(never)]
            ctx.note(
                f"{len(never)} parameter tensors feed only the output fields {probe.unused_outputs} that the loss "
                f"was not given, so they got no gradient in the probe (GP002 not judged for them): "
                f"{_names([probe.names[i] for i in never], 5)}; add their loss in training, or drop them"
            )
    yield from _gp002(ctx, probe, zero)
    idle = [n for n in probe.unchanged_trainable if n in set(probe.not_in_optimizer)]
    if idle:
        ctx.note(
            f"{len(idle)} trainable parameter tensors are not held by the optimizer and did not change"
            f"{ctx.see('FZ002')}: {_names(idle, 5)}"
        )
    yield from _gp003(ctx, probe, thresholds, zero)
    yield from _gp004(ctx, probe, thresholds)
    yield from _gp005(ctx, probe, thresholds)
    yield from _gp006(ctx, probe, thresholds)
    yield from _gp007(ctx, probe, thresholds)
    yield from _gp008(ctx, probe)
    yield from pretrained_watch.judge(ctx, probe.pretrained, probe.losses, thresholds)
    yield _gp011(ctx, probe)


def _warnings(ctx: AuditContext, probe: ProbeRun, cause: Finding | None) -> Iterator[Finding]:
    """GP017/GP018: every warning seen during forward, loss and backward, once per category and message."""
    for seen in probe.warnings.values():
        times = f" ({seen.count} times)" if seen.count > 1 else ""
        broadcast = "broadcast" in seen.message.lower() and cause is not None and cause.code == "GP015"
        yield ctx.finding(
            "GP018" if seen.deprecation else "GP017",
            f"{seen.category} during {seen.where}{times}: {seen.message[:400]}",
            hint=(
                "move off the deprecated API before it is removed (the message names the replacement)"
                if seen.deprecation
                else "read the warning: torch warns where training silently does something else than meant; "
                "fix its cause rather than filtering it"
            ),
            location="model",
            evidence={
                "category": seen.category,
                "message": seen.message,
                "source": seen.source,
                "count": seen.count,
            },
            cause=cause if broadcast else None,
        )


def _gp012(ctx: AuditContext, probe: ProbeRun) -> Finding:
    train = ctx.train
    from auditor_plugins.common.batching import sample_paths

    paths = sample_paths(train) if train is not None else None
    trained = f"the probe trained {probe.steps_done} of {probe.steps_requested} steps"
    evidence: dict[str, Any] = {
        "split": "train",
        "steps_done": probe.steps_done,
        "steps_requested": probe.steps_requested,
        "error": probe.load_stop,
    }
    problem = probe.batch_problem
    if problem is not None:
        evidence.update(problem.to_dict(paths))
        message = (
            f"{trained}: a batch of 'train' cannot be collated by {problem.collate} "
            f"({problem.error.splitlines()[0]}): {problem.describe(paths)}"
        )
        hint = problem.hint()
    else:
        failures = probe.load_failures
        evidence["failures"] = [
            {"index": i, "path": paths[i] if paths and 0 <= i < len(paths) else None, "error": m}
            for i, m in failures[:20]
        ]
        first = ""
        if failures:
            index, error = failures[0]
            where = f"sample {index}" + (f" ({paths[index]})" if paths and 0 <= index < len(paths) else "")
            first = f" (first: {where}: {error})"
        message = f"{trained}: training batches of 'train' could not be loaded{first}"
        hint = (
            f"fix or drop the samples that fail to load{ctx.see('DL002', 'DL003')}, then run the probe again"
        )
    return ctx.finding("GP012", message, hint=hint, location="data.train", evidence=evidence)


def _gp010(ctx: AuditContext, probe: ProbeRun) -> Finding:
    stop = " The probe stopped before training: no loss can be computed." if probe.target.fatal else ""
    shape = probe.start.get("shape")
    # The output width, so a head sized on the training classes can be traced to LD002.
    outputs = int(shape[1]) if isinstance(shape, (list, tuple)) and len(shape) == 2 else None
    return ctx.finding(
        "GP010",
        f"{probe.target.problem}.{stop}",
        hint=(
            "make the head's output size the number of classes, and keep labels in 0..C-1 (class indices for "
            "CrossEntropyLoss; one logit per sample or per label for BCEWithLogitsLoss)"
        ),
        location="model",
        evidence={
            "problem": probe.target.problem,
            "fatal": probe.target.fatal,
            "output_shape": shape,
            "loss": LOSS_NAMES[probe.kind],
            "outputs": outputs,
            "num_classes": ctx.task.num_classes,
        },
    )


def _gp009(ctx: AuditContext, probe: ProbeRun) -> Iterator[Finding]:
    kind, start, end = probe.kind, probe.start, probe.end
    if kind not in ("ce", "bce_logits", "nll"):
        return
    reasons = []
    if probe.trailing and probe.trailing[1] in PROBABILITY_MODULES:
        reasons.append(
            f"the last module the forward pass runs is {probe.trailing[1]} ('{probe.trailing[0]}')"
        )
    if start.get("rows_sum_to_one"):
        reasons.append("every output row is non-negative and sums to 1 (softmax probabilities)")
    elif kind != "nll" and start.get("in_unit_interval") and end.get("in_unit_interval"):
        seen = math.prod(start.get("shape") or [0]) + math.prod(end.get("shape") or [0])
        if seen >= 16:
            reasons.append(
                f"all {seen} outputs seen at the start and the end of the probe lie in [0, 1] "
                "(sigmoid probabilities)"
            )
    if not reasons:
        return
    expects = "log-probabilities (log_softmax)" if kind == "nll" else "raw logits"
    fix = (
        "end the model with LogSoftmax, or drop the Softmax and use CrossEntropyLoss"
        if kind == "nll"
        else "remove the final Softmax/Sigmoid from the model (apply it only at inference)"
        + ("" if kind == "ce" else ", or keep it and use BCELoss")
    )
    yield ctx.finding(
        "GP009",
        f"the model's outputs are already probabilities but {LOSS_NAMES[kind]} expects {expects}: "
        + "; ".join(reasons),
        hint=fix,
        location="model",
        evidence={
            "trailing_module": list(probe.trailing) if probe.trailing else None,
            "reasons": reasons,
            "output_min": start.get("min"),
            "output_max": start.get("max"),
        },
    )


def _gp001(ctx: AuditContext, probe: ProbeRun, thresholds: dict[str, float]) -> Iterator[Finding]:
    losses = probe.losses
    factor = thresholds["loss_explosion_factor"]
    baseline = max(losses[0] if math.isfinite(losses[0]) else 0.0, probe.uniform_loss or 0.0, 1e-3)
    exploded = next((i for i, v in enumerate(losses) if math.isfinite(v) and v > factor * baseline), None)
    parts = []
    if probe.nonfinite_step is not None:
        bad = (
            "the loss"
            if not math.isfinite(losses[-1])
            else f"the gradients of {_names(probe.nonfinite_grads)}"
        )
        parts.append(f"{bad} became non-finite at step {probe.nonfinite_step + 1} of {probe.steps_requested}")
    if exploded is not None:
        parts.append(
            f"the loss rose to {losses[exploded]:.4g} at step {exploded + 1}, more than {factor:g} x its "
            f"reference {baseline:.4g}"
        )
    if not parts:
        return
    yield ctx.finding(
        "GP001",
        "; ".join(parts) + f" (loss curve: {_curve(losses)})",
        hint="lower the learning rate (start 10x lower), add gradient clipping, check the inputs are normalised, "
        "and use a logits loss (BCEWithLogitsLoss, CrossEntropyLoss) instead of log of a probability",
        location="optimizer",
        evidence={
            "nonfinite_step": probe.nonfinite_step,
            "nonfinite_gradients": probe.nonfinite_grads[:50],
            "exploded_step": exploded,
            "loss_curve": losses,
        },
    )


def _zero_gradient(probe: ProbeRun) -> list[int]:
    history = probe.grad_history
    if history is None or not history.numel():
        return []
    peak = history.nan_to_num(nan=1.0).amax(0).tolist()
    return [i for i, value in enumerate(peak) if value == 0.0]


def _dead_relu_text(probe: ProbeRun) -> tuple[str, list[dict[str, Any]]]:
    dead = probe.dead_end or probe.dead_start
    full = [d for d in dead if d["dead_fraction"] >= 0.999]
    if not dead:
        return "", dead
    worst = full or sorted(dead, key=lambda d: -d["dead_fraction"])[:3]
    text = "; dead ReLU units: " + ", ".join(
        f"'{d['module']}' {d['dead_fraction']:.0%} of units output 0 for the whole batch" for d in worst[:3]
    )
    return text, dead


def _gp002(ctx: AuditContext, probe: ProbeRun, zero: list[int]) -> Iterator[Finding]:
    if not zero:
        return
    names = [probe.names[i] for i in zero]
    never = [probe.names[i] for i in zero if probe.none_steps[i] >= probe.steps_done]
    elements = sum(probe.param_sizes[i] for i in zero)
    relu, dead = _dead_relu_text(probe)
    cause = (
        f"; {len(never)} of them never got a gradient at all (not used in forward, or the graph is detached)"
        if never
        else ""
    )
    hint = (
        "a dead ReLU blocks every gradient below it: check the initialisation and bias of the layer feeding "
        "it, lower the learning rate, or use LeakyReLU/GELU"
        if relu
        else "make sure every trainable parameter is used in forward and nothing detaches the graph "
        "(.detach(), .data, torch.no_grad(), a NumPy round trip); freeze parameters you do not train"
    )
    yield ctx.finding(
        "GP002",
        f"{len(names)} of {len(probe.names)} trainable parameter tensors ({elements:,} of "
        f"{sum(probe.param_sizes):,} weights) got exactly zero gradient on all {probe.steps_done} steps: "
        f"{_names(names)}{cause}{relu}",
        hint=hint,
        location="model",
        evidence={
            "parameters": names[:200],
            "count": len(names),
            "elements": elements,
            "never_received": never[:200],
            "dead_relu": dead,
        },
    )


def _gp003(
    ctx: AuditContext, probe: ProbeRun, thresholds: dict[str, float], zero: list[int]
) -> Iterator[Finding]:
    rows = _ratio_rows(probe)
    skip = set(zero)
    low, high = thresholds["vanishing_ratio"], thresholds["exploding_ratio"]
    vanishing = [r for i, r in enumerate(rows) if i not in skip and r["judged"] and 0 < r["ratio"] < low]
    exploding = [r for i, r in enumerate(rows) if i not in skip and r["judged"] and r["max_ratio"] > high]
    for label, found, limit, hint in (
        (
            "vanishing",
            vanishing,
            f"< {low:g}",
            (
                "updates below float32 resolution leave these weights unchanged: "
                "use residual connections or normalisation, ReLU-family activations instead of saturating ones, and "
                "a standard (Kaiming/Xavier) initialisation"
            ),
        ),
        (
            "exploding",
            exploding,
            f"> {high:g}",
            (
                "one step moves these weights by more than their own size: lower "
                "the learning rate, clip gradients (clip_grad_norm_), normalise the inputs, or re-initialise the layer"
            ),
        ),
    ):
        if not found:
            continue
        worst = sorted(found, key=lambda r: r["ratio"] if label == "vanishing" else -r["max_ratio"])
        shown = ", ".join(
            f"'{r['name']}' {r['ratio' if label == 'vanishing' else 'max_ratio']:.2g}" for r in worst[:5]
        )
        yield ctx.finding(
            "GP003",
            f"{label} gradients in {len(found)} layer{'s' if len(found) != 1 else ''}: gradient norm / "
            f"weight norm {limit} ({shown})",
            hint=hint,
            location="model",
            evidence={
                "direction": label,
                "threshold": low if label == "vanishing" else high,
                "layers": [
                    {k: r[k] for k in ("name", "grad_norm", "param_norm", "ratio", "max_ratio")}
                    for r in worst[:50]
                ],
            },
        )


def _ratio_rows(probe: ProbeRun) -> list[dict[str, Any]]:
    history = probe.grad_history
    if history is None or not history.numel():
        return []
    mean = history.mean(0).tolist()
    peak = history.amax(0).tolist()
    rows = []
    for i, name in enumerate(probe.names):
        norm = probe.param_norms[i]
        # Biases and zero-initialised tensors have no meaningful scale to compare with (LARS skips them too).
        judged = probe.param_ndims[i] >= 2 and norm > 0
        rows.append(
            {
                "name": name,
                "grad_norm": mean[i],
                "param_norm": norm,
                "ratio": mean[i] / norm if norm > 0 else None,
                "max_ratio": peak[i] / norm if norm > 0 else None,
                "judged": judged,
            }
        )
    return rows


def _collapsed(stats: dict[str, Any], limit: float) -> bool:
    spread = stats.get("relative_spread")
    return bool(stats.get("finite") and spread is not None and stats.get("inputs_differ") and spread < limit)


def _gp004(ctx: AuditContext, probe: ProbeRun, thresholds: dict[str, float]) -> Iterator[Finding]:
    limit = thresholds["collapse_relative_spread"]
    start, end = _collapsed(probe.start, limit), _collapsed(probe.end, limit)
    if start and not end:
        ctx.note(
            f"outputs were identical across the batch at the start (zero-initialised head?) but differ after "
            f"{probe.steps_done} steps"
        )
    if not end:
        return
    relu, dead = _dead_relu_text(probe)
    when = "at the start and after" if start else "after"
    yield ctx.finding(
        "GP004",
        f"the model gives (near) identical outputs for the different inputs of a batch {when} "
        f"{probe.steps_done} steps: spread across the batch is {probe.end['relative_spread']:.2g} of the output "
        f"magnitude (< {limit:g}){relu}",
        hint="look for a layer that erases the input: dead ReLUs, a saturated sigmoid/tanh, a zero-variance "
        "normalisation, or an input that is constant after the transform; lower the learning rate",
        location="model",
        evidence={"start": probe.start, "end": probe.end, "dead_relu": dead},
    )


def _gp005(ctx: AuditContext, probe: ProbeRun, thresholds: dict[str, float]) -> Iterator[Finding]:
    deviation = probe.end.get("uniform_deviation")
    start = probe.start.get("uniform_deviation")
    margin = thresholds["stuck_margin"]
    if deviation is None or not probe.end.get("finite") or deviation >= margin:
        return
    if start is not None and deviation - start >= margin / 2:
        return  # still near uniform but clearly moving away from it: slow, not stuck
    uniform = "0.5" if probe.kind in ("bce_logits", "bce_probs") else "uniform over the classes"
    yield ctx.finding(
        "GP005",
        f"predicted probabilities are still {uniform} after {probe.steps_done} steps: median distance "
        f"from uniform {deviation:.3f} (< {margin:g}; 0 = exactly uniform, 1 = confident)",
        hint="check that the head trains (GP002/GP006), that the loss gets logits (GP009), the learning rate, and "
        "class imbalance (a model that only learns the prior predicts it for every input)",
        location="model",
        evidence={
            "uniform_deviation": deviation,
            "start_deviation": probe.start.get("uniform_deviation"),
            "steps": probe.steps_done,
        },
    )


def _gp006(ctx: AuditContext, probe: ProbeRun, thresholds: dict[str, float]) -> Iterator[Finding]:
    run = probe.overfit
    if run is None or len(run.losses) < 2:
        ctx.note(
            "GP006 not checked: the one-batch overfit did not run" + (f" ({run.stopped})" if run else "")
        )
        return
    start, final = run.losses[0], run.losses[-1]
    if math.isfinite(start) and start < 1e-3:
        return  # the batch is already fitted; there is nothing left to fall
    drop = thresholds["overfit_min_drop"]
    if math.isfinite(final) and final <= (1 - drop) * start:
        return
    lrs = ", ".join(f"{lr:g}" for lr in probe.lrs) or "unknown"
    per_step = run.update_ratio / len(run.losses) if run.update_ratio is not None else None
    if not all(math.isfinite(v) for v in run.losses) or max(run.losses) > 1.5 * start or final > start:
        cause = "the learning rate looks too high (the loss rises or oscillates)"
        hint = "lower the learning rate (try 10x lower) or add warm-up and gradient clipping"
    elif run.grad_flow < 0.5:
        cause = (
            f"gradients do not flow: only {run.grad_flow:.0%} of the trainable weights got a non-zero "
            "gradient"
        )
        hint = "see GP002: unfreeze or re-wire the layers that get no gradient"
    elif per_step is not None and per_step < 1e-3:
        cause = (
            f"the learning rate looks too low (the weights change by only {per_step:.2g} of their norm "
            "per step; about 1e-3 is typical)"
        )
        hint = "raise the learning rate (try 10x higher)"
    else:
        moved = f" ({per_step:.2g} of their norm per step)" if per_step is not None else ""
        cause = f"the loss falls too slowly although the weights move{moved}"
        hint = (
            "try a 3-10x higher learning rate; if that does not help, check normalisation layers and the "
            "initialisation of the new layers"
        )
    yield ctx.finding(
        "GP006",
        f"overfitting one batch of {run.batch_size} for {len(run.losses)} steps took the loss "
        f"{start:.4g} -> {final:.4g}, not below {(1 - drop) * start:.4g}: {cause} (learning rate {lrs})",
        hint=hint,
        location="optimizer",
        evidence={
            "overfit_curve": run.losses,
            "grad_flow": run.grad_flow,
            "update_ratio": run.update_ratio,
            "learning_rates": probe.lrs,
            "required_drop": drop,
        },
    )


def _gp007(ctx: AuditContext, probe: ProbeRun, thresholds: dict[str, float]) -> Iterator[Finding]:
    initial, uniform, prior = probe.losses[0], probe.uniform_loss, probe.prior_loss
    tolerance = thresholds["initial_loss_tolerance"]
    if uniform is None or not math.isfinite(initial):
        return
    reference = f"{uniform:.4g} for uniform predictions" + (
        f" and {prior:.4g} for the label prior" if prior else ""
    )
    if initial > uniform * (1 + tolerance):
        message = f"the initial loss {initial:.4g} is far above {reference} (> {1 + tolerance:g} x)"
        hint = (
            "the fresh model is confidently wrong: logits are too large at initialisation; check the input "
            f"normalisation{ctx.see('TP001', 'TP006', prefix=' (')} and the head's initialisation scale"
        )
    elif prior is not None and initial < prior * (1 - tolerance):
        message = f"the initial loss {initial:.4g} is far below {reference} (< {1 - tolerance:g} x)"
        hint = (
            "the head is not fresh (weights loaded from a checkpoint?) or the label leaks into the input; "
            "also check for a loss fed probabilities where it expects log-probabilities"
        )
    else:
        return
    yield ctx.finding(
        "GP007",
        message,
        hint=hint,
        location="loss",
        evidence={
            "initial_loss": initial,
            "uniform_loss": uniform,
            "prior_loss": prior,
            "tolerance": tolerance,
        },
    )


def _gp008(ctx: AuditContext, probe: ProbeRun) -> Iterator[Finding]:
    if not probe.changed_frozen and not probe.changed_buffers:
        return
    parts, hints = [], []
    if probe.changed_frozen:
        parts.append(
            f"{len(probe.changed_frozen)} frozen parameter tensors (requires_grad=False) changed: "
            f"{_names(probe.changed_frozen)}"
        )
        hints.append(
            "find what writes to them (in-place updates in forward, an optimizer step on a stale .grad)"
        )
    if probe.changed_buffers:
        layers = sorted({name.rsplit(".", 1)[0] for name in probe.changed_buffers})
        parts.append(
            f"{len(layers)} frozen BatchNorm layers updated their running statistics in train mode: "
            f"{_names(layers)}"
        )
        hints.append(
            "keep frozen BatchNorm layers in eval mode (override model.train() to call .eval() on them "
            "again) or build them with track_running_stats=False"
        )
    yield ctx.finding(
        "GP008",
        f"parameters meant to be frozen changed during {probe.steps_done} steps: " + "; ".join(parts),
        hint="; ".join(hints),
        location="model",
        evidence={"parameters": probe.changed_frozen[:200], "buffers": probe.changed_buffers[:200]},
    )


def _gp011(ctx: AuditContext, probe: ProbeRun) -> Finding:
    step = _median(probe.step_times)
    load = _median(probe.load_times)
    steps_per_epoch = math.ceil(probe.train_size / probe.batch_size)
    memory = f"{probe.memory_mb:,.0f} MiB ({probe.memory_kind})" if probe.memory_mb is not None else "unknown"
    return ctx.finding(
        "GP011",
        f"one training step takes {step:.3g} s (data loading {load:.3g} s) at batch size "
        f"{probe.batch_size} on {probe.device}; peak memory {memory}; one epoch of 'train' ({probe.train_size} "
        f"samples, {steps_per_epoch} steps) takes about {_duration(steps_per_epoch * step)}",
        hint="measured on a few steps; raise num_workers when data loading is a large part of the step",
        location="data.train",
        evidence={
            "step_time_s": step,
            "data_time_s": load,
            "device": probe.device,
            "batch_size": probe.batch_size,
            "peak_memory_mb": probe.memory_mb,
            "memory_kind": probe.memory_kind,
            "steps_per_epoch": steps_per_epoch,
            "epoch_time_s": steps_per_epoch * step,
        },
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def evidence(probe: ProbeRun) -> dict[str, Any]:
    """What the HTML report charts: per-layer gradient norms, loss curves, output statistics, timing."""
    rows = [{k: r[k] for k in ("name", "grad_norm", "param_norm", "ratio")} for r in _ratio_rows(probe)]
    overfit = probe.overfit
    return {
        "device": probe.device,
        "loss": LOSS_NAMES[probe.kind],
        "steps_done": probe.steps_done,
        "steps_requested": probe.steps_requested,
        "grad_norms": rows[:1000],
        "loss_curve": probe.losses,
        "overfit_curve": overfit.losses if overfit else [],
        "outputs": {"start": probe.start, "end": probe.end},
        "dead_relu": {"start": probe.dead_start, "end": probe.dead_end},
        "timing": {
            "build_s": probe.build_s,
            "probe_steps_s": sum(probe.step_times),
            "overfit_steps_s": sum(overfit.step_times) if overfit else 0.0,
            "step_time_s": _median(probe.step_times),
            "bookkeeping_s": probe.bookkeeping_s,
        },
    }
