"""The numbers feature_fit judges by: LogME, leave-one-out k-NN accuracy, Wilson intervals,
a per-class domain classifier, and the BatchNorm divergence.

Pure functions of tensors (NumPy where a loop of tiny linear algebra is clearer);
nothing here calls user code. Only imported from inside the audit's ``run``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "Accuracy",
    "bn_divergence",
    "class_shift",
    "knn_accuracy",
    "logme",
    "wilson",
]

#: Per-channel divergences above this are clipped before averaging: one dead channel
#: (running variance ~0) must not decide a layer's score on its own.
_CHANNEL_CLIP = 50.0


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.value, 4),
            "ci95": [round(self.low, 4), round(self.high, 4)],
            "n": self.total,
        }


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at small ``total`` and near 0 or 1)."""
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _normalized(features: torch.Tensor) -> torch.Tensor:
    x = features.double()
    x = x - x.mean(dim=0, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _standardized(features: torch.Tensor) -> torch.Tensor:
    x = features.double()
    return (x - x.mean(dim=0, keepdim=True)) / x.std(dim=0, keepdim=True).clamp_min(1e-12)


def _loo_knn_correct(x: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per sample: does the majority of its ``k`` nearest others (cosine) carry its label?"""
    n = x.shape[0]
    k = max(1, min(k, n - 1))
    sims = x @ x.T
    sims.fill_diagonal_(-math.inf)
    nearest = sims.topk(k, dim=1).indices
    votes = labels[nearest]  # [n, k]
    classes = int(labels.max()) + 1
    counts = torch.zeros(n, classes, dtype=torch.float64)
    # The nearest neighbour breaks ties: it adds a half vote.
    counts.scatter_add_(1, votes, torch.ones_like(votes, dtype=torch.float64))
    counts.scatter_add_(1, votes[:, :1], torch.full((n, 1), 0.5, dtype=torch.float64))
    return counts.argmax(dim=1) == labels


def _loo_centroid_correct(x: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Per sample: is it nearer the mean of its own side (itself left out) than the other side's mean?"""
    n_side = torch.bincount(side, minlength=2).double()
    sums = torch.stack([x[side == s].sum(dim=0) for s in (0, 1)])  # [2, d]
    centres = sums.unsqueeze(0).repeat(x.shape[0], 1, 1)  # [n, 2, d]
    own = torch.arange(x.shape[0])
    centres[own, side] -= x
    counts = n_side.unsqueeze(0).repeat(x.shape[0], 1)
    counts[own, side] -= 1
    centres = centres / counts.clamp_min(1).unsqueeze(2)
    distance = (centres - x.unsqueeze(1)).norm(dim=2)  # [n, 2]
    return distance.argmin(dim=1) == side


def knn_accuracy(features: torch.Tensor, labels: torch.Tensor, k: int = 5) -> Accuracy:
    """Leave-one-out ``k``-NN accuracy (cosine on centred features) with its Wilson interval."""
    if features.shape[0] < 2:
        return Accuracy(0, 0, 0.0, 1.0)
    correct = int(_loo_knn_correct(_normalized(features), labels.long(), k).sum())
    total = int(features.shape[0])
    return Accuracy(correct, total, *wilson(correct, total))


def logme(features: torch.Tensor, labels: torch.Tensor) -> float:
    """LogME (You et al., ICML 2021): the log marginal evidence per sample of a Bayesian linear model
    of the one-hot labels on the features, maximised over its two precisions; averaged over classes.

    Higher is better; it ranks features for one task, its absolute value has no fixed scale.
    """
    f = features.double().numpy()
    y = labels.long().numpy()
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    scores = []
    for k in range(int(y.max()) + 1):
        target = (y == k).astype(np.float64)
        x = u.T @ target
        x2 = x**2
        residual_x2 = float(target @ target - x2.sum())
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
            res2 = float((x2 / (1 + sigma / t) ** 2).sum()) + residual_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t < 1e-3:
                break
        # Directions beyond the sample's rank have sigma 0: each adds log(alpha).
        logdet = float(np.log(alpha + beta * sigma).sum()) + (d - sigma.size) * math.log(alpha)
        evidence = (
            d / 2 * math.log(alpha)
            + n / 2 * math.log(beta)
            - 0.5 * logdet
            - beta / 2 * res2
            - alpha / 2 * m2
            - n / 2 * math.log(2 * math.pi)
        )
        scores.append(evidence / n)
    return float(np.mean(scores))


def class_shift(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    other: torch.Tensor,
    other_labels: torch.Tensor,
    min_per_side: int = 4,
) -> tuple[Accuracy, list[dict[str, Any]]]:
    """A domain classifier per class: leave-one-out nearest-centroid telling ``train`` from ``other``
    samples of the same class, on equal numbers of each, pooled over classes (0.5: indistinguishable).

    A linear rule on standardised features: a shift of the whole split (lighting, a sensor) moves
    every sample the same way, which a centroid sees through per-sample variation a k-NN vote
    drowns in; not a cosine, which cannot see a change of scale.

    Within a class, so that different class proportions (LD003's concern) do not count as a shift.
    Returns the pooled accuracy and the per-class rows, most different first.
    """
    both = _standardized(torch.cat([train, other]))
    a, b = both[: train.shape[0]], both[train.shape[0] :]
    correct = total = 0
    rows = []
    generator = torch.Generator().manual_seed(0)
    for cls in sorted(set(train_labels.tolist()) & set(other_labels.tolist())):
        left = a[train_labels == cls]
        right = b[other_labels == cls]
        m = min(left.shape[0], right.shape[0])
        if m < min_per_side:
            continue
        left = left[torch.randperm(left.shape[0], generator=generator)[:m]]
        right = right[torch.randperm(right.shape[0], generator=generator)[:m]]
        x = torch.cat([left, right])
        side = torch.cat([torch.zeros(m, dtype=torch.long), torch.ones(m, dtype=torch.long)])
        hits = int(_loo_centroid_correct(x, side).sum())
        correct += hits
        total += 2 * m
        rows.append({"class": int(cls), "accuracy": round(hits / (2 * m), 4), "n": 2 * m})
    rows.sort(key=lambda r: -r["accuracy"])
    return Accuracy(correct, total, *wilson(correct, total)), rows


def bn_divergence(
    mean: torch.Tensor, var: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor, eps: float
) -> float:
    """Mean over channels of KL( N(data mean, data var) || N(running mean, running var) ).

    0 when the data look like what the layer was trained on; per channel it grows with the
    squared mean shift in units of the stored standard deviation and with the variance ratio.
    """
    v = var.double() + eps
    vr = running_var.double().clamp_min(0) + eps
    ratio = v / vr
    kl = 0.5 * (ratio + (mean.double() - running_mean.double()) ** 2 / vr - 1 - ratio.log())
    return float(kl.clamp(0, _CHANNEL_CLIP).mean())
