"""The setups of issue 22 (never a false pass, round 2), each run through `auditor run` in a subprocess.

Prints one row per setup: exit code, audit statuses that are not `passed`, and the codes reported
(code/severity). Run on the base commit and on the branch to fill the issue's before/after table:

    python benchmarks/contracts.py            # all setups
    python benchmarks/contracts.py float_labels nll_logits

Each setup is a real project in a temporary folder: images, a module of factories, a manifest.
Nothing is downloaded (every model is built with ``weights=None``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from auditor.testing import make_image_folder, write_manifest

FACTORIES = textwrap.dedent('''
    import torch
    from torch import nn
    from torchvision import models, transforms

    MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    rgb_tf = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    gray_tf = transforms.Compose([transforms.Resize((32, 32)), transforms.Grayscale(1), transforms.ToTensor()])
    double_tf = transforms.Compose([rgb_tf, transforms.Normalize(MEAN, STD)])


    def small(num_classes=3):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(8, num_classes))


    def resnet(num_classes=3):
        model = models.resnet18(weights=None)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model


    def adam(model, lr=1e-3):
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


    def adam_all(model, lr=1e-3):
        return torch.optim.Adam(model.parameters(), lr=lr)


    def freeze_head_by_wrong_name(model, lr=1e-3):
        # the recipe was written for a model whose head is called `classifier`; this one's is `fc`
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("classifier")
        return torch.optim.Adam(model.parameters(), lr=lr)


    def freeze_backbone(model, lr=1e-3):
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("fc")
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


    class FloatLabels(torch.utils.data.Dataset):
        """Class indices stored as floats (read from a CSV column of 0.0/1.0/2.0)."""

        def __init__(self, n=24):
            g = torch.Generator().manual_seed(0)
            self.x = torch.randn(n, 3, 32, 32, generator=g)
            self.y = [float(i % 3) for i in range(n)]

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i], self.y[i]


    def float_labels():
        return FloatLabels()


    def wrong_order_weights():
        # inverse frequency in the order the user listed the classes: normal 400, benign 60, malignant 20;
        # ImageFolder indexes them alphabetically (benign, malignant, normal)
        counts = [400, 60, 20]
        return nn.CrossEntropyLoss(weight=torch.tensor([sum(counts) / c for c in counts]))
''')


def _imagefolder(root: Path, counts: dict[str, int]) -> str:
    make_image_folder(root, counts, size=32)
    return root.name


def _setups() -> dict[str, dict[str, Any]]:
    small = {"model": {"factory": "factories:small"}, "optimizer": {"factory": "factories:adam"}}
    ce = {"loss": {"factory": "torch.nn:CrossEntropyLoss"}}
    # Every built-in audit listed, so that the base commit (where `audits:` selected) runs them all too.
    probe = {
        "label_distribution": {},
        "split_leakage": {},
        "transform_parity": {},
        "frozen_coverage": {},
        "data_loading": {},
        "gradient_probe": {"steps": 3, "overfit_steps": 3, "batch_size": 8},
    }
    rgb = {"train": {"format": "image_folder", "root": "train", "transform": "factories:rgb_tf"}}
    return {
        "audits_allow_list": {
            "what": "`audits:` lists one audit (label_distribution) on a clean 3-class setup",
            "data": {"train": {"a": 8, "b": 8, "c": 8}},
            "manifest": {**small, **ce, "data": rgb, "audits": {"label_distribution": {}}},
        },
        "float_labels": {
            "what": "CrossEntropyLoss, dataset yields class indices as floats",
            "manifest": {
                **small,
                **ce,
                "data": {"train": {"format": "callable", "factory": "factories:float_labels"}},
                "audits": probe,
            },
        },
        "nll_logits": {
            "what": "NLLLoss on raw logits (no LogSoftmax)",
            "data": {"train": {"a": 8, "b": 8, "c": 8}},
            "manifest": {**small, "loss": {"factory": "torch.nn:NLLLoss"}, "data": rgb, "audits": probe},
        },
        "mse_broadcast": {
            "what": "MSELoss, output [B, 1], target [B]",
            "data": {"train": {"a": 8, "b": 8}},
            "manifest": {
                "model": {"factory": "factories:small", "kwargs": {"num_classes": 1}},
                "optimizer": {"factory": "factories:adam"},
                "loss": {"factory": "torch.nn:MSELoss"},
                "data": rgb,
                "audits": probe,
            },
        },
        "grayscale_stem": {
            "what": "Grayscale(1) pipeline into a 3-channel ResNet stem",
            "data": {"train": {"a": 8, "b": 8, "c": 8}},
            "manifest": {
                "model": {"factory": "factories:resnet"},
                "optimizer": {"factory": "factories:adam"},
                **ce,
                "data": {
                    "train": {"format": "image_folder", "root": "train", "transform": "factories:gray_tf"}
                },
                "audits": probe,
            },
        },
        "bce_imbalance": {
            "what": "BCEWithLogitsLoss on 200:10 binary data",
            "data": {"train": {"neg": 200, "pos": 10}},
            "manifest": {
                "model": {"factory": "factories:small", "kwargs": {"num_classes": 1}},
                "optimizer": {"factory": "factories:adam"},
                "loss": {"factory": "torch.nn:BCEWithLogitsLoss"},
                "data": rgb,
                "audits": probe,
            },
        },
        "double_normalize": {
            "what": "Normalize(ImageNet) applied twice",
            "data": {"train": {"a": 8, "b": 8, "c": 8}},
            "manifest": {
                **small,
                **ce,
                "data": {
                    "train": {"format": "image_folder", "root": "train", "transform": "factories:double_tf"}
                },
                "audits": probe,
            },
        },
        "weights_wrong_order": {
            "what": "CrossEntropyLoss(weight=...) in the user's class order, not ImageFolder's",
            "data": {"train": {"normal": 400, "benign": 60, "malignant": 20}},
            "manifest": {
                **small,
                "loss": {"factory": "factories:wrong_order_weights"},
                "data": rgb,
                "audits": probe,
            },
        },
        "optimizer_freezes_all": {
            "what": "optimizer factory freezes by a head name the model lacks (`classifier` on a ResNet)",
            "data": {"train": {"a": 8, "b": 8, "c": 8}},
            "manifest": {
                "model": {"factory": "factories:resnet"},
                "optimizer": {"factory": "factories:freeze_head_by_wrong_name"},
                **ce,
                "data": rgb,
                "audits": probe,
            },
        },
        "optimizer_freezes_backbone": {
            "what": "optimizer factory freezes the whole backbone",
            "data": {"train": {"a": 8, "b": 8, "c": 8}},
            "manifest": {
                "model": {"factory": "factories:resnet"},
                "optimizer": {"factory": "factories:freeze_backbone"},
                **ce,
                "data": rgb,
                "audits": probe,
            },
        },
        "clean": {
            "what": "clean counterpart: small CNN, CrossEntropyLoss, normalized RGB, 3 balanced classes",
            "data": {"train": {"a": 8, "b": 8, "c": 8}},
            "manifest": {**small, **ce, "data": rgb, "audits": probe},
        },
    }


def run_setup(name: str, setup: dict[str, Any], folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True)
    (folder / "factories.py").write_text(FACTORIES, encoding="utf-8")
    for split, counts in setup.get("data", {}).items():
        _imagefolder(folder / split, counts)
    manifest = {"version": 1, "pythonpath": ["."], **setup["manifest"]}
    write_manifest(folder / "audit.yaml", manifest)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "auditor", "run", "audit.yaml", "--format", "json", "--output-dir", "out"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report_path = folder / "out" / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return {
        "setup": name,
        "exit": done.returncode,
        "audits": {a["name"]: a["status"] for a in report.get("audits", [])},
        "codes": sorted({f"{f['code']}/{f['severity']}" for f in report.get("findings", [])}),
        "messages": {f["code"]: f["message"][:160] for f in report.get("findings", [])},
        "tail": "" if report else (done.stdout + done.stderr)[-400:],
    }


def main(argv: list[str]) -> None:
    setups = _setups()
    chosen = argv or list(setups)
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            row = run_setup(name, setups[name], Path(tmp) / name)
            statuses = ", ".join(f"{a}={s}" for a, s in row["audits"].items() if s != "passed")
            print(f"## {name}: {setups[name]['what']}")
            print(f"exit {row['exit']}; audits run: {len(row['audits'])} ({statuses or 'all passed'})")
            print(f"codes: {' '.join(row['codes']) or '-'}")
            for code, message in row["messages"].items():
                if code != "GP011":
                    print(f"  {code}: {message}")
            if row["tail"]:
                print(f"  output: {row['tail']}")
            print(flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
