"""A ResNet-18 fine-tuned on tiny generated images, with the loss computed inside training_step."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import resnet18


class Classifier(L.LightningModule):
    """``forgot_softmax=True`` plants a classic bug: the log of raw logits as the loss (NaN at step 1)."""

    def __init__(self, num_classes: int = 3, lr: float = 0.01, forgot_softmax: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = resnet18(weights=None)  # offline: a real project loads IMAGENET1K_V1 here
        self.model.fc = nn.Linear(self.model.fc.in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        if self.hparams.forgot_softmax:
            loss = F.nll_loss(torch.log(logits), labels)  # planted: log of logits, not log_softmax
        else:
            loss = F.cross_entropy(logits, labels)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        self.log("val_loss", F.cross_entropy(self(images), labels))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
