"""ResNet-18 with a new head, as a transfer-learning script would build it."""

from __future__ import annotations

import torch
from torchvision.models import resnet18


def build(num_classes: int = 3) -> torch.nn.Module:
    # weights=None keeps the example offline; a real run loads IMAGENET1K_V1 here.
    model = resnet18(weights=None)
    for parameter in model.parameters():
        parameter.requires_grad = False  # planted: the whole backbone is frozen ...
    model.fc = torch.nn.Linear(model.fc.in_features, num_classes)
    return model  # ... and its BatchNorm layers will still update their running stats in train()
