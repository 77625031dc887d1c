"""split_leakage's model stage: images/s per resolution, and whether model features rank planted copies first.

Speed (``--speed``): torchvision ResNet-18 and ResNet-50 (weights=None: the speed does not
depend on the weights) in ``eval()`` under ``torch.inference_mode`` on 2 threads, batches of
32, at 64/96/112/160/224 px; plus the loading cost (PIL decode of a 256 px JPEG, RGB,
resize) that model_features adds per image.

Ranks (``--ranks``): 400 train images rendered like benchmarks/leakage.py's, and in val
50 unrelated images plus 20 each of centre crops (80% of each side), random crops (70%)
and 5-10 degree rotations with the centre kept, of train images. For each planted copy the
rank of its true train image among the 400 by cosine of the penultimate features
(1 = first), for: ResNet-18 at random init (the BatchNorm statistics at their initial
values), the same with BatchNorm statistics recomputed on the train images (no gradient:
what a user's random-init model has after a few training steps), and a ResNet-18 trained
for ``--train-s`` seconds to tell the train images apart under crops and rotations. Nothing
is downloaded: real pretrained weights would do better than any row here.

    .venv/bin/python benchmarks/model_features.py --speed
    .venv/bin/python benchmarks/model_features.py --ranks --train-s 60
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from auditor_plugins.split_leakage.model_features import IMAGENET, load_image
from auditor_plugins.split_leakage.vector_index import VectorIndex

RESOLUTIONS = (64, 96, 112, 160, 224)
THREADS = 2


def speed() -> None:
    from PIL import Image
    from torchvision import models

    torch.set_num_threads(THREADS)
    print(f"forward pass, batches of 32, {THREADS} threads (images/s of the fastest batch; higher is better)")
    print(f"{'model':<10}" + "".join(f"{r:>8} px" for r in RESOLUTIONS))
    for name in ("resnet18", "resnet50"):
        model = getattr(models, name)(weights=None).eval()
        cells = []
        for resolution in RESOLUTIONS:
            batch = torch.randn(32, 3, resolution, resolution)
            with torch.inference_mode():
                model(batch)  # warm-up: allocator, kernels for this shape
                # The fastest batch of ~3 s of them: the machine is shared, the slow ones were disturbed.
                best, started = float("inf"), time.perf_counter()
                while time.perf_counter() - started < 3:
                    began = time.perf_counter()
                    model(batch)
                    best = min(best, time.perf_counter() - began)
            cells.append(32 / best)
        print(f"{name:<10}" + "".join(f"{c:11.1f}" for c in cells), flush=True)
    from leakage import _render

    buffer = io.BytesIO()
    _render(0).save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    folder = Path(__file__).resolve().parent / ".data" / "model_features"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "one.jpg").write_bytes(data)
    cells = []
    for resolution in RESOLUTIONS:
        started, count = time.perf_counter(), 0
        while time.perf_counter() - started < 1:
            load_image(str(folder / "one.jpg"), resolution)
            count += 1
        cells.append(count / (time.perf_counter() - started))
    print(f"{'loading':<10}" + "".join(f"{c:11.1f}" for c in cells) + "   (256 px JPEG, 1 thread)")
    _ = Image


def _planted(seed: int = 0) -> tuple[list[Any], list[Any], list[tuple[str, int]]]:
    """Train images, val images, and per val image (kind, index of its train source or -1)."""
    from leakage import _render
    from PIL import Image

    rng = random.Random(seed)
    train = [_render(1000 + i) for i in range(400)]
    val: list[Any] = []
    truth: list[tuple[str, int]] = []
    for i in range(50):
        val.append(_render(9000 + i))
        truth.append(("unrelated", -1))
    sources = rng.sample(range(400), 60)
    for j, source in enumerate(sources):
        image = train[source]
        side = image.size[0]
        if j < 20:
            kind, keep = "centre crop 80%", int(side * 0.8)
            x = y = (side - keep) // 2
            copy = image.crop((x, y, x + keep, y + keep))
        elif j < 40:
            kind, keep = "random crop 70%", int(side * 0.7)
            x, y = rng.randint(0, side - keep), rng.randint(0, side - keep)
            copy = image.crop((x, y, x + keep, y + keep))
        else:
            kind = "rotation 5-10 deg"
            angle = rng.uniform(5, 10) * rng.choice((-1, 1))
            turned = image.rotate(angle, resample=Image.BILINEAR)
            keep = int(side * 0.8)  # the centre, without the corners the rotation blanked
            x = (side - keep) // 2
            copy = turned.crop((x, x, x + keep, x + keep))
        buffer = io.BytesIO()
        copy.resize((side, side), Image.BILINEAR).save(buffer, format="JPEG", quality=90)
        val.append(Image.open(io.BytesIO(buffer.getvalue())))
        truth.append((kind, source))
    return train, val, truth


def _tensor(images: list[Any], resolution: int) -> torch.Tensor:
    pixels = np.stack([load_image(image, resolution) for image in images])
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(IMAGENET[0]).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET[1]).view(1, 3, 1, 1)
    return (batch - mean) / std


def _features(model: Any, batch: torch.Tensor) -> np.ndarray:
    captured: list[torch.Tensor] = []
    handle = model.fc.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        with torch.inference_mode():
            for start in range(0, len(batch), 64):
                model(batch[start : start + 64])
    finally:
        handle.remove()
    return torch.cat(captured).flatten(1).numpy()


def _train(model: Any, images: list[Any], resolution: int, seconds: float) -> int:
    """Instance discrimination: each train image is its own class, under crops and rotations."""
    from torchvision.transforms import v2

    augment = v2.Compose(
        [v2.RandomResizedCrop(resolution, scale=(0.4, 1.0), antialias=True), v2.RandomRotation(12)]
    )
    head = torch.nn.Linear(model.fc.in_features, len(images))
    model.fc = head
    base = _tensor(images, int(resolution * 1.15))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    steps, started = 0, time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    while time.perf_counter() - started < seconds:
        picked = torch.randint(0, len(images), (64,), generator=generator)
        batch = torch.stack([augment(base[i]) for i in picked])
        loss = torch.nn.functional.cross_entropy(model(batch), picked)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    model.eval()
    return steps


def ranks(train_s: float, resolution: int) -> None:
    from torchvision import models

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    train, val, truth = _planted()
    train_batch, val_batch = _tensor(train, resolution), _tensor(val, resolution)

    def report(label: str, model: Any) -> None:
        started = time.perf_counter()
        index = VectorIndex(512)
        index.add(_features(model, train_batch))
        ids, sims = index.search(_features(model, val_batch), 400)
        seconds = time.perf_counter() - started
        unrelated_best = [float(sims[i, 0]) for i, (kind, _) in enumerate(truth) if kind == "unrelated"]
        print(f"\n{label} ({seconds:.1f} s for 470 images at {resolution} px)")
        print(f"  {'kind':<20} {'top-1':>6} {'top-3':>6} {'median rank':>12} {'worst':>6} {'median cos':>11}")
        for kind in ("centre crop 80%", "random crop 70%", "rotation 5-10 deg"):
            rows = [i for i, (k, _) in enumerate(truth) if k == kind]
            found = [int(np.flatnonzero(ids[i] == truth[i][1])[0]) + 1 for i in rows]
            cosines = [float(sims[i, r - 1]) for i, r in zip(rows, found, strict=True)]
            print(
                f"  {kind:<20} {np.mean([r == 1 for r in found]):6.0%} {np.mean([r <= 3 for r in found]):6.0%} "
                f"{statistics.median(found):12.0f} {max(found):6d} {statistics.median(cosines):11.3f}"
            )
        print(
            f"  unrelated val images: best cosine to any train image median {statistics.median(unrelated_best):.3f}, "
            f"max {max(unrelated_best):.3f}"
        )

    random_init = models.resnet18(weights=None).eval()
    report("ResNet-18, random init (BatchNorm statistics at 0/1)", random_init)
    recalibrated = models.resnet18(weights=None)
    recalibrated.train()
    with torch.no_grad():  # BatchNorm statistics from the train images, nothing else changes
        for module in recalibrated.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # cumulative average
        for start in range(0, len(train_batch), 64):
            recalibrated(train_batch[start : start + 64])
    report("ResNet-18, random init, BatchNorm statistics from the train images", recalibrated.eval())
    if train_s > 0:
        trained = models.resnet18(weights=None)
        steps = _train(trained, train, resolution, train_s)
        trained.fc = torch.nn.Linear(512, 1000)  # features are the head's input either way
        report(f"ResNet-18 trained {train_s:.0f} s ({steps} steps) to tell the train images apart", trained)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--ranks", action="store_true")
    parser.add_argument("--train-s", type=float, default=60.0)
    parser.add_argument("--resolution", type=int, default=112)
    args = parser.parse_args()
    if not (args.speed or args.ranks):
        args.speed = args.ranks = True
    if args.speed:
        speed()
    if args.ranks:
        ranks(args.train_s, args.resolution)


if __name__ == "__main__":
    main()
