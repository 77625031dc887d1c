"""Batches for gradient_probe: device choice, RNG isolation, a fault-tolerant loader, targets.

Only imported from inside the audit's ``run`` (never at plugin import time), so
importing torch at module level here does not slow ``auditor validate``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from auditor_plugins.common.batching import CollateProblem, try_collate
from auditor_plugins.common.torch_env import isolated_rng, pick_device

__all__ = [
    "Batch",
    "BatchStream",
    "TargetPlan",
    "TrainingItems",
    "call_model",
    "describe_shape",
    "float_targets",
    "isolated_rng",
    "loss_kind",
    "output_tensor",
    "pick_device",
    "plan_targets",
    "to_device",
]

#: How a loss consumes model outputs and targets.
#:   index: class indices (CrossEntropyLoss: logits; NLLLoss: log-probabilities)
#:   binary_*: float targets shaped like the output (BCEWithLogitsLoss: logits; BCELoss: probabilities)
#:   other: a custom loss; class indices first, float targets shaped like the output as a fallback
LOGIT_LOSSES = {
    "CrossEntropyLoss": "ce",
    "BCEWithLogitsLoss": "bce_logits",
    "MultiLabelSoftMarginLoss": "bce_logits",
}
PROBABILITY_LOSSES = {"NLLLoss": "nll", "BCELoss": "bce_probs"}
#: Element-wise losses (output and target compared position by position).
REGRESSION_LOSSES = {
    "MSELoss": "regression",
    "L1Loss": "regression",
    "SmoothL1Loss": "regression",
    "HuberLoss": "regression",
}


class TrainingItems:
    """A split's samples as ``(input, target, item)``: ``item`` is what the training DataLoader gets
    from the dataset, for a custom collate function or training step; targets stay the split's."""

    def __init__(self, split: Any) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
        item = self.split.training_item(index)
        value = item[0] if isinstance(item, (tuple, list)) and item else item
        return value, self.split.targets()[index], item


class _SafeSamples:
    """Transformed samples; a sample that fails to load becomes a recorded failure, not a crash."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[bool, int, Any, Any, Any]:
        try:
            value, target, *item = self.dataset[index]
        except Exception as exc:
            return False, index, f"{type(exc).__name__}: {exc}", None, None
        return True, index, value, target, (item[0] if item else (value, target))


def collate(
    items: Sequence[tuple[bool, int, Any, Any, Any]],
    user_collate: Any = None,
    keep_batch: bool = False,
) -> tuple[Any, list[Any], list[tuple[int, str]], Any, CollateProblem | None, Any]:
    """Collate the dataset's items as the training DataLoader does; pass failures on.

    Returns ``(inputs, raw targets, failures, batch, problem, training targets)``. The training
    targets are the second element of the batch the training collate function (``user_collate``, or
    torch's ``default_collate``) makes of the items: what the loss gets in training, never converted.
    They are None where the batch is not an ``(inputs, targets, ...)`` sequence, or where the split's
    labels are a table format's label lists (multilabel rows of different lengths). The raw targets are
    the split's labels as a list, for the probe's own diagnosis (GP010). With ``keep_batch`` the whole
    collated batch comes back too, for a training step that takes the batch as training does. A batch
    that cannot be collated comes back as a :class:`CollateProblem`, not raised: it is what the probe
    reports (GP012), and an exception raised in a worker would lose the samples' details.
    """
    from torch.utils.data import default_collate

    good = [(index, value, target, item) for ok, index, value, target, item in items if ok]
    failures = [(index, message) for ok, index, message, _, _ in items if not ok]
    if not good:
        return None, [], failures, None, None, None
    targets = [target for _, _, target, _ in good]
    values = [(index, value, value) for index, value, _, _ in good]
    # A table format's multilabel labels are auditor's own lists (rows of different lengths), not
    # what a user's loader gives: those batches keep their inputs only, and the probe builds the targets.
    listed = [item[1] for _, _, _, item in good if isinstance(item, (tuple, list)) and len(item) > 1]
    if user_collate is None and listed and isinstance(listed[0], (list, tuple)):
        inputs, problem = try_collate(values, None)
        return inputs, targets, failures, None, problem, None
    batch, problem = try_collate(
        [(index, value, item) for index, value, _, item in good], user_collate or default_collate
    )
    if problem is not None:
        return None, [], failures, None, problem, None
    real = None
    if isinstance(batch, (list, tuple)) and batch:
        inputs = batch[0]
        real = batch[1] if len(batch) > 1 else None
    else:  # a dict or custom batch object: the probe's own view of the inputs
        inputs, problem = try_collate(values, None)
        if isinstance(batch, dict):
            real = batch.get("labels", batch.get("label"))
            if problem is not None:
                # Items torch cannot collate (a Hugging Face row keeps its PIL image): the model gets
                # what the user's collate function made of them, model(**batch) as the Trainer calls it.
                inputs, problem = {k: v for k, v in batch.items() if k not in ("labels", "label")}, None
    return inputs, targets, failures, batch if keep_batch else None, problem, real


@dataclass
class Batch:
    inputs: Any
    targets: list[Any]
    load_s: float
    #: The batch as the training loop receives it (only kept for a custom training step).
    collated: Any = None
    #: The targets as the training loop receives them (None: see :func:`collate`).
    real_targets: Any = None


@dataclass
class BatchStream:
    """Endless shuffled batches from a split (a new epoch starts when one runs out)."""

    dataset: Any
    batch_size: int
    num_workers: int
    seed: int
    pin_memory: bool = False
    #: The training DataLoader's collate function (None: torch's default_collate).
    user_collate: Any = None
    keep_batch: bool = False
    failures: list[tuple[int, str]] = field(default_factory=list)
    #: the batch that could not be collated, when one stopped the stream
    problem: CollateProblem | None = None
    _iterator: Any = None
    _loader: Any = None

    @property
    def single_last(self) -> bool:
        """True when an epoch would end on a batch of one sample, which the probe leaves out: a BatchNorm
        layer in train mode raises on it, and that is the training loader's problem to report
        (data_loading's last-batch check), not a crash of the probe."""
        size = len(self.dataset)
        return size > self.batch_size and size % self.batch_size == 1

    def _make_loader(self, timeout_s: float) -> Any:
        from torch.utils.data import DataLoader

        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            _SafeSamples(self.dataset),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=self.single_last,
            generator=generator,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=functools.partial(collate, user_collate=self.user_collate, keep_batch=self.keep_batch),
            persistent_workers=self.num_workers > 0,  # small splits cycle epochs: keep workers alive
            # A worker stuck on one sample must not hang the probe past its budget.
            timeout=max(1.0, timeout_s) if self.num_workers else 0,
        )

    def next(self, timeout_s: float) -> Batch:
        """The next batch with at least one sample; raises RuntimeError when none can be loaded."""
        started = time.perf_counter()
        empty_in_a_row = 0
        while True:
            if self._iterator is None:
                self._loader = self._loader or self._make_loader(timeout_s)
                self._iterator = iter(self._loader)
            try:
                inputs, targets, failures, collated, problem, real = next(self._iterator)
            except StopIteration:
                self._iterator = None
                continue
            self.failures.extend(failures)
            if problem is not None:
                self.problem = problem
                raise RuntimeError(f"a batch cannot be collated by {problem.collate}: {problem.error}")
            if inputs is not None:
                return Batch(inputs, targets, time.perf_counter() - started, collated, real)
            empty_in_a_row += 1
            if empty_in_a_row >= 3:
                shown = "; ".join(f"sample {i}: {m}" for i, m in self.failures[:3])
                raise RuntimeError(f"no sample of 3 consecutive batches could be loaded ({shown})")

    def close(self) -> None:
        # Dropping the iterator shuts worker processes down now rather than at garbage collection.
        self._iterator = None
        self._loader = None


def to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def call_model(model: Any, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (list, tuple)):
        return model(*inputs)
    return model(inputs)


def output_tensor(output: Any) -> tuple[torch.Tensor | None, str]:
    """The logits tensor inside whatever the model returned, and how it was found."""
    if isinstance(output, torch.Tensor):
        return output, ""
    kind = type(output).__name__
    if isinstance(output, dict) or hasattr(output, "logits"):
        # Hugging Face ModelOutput, GoogLeNet/Inception's namedtuples and torchvision's segmentation
        # dicts name their logits; training code writes loss(out.logits, y) or loss(out["out"], y).
        for key in ("logits", "out"):
            value = output.get(key) if isinstance(output, dict) else getattr(output, key, None)
            if isinstance(value, torch.Tensor):
                return (
                    value,
                    f"the model returned a {kind}; the loss was given its '{key}' field, as training code does",
                )
    if isinstance(output, dict):
        tensors = [k for k, v in output.items() if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return output[
                tensors[0]
            ], f"the model returned a {kind}; the loss was given its only tensor '{tensors[0]}'"
        return None, (
            f"the model returned a {kind} with the tensors {tensors} and none named 'logits' or 'out': the loss "
            "cannot take that object and it is not clear which field training would give it"
        )
    if isinstance(output, (list, tuple)) and output and isinstance(output[0], torch.Tensor):
        return output[0], f"the model returned a {kind}; the loss was given its first element"
    return None, f"the model returned {kind}, not a tensor"


def describe_shape(value: Any) -> str:
    return str(list(value.shape)) if hasattr(value, "shape") else type(value).__name__


def loss_kind(loss: Any) -> str:
    """ce | nll | bce_logits | bce_probs | regression | other, by the loss's class (or its torch base class)."""
    for cls in type(loss).__mro__:
        if cls.__module__.startswith("torch.nn"):
            kind = (
                LOGIT_LOSSES.get(cls.__name__)
                or PROBABILITY_LOSSES.get(cls.__name__)
                or REGRESSION_LOSSES.get(cls.__name__)
            )
            if kind:
                return kind
    return "other"


@dataclass
class TargetPlan:
    """Targets for one batch, or why the output cannot fit them (GP010)."""

    targets: Any = None
    #: GP010 message; with ``fatal`` the loss cannot be computed and the probe stops.
    problem: str = ""
    fatal: bool = False
    note: str = ""


def _label_range(raw: list[Any], multilabel: bool) -> tuple[int, int]:
    values = [int(v) for row in raw for v in row] if multilabel else [int(v) for v in raw]
    return (min(values), max(values)) if values else (0, -1)


def _multi_hot(raw: list[Any], width: int, device: torch.device) -> torch.Tensor:
    hot = torch.zeros(len(raw), width)
    for row, labels in enumerate(raw):
        for label in labels:
            hot[row, int(label)] = 1.0
    return hot.to(device)


def plan_targets(
    raw: list[Any],
    output: torch.Tensor,
    kind: str,
    num_classes: int | None,
    class_source: str,
    device: torch.device,
) -> TargetPlan:
    """Targets shaped as ``kind``'s loss expects them for ``output``, or the GP010 mismatch.

    ``num_classes`` is the task's class count (``class_source`` says where it came from);
    a different output width is reported but not fatal when every label still fits.
    """
    multilabel = bool(raw) and isinstance(raw[0], (list, tuple))
    out_shape = describe_shape(output)
    batch = len(raw)
    if output.ndim == 0 or output.shape[0] != batch:
        return TargetPlan(
            problem=f"the model output {out_shape} has no batch dimension of {batch} "
            f"(the batch holds {batch} samples)",
            fatal=True,
        )
    low, high = _label_range(raw, multilabel)
    width = int(output.shape[1]) if output.ndim >= 2 else 1
    labels = (
        f"targets [{batch}] with labels {low}..{high}"
        if not multilabel
        else f"multilabel targets for {batch} samples with label indices {low}..{high}"
    )
    if low < 0:
        return TargetPlan(
            problem=f"{labels}: negative labels cannot index the output {out_shape}", fatal=True
        )
    if kind == "regression":
        return float_targets(raw, output, multilabel, device, labels)
    if kind in ("ce", "nll") or (kind == "other" and not multilabel):
        if output.ndim != 2:
            if kind == "other":
                return float_targets(raw, output, multilabel, device, labels)
            return TargetPlan(
                problem=f"the model output {out_shape} is not [batch, classes] logits, which "
                f"{'CrossEntropyLoss' if kind == 'ce' else 'NLLLoss'} needs with {labels}",
                fatal=True,
            )
        if high >= width:
            return TargetPlan(
                problem=f"the model output {out_shape} has {width} class output"
                f"{'s' if width != 1 else ''} but the {labels} need at least {high + 1}",
                fatal=True,
            )
        if multilabel:
            hot = _multi_hot(raw, width, device)
            plan = TargetPlan(
                hot / hot.sum(1, keepdim=True).clamp_min(1.0),
                note="multilabel targets fed to a softmax loss as normalised class probabilities",
            )
        else:
            plan = TargetPlan(torch.tensor([int(v) for v in raw], dtype=torch.long, device=device))
        return _width_check(plan, out_shape, width, num_classes, class_source)
    if kind in ("bce_logits", "bce_probs"):
        return _bce_targets(raw, output, multilabel, num_classes, class_source, device, labels)
    return float_targets(raw, output, multilabel, device, labels)


def _width_check(
    plan: TargetPlan, out_shape: str, width: int, num_classes: int | None, class_source: str
) -> TargetPlan:
    if num_classes and width != num_classes:
        plan.problem = (
            f"the model output {out_shape} has {width} outputs per sample but the task has "
            f"{num_classes} classes ({class_source})"
        )
    return plan


def _bce_targets(
    raw: list[Any],
    output: torch.Tensor,
    multilabel: bool,
    num_classes: int | None,
    class_source: str,
    device: torch.device,
    labels: str,
) -> TargetPlan:
    out_shape = describe_shape(output)
    width = int(output.shape[1]) if output.ndim >= 2 else 1
    if output.ndim > 2:
        return TargetPlan(
            problem=f"the model output {out_shape} is not [batch, outputs] for {labels}", fatal=True
        )
    high = _label_range(raw, multilabel)[1]
    if multilabel:
        if high >= width:
            return TargetPlan(
                problem=f"the model output {out_shape} has {width} outputs but the {labels} "
                f"need at least {high + 1}",
                fatal=True,
            )
        return _width_check(
            TargetPlan(_multi_hot(raw, width, device)), out_shape, width, num_classes, class_source
        )
    if width == 1:
        if high > 1:
            return TargetPlan(
                problem=f"the model output {out_shape} gives one probability per sample but the "
                f"{labels} are not binary (0/1)",
                fatal=True,
            )
        return TargetPlan(torch.tensor([float(v) for v in raw], device=device).reshape(output.shape))
    if high >= width:
        expected = "[batch] or [batch, 1]" if high <= 1 else f"[batch, {high + 1}]"
        return TargetPlan(
            problem=f"the model output {out_shape} does not fit {labels}: expected {expected}", fatal=True
        )
    hot = torch.zeros(len(raw), width)
    hot[torch.arange(len(raw)), torch.tensor([int(v) for v in raw])] = 1.0
    plan = TargetPlan(hot.to(device), note="single-label targets fed to a BCE loss as one-hot rows")
    return _width_check(plan, out_shape, width, num_classes, class_source)


def float_targets(
    raw: list[Any], output: torch.Tensor, multilabel: bool, device: torch.device, labels: str
) -> TargetPlan:
    """For a custom loss whose output is not [batch, classes]: float targets shaped like the output."""
    if multilabel:
        width = int(output.shape[1]) if output.ndim == 2 else 0
        if not width or _label_range(raw, True)[1] >= width:
            return TargetPlan(
                problem=f"the model output {describe_shape(output)} does not fit {labels}", fatal=True
            )
        return TargetPlan(_multi_hot(raw, width, device))
    values = torch.tensor([float(v) for v in raw], device=device)
    if values.numel() != output.numel():
        return TargetPlan(
            problem=f"the model output {describe_shape(output)} does not fit {labels}", fatal=True
        )
    return TargetPlan(
        values.reshape(output.shape),
        note="targets passed to the custom loss as floats shaped like the output",
    )
