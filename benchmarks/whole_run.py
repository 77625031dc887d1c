"""A whole default `auditor run` on a generated ResNet-50 project: each audit's time, the total, peak memory.

Every audit runs with its defaults (as on a manifest without an ``audits:`` section), no
cache. The project: ``--images`` JPEGs (256 px, 10 classes, 90% train / 10% val), ResNet-50
with random weights (BatchNorm counters set so feature_fit runs as on pretrained weights),
AdamW, the ImageNet train/eval transforms. Every later issue that adds work to a default run
quotes this before and after. The issue's size is 20,000 images (the default); say which
size a quoted number used.

Run: python benchmarks/whole_run.py [--images 20000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA
from _resnet_project import make_project, measured_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    args = parser.parse_args()
    classes = 10
    train_per_class = max(1, args.images * 9 // 10 // classes)
    val_per_class = max(1, args.images // 10 // classes)
    root = DATA / f"whole_run_{args.images}"
    manifest = make_project(root, "resnet50", classes, train_per_class, val_per_class)
    result = measured_run(manifest)
    report = result["report"]
    print(
        f"{classes * (train_per_class + val_per_class):,} images (train {classes * train_per_class:,}, "
        f"val {classes * val_per_class:,}), ResNet-50, device {report['environment'].get('device')}"
    )
    print(f"{'audit':<20} {'status':<9} {'seconds':>8}")
    for audit in report["audits"]:
        print(f"{audit['name']:<20} {audit['status']:<9} {audit.get('duration_s') or 0:>8.1f}")
    print(f"{'total (run)':<30} {report['duration_s']:>8.1f}")
    print(f"{'total (process)':<30} {result['wall_s']:>8.1f}")
    peak = result["peak"]
    print(
        f"peak memory: {peak['rss_mib']:.0f} MiB RSS"
        + (f", {peak['cuda_mib']:.0f} MiB CUDA" if "cuda_mib" in peak else "")
    )


if __name__ == "__main__":
    main()
