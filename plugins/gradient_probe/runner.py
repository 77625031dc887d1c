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
    isolated_rng,
    loss_kind,
    output_tensor,
    pick_device,
    plan_targets,
    to_device,
)
from auditor_plugins.gradient_probe.contracts import Breach, loss_failed, output_contract, target_contract
from auditor_plugins.gradient_probe.failures import (
    CapturedWarning,
    StepFailure,
    backward_failure,
    capture_warnings,
    forward_failure,
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
    #: the loss's contract broken on the first real batch (GP013-GP016); the probe stopped there
    breach: Breach | None = None
    #: a forward or backward pass that raised (GP019); the probe stopped there
    failure: StepFailure | None = None
    #: tensor fields of an output object the loss was not given (aux logits): what only they use gets no gradient
    unused_outputs: list[str] = field(default_factory=list)
    #: warnings seen during forward, loss and backward, by (category, message) (GP017/GP018)
    warnings: dict[tuple[str, str], CapturedWarning] = field(default_factory=dict)
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
        # The factories in the order a training script runs them: model, optimizer, loss.
        activity.doing = "building and copying the model (model.factory, deepcopy, .to, .train)"
        model = ctx.run.model_copy().to(device)
        model.train()
        activity.doing = "building the optimizer (optimizer.factory)"
        optimizer = ctx.run.make_optimizer(model)
        activity.doing = "building the loss (loss.factory)"
        loss_fn = ctx.run.make_loss()
        probe = ProbeRun(
            str(device), loss_kind(loss_fn), int(options["steps"]), int(options["batch_size"]), len(train)
        )
        if device_note:
            probe.notes.append(device_note)
        probe.activity = activity
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
        # The dataset's own items, collated as training collates them: the loss gets those targets.
        stream = BatchStream(
            TrainingItems(train),
            probe.batch_size,
            int(options["num_workers"]),
            int(options["seed"]),
            pin_memory=device.type == "cuda",
            user_collate=train.training_collate(),
            keep_batch=loss_step is not None,
        )
        if stream.single_last:
            probe.notes.append(
                f"an epoch of {len(train)} samples in batches of {probe.batch_size} ends on a batch of one sample: "
                "the probe leaves it out (drop_last), since BatchNorm in train mode cannot take it; the training "
                "loader's own last batch is data_loading's to check"
            )
        tools = _Tools(model, optimizer, loss_fn, stream, device, budget, loss_step)
        try:
            first = _probe_steps(ctx, probe, tools)
        finally:
            probe.load_failures = list(stream.failures)
            probe.batch_problem = stream.problem
            stream.close()
        activity.doing = "the features of the watched pretrained blocks (forward on a fixed batch)"
        probe.pretrained = (
            watch.finish(probe.notes, budget.left(), _median(probe.step_times)) if watch is not None else None
        )
        if first is not None and probe.nonfinite_step != 0 and probe.failure is None:
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


@dataclass
class _Tools:
    """What every step uses, built once by :func:`run_probe`."""

    model: Any
    optimizer: Any
    loss_fn: Any
    stream: BatchStream
    device: torch.device
    budget: _Budget
    #: ``(model, batch, step) -> loss`` when training computes its own loss; None: ``loss(model(x), y)``
    loss_step: Any = None


@dataclass
class _Recording:
    """Snapshots and gradient history the judges read after the steps, and the seconds spent on them."""

    snapshot: Snapshot
    recorder: GradRecorder
    bookkeeping_s: float = 0.0


@dataclass
class _Step:
    """One training step's objects."""

    index: int
    started: float
    batch: Any = None
    inputs: Any = None
    out: Any = None
    loss: Any = None
    #: at step 0: (inputs, targets) on the device, for the one-batch overfit run
    first: tuple[Any, Any] | None = None


def _probe_steps(ctx: Any, probe: ProbeRun, tools: _Tools) -> tuple[Any, Any] | None:
    """The probe's steps as named phases; returns the first batch (inputs, targets) for the overfit run.

    With a ``loss_step`` (a training step that computes its own loss, e.g. a LightningModule's
    ``training_step``) the first batch is ``(collated batch, None)``.
    """
    recording = _start_recording(probe, tools)
    first: tuple[Any, Any] | None = None
    last: _Step | None = None
    for index in range(probe.steps_requested):
        if not _budget_allows(probe, tools.budget, index):
            break
        step = _Step(index, time.perf_counter())
        if not _load(probe, tools, step):
            break
        with capture_warnings(probe.warnings, f"training step {index + 1}"):
            if not _forward_and_loss(ctx, probe, tools, step, recording):
                break
            first = first or step.first
            last = step
            if not _backward_and_step(probe, tools, step):
                break
        if not _record(probe, recording, step):
            break
    _finish_recording(probe, recording, last)
    return first


def _start_recording(probe: ProbeRun, tools: _Tools) -> _Recording:
    started = time.perf_counter()
    snapshot = Snapshot.take(tools.model)
    recorder = GradRecorder(snapshot.trainable, probe.steps_requested, tools.device)
    probe.names = recorder.names
    probe.param_norms = snapshot.start_norms().tolist()
    probe.param_ndims = [p.ndim for _, p in snapshot.trainable]
    probe.param_sizes = [p.numel() for _, p in snapshot.trainable]
    return _Recording(snapshot, recorder, time.perf_counter() - started)


def _budget_allows(probe: ProbeRun, budget: _Budget, index: int) -> bool:
    estimate = _median(probe.step_times) if probe.step_times else 0.0
    if index and not budget.allows(estimate):
        probe.stopped = (
            f"stopped after {index} of {probe.steps_requested} steps: the time budget of "
            f"{budget.seconds:g} s was reached"
        )
        return False
    return True


def _load(probe: ProbeRun, tools: _Tools, step: _Step) -> bool:
    probe.activity.doing = (
        f"loading the training batch of step {step.index + 1} (the dataset's __getitem__ and transform)"
    )
    try:
        step.batch = tools.stream.next(tools.budget.left())
    except RuntimeError as exc:  # worker timeout, unreadable samples or a batch that cannot be collated
        probe.stopped = f"stopped after {step.index} steps: training batches could not be loaded ({exc})"
        probe.load_stop = str(exc)
        return False
    step.inputs = to_device(step.batch.inputs, tools.device)
    return True


def _forward_and_loss(ctx: Any, probe: ProbeRun, tools: _Tools, step: _Step, recording: _Recording) -> bool:
    tools.model.zero_grad(set_to_none=True)
    tools.optimizer.zero_grad(set_to_none=True)
    probe.activity.doing = f"the model's forward pass and the loss on training step {step.index + 1}"
    watch = ActivationWatch()
    watched = step.index in (0, probe.steps_requested - 1)
    if tools.loss_step is not None:
        return _custom_forward(probe, tools, step, watch if watched else None, recording)
    loss, out, first, book_s = _manifest_step(ctx, probe, tools, step, watch, watched)
    recording.bookkeeping_s += book_s
    step.loss, step.out, step.first = loss, out, first
    return loss is not None


def _custom_forward(
    probe: ProbeRun, tools: _Tools, step: _Step, watch: ActivationWatch | None, recording: _Recording
) -> bool:
    collated = to_device(step.batch.collated, tools.device)
    try:
        step.loss, step.out = _custom_step(tools.loss_step, tools.model, collated, step.index, watch)
    except SkipAudit:
        raise
    except RuntimeError as exc:  # the user's training step raised (or returned no tensor): a finding
        probe.failure = forward_failure(
            tools.model,
            lambda: tools.loss_step(tools.model, collated, step.index),
            collated,
            step.index,
            exc.__cause__ or exc,
            action="the training step",
        )
        probe.stopped = f"stopped at step {step.index + 1}: the training step raised"
        return False
    if step.loss is None:
        probe.stopped = (
            f"stopped after {step.index} steps: the training step returned no loss for batch "
            f"{step.index + 1}, so there is nothing to probe"
        )
        return False
    if step.index == 0:
        step.first = (collated, None)
        book = time.perf_counter()
        probe.trailing = watch.trailing() if watch else None
        probe.dead_start = watch.dead_layers(0.5) if watch else []
        if step.out is not None:
            probe.start = output_stats(step.out, step.inputs, probe.kind)
        else:
            probe.notes.append(
                "the training step's model output was not seen (it does not call the "
                "model itself): output checks GP004, GP005, GP007 and GP009 were not run"
            )
        recording.bookkeeping_s += time.perf_counter() - book
    elif watch is not None:
        probe.dead_end = watch.dead_layers(0.5)
    return True


def _backward_and_step(probe: ProbeRun, tools: _Tools, step: _Step) -> bool:
    probe.activity.doing = f"the backward pass on training step {step.index + 1}"
    try:
        step.loss.backward()
    except Exception as exc:
        trainable = sum(1 for p in tools.model.parameters() if p.requires_grad)
        probe.failure = backward_failure(step.index, exc, trainable)
        probe.stopped = f"stopped at step {step.index + 1}: loss.backward() raised"
        return False
    probe.activity.doing = f"optimizer.step() on training step {step.index + 1}"
    tools.optimizer.step()
    return True


def _record(probe: ProbeRun, recording: _Recording, step: _Step) -> bool:
    """Keep the step's loss, gradients and times; False when they are no longer finite (GP001)."""
    probe.activity.doing = f"recording gradients of training step {step.index + 1}"
    book = time.perf_counter()
    recorder = recording.recorder
    total = recorder.record()
    loss_value, grad_total = torch.stack([step.loss.detach().float().reshape(()), total]).tolist()
    record_s = time.perf_counter() - book
    probe.losses.append(loss_value)
    probe.load_times.append(step.batch.load_s)
    probe.step_times.append(time.perf_counter() - step.started - record_s)
    recording.bookkeeping_s += record_s
    if finite(loss_value) and finite(grad_total):
        return True
    probe.nonfinite_step = step.index
    row = recorder.history[step.index]
    probe.nonfinite_grads = [
        n for n, ok in zip(recorder.names, torch.isfinite(row).tolist(), strict=False) if not ok
    ]
    return False


def _finish_recording(probe: ProbeRun, recording: _Recording, last: _Step | None) -> None:
    book = time.perf_counter()
    snapshot = recording.snapshot
    probe.grad_history = recording.recorder.finished()
    probe.none_steps = recording.recorder.none_steps[:]
    if last is not None and last.out is not None and probe.steps_done:
        probe.end = output_stats(last.out, last.inputs, probe.kind)
    if probe.steps_done:
        probe.changed_frozen = snapshot.changed(snapshot.frozen)
        probe.changed_buffers = snapshot.changed(snapshot.frozen_buffers)
        changed = set(snapshot.changed(snapshot.trainable))
        probe.unchanged_trainable = [name for name, _ in snapshot.trainable if name not in changed]
    probe.bookkeeping_s = recording.bookkeeping_s + time.perf_counter() - book


def _forward(probe: ProbeRun, tools: _Tools, step: _Step, watch: ActivationWatch, watched: bool) -> Any:
    """The model's output on the step's inputs; a forward that raises becomes ``probe.failure`` (GP019)."""
    try:
        if watched:
            with watch.watching(tools.model):
                return call_model(tools.model, step.inputs)
        return call_model(tools.model, step.inputs)
    except SkipAudit:
        raise
    except Exception as exc:
        probe.failure = forward_failure(
            tools.model, lambda: call_model(tools.model, step.inputs), step.inputs, step.index, exc
        )
        probe.stopped = f"stopped at step {step.index + 1}: the model's forward pass raised"
        return None


def _manifest_step(
    ctx: Any, probe: ProbeRun, tools: _Tools, step: _Step, watch: ActivationWatch, watched: bool
) -> tuple[Any, Any, tuple[Any, Any] | None, float]:
    """``loss(model(inputs), targets)``: (loss, output, first batch at step 0, bookkeeping seconds).

    The loss gets the targets exactly as the user's dataset and collate function give them. A loss of
    None stops the probe (``probe.target``, ``probe.breach`` or ``probe.failure`` says why).
    """
    bookkeeping = 0.0
    raw_output = _forward(probe, tools, step, watch, watched)
    if raw_output is None:
        return None, None, None, bookkeeping
    out, how = output_tensor(raw_output)
    if out is None:
        probe.target = TargetPlan(problem=how, fatal=True)
        return None, None, None, bookkeeping
    batch, device = step.batch, tools.device
    if step.index == 0:
        book = time.perf_counter()
        probe.output_note = how
        probe.unused_outputs = _other_tensors(raw_output, out)
        probe.start = output_stats(out, step.inputs, probe.kind)
        probe.trailing = watch.trailing()
        probe.dead_start = watch.dead_layers(0.5)
        bookkeeping += time.perf_counter() - book
    # The plan only diagnoses (GP010: output width against the labels) and the loss gets the real
    # targets. It reads the split's labels, which say what the targets mean only where training's
    # targets are class indices (or where there are none to read: a table's multilabel lists).
    real = batch.real_targets
    indices = isinstance(real, torch.Tensor) and real.ndim == 1 and not real.is_floating_point()
    if real is None or indices:
        plan = plan_targets(batch.targets, out, probe.kind, ctx.task.num_classes, _class_source(ctx), device)
    else:
        plan = TargetPlan(real)
    if probe.kind == "other" and plan.fatal and batch.real_targets is not None:
        plan = TargetPlan()  # a custom loss decides itself what fits; calling it on the real batch tells
    if step.index == 0 or plan.fatal:
        probe.target = plan
    if plan.fatal:
        return None, out, None, bookkeeping
    targets = to_device(batch.real_targets, device) if batch.real_targets is not None else plan.targets
    if step.index == 0 and batch.real_targets is None:
        probe.target.note = (
            "the split's multilabel label lists were given to the loss as multi-hot rows (the table "
            "format's own representation; a training DataLoader over your dataset decides this itself)"
        )
    if step.index == 0:
        breach = output_contract(probe.kind, tools.loss_fn, out) or target_contract(
            probe.kind, tools.loss_fn, out, targets
        )
        if breach is not None:
            probe.breach = breach
            probe.stopped = (
                "stopped before the first optimizer step: the loss's contract is broken (see the error)"
            )
            return None, out, None, bookkeeping
    try:
        loss = tools.loss_fn(out, targets)
    except SkipAudit:
        raise
    except Exception as exc:
        probe.breach = loss_failed(tools.loss_fn, out, targets, exc)
        probe.stopped = f"stopped at step {step.index + 1}: the loss raised on a real batch"
        return None, out, None, bookkeeping
    first: tuple[Any, Any] | None = None
    if step.index == 0:
        first = (step.inputs, targets)
        book = time.perf_counter()
        probe.uniform_loss, probe.prior_loss = _reference_losses(ctx, tools.loss_fn, out, targets, probe.kind)
        bookkeeping += time.perf_counter() - book
    elif watched:
        probe.dead_end = watch.dead_layers(0.5)
    return loss, out, first, bookkeeping


def _other_tensors(output: Any, used: torch.Tensor) -> list[str]:
    """Names of the tensors in an output object other than the one given to the loss."""
    if isinstance(output, torch.Tensor):
        return []
    if isinstance(output, dict):
        items = list(output.items())
    elif hasattr(output, "_fields"):  # a namedtuple
        items = list(zip(output._fields, output, strict=False))
    elif isinstance(output, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(output)]
    else:
        items = (
            [(k, v) for k, v in vars(output).items() if not k.startswith("_")]
            if hasattr(output, "__dict__")
            else []
        )
    return [str(k) for k, v in items if isinstance(v, torch.Tensor) and v is not used]


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
        try:
            with capture_warnings(probe.warnings, "the one-batch overfit run"):
                if step_fn is not None:
                    loss = step_fn(model, step)
                else:
                    out, _ = output_tensor(call_model(model, inputs))
                    loss = loss_fn(out, targets)
                if loss is not None:
                    loss.backward()
                    optimizer.step()
        except SkipAudit:
            raise
        except Exception as exc:  # the probe's steps passed on this batch; say so rather than crash
            result.stopped = (
                f"stopped after {step} of {steps} steps: the step raised {type(exc).__name__}: {exc}"
            )
            break
        if loss is None:
            result.stopped = f"stopped after {step} of {steps} steps: the training step returned no loss"
            break
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
