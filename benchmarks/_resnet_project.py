"""A generated ResNet project for the feature_fit and whole-run benchmarks, and a measured `auditor run`.

The images are 256 px JPEGs (a class colour and shape over noise) in ``image_folder``
splits; the model is torchvision's ResNet-18/50 with random weights (nothing can be
downloaded), its BatchNorm ``num_batches_tracked`` set to 1 so that feature_fit's
pretrained check lets it through: the timing is what a pretrained model costs, the
verdicts are meaningless. Each run is a fresh ``python`` process, so its peak memory
(``ru_maxrss``, plus CUDA's peak when a GPU is used) is its own. The run goes as `auditor
run` runs it: in a supervised worker process where the version has one, whose peak counts.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

MODULE = """
import torch
from torchvision import models, transforms

eval_tf = transforms.Compose([transforms.Resize(224), transforms.CenterCrop(224), transforms.ToTensor(),
                              transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
train_tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                               transforms.ToTensor(),
                               transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])


def build(arch="resnet50", num_classes=10):
    model = getattr(models, arch)(weights=None)
    model.fc = torch.nn.Linear(model.fc.in_features, num_classes)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.num_batches_tracked.fill_(1)  # timing only: counted as pretrained
    return model


def make_optimizer(model, lr=1e-4):
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
"""

RUNNER = r"""
import inspect, json, os, resource, sys, time
from pathlib import Path
from auditor.run.api import run_manifest
args = json.loads(sys.argv[1])
options = dict(args["options"])
# As `auditor run` runs it: in a supervised worker process where this version has one (issue 23).
if "isolated" in inspect.signature(run_manifest).parameters:
    options.setdefault("isolated", os.name == "posix")
started = time.perf_counter()
outcome = run_manifest(Path(args["manifest"]), formats=["json"], output_dir=Path(args["out"]), use_cache=False,
                       **options)
wall = time.perf_counter() - started
# The worker's peak counts too (RUSAGE_CHILDREN: the largest waited-for child).
peak = {"rss_mib": max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF,
                                                                    resource.RUSAGE_CHILDREN)) / 1024}
try:
    import torch
    if torch.cuda.is_available():
        peak["cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
except Exception:
    pass
print(json.dumps({"wall_s": wall, "peak": peak, "report": outcome.report}), flush=True)
from auditor.run._deadline import exit_process
exit_process(0)  # as the CLI ends: a call abandoned at its deadline must not crash the interpreter's exit
"""


def make_images(root: Path, classes: int, per_class: int, seed: int, size: int = 256) -> None:
    from PIL import Image, ImageDraw

    marker = root / ".complete"
    if marker.exists():
        return
    rng = random.Random(seed)
    for k in range(classes):
        folder = root / f"class{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        colour = tuple(rng.randint(40, 215) for _ in range(3))
        for i in range(per_class):
            image = Image.effect_noise((size, size), 40).convert("RGB")
            pen = ImageDraw.Draw(image)
            x, y, r = rng.randint(60, 196), rng.randint(60, 196), rng.randint(30, 60)
            (pen.ellipse if k % 2 else pen.rectangle)((x - r, y - r, x + r, y + r), fill=colour)
            image.save(folder / f"{i:05d}.jpg", quality=85)
    marker.write_text("ok", encoding="utf-8")


def make_project(root: Path, arch: str, classes: int, train_per_class: int, val_per_class: int) -> Path:
    make_images(root / "train", classes, train_per_class, seed=1)
    make_images(root / "val", classes, val_per_class, seed=2)
    (root / "bench_model.py").write_text(MODULE, encoding="utf-8")
    manifest = {
        "version": 1,
        "pythonpath": ["."],
        "model": {"factory": "bench_model:build", "kwargs": {"arch": arch, "num_classes": classes}},
        "optimizer": {"factory": "bench_model:make_optimizer"},
        "loss": {"factory": "torch.nn:CrossEntropyLoss"},
        "data": {
            "train": {"format": "image_folder", "root": "train", "transform": "bench_model:train_tf"},
            "val": {"format": "image_folder", "root": "val", "transform": "bench_model:eval_tf"},
        },
    }
    path = root / f"{arch}.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


def measured_run(manifest: Path, audits: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """``auditor run`` in a fresh process: wall time, peak memory and the report."""
    if audits is not None:
        raw = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        raw["audits"] = audits
        manifest = manifest.with_name(manifest.stem + "-bench.yaml")
        manifest.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    args = {"manifest": str(manifest), "out": str(manifest.parent / "reports"), "options": options}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(args)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
