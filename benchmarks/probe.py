"""gradient_probe cost: the default probe of a ResNet-18 at 64 px, batch 8, against a plain training loop.

Targets (issue 5): wall time <= 1.5 x (the probe's own steps x measured step time) + model build,
i.e. bookkeeping costs at most half a step; the default configuration finishes in < 60 s on CPU.
The step time is measured twice: inside the probe (its own steps, data loading included for the
probe steps) and by a plain loop written here (DataLoader + forward + backward + SGD step, no
auditor code), so the bound does not rest on the probe timing itself.

Run: .venv/bin/python benchmarks/probe.py [--device auto|cpu|cuda] [--repeat N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA

ROOT = DATA / "probe"
CLASSES = {"cat": 40, "dog": 40, "fox": 40}
MODULE = """
import torch
from torchvision import models, transforms

tf = transforms.Compose([transforms.RandomResizedCrop(64, scale=(0.7, 1.0)), transforms.RandomHorizontalFlip(),
                         transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])


def build(num_classes=3):
    model = models.resnet18(weights=None)
    model.fc = torch.nn.Linear(512, num_classes)
    return model


def make_optimizer(model, lr=0.01):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
"""


def make_project(device: str) -> Path:
    from PIL import Image, ImageDraw

    marker = ROOT / ".complete"
    if not marker.exists():
        rng = random.Random(5)
        for k, (name, count) in enumerate(CLASSES.items()):
            (ROOT / "train" / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = Image.new("RGB", (72, 72), tuple(rng.randint(30, 220) for _ in range(3)))
                pen = ImageDraw.Draw(image)
                x, y, r = rng.randint(16, 56), rng.randint(16, 56), rng.randint(8, 16)
                shape = pen.ellipse if k == 0 else pen.rectangle if k == 1 else pen.chord
                if k == 2:
                    pen.chord((x - r, y - r, x + r, y + r), 0, 180, fill=(250, 120, 20))
                else:
                    shape((x - r, y - r, x + r, y + r), fill=tuple(rng.randint(0, 255) for _ in range(3)))
                image.save(ROOT / "train" / name / f"{i:03d}.jpg", quality=90)
        (ROOT / "src").mkdir(parents=True, exist_ok=True)
        (ROOT / "src" / "bench_probe.py").write_text(MODULE, encoding="utf-8")
        marker.touch()
    manifest = ROOT / "audit.yaml"
    manifest.write_text(
        "version: 1\npythonpath: [src]\nmodel: {factory: 'bench_probe:build'}\n"
        "optimizer: {factory: 'bench_probe:make_optimizer'}\nloss: {factory: 'torch.nn:CrossEntropyLoss'}\n"
        "data:\n  train: {format: image_folder, root: train, transform: 'bench_probe:tf'}\n"
        f"audits:\n  gradient_probe: {{device: {device}}}\n",
        encoding="utf-8",
    )
    return manifest


def plain_step_time(device_name: str, steps: int = 12) -> float:
    """Median step of an ordinary training loop over the same images, model and optimizer."""
    import torch
    from torchvision.datasets import ImageFolder

    sys.path.insert(0, str(ROOT / "src"))
    import bench_probe

    device = torch.device("cuda" if device_name in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    model = bench_probe.build().to(device).train()
    optimizer = bench_probe.make_optimizer(model)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        ImageFolder(str(ROOT / "train"), bench_probe.tf), batch_size=8, shuffle=True
    )
    batches = iter(loader)
    times = []
    for step in range(steps + 2):
        started = time.perf_counter()
        inputs, targets = next(batches)
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        loss.item()  # the step is done when its result is on the host (a CUDA sync)
        if step >= 2:  # the first steps pay one-off allocation and kernel selection
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--repeat", type=int, default=1, help="probe runs (the best is kept)")
    args = parser.parse_args()
    started = time.perf_counter()
    import torch

    print(f"import torch: {time.perf_counter() - started:.2f} s; torch threads: {torch.get_num_threads()}")
    manifest = make_project(args.device)
    from auditor.run.api import run_manifest

    best = None
    for _ in range(args.repeat):
        began = time.perf_counter()
        outcome = run_manifest(
            manifest, only=["gradient_probe"], formats=["json"], output_dir=ROOT / "reports", use_cache=False
        )
        wall = time.perf_counter() - began
        (audit,) = outcome.report["audits"]
        if best is None or wall < best[0]:
            best = (wall, audit, outcome)
    assert best is not None
    wall, audit, outcome = best
    evidence = audit["evidence"]
    timing = evidence["timing"]
    probe_steps, overfit_steps = evidence["steps_done"], len(evidence["overfit_curve"])
    own_steps = timing["probe_steps_s"] + timing["overfit_steps_s"]
    audit_s = audit["duration_s"]
    print(
        f"device: {evidence['device']}; steps: {probe_steps} probe + {overfit_steps} overfit; "
        f"findings: {sorted(outcome.codes())}"
    )
    print(f"audit wall: {audit_s:.2f} s (run_manifest incl. manifest load and report: {wall:.2f} s)")
    print(f"model build (shared model + 2 copies + optimizers): {timing['build_s']:.2f} s")
    print(
        f"own steps measured inside the probe: {own_steps:.2f} s "
        f"(probe median {timing['step_time_s']:.3f} s/step, data loading included)"
    )
    print(
        f"bookkeeping (snapshots, grad norms, hooks, checks) measured inside: {timing['bookkeeping_s']:.3f} s"
    )
    overhead = audit_s - timing["build_s"] - own_steps
    per_step = own_steps / max(1, probe_steps + overfit_steps)
    print(f"everything else in the audit wall: {overhead:.2f} s = {overhead / per_step:.2f} steps")
    bound = 1.5 * own_steps + timing["build_s"]
    print(f"bound 1.5 x own steps + build = {bound:.2f} s -> {'PASS' if audit_s <= bound else 'FAIL'}")
    reference = plain_step_time(args.device)
    reference_bound = 1.5 * (probe_steps + overfit_steps) * reference + timing["build_s"]
    print(
        f"plain training loop (no auditor): {reference:.3f} s/step median; bound with it "
        f"1.5 x {probe_steps + overfit_steps} x {reference:.3f} + build = {reference_bound:.2f} s -> "
        f"{'PASS' if audit_s <= reference_bound else 'FAIL'}"
    )
    print(f"default configuration under 60 s: {audit_s:.2f} s -> {'PASS' if audit_s < 60 else 'FAIL'}")


if __name__ == "__main__":
    main()
