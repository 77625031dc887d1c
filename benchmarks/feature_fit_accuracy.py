"""Do feature_fit's scores (and GP020's) track reality? Scores and verdicts vs the accuracy of a real fine-tune.

Pretrains the tests' small BatchNorm CNN on the generated ``colour`` domain
(tests/_transfer_domains.py), then for each target setup: runs ``auditor.check`` (feature_fit
and gradient_probe) for the scores and the verdict, and fine-tunes a fresh copy for real on
the same training split, measuring accuracy on held-out images of the same setup.

Run: python benchmarks/feature_fit_accuracy.py [--steps 150]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import _transfer_domains as td


def _scores(result: Any) -> str:
    audits = {a["name"]: a.get("evidence") or {} for a in result.report["audits"]}
    ff = audits.get("feature_fit", {})
    parts = []
    sep = ff.get("separability")
    if sep:
        knn = sep["knn"]
        parts.append(
            f"5-NN {knn['accuracy']:.2f} [{knn['ci95'][0]:.2f}, {knn['ci95'][1]:.2f}] (chance {sep['chance']:.2f}), "
            f"LogME {sep['logme']:.2f}"
        )
    rows = ff.get("bn_divergence") or []
    if rows:
        parts.append(f"BN KL max {max(r['divergence'] for r in rows):.3f}")
    for name, shift in (ff.get("shift") or {}).items():
        parts.append(
            f"{name} vs train {shift['accuracy']:.2f} [{shift['ci95'][0]:.2f}, {shift['ci95'][1]:.2f}]"
        )
    watch = audits.get("gradient_probe", {}).get("pretrained_watch")
    if watch and watch.get("blocks"):
        ratio = max(b["median_ratio"] or 0 for b in watch["blocks"])
        parts.append(f"update {ratio:.2%}/step, CKA {watch['cka']}")
    return "; ".join(parts)


def _verdict(result: Any) -> str:
    codes = [
        f"{f.code} {f.severity.value if hasattr(f.severity, 'value') else f.severity}"
        for f in result.findings
        if f.code.startswith("FF") or f.code == "GP020"
    ]
    return ", ".join(codes) or "none"


def main() -> None:
    import torch

    import auditor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps (batch 16)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ff-accuracy-"))
    weights = td.pretrain(str(folder / "pretrained.pt"))
    warm = (1.4, 1.0, 0.5)
    setups = [
        # name, domain, train per class, val lighting, freeze, optimizer, fine-tune steps, held-out lighting
        (
            "colour target, head only (Adam 1e-3)",
            "colour",
            40,
            (1, 1, 1),
            True,
            td.head_adam,
            args.steps,
            (1, 1, 1),
        ),
        (
            "texture target, head only (Adam 1e-3)",
            "texture",
            40,
            (1, 1, 1),
            True,
            td.head_adam,
            args.steps,
            (1, 1, 1),
        ),
        (
            "texture target, full fine-tune (backbone 1e-4, head 1e-3)",
            "texture",
            40,
            (1, 1, 1),
            False,
            lambda m: td.split_adam(m, weight_decay=1e-4),
            args.steps,
            (1, 1, 1),
        ),
        ("colour target, val under a warm light", "colour", 40, warm, True, td.head_adam, args.steps, warm),
        (
            "colour target, SGD(lr=0.1, momentum=0.9) on all layers",
            "colour",
            40,
            (1, 1, 1),
            False,
            td.sgd,
            20,
            (1, 1, 1),
        ),
        (
            "colour target, backbone 1e-4 / head 1e-3 (Adam)",
            "colour",
            40,
            (1, 1, 1),
            False,
            lambda m: td.split_adam(m, weight_decay=1e-4),
            20,
            (1, 1, 1),
        ),
        (
            "texture target, full fine-tune on 10 per class, no aug/wd (Adam 1e-3)",
            "texture",
            10,
            (1, 1, 1),
            False,
            td.head_adam,
            args.steps,
            (1, 1, 1),
        ),
    ]
    print("| setup | scores | verdict | real fine-tune accuracy (held-out) |")
    print("| --- | --- | --- | --- |")
    for name, domain, per_class, lighting, freeze, make_opt, steps, held_light in setups:
        train = td.make_dataset(domain, per_class, seed=1)
        val = td.make_dataset(domain, 25, seed=2, lighting=lighting)
        model = td.make_model(weights, freeze=freeze)
        result = auditor.check(
            model=model,
            optimizer=make_opt(model),
            loss=torch.nn.CrossEntropyLoss(),
            train=train,
            val=val,
            only=["feature_fit", "gradient_probe"],
            gradient_probe={"steps": 20, "batch_size": 8, "overfit_steps": 0},
            feature_fit={"thresholds": {"many_parameters": 100_000}},
        )
        fresh = td.make_model(weights, freeze=freeze)
        held = td.make_dataset(domain, 50, seed=3, lighting=held_light)
        accuracy = td.fine_tune(fresh, make_opt(fresh), train, held, steps)
        extra = ""
        if held_light != (1, 1, 1):
            fresh = td.make_model(weights, freeze=freeze)
            same = td.fine_tune(fresh, make_opt(fresh), train, td.make_dataset(domain, 50, seed=3), steps)
            extra = f" (on held-out images lit like train: {same:.2f})"
        print(
            f"| {name} | {_scores(result)} | {_verdict(result)} | {accuracy:.2f} after {steps} steps{extra} |"
        )
    print("chance: 0.25 (4 balanced classes)")


if __name__ == "__main__":
    main()
