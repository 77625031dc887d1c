"""The tiny Hugging Face setup both examples share: a ViT built from a config and generated images.

Nothing is downloaded: the model is a random-init ``ViTForImageClassification`` from a
small ``ViTConfig``, the processor a ``ViTImageProcessor()`` built in code, and the data a
``datasets.Dataset`` of generated images with a ``ClassLabel`` column. Each class has
its own colour, so a head that trains can learn it within a few steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision import transforms as T

CLASSES = ["cat", "dog", "fox"]
SIZE = 32
#: What the processor below says the weights expect (ViTImageProcessor's defaults).
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]

#: The pipeline set_transform applies (a global, as in the Hugging Face examples: auditor reads it).
train_tf = T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
eval_tf = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])


def images(count: int, seed: int) -> Any:
    """A ``datasets.Dataset`` of ``count`` coloured noise images, classes in turn."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(seed)
    pictures, labels = [], []
    for index in range(count):
        label = index % len(CLASSES)
        base = np.zeros((SIZE, SIZE, 3), dtype=np.int16)
        base[..., label] = 160
        noise = rng.integers(0, 90, (SIZE, SIZE, 3))
        pictures.append(Image.fromarray((base + noise).clip(0, 255).astype(np.uint8)))
        labels.append(label)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    return datasets.Dataset.from_dict({"image": pictures, "label": labels}, features=features)


def train_transform(batch: dict[str, Any]) -> dict[str, Any]:
    batch["pixel_values"] = [train_tf(image.convert("RGB")) for image in batch["image"]]
    return batch


def eval_transform(batch: dict[str, Any]) -> dict[str, Any]:
    batch["pixel_values"] = [eval_tf(image.convert("RGB")) for image in batch["image"]]
    return batch


def collate(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """What the Trainer's data collator gives the model: model(**batch)."""
    return {
        "pixel_values": torch.stack([row["pixel_values"] for row in rows]),
        "labels": torch.tensor([row["label"] for row in rows]),
    }


def vit(num_labels: int = len(CLASSES)) -> Any:
    """A two-layer ViT with 32-wide hidden states, random init, labels named after CLASSES."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=SIZE,
        patch_size=8,
        num_labels=num_labels,
        id2label=dict(enumerate(CLASSES)) if num_labels == len(CLASSES) else None,
        label2id={n: i for i, n in enumerate(CLASSES)} if num_labels == len(CLASSES) else None,
    )
    torch.manual_seed(0)
    return ViTForImageClassification(config)


def processor() -> Any:
    from transformers import ViTImageProcessor

    return ViTImageProcessor(size={"height": SIZE, "width": SIZE}, image_mean=MEAN, image_std=STD)
