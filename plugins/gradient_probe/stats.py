"""Measurements for gradient_probe: parameter snapshots, gradient norms, output and activation statistics.

Per-step bookkeeping must stay cheap next to a training step: gradient norms of
all parameters come from one ``torch._foreach_norm`` call into a preallocated
tensor on the probe's device, and nothing is copied to the host inside the loop.
Only imported from inside the audit's ``run``.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "ActivationWatch",
    "GradRecorder",
    "Snapshot",
    "finite",
    "output_stats",
    "peak_memory",
    "relative_update",
    "tensor_norms",
]

#: Activations whose units can die (output exactly zero for every input).
_RELU_TYPES = (torch.nn.ReLU, torch.nn.ReLU6)
#: Trailing modules that turn logits into probabilities.
PROBABILITY_MODULES = (torch.nn.Softmax, torch.nn.Sigmoid, torch.nn.Softmax2d)


def tensor_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    if not tensors:
        return torch.zeros(0)
    foreach_norm = getattr(torch, "_foreach_norm", None)
    values = foreach_norm(tensors) if foreach_norm else [t.norm() for t in tensors]
    return torch.stack([v.float() for v in values])


def frozen_batchnorms(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """BatchNorm layers with affine parameters none of which trains: their statistics are meant to stay."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                found.append((name, module))
    return found


@dataclass
class Snapshot:
    """Exact copies of every parameter and of frozen BatchNorm buffers, taken before stepping."""

    trainable: list[tuple[str, torch.nn.Parameter]]
    frozen: list[tuple[str, torch.nn.Parameter]]
    frozen_buffers: list[tuple[str, torch.Tensor]]
    saved: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def take(cls, model: torch.nn.Module) -> Snapshot:
        trainable, frozen = [], []
        for name, param in model.named_parameters():
            (trainable if param.requires_grad else frozen).append((name, param))
        buffers = [
            (f"{module_name}.{buffer_name}" if module_name else buffer_name, buffer)
            for module_name, module in frozen_batchnorms(model)
            for buffer_name, buffer in module.named_buffers(recurse=False)
            if buffer is not None
        ]
        snap = cls(trainable, frozen, buffers)
        with torch.no_grad():
            for name, tensor in [*trainable, *frozen, *buffers]:
                snap.saved[name] = tensor.detach().clone()
        return snap

    def changed(self, items: list[tuple[str, torch.Tensor]]) -> list[str]:
        return [name for name, tensor in items if not torch.equal(tensor.detach(), self.saved[name])]

    def start_norms(self) -> torch.Tensor:
        return tensor_norms([self.saved[name] for name, _ in self.trainable])


class GradRecorder:
    """Per-step gradient norm of every trainable parameter (zero where the gradient is ``None``)."""

    def __init__(
        self, params: list[tuple[str, torch.nn.Parameter]], steps: int, device: torch.device
    ) -> None:
        self.names = [name for name, _ in params]
        self.params = [param for _, param in params]
        self.history = torch.zeros(max(1, steps), len(self.params), device=device)
        self.none_steps = [0] * len(self.params)
        self.steps = 0

    def record(self) -> torch.Tensor:
        """Store this step's norms; returns their sum (non-finite when any gradient is)."""
        row = self.history[self.steps]
        present, grads = [], []
        for index, param in enumerate(self.params):
            if param.grad is None:
                self.none_steps[index] += 1
            else:
                present.append(index)
                grads.append(param.grad.detach())
        if grads:
            norms = tensor_norms(grads)
            if len(present) == len(self.params):
                row.copy_(norms)
            else:
                row[torch.tensor(present, device=row.device)] = norms
        self.steps += 1
        return row.sum()

    def finished(self) -> torch.Tensor:
        """Norms as a CPU tensor [steps, params]."""
        return self.history[: self.steps].cpu()


class ActivationWatch:
    """Forward hooks for one pass: the order leaf modules ran in, and dead ReLU units."""

    def __init__(self) -> None:
        self.order: list[tuple[str, str]] = []
        self.dead: dict[str, float] = {}

    @contextlib.contextmanager
    def watching(self, model: torch.nn.Module) -> Iterator[ActivationWatch]:
        handles = []
        for name, module in model.named_modules():
            if next(module.children(), None) is None:
                handles.append(module.register_forward_hook(self._hook(name or type(module).__name__)))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, name: str) -> Any:
        def hook(module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            self.order.append((name, type(module).__name__))
            if isinstance(module, _RELU_TYPES) and isinstance(output, torch.Tensor) and output.ndim >= 2:
                with torch.no_grad():
                    # A unit (channel or feature) is dead when it is zero for every sample and position.
                    reduce = [d for d in range(output.ndim) if d != 1]
                    alive = output.detach().amax(dim=reduce) > 0
                    fraction = 1.0 - alive.float().mean().item()
                self.dead[name] = max(self.dead.get(name, 0.0), fraction)

        return hook

    def trailing(self) -> tuple[str, str] | None:
        return self.order[-1] if self.order else None

    def dead_layers(self, at_least: float) -> list[dict[str, Any]]:
        return [
            {"module": name, "dead_fraction": round(fraction, 4)}
            for name, fraction in self.dead.items()
            if fraction >= at_least
        ]


def output_stats(output: torch.Tensor, inputs: Any, kind: str) -> dict[str, Any]:
    """Spread across the batch, value range and how far predicted probabilities are from uniform."""
    out = output.detach().float()
    flat = out.reshape(out.shape[0], -1) if out.ndim else out.reshape(1, 1)
    stats: dict[str, Any] = {"shape": list(out.shape)}
    finite = bool(torch.isfinite(flat).all())
    stats["finite"] = finite
    if not finite or flat.numel() == 0:
        return stats
    spread = flat.std(dim=0, unbiased=False).mean() if flat.shape[0] > 1 else torch.tensor(float("nan"))
    scale = flat.abs().mean()
    values = torch.stack(
        [flat.mean(), flat.std(unbiased=False), flat.min(), flat.max(), spread, scale]
    ).tolist()
    stats.update(mean=values[0], std=values[1], min=values[2], max=values[3])
    stats["batch_spread"] = values[4]
    # Spread relative to magnitude: an output that is large but the same for every input has collapsed.
    stats["relative_spread"] = values[4] / max(values[5], 1e-12) if flat.shape[0] > 1 else None
    stats["inputs_differ"] = _inputs_differ(inputs)
    stats["in_unit_interval"] = bool(values[2] >= 0.0 and values[3] <= 1.0)
    stats["rows_sum_to_one"] = bool(
        flat.shape[1] > 1
        and values[2] >= 0.0
        and torch.allclose(flat.sum(1), torch.ones(flat.shape[0], device=flat.device), atol=1e-3)
    )
    probs = _probabilities(flat, kind)
    if probs is not None:
        stats["uniform_deviation"] = probs
    return stats


def _probabilities(flat: torch.Tensor, kind: str) -> float | None:
    """Median distance from uniform: 0 = exactly uniform (0.5 or 1/C), 1+ = confident predictions.

    Softmax rows: ``C * max_c p - 1``; sigmoid units: ``2 * |p - 0.5|``. The two agree for C = 2.
    """
    if kind in ("ce", "nll") and flat.shape[1] > 1:
        probs = flat.softmax(1) if kind == "ce" else flat.exp()
        deviation = flat.shape[1] * probs.amax(1) - 1.0
    elif kind in ("bce_logits", "bce_probs"):
        probs = flat.sigmoid() if kind == "bce_logits" else flat.clamp(0, 1)
        deviation = (2.0 * (probs - 0.5).abs()).reshape(-1)
    else:
        return None
    return float(deviation.median())


def _inputs_differ(inputs: Any) -> bool:
    if (
        isinstance(inputs, torch.Tensor)
        and inputs.ndim >= 1
        and inputs.shape[0] > 1
        and inputs.is_floating_point()
    ):
        flat = inputs.reshape(inputs.shape[0], -1)
        return bool((flat != flat[:1]).any())
    return True  # non-tensor or integer inputs: assume they differ rather than skip the check


def relative_update(before: list[torch.Tensor], after: list[torch.Tensor]) -> float | None:
    """Median over parameters of ||after - before|| / ||before|| (CS231n's update-to-weight ratio)."""
    pairs = [(b, a) for b, a in zip(before, after, strict=False) if b.numel()]
    if not pairs:
        return None
    deltas = tensor_norms([a.detach() - b for b, a in pairs])
    norms = tensor_norms([b for b, _ in pairs]).clamp_min(1e-12)
    return float((deltas / norms).median())


def peak_memory(device: torch.device) -> tuple[float | None, str]:
    """Peak memory in MiB and what was measured."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max allocated"
    try:
        import resource
    except ImportError:  # Windows
        return None, "unavailable on this platform"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return (peak / 2**20 if sys.platform == "darwin" else peak / 2**10), "peak RSS of the whole process"


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
