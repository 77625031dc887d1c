"""Tiny generated images: each class is a colour tint plus noise, so a model can learn it."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset


def make_split(per_class: int, num_classes: int = 3, size: int = 32, seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    images = torch.rand(len(labels), 3, size, size, generator=generator) * 0.5
    images[torch.arange(len(labels)), labels % 3] += 0.5  # class c brightens channel c
    return TensorDataset((images - 0.5) / 0.25, labels)


def loaders(batch_size: int = 8) -> tuple[DataLoader, DataLoader]:
    train = DataLoader(make_split(12, seed=0), batch_size=batch_size, shuffle=True)
    val = DataLoader(make_split(4, seed=1), batch_size=batch_size)
    return train, val
