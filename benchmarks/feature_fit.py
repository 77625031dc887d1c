"""feature_fit cost: wall time and peak memory of the audit alone on ResNet-18 and ResNet-50.

Random weights (nothing can be downloaded; their BatchNorm counters are set so the audit
runs as on pretrained weights), 224 px inputs from 256 px JPEGs, 10 classes. Two sizes:
the default sample (25 per class, at most 200 train + 100 val samples) and 1,000 images
(100 per class in train, ``max_eval_samples: 0``), the latter with a budget large enough
not to stop early. Each configuration runs in a fresh process (its own peak memory).
Target (issue 24): the default sample costs at most 60 s on 2 CPU cores for ResNet-50 and
stays under the audit's ``time_budget_s``; the sample size and the confidence interval
of the accuracy estimate are printed.

Run: python benchmarks/feature_fit.py [--arch resnet18 resnet50] [--device auto|cpu|cuda] [--sizes default 1k]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA
from _resnet_project import make_project, measured_run

SIZES = {
    "default": {},
    "1k": {"per_class": 100, "max_samples": 1000, "max_eval_samples": 0, "time_budget_s": 1200},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    root = DATA / "feature_fit"
    print(
        f"{'model':<9} {'sample':<8} {'audit s':>8} {'budget s':>8} {'rss MiB':>8} {'cuda MiB':>8}  "
        "samples (train/val)  5-NN accuracy [95% CI]  device"
    )
    for arch in args.arch:
        manifest = make_project(root, arch, classes=10, train_per_class=100, val_per_class=10)
        for size in args.sizes:
            options = {"device": args.device, **SIZES[size]}
            result = measured_run(manifest, audits={"feature_fit": options}, only=["feature_fit"])
            audit = next(a for a in result["report"]["audits"] if a["name"] == "feature_fit")
            evidence = audit.get("evidence") or {}
            sample = evidence.get("sample", {})
            knn = (evidence.get("separability") or {}).get("knn") or {}
            sizes = sample.get("sizes", {})
            ci = knn.get("ci95") or [float("nan")] * 2
            print(
                f"{arch:<9} {size:<8} {audit['duration_s']:>8.1f} {options.get('time_budget_s', 60):>8g} "
                f"{result['peak']['rss_mib']:>8.0f} {result['peak'].get('cuda_mib', 0):>8.0f}  "
                f"{sizes.get('train', 0):>5}/{sizes.get('val', 0):<13} "
                f"{knn.get('accuracy', float('nan')):.2f} [{ci[0]:.2f}, {ci[1]:.2f}]          "
                f"{sample.get('device', '?')} ({audit['status']})"
            )
            for note in audit.get("notes") or []:
                if "time budget" in note or "budget" in note:
                    print(f"{'':<18} note: {note}")


if __name__ == "__main__":
    main()
