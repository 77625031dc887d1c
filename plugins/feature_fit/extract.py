"""One pass of the model over a bounded sample of each split: head inputs and BatchNorm input statistics.

The model is a copy in ``eval()`` mode (BatchNorm normalises with its stored running
statistics, as at inference), run without gradients on the audit's device. Forward
pre-hooks record, for every BatchNorm layer, the per-channel mean and variance of
what reaches it, and the input of the head: the frozen features. Samples are read
through the split (its transform, the call deadline); the pass stops taking batches
when the audit's time budget would be passed. Only imported from inside ``run``.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["BnStats", "Extraction", "SplitFeatures", "extract", "pick_indices"]

#: Samples in the first batch, whose time sets the size of the next ones.
_FIRST_BATCH = 4


@dataclass
class BnStats:
    """Running sums of one BatchNorm layer's input, per channel."""

    total: torch.Tensor | None = None
    squares: torch.Tensor | None = None
    count: int = 0

    def add(self, x: torch.Tensor) -> None:
        dims = [d for d in range(x.ndim) if d != 1]
        x = x.detach().double()
        s, q = x.sum(dim=dims).cpu(), (x * x).sum(dim=dims).cpu()
        self.total = s if self.total is None else self.total + s
        self.squares = q if self.squares is None else self.squares + q
        self.count += x.numel() // x.shape[1]

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.total is not None and self.squares is not None
        mean = self.total / max(1, self.count)
        return mean, (self.squares / max(1, self.count) - mean**2).clamp_min(0)


@dataclass
class SplitFeatures:
    name: str
    requested: int
    features: list[torch.Tensor] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    bn: dict[str, BnStats] = field(default_factory=lambda: defaultdict(BnStats))
    failures: list[tuple[int, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.labels)

    def matrix(self) -> torch.Tensor | None:
        return torch.cat(self.features).float() if self.features else None

    def label_tensor(self) -> torch.Tensor:
        return torch.tensor(self.labels, dtype=torch.long)


@dataclass
class Extraction:
    device: str
    splits: dict[str, SplitFeatures] = field(default_factory=dict)
    #: BatchNorm layers in the order the forward pass reaches them: name -> module.
    bn_layers: dict[str, Any] = field(default_factory=dict)
    stopped: str = ""
    seconds: float = 0.0
    head_seen: bool = False


def pick_indices(targets: list[Any], per_class: int, limit: int, seed: int) -> list[int]:
    """At most ``per_class`` samples of each class and ``limit`` in all, classes taking turns."""
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, target in enumerate(targets):
        by_class[int(target)].append(index)
    rng = random.Random(seed)
    queues = []
    for cls in sorted(by_class):
        picked = by_class[cls][:]
        rng.shuffle(picked)
        queues.append(picked[:per_class])
    out: list[int] = []
    depth = 0
    while len(out) < limit and any(depth < len(q) for q in queues):
        out.extend(q[depth] for q in queues if depth < len(q) and len(out) < limit)
        depth += 1
    return out


def extract(
    model: Any,
    head: Any,
    plan: list[tuple[Any, list[int], list[int]]],
    device: torch.device,
    batch_size: int,
    budget_s: float,
    activity: dict[str, str],
) -> Extraction:
    """Features of every planned split: ``plan`` holds (split, indices, label per index)."""
    started = time.perf_counter()
    result = Extraction(str(device))
    current: dict[str, SplitFeatures] = {}

    def bn_hook(name: str) -> Any:
        def hook(module: Any, args: tuple[Any, ...]) -> None:
            if args and isinstance(args[0], torch.Tensor) and args[0].ndim >= 2:
                result.bn_layers.setdefault(name, module)
                current["split"].bn[name].add(args[0])

        return hook

    def head_hook(_module: Any, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            result.head_seen = True
            current["split"].features.append(args[0].detach().flatten(1).float().cpu())

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            handles.append(module.register_forward_pre_hook(bn_hook(name)))
    if head is not None:
        handles.append(head.register_forward_pre_hook(head_hook))
    per_sample: float | None = None
    try:
        for split, indices, labels in plan:
            features = SplitFeatures(split.name, len(indices))
            result.splits[split.name] = features
            current["split"] = features
            start = 0
            while start < len(indices):
                # A first batch of a few samples measures the cost; later batches are as large as the
                # budget left allows, so one batch never carries the pass far past the budget.
                size = batch_size if per_sample is not None else min(batch_size, _FIRST_BATCH)
                if per_sample is not None:
                    size = min(size, int((budget_s - (time.perf_counter() - started)) / per_sample))
                if size < 1:
                    result.stopped = (
                        f"the time budget was reached: {features.size} of {len(indices)} planned samples of "
                        f"{split.name!r} were used"
                        + (
                            ", evaluation splits were not sampled"
                            if split.name == "train" and len(plan) > 1
                            else ""
                        )
                    )
                    break
                chunk = indices[start : start + size]
                inputs, kept = _load(split, chunk, labels[start : start + size], features, activity)
                start += size
                if inputs is None:
                    continue
                activity["doing"] = f"the model's forward pass on samples of {split.name!r}"
                before = len(features.features)
                model(inputs.to(device))
                if head is not None and len(features.features) == before:
                    raise RuntimeError(
                        f"the head {type(head).__name__} was not called by the model's forward pass"
                    )
                features.labels.extend(kept)
                per_sample = (time.perf_counter() - started) / max(
                    1, sum(s.size + len(s.failures) for s in result.splits.values())
                )
            if result.stopped:
                break
    finally:
        for handle in handles:
            handle.remove()
    result.seconds = time.perf_counter() - started
    return result


def _load(
    split: Any, chunk: list[int], labels: list[int], features: SplitFeatures, activity: dict[str, str]
) -> tuple[torch.Tensor | None, list[int]]:
    values, kept = [], []
    for index, label in zip(chunk, labels, strict=True):
        activity["doing"] = f"reading and transforming sample {index} of {split.name!r}"
        try:
            value, _ = split.sample(index)
        except Exception as exc:
            features.failures.append((index, f"{type(exc).__name__}: {exc}"))
            continue
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"sample {index} of {split.name!r} is a {type(value).__name__} after the transform, not a "
                "tensor: the model cannot take it (add ToTensor() to the transform)"
            )
        values.append(value)
        kept.append(label)
    if not values:
        return None, []
    try:
        return torch.stack(values), kept
    except RuntimeError as exc:
        shapes = sorted({tuple(v.shape) for v in values})
        raise TypeError(
            f"samples of {split.name!r} have different shapes after the transform ({shapes[:3]}): "
            "they cannot be batched, and a DataLoader over them raises the same way"
        ) from exc
