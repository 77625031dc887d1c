"""Two generated image domains, a small BatchNorm CNN pretrained on one of them, and its factories.

Copied into a test project (and imported by benchmarks/feature_fit_accuracy.py) so that
manifests can name ``transfer_domains:make_model`` and friends. No download: the
"pretrained" weights are made by :func:`pretrain` in a few seconds on the ``colour``
domain and loaded by :func:`make_model` from the file its ``weights`` argument names.

Domains (3x32x32 tensors in 0..1, four classes):

``colour``
    the class is the image's base colour (jittered); a faint texture drawn at random,
    independent of the class, is a nuisance the pretrained network learns to ignore.
``texture``
    the class is a faint texture (horizontal, vertical, diagonal stripes, checkerboard)
    under a random colour tint: what the pretrained features do not see.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PALETTE = torch.tensor([[0.85, 0.2, 0.2], [0.2, 0.75, 0.25], [0.2, 0.3, 0.85], [0.85, 0.8, 0.2]])
SIZE = 32


def _textures(kind: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """[n, 32, 32] patterns in -1..1: 0 horizontal, 1 vertical, 2 diagonal stripes, 3 checkerboard."""
    ys, xs = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    period = 2 * math.pi / 6
    p = phase[:, None, None]
    horizontal = torch.sin(ys * period + p)
    vertical = torch.sin(xs * period + p)
    diagonal = torch.sin((xs + ys) * period / 1.4 + p)
    checker = torch.sign(torch.sin(xs * period + p)) * torch.sign(torch.sin(ys * period))
    stack = torch.stack([horizontal, vertical, diagonal, checker], dim=1)  # [n, 4, H, W]
    return stack[torch.arange(kind.shape[0]), kind]


def generate(
    domain: str,
    per_class: int,
    seed: int,
    lighting: tuple[float, float, float] = (1.0, 1.0, 1.0),
    noise: float = 0.06,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` images of each of the four classes of ``domain``: (images [n,3,32,32], labels [n]).

    ``lighting`` multiplies the red, green and blue channels: (1.3, 1.0, 0.6) is a warm light.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(4).repeat_interleave(per_class)
    n = labels.shape[0]
    phase = torch.rand(n, generator=g) * 2 * math.pi
    if domain == "colour":
        base = PALETTE[labels] + 0.12 * torch.randn(n, 3, generator=g)
        pattern = _textures(torch.randint(0, 4, (n,), generator=g), phase)
        amplitude = 0.12
    elif domain == "texture":
        base = 0.25 + 0.5 * torch.rand(n, 3, generator=g)
        pattern = _textures(labels, phase)
        amplitude = 0.12
    else:
        raise ValueError(f"domain must be 'colour' or 'texture', not {domain!r}")
    images = (
        base[:, :, None, None]
        + amplitude * pattern[:, None]
        + noise * torch.randn(n, 3, SIZE, SIZE, generator=g)
    )
    images = (images * torch.tensor(lighting, dtype=torch.float32)[:, None, None]).clamp(0, 1)
    order = torch.randperm(n, generator=g)
    return images[order].contiguous(), labels[order].contiguous()


class Domain(torch.utils.data.Dataset):
    """A generated split: ``targets`` and ``classes`` as torchvision datasets expose them."""

    def __init__(
        self,
        domain: str = "colour",
        per_class: int = 40,
        seed: int = 0,
        lighting: tuple[float, ...] = (1, 1, 1),
    ):
        self.images, labels = generate(domain, per_class, seed, tuple(lighting))
        self.targets = labels.tolist()
        self.classes = [f"{domain}{i}" for i in range(4)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], self.targets[index]


def make_dataset(
    domain: str = "colour", per_class: int = 40, seed: int = 0, lighting: tuple[float, ...] = (1, 1, 1)
) -> Domain:
    return Domain(domain, per_class, seed, lighting)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class SmallNet(nn.Module):
    """A ResNet-shaped CNN without the shortcuts: stem, three blocks, global pool, ``fc``."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = _block(16, 32)
        self.layer2 = _block(32, 64)
        self.layer3 = _block(64, 96)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(96, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))


def make_model(weights: str | None = None, num_classes: int = 4, freeze: bool = False) -> SmallNet:
    """The network with the pretrained backbone loaded from ``weights`` and a new head."""
    model = SmallNet(num_classes)
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=False)
    if freeze:
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith("fc.")
    return model


def head_adam(model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
    )


def sgd(
    model: nn.Module, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def split_adam(
    model: nn.Module, lr: float = 1e-3, backbone_factor: float = 0.1, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The head at ``lr``, the pretrained backbone ``backbone_factor`` times lower, in its own param group."""
    head = [p for n, p in model.named_parameters() if n.startswith("fc.")]
    backbone = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
    return torch.optim.Adam(
        [{"params": backbone, "lr": lr * backbone_factor}, {"params": head, "lr": lr}],
        weight_decay=weight_decay,
    )


def pretrain(path: str, per_class: int = 80, epochs: int = 2, seed: int = 0) -> str:
    """Train :class:`SmallNet` on the ``colour`` domain and save its state dict at ``path``."""
    torch.manual_seed(seed)
    images, labels = generate("colour", per_class, seed=1000 + seed)
    model = SmallNet(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(labels.shape[0])
        for start in range(0, labels.shape[0], 32):
            batch = order[start : start + 32]
            optimizer.zero_grad()
            loss_fn(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    # A few epochs leave the running statistics half-way from their initial 0/1 (momentum 0.1);
    # a real pretrained network's have converged: re-estimate them over the data, as torchvision's
    # recipes do after training (cumulative average, no gradient).
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    with torch.no_grad():
        for start in range(0, labels.shape[0], 64):
            model(images[start : start + 64])
    for bn in bns:
        bn.momentum = 0.1
    torch.save(model.state_dict(), path)
    return path


def fine_tune(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Domain,
    held_out: Domain,
    steps: int,
    batch: int = 16,
) -> float:
    """``steps`` real training steps on ``train``, then the accuracy on ``held_out`` (eval mode)."""
    torch.manual_seed(0)
    loss_fn = nn.CrossEntropyLoss()
    images, labels = train.images, torch.tensor(train.targets)
    model.train()
    step = 0
    while step < steps:
        order = torch.randperm(labels.shape[0])
        for start in range(0, labels.shape[0], batch):
            if step >= steps:
                break
            picked = order[start : start + batch]
            optimizer.zero_grad()
            loss_fn(model(images[picked]), labels[picked]).backward()
            optimizer.step()
            step += 1
    model.eval()
    with torch.no_grad():
        predicted = model(held_out.images).argmax(dim=1)
    return float((predicted == torch.tensor(held_out.targets)).float().mean())
