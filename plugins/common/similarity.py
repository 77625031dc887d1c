"""How alike two sets of features of the same samples are (feature_fit, gradient_probe's watch)."""

from __future__ import annotations

import torch

__all__ = ["linear_cka"]


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al., 2019) between two feature matrices of the same samples."""
    x = x.double().flatten(1)
    y = y.double().flatten(1)
    x = x - x.mean(dim=0, keepdim=True)
    y = y - y.mean(dim=0, keepdim=True)
    cross = (y.T @ x).norm() ** 2
    denom = (x.T @ x).norm() * (y.T @ y).norm()
    return float(cross / denom) if float(denom) > 0 else float("nan")
