"""The probe itself: a few real optimizer steps on a copy of the model, then one batch overfitted.

Everything runs on objects the probe owns (``model_copy``, a fresh optimizer and
loss from the manifest's factories) inside :func:`isolated_rng`, so the user's
model, optimizer and random streams come out untouched. What happened is
collected in a :class:`ProbeRun`; ``checks`` turns it into findings.
Only imported from inside the audit's ``run``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch

from auditor import SkipAudit
from auditor_plugins.common.batching import CollateProblem
from auditor_plugins.gradient_probe.batches import (
    BatchStream,
    TargetPlan,
    TrainingItems,
    call_model,
    describe_shape,
    float_targets,
    isolated_rng,
    loss_kind,
    output_tensor,
    pick_device,
    plan_targets,
    to_device,
)
from auditor_plugins.gradient_probe.pretrained_watch import attach_watch
from auditor_plugins.gradient_probe.stats import (
    ActivationWatch,
    GradRecorder,
    Snapshot,
    finite,
    output_stats,
    peak_memory,
    relative_update,
    tensor_norms,
)

__all__ = ["Activity", "OverfitRun", "ProbeRun", "run_probe"]


@dataclass
class Activity:
    """What the probe is doing now: the deadline message names it when the probe does not return."""

    doing: str = "starting"


@dataclass
class OverfitRun:
    losses: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    #: Fraction of trainable parameter elements whose gradient was non-zero on some step.
    grad_flow: float = 0.0
    update_ratio: float | None = None
    stopped: str = ""
    batch_size: int = 0


@dataclass
class ProbeRun:
    device: str
    kind: str
    steps_requested: int
    batch_size: int
    train_size: int
    losses: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    load_times: list[float] = field(default_factory=list)
    build_s: float = 0.0
    names: list[str] = field(default_factory=list)
    grad_history: Any = None  # CPU tensor [steps, params]
    none_steps: list[int] = field(default_factory=list)
    param_norms: list[float] = field(default_factory=list)
    param_ndims: list[int] = field(default_factory=list)
    param_sizes: list[int] = field(default_factory=list)
    start: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] = field(default_factory=dict)
    trailing: tuple[str, str] | None = None
    dead_start: list[dict[str, Any]] = field(default_factory=list)
    dead_end: list[dict[str, Any]] = field(default_factory=list)
    target: TargetPlan = field(default_factory=TargetPlan)
    output_note: str = ""
    nonfinite_step: int | None = None
    nonfinite_grads: list[str] = field(default_factory=list)
    changed_frozen: list[str] = field(default_factory=list)
    changed_buffers: list[str] = field(default_factory=list)
    unchanged_trainable: list[str] = field(default_factory=list)
    uniform_loss: float | None = None
    prior_loss: float | None = None
    overfit: OverfitRun | None = None
    memory_mb: float | None = None
    memory_kind: str = ""
    notes: list[str] = field(default_factory=list)
    load_failures: list[tuple[int, str]] = field(default_factory=list)
    #: why batches stopped coming (GP012): the loader's error, and the batch that could not be collated
    load_stop: str = ""
    batch_problem: CollateProblem | None = None
    stopped: str = ""
    bookkeeping_s: float = 0.0
    lrs: list[float] = field(default_factory=list)
    not_in_optimizer: list[str] = field(default_factory=list)
    #: what the watch on pretrained blocks saw (GP020; pretrained_watch.py), None when not watched
    pretrained: dict[str, Any] | None = None

    #: What runs now, for the message when the probe passes its hard deadline.
    activity: Activity = field(default_factory=Activity)

    @property
    def steps_done(self) -> int:
        return len(self.losses)


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.started = time.perf_counter()
        self.deadline = self.started + seconds
        self.seconds = seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def allows(self, estimate: float) -> bool:
        return time.perf_counter() + estimate <= self.deadline


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_probe(ctx: Any, options: dict[str, Any], activity: Activity | None = None) -> ProbeRun:
    activity = activity or Activity()
    device, device_note = pick_device(options["device"])
    budget = _Budget(float(options["time_budget_s"]))
    train = ctx.train
    # First thing, so the report names the device even when the probe crashes on it.
    ctx.evidence["device"] = str(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with isolated_rng(int(options["seed"]), device):
        started = time.perf_counter()
        activity.doing = "building the loss (loss.factory)"
        loss_fn = ctx.run.make_loss()
        probe = ProbeRun(
            str(device), loss_kind(loss_fn), int(options["steps"]), int(options["batch_size"]), len(train)
        )
        if device_note:
            probe.notes.append(device_note)
        probe.activity = activity
        activity.doing = "building and copying the model (model.factory, deepcopy, .to, .train)"
        model = ctx.run.model_copy().to(device)
        model.train()
        activity.doing = "building the optimizer (optimizer.factory)"
        optimizer = ctx.run.make_optimizer(model)
        probe.lrs = [float(group.get("lr", float("nan"))) for group in optimizer.param_groups]
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        probe.not_in_optimizer = [
            n for n, p in model.named_parameters() if p.requires_grad and id(p) not in held
        ]
        if isinstance(loss_fn, torch.nn.Module):
            loss_fn = loss_fn.to(device)
        activity.doing = "copying the model to watch its pretrained blocks"
        watch = attach_watch(ctx, model, optimizer, probe.notes)
        probe.build_s = time.perf_counter() - started
        loss_step = getattr(ctx.run, "loss_step", None)
        user_collate = train.training_collate()
        samples = (
            TrainingItems(train) if user_collate is not None or loss_step is not None else train.dataset()
        )
        stream = BatchStream(
            samples,
            probe.batch_size,
            int(options["num_workers"]),
            int(options["seed"]),
            pin_memory=device.type == "cuda",
            user_collate=user_collate,
            keep_batch=loss_step is not None,
        )
        try:
            first = _probe_steps(ctx, probe, model, optimizer, loss_fn, stream, device, budget)
        finally:
            probe.load_failures = list(stream.failures)
            probe.batch_problem = stream.problem
            stream.close()
        activity.doing = "the features of the watched pretrained blocks (forward on a fixed batch)"
        probe.pretrained = (
            watch.finish(probe.notes, budget.left(), _median(probe.step_times)) if watch is not None else None
        )
        if first is not None and probe.nonfinite_step != 0:
            started = time.perf_counter()
            activity.doing = "building the model and optimizer for the one-batch overfit run"
            overfit_model = ctx.run.model_copy().to(device)
            overfit_model.train()
            overfit_optimizer = ctx.run.make_optimizer(overfit_model)
            probe.build_s += time.perf_counter() - started
            step_fn = None
            if loss_step is not None:
                collated = first[0]

                def step_fn(model, step, loss_step=loss_step, collated=collated):
                    return _custom_step(loss_step, model, collated, step, None)[0]

            probe.overfit = _overfit(
                probe,
                overfit_model,
                overfit_optimizer,
                loss_fn,
                first,
                device,
                budget,
                int(options["overfit_steps"]),
                step_fn,
            )
    probe.memory_mb, probe.memory_kind = peak_memory(device)
    return probe


def _probe_steps(
    ctx: Any,
    probe: ProbeRun,
    model: Any,
    optimizer: Any,
    loss_fn: Any,
    stream: BatchStream,
    device: torch.device,
    budget: _Budget,
) -> tuple[Any, Any] | None:
    """The probe's steps; returns the first batch (inputs, targets) on the device for the overfit run.

    With the context's ``loss_step`` (a training step that computes its own loss, e.g. a
    LightningModule's ``training_step``) the first batch is ``(collated batch, None)``.
    """
    loss_step = getattr(ctx.run, "loss_step", None)
    book_started = time.perf_counter()
    snapshot = Snapshot.take(model)
    recorder = GradRecorder(snapshot.trainable, probe.steps_requested, device)
    probe.names = recorder.names
    probe.param_norms = snapshot.start_norms().tolist()
    probe.param_ndims = [p.ndim for _, p in snapshot.trainable]
    probe.param_sizes = [p.numel() for _, p in snapshot.trainable]
    bookkeeping = time.perf_counter() - book_started
    first: tuple[Any, Any] | None = None
    out = None
    inputs = None
    for step in range(probe.steps_requested):
        estimate = _median(probe.step_times) if probe.step_times else 0.0
        if step and not budget.allows(estimate):
            probe.stopped = (
                f"stopped after {step} of {probe.steps_requested} steps: the time budget of "
                f"{budget.seconds:g} s was reached"
            )
            break
        step_started = time.perf_counter()
        probe.activity.doing = (
            f"loading the training batch of step {step + 1} (the dataset's __getitem__ and transform)"
        )
        try:
            batch = stream.next(budget.left())
        except RuntimeError as exc:  # worker timeout, unreadable samples or a batch that cannot be collated
            probe.stopped = f"stopped after {step} steps: training batches could not be loaded ({exc})"
            probe.load_stop = str(exc)
            break
        inputs = to_device(batch.inputs, device)
        watch = ActivationWatch()
        watched = step == 0 or step == probe.steps_requested - 1
        model.zero_grad(set_to_none=True)
        optimizer.zero_grad(set_to_none=True)
        probe.activity.doing = f"the model's forward pass and the loss on training step {step + 1}"
        if loss_step is not None:
            collated = to_device(batch.collated, device)
            loss, out = _custom_step(loss_step, model, collated, step, watch if watched else None)
            if loss is None:
                probe.stopped = (
                    f"stopped after {step} steps: the training step returned no loss for batch "
                    f"{step + 1}, so there is nothing to probe"
                )
                break
            if step == 0:
                first = (collated, None)
                book = time.perf_counter()
                probe.trailing = watch.trailing()
                probe.dead_start = watch.dead_layers(0.5)
                if out is not None:
                    probe.start = output_stats(out, inputs, probe.kind)
                else:
                    probe.notes.append(
                        "the training step's model output was not seen (it does not call the "
                        "model itself): output checks GP004, GP005, GP007 and GP009 were not run"
                    )
                bookkeeping += time.perf_counter() - book
            elif watched:
                probe.dead_end = watch.dead_layers(0.5)
        else:
            loss, out, first_step, book_s = _manifest_step(
                ctx, probe, model, inputs, batch, loss_fn, device, watch, watched, step
            )
            bookkeeping += book_s
            if loss is None:
                break
            if first_step is not None:
                first = first_step
        probe.activity.doing = f"the backward pass on training step {step + 1}"
        loss.backward()
        probe.activity.doing = f"optimizer.step() on training step {step + 1}"
        optimizer.step()
        probe.activity.doing = f"recording gradients of training step {step + 1}"
        book = time.perf_counter()
        total = recorder.record()
        loss_value, grad_total = torch.stack([loss.detach().float().reshape(()), total]).tolist()
        record_s = time.perf_counter() - book
        probe.losses.append(loss_value)
        probe.load_times.append(batch.load_s)
        probe.step_times.append(time.perf_counter() - step_started - record_s)
        bookkeeping += record_s
        if not finite(loss_value) or not finite(grad_total):
            probe.nonfinite_step = step
            row = recorder.history[step]
            probe.nonfinite_grads = [
                n for n, ok in zip(recorder.names, torch.isfinite(row).tolist(), strict=False) if not ok
            ]
            break
    book = time.perf_counter()
    probe.grad_history = recorder.finished()
    probe.none_steps = recorder.none_steps[:]
    if out is not None and probe.steps_done:
        probe.end = output_stats(out, inputs, probe.kind)
    if probe.steps_done:
        probe.changed_frozen = snapshot.changed(snapshot.frozen)
        probe.changed_buffers = snapshot.changed(snapshot.frozen_buffers)
        changed = set(snapshot.changed(snapshot.trainable))
        probe.unchanged_trainable = [name for name, _ in snapshot.trainable if name not in changed]
    probe.bookkeeping_s = bookkeeping + time.perf_counter() - book
    return first


def _manifest_step(
    ctx: Any,
    probe: ProbeRun,
    model: Any,
    inputs: Any,
    batch: Any,
    loss_fn: Any,
    device: torch.device,
    watch: ActivationWatch,
    watched: bool,
    step: int,
) -> tuple[Any, Any, tuple[Any, Any] | None, float]:
    """``loss(model(inputs), targets)``: (loss, output, first batch at step 0, bookkeeping seconds).

    A loss of None stops the probe (``probe.target`` says why).
    """
    bookkeeping = 0.0
    first: tuple[Any, Any] | None = None
    try:
        if watched:
            with watch.watching(model):
                raw_output = call_model(model, inputs)
        else:
            raw_output = call_model(model, inputs)
    except Exception as exc:
        raise RuntimeError(
            f"the model's forward pass failed on a training batch of {describe_shape(inputs)} "
            f"(after the train transform): {type(exc).__name__}: {exc}"
        ) from exc
    out, how = output_tensor(raw_output)
    if out is None:
        probe.target = TargetPlan(problem=how, fatal=True)
        return None, None, None, bookkeeping
    if step == 0:
        book = time.perf_counter()
        probe.output_note = how
        probe.start = output_stats(out, inputs, probe.kind)
        probe.trailing = watch.trailing()
        probe.dead_start = watch.dead_layers(0.5)
        bookkeeping += time.perf_counter() - book
    plan = plan_targets(batch.targets, out, probe.kind, ctx.task.num_classes, _class_source(ctx), device)
    if step == 0 or plan.fatal:
        probe.target = plan
    if plan.fatal:
        return None, out, None, bookkeeping
    loss, plan = _loss(loss_fn, out, batch.targets, plan, probe.kind, device)
    if loss is None:
        probe.target = plan
        return None, out, None, bookkeeping
    if step == 0:
        probe.target = plan
        first = (inputs, plan.targets)
        book = time.perf_counter()
        probe.uniform_loss, probe.prior_loss = _reference_losses(ctx, loss_fn, out, plan.targets, probe.kind)
        bookkeeping += time.perf_counter() - book
    elif watched:
        probe.dead_end = watch.dead_layers(0.5)
    return loss, out, first, bookkeeping


def _custom_step(
    loss_step: Any, model: Any, batch: Any, step: int, watch: ActivationWatch | None
) -> tuple[Any, torch.Tensor | None]:
    """The caller's training step on ``batch``: (loss or None, the model's output when it was seen)."""
    seen: list[Any] = []
    handle = model.register_forward_hook(lambda _module, _args, output: seen.append(output))
    try:
        with watch.watching(model) if watch is not None else contextlib.nullcontext():
            loss = loss_step(model, batch, step)
    except SkipAudit:
        raise
    except Exception as exc:
        raise RuntimeError(
            f"the training step failed on training batch {step + 1}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        handle.remove()
    out = output_tensor(seen[-1])[0] if seen else None
    if loss is not None and not isinstance(loss, torch.Tensor):
        raise RuntimeError(f"the training step returned {type(loss).__name__}, not a loss tensor (or None)")
    return loss, out


def _class_source(ctx: Any) -> str:
    task = ctx.task
    return (
        "declared in the manifest's task"
        if task.source == "manifest"
        else f"inferred from the splits' class names: {', '.join(task.class_names[:8])}"
        + (", ..." if len(task.class_names) > 8 else "")
    )


def _loss(
    loss_fn: Any, out: torch.Tensor, raw: list[Any], plan: TargetPlan, kind: str, device: torch.device
) -> tuple[Any, TargetPlan]:
    """The loss, or (None, plan with the GP010 message) when the loss rejects output and targets."""
    try:
        return loss_fn(out, plan.targets), plan
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    if kind == "other":
        retry = float_targets(
            raw, out, bool(raw) and isinstance(raw[0], (list, tuple)), device, "the targets"
        )
        if not retry.fatal:
            with contextlib.suppress(
                Exception
            ):  # the float retry failing too leaves the first error standing
                return loss_fn(out, retry.targets), retry
    return None, TargetPlan(
        problem=f"{type(loss_fn).__name__} rejected the model output {describe_shape(out)} "
        f"with targets {describe_shape(plan.targets)} ({error})",
        fatal=True,
    )


def _reference_losses(
    ctx: Any, loss_fn: Any, out: torch.Tensor, targets: Any, kind: str
) -> tuple[float | None, float | None]:
    """The loss of uniform predictions and of the training label prior, on the first batch's targets."""
    if kind not in ("ce", "nll", "bce_logits", "bce_probs") or out.ndim not in (1, 2):
        return None, None
    width = out.shape[1] if out.ndim == 2 else 1
    prior = _label_prior(ctx, width).to(out.device)
    with torch.no_grad():
        if kind == "ce":
            uniform, fitted = torch.zeros_like(out), prior.clamp_min(1e-8).log().expand_as(out)
        elif kind == "nll":
            uniform = torch.full_like(out, -math.log(width))
            fitted = prior.clamp_min(1e-8).log().expand_as(out)
        else:
            if width == 1:  # binary: the prior of label 1, in the output's shape
                p1 = prior[1] if prior.numel() > 1 else prior[0]
                p = torch.full_like(out, float(p1))
            else:
                p = prior[:width].expand_as(out).clone()
            p = p.clamp(1e-6, 1 - 1e-6)
            if kind == "bce_logits":
                uniform, fitted = torch.zeros_like(out), (p / (1 - p)).log()
            else:
                uniform, fitted = torch.full_like(out, 0.5), p
        try:
            values = torch.stack(
                [loss_fn(uniform, targets).float(), loss_fn(fitted, targets).float()]
            ).tolist()
        except Exception:
            return None, None
    return values[0], values[1]


def _label_prior(ctx: Any, width: int) -> torch.Tensor:
    """Per-index frequency of each label in train (multilabel: fraction of samples carrying it)."""
    targets = ctx.train.targets()
    counts: Counter[int] = Counter()
    multilabel = bool(targets) and isinstance(targets[0], (list, tuple))
    for target in targets:
        counts.update(int(t) for t in target) if multilabel else counts.update([int(target)])
    size = max(width, max(counts, default=0) + 1, 2)
    vector = torch.tensor([counts.get(i, 0) for i in range(size)], dtype=torch.float32)
    return vector / max(1, len(targets)) if multilabel else vector / vector.sum().clamp_min(1.0)


def _overfit(
    probe: ProbeRun,
    model: Any,
    optimizer: Any,
    loss_fn: Any,
    batch: tuple[Any, Any],
    device: torch.device,
    budget: _Budget,
    steps: int,
    step_fn: Any = None,
) -> OverfitRun:
    """Train a fresh copy on the first batch only: a healthy setup drives this loss down quickly.

    ``step_fn(model, step)`` is the caller's training step on that batch, when there is one.
    """
    inputs, targets = batch
    result = OverfitRun(batch_size=probe.batch_size if step_fn is not None else int(targets.shape[0]))
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    flowing = torch.zeros(len(params), dtype=torch.bool, device=device)
    for step in range(steps):
        estimate = _median(result.step_times) if result.step_times else _median(probe.step_times)
        if not budget.allows(estimate):
            result.stopped = f"stopped after {step} of {steps} steps: the time budget was reached"
            break
        started = time.perf_counter()
        probe.activity.doing = f"step {step + 1} of the one-batch overfit run (forward, loss, backward, step)"
        model.zero_grad(set_to_none=True)
        optimizer.zero_grad(set_to_none=True)
        if step_fn is not None:
            loss = step_fn(model, step)
            if loss is None:
                result.stopped = f"stopped after {step} of {steps} steps: the training step returned no loss"
                break
        else:
            out, _ = output_tensor(call_model(model, inputs))
            loss = loss_fn(out, targets)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        result.step_times.append(time.perf_counter() - started)
        book = time.perf_counter()
        grads = [p.grad for p in params]
        present = [i for i, g in enumerate(grads) if g is not None]
        if present:
            norms = tensor_norms([grads[i] for i in present])
            flowing[torch.tensor(present, device=device)] |= norms > 0
        probe.bookkeeping_s += time.perf_counter() - book
        result.losses.append(value)
        if not finite(value):
            break
    sizes = torch.tensor([p.numel() for p in params], dtype=torch.float64)
    if params:
        result.grad_flow = float((sizes * flowing.cpu().double()).sum() / sizes.sum().clamp_min(1))
        result.update_ratio = relative_update(before, [p.detach() for p in params])
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0
