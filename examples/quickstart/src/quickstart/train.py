"""Optimizer factory, called with the model as training would."""

from __future__ import annotations

import torch


def make_optimizer(model: torch.nn.Module, lr: float = 0.01) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(trainable, lr=lr, momentum=0.9)
