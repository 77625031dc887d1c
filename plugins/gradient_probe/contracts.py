"""The loss's contract on the first real batch: what training would hand the loss, judged before a step.

Everything here reads the model output and the targets exactly as the user's dataset,
loader and collate produce them: nothing is cast, squeezed or one-hot-encoded. A
breach is a :class:`Breach` (GP013-GP016); ``checks`` turns it into a finding. Only
imported from inside the audit's ``run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "REGRESSION_LOSSES",
    "Breach",
    "describe_tensor",
    "loss_failed",
    "output_contract",
    "target_contract",
]

#: Losses that compare outputs with targets element by element (and broadcast when shapes differ).
REGRESSION_LOSSES = frozenset({"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"})


@dataclass
class Breach:
    """One broken contract between the model output, the targets and the loss."""

    code: str
    message: str
    hint: str
    evidence: dict[str, Any] = field(default_factory=dict)


def describe_tensor(value: Any) -> str:
    """``int64 [8]``: dtype and shape, the two things a loss checks; other values by type."""
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).replace('torch.', '')} {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__


def _loss_name(loss_fn: Any) -> str:
    return type(loss_fn).__name__


def output_contract(kind: str, loss_fn: Any, out: torch.Tensor) -> Breach | None:
    """GP014: outputs the loss cannot read as it assumes (NLLLoss on logits, BCELoss outside [0, 1])."""
    values = out.detach().float()
    if values.numel() == 0 or not bool(torch.isfinite(values).all()):
        return None
    name = _loss_name(loss_fn)
    if kind == "nll" and values.ndim == 2 and values.shape[1] > 1:
        if float(values.min()) >= 0.0 and torch.allclose(
            values.sum(1), torch.ones_like(values[:, 0]), atol=1e-3
        ):
            return None  # probabilities where log-probabilities belong: GP009 says so, the probe goes on
        sums = values.exp().sum(1)
        low, high = float(sums.min()), float(sums.max())
        if abs(low - 1.0) > 1e-3 or abs(high - 1.0) > 1e-3:
            return Breach(
                "GP014",
                f"{name} expects log-probabilities, but the model's outputs {describe_tensor(out)} are not: "
                f"exp() of each row should sum to 1 and sums to {low:.3g}..{high:.3g}; on raw logits the loss "
                "rewards making every output larger and falls below 0 without bound",
                "end the model with `nn.LogSoftmax(dim=1)`, or keep the raw logits and use "
                "`nn.CrossEntropyLoss()` (which applies log_softmax itself)",
                {"loss": name, "row_exp_sum_min": low, "row_exp_sum_max": high},
            )
    if kind == "bce_probs":
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            return Breach(
                "GP014",
                f"{name} expects probabilities in [0, 1], but the model's outputs {describe_tensor(out)} range "
                f"{low:.3g}..{high:.3g} (no Sigmoid at the end); torch raises on the first step",
                "use `nn.BCEWithLogitsLoss()` on the raw outputs (numerically safer), or end the model with "
                "`nn.Sigmoid()`",
                {"loss": name, "output_min": low, "output_max": high},
            )
    return None


def target_contract(kind: str, loss_fn: Any, out: torch.Tensor, targets: Any) -> Breach | None:
    """GP015/GP016: a loss that computes a value, but not the one training means."""
    if not isinstance(targets, torch.Tensor):
        return None
    name = _loss_name(loss_fn)
    if kind == "regression" and out.shape != targets.shape:
        try:
            joint = list(torch.broadcast_shapes(out.shape, targets.shape))
        except RuntimeError:
            return None  # the loss raises: GP013 says so
        fix = (
            f"give targets the output's shape: `target.float().view_as(output)` (here [{', '.join(map(str, out.shape))}])"
            if out.numel() == targets.numel()
            else "make the output and the targets the same shape"
        )
        return Breach(
            "GP015",
            f"{name} gets the output {describe_tensor(out)} and the targets {describe_tensor(targets)}: they "
            f"broadcast to {joint}, so every output is compared with every target of the batch and the model "
            "learns the batch mean",
            fix
            + (", or squeeze the output: `output.squeeze(1)`" if out.ndim == 2 and out.shape[1] == 1 else ""),
            {
                "loss": name,
                "output_shape": list(out.shape),
                "target_shape": list(targets.shape),
                "broadcast": joint,
            },
        )
    floating = targets.is_floating_point()
    if kind in ("bce_logits", "bce_probs") and floating and targets.numel():
        low, high = float(targets.min()), float(targets.max())
        if low < 0.0 or high > 1.0:
            return Breach(
                "GP016",
                f"{name} expects targets in [0, 1] (one 0/1 per output), but the batch's targets "
                f"{describe_tensor(targets)} range {low:g}..{high:g}: class indices given to a binary loss",
                "for one label out of several classes use `nn.CrossEntropyLoss()` with integer class indices; for "
                "multilabel give multi-hot rows of 0/1, one column per label",
                {"loss": name, "target_min": low, "target_max": high},
            )
    if kind == "ce" and floating and targets.shape == out.shape and targets.ndim == 2 and targets.numel():
        sums = targets.float().sum(1)
        low, high = float(sums.min()), float(sums.max())
        if float(targets.min()) < 0.0 or abs(low - 1.0) > 1e-3 or abs(high - 1.0) > 1e-3:
            return Breach(
                "GP016",
                f"{name} reads float targets {describe_tensor(targets)} as class probabilities, but their rows "
                f"sum to {low:.3g}..{high:.3g}, not 1 (multi-hot multilabel rows?)",
                "for multilabel use `nn.BCEWithLogitsLoss()` with the multi-hot rows; for one label per sample "
                "give integer class indices [batch]",
                {"loss": name, "row_sum_min": low, "row_sum_max": high},
            )
    return None


def loss_failed(loss_fn: Any, out: torch.Tensor, targets: Any, exc: BaseException) -> Breach:
    """GP013: the loss raised on the first real batch; the fix in the user's terms."""
    name = _loss_name(loss_fn)
    error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}".rstrip(".")
    got = describe_tensor(targets)
    hint = "make the dataset (or the collate function) return targets the loss accepts"
    if isinstance(targets, torch.Tensor):
        if name in ("CrossEntropyLoss", "NLLLoss") and targets.is_floating_point() and targets.ndim == 1:
            hint = (
                "return class indices as integers from the dataset (`int(label)`, or "
                "`torch.tensor(label, dtype=torch.long)`); float targets mean class probabilities of shape "
                f"[batch, {out.shape[1] if out.ndim == 2 else 'classes'}] to CrossEntropyLoss"
            )
        elif name in ("BCEWithLogitsLoss", "BCELoss") and targets.shape != out.shape:
            hint = (
                f"give float targets of the output's shape {list(out.shape)}: e.g. `float(label)` in the dataset "
                "and `loss(output.squeeze(1), target)` in the training step, or `target.float().view_as(output)`"
            )
        elif name in ("BCEWithLogitsLoss", "BCELoss") and not targets.is_floating_point():
            hint = (
                "give float targets: `float(label)` in the dataset, or `target.float()` in the training step"
            )
        elif targets.is_floating_point() and out.is_floating_point() and targets.dtype != out.dtype:
            hint = (
                f"the targets are {str(targets.dtype).replace('torch.', '')} (Python floats collate to float64), "
                f"the output {str(out.dtype).replace('torch.', '')}: return `torch.tensor(value, dtype=torch.float32)`"
            )
    return Breach(
        "GP013",
        f"the first real training step fails: {name}(output {describe_tensor(out)}, target {got}) raises "
        f"{error}. Training would crash here on its first batch",
        hint,
        {"loss": name, "output": describe_tensor(out), "target": got, "error": error},
    )
