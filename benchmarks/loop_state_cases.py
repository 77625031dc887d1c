"""Issue 26 items 4-6 as a new user meets them: what auditor says for each case, one line per case.

Weights that never loaded, modules left in eval(), learning-rate schedules stepped at the wrong
granularity, and their clean counterparts, through ``auditor run`` (in process, ``run_manifest``),
``auditor.check`` and a real Lightning ``Trainer``. Prints ``case | exit/outcome | codes`` so the
same script run against an older checkout (``PYTHONPATH=<old tree>``) gives the "before" column.

Run: python benchmarks/loop_state_cases.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path
from typing import Any

PROJECT = textwrap.dedent("""
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, keep_eval=False):
            super().__init__()
            self.keep_eval = keep_eval
            self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
            self.fc = nn.Linear(8, 3)

        def train(self, mode=True):
            super().train(mode)
            if self.keep_eval:
                self.backbone.eval()
            return self

        def forward(self, x):
            return self.fc(self.backbone(x))


    def build(checkpoint=None, keep_eval=False):
        model = Net(keep_eval)
        if checkpoint:
            model.load_state_dict(torch.load(checkpoint, weights_only=True), strict=False)
        return model


    def sgd(model, lr=0.1):
        return torch.optim.SGD(model.parameters(), lr=lr)


    def growing_warmup(optimizer, warmup=5):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (step + 1) / warmup)
""")

EPOCHS = 4  # 12 images / batch 4 = 3 steps per epoch


def codes(findings: Any) -> str:
    wanted = ("FZ010", "FZ011", "FZ012", "GP025", "GP026", "GP027", "GP028")
    seen = sorted({(f["code"] if isinstance(f, dict) else f.code) for f in findings})
    mine = [c for c in seen if c in wanted]
    return (
        ", ".join(mine)
        if mine
        else "none of FZ010-FZ012/GP025-GP028" + (f" (others: {', '.join(seen)})" if seen else "")
    )


def manifest_cases(root: Path) -> list[tuple[str, dict[str, Any], list[str]]]:
    cosine = "torch.optim.lr_scheduler:CosineAnnealingLR"
    onecycle = "torch.optim.lr_scheduler:OneCycleLR"
    return [
        (
            "DDP checkpoint, strict=False, in the model factory",
            {"checkpoint": str(root / "ddp.pt")},
            ["frozen_coverage"],
        ),
        ("head-only checkpoint, strict=False", {"checkpoint": str(root / "head.pt")}, ["frozen_coverage"]),
        (
            "matching checkpoint, strict=False (clean)",
            {"checkpoint": str(root / "plain.pt")},
            ["frozen_coverage"],
        ),
        ("train() override leaves the trainable backbone in eval", {"keep_eval": True}, ["frozen_coverage"]),
        (
            "lr_scheduler: cosine T_max=epochs, interval step",
            {
                "lr_scheduler": {
                    "factory": cosine,
                    "kwargs": {"T_max": EPOCHS},
                    "interval": "step",
                    "epochs": EPOCHS,
                }
            },
            ["gradient_probe"],
        ),
        (
            "lr_scheduler: cosine T_max=epochs, interval epoch (clean)",
            {
                "lr_scheduler": {
                    "factory": cosine,
                    "kwargs": {"T_max": EPOCHS},
                    "interval": "epoch",
                    "epochs": EPOCHS,
                }
            },
            ["gradient_probe"],
        ),
        (
            "lr_scheduler: OneCycleLR in steps, interval epoch",
            {
                "lr_scheduler": {
                    "factory": onecycle,
                    "kwargs": {"max_lr": 0.1, "total_steps": 120},
                    "epochs": EPOCHS,
                }
            },
            ["gradient_probe"],
        ),
        (
            "lr_scheduler: warm-up factor that keeps growing",
            {
                "lr_scheduler": {
                    "factory": "cases_project:growing_warmup",
                    "interval": "step",
                    "epochs": EPOCHS,
                }
            },
            ["gradient_probe"],
        ),
        (
            "lr_scheduler: OneCycleLR total_steps too short",
            {
                "lr_scheduler": {
                    "factory": onecycle,
                    "kwargs": {"max_lr": 0.1, "total_steps": 5},
                    "interval": "step",
                    "epochs": EPOCHS,
                }
            },
            ["gradient_probe"],
        ),
    ]


def run_manifests(root: Path) -> None:
    import yaml

    from auditor.errors import ManifestInvalid
    from auditor.run.api import run_manifest

    for index, (name, spec, audits) in enumerate(manifest_cases(root)):
        spec = dict(spec)
        schedule = spec.pop("lr_scheduler", None)
        manifest: dict[str, Any] = {
            "version": 1,
            "pythonpath": [str(root / "src")],
            "model": {
                "factory": "cases_project:build",
                "kwargs": spec,
                "head": "fc",
                "pretrained": "torchvision:ResNet18_Weights.IMAGENET1K_V1",
            },
            "optimizer": {"factory": "cases_project:sgd"},
            "loss": {"factory": "torch.nn:CrossEntropyLoss"},
            "data": {
                "train": {
                    "format": "image_folder",
                    "root": str(root / "data"),
                    "transform": "torchvision.transforms:ToTensor",
                }
            },
            "audits": {"gradient_probe": {"steps": 1, "overfit_steps": 0, "batch_size": 4}},
        }
        if schedule is not None:
            manifest["lr_scheduler"] = schedule
        folder = root / f"case{index}"
        folder.mkdir(exist_ok=True)
        path = folder / "audit.yaml"
        path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
        try:
            outcome = run_manifest(path, formats=["json"], output_dir=folder / "reports", only=audits)
            print(
                f"auditor run | {name} | exit {outcome.report['exit_code']} | {codes(outcome.report['findings'])}"
            )
        except ManifestInvalid as exc:
            print(f"auditor run | {name} | exit 2 | {str(exc).splitlines()[0][:110]}")


def run_live(root: Path) -> None:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    import auditor

    sys.path.insert(0, str(root / "src"))
    from cases_project import Net

    train = TensorDataset(torch.rand(24, 3, 8, 8), torch.arange(24) % 3)
    probe = {"steps": 1, "overfit_steps": 0}

    def attempt(name: str, **kwargs: Any) -> None:
        try:
            result = auditor.check(train=DataLoader(train, batch_size=4), progress=False, **kwargs)
            print(f"auditor.check | {name} | exit {result.exit_code} | {codes(result.findings)}")
        except TypeError as exc:
            print(f"auditor.check | {name} | TypeError | {str(exc)[:100]}")

    model = Net()
    result = model.load_state_dict(torch.load(root / "ddp.pt", weights_only=True), strict=False)
    attempt(
        "load_result= of a DDP load, strict=False",
        model=model,
        load_result=result,
        audits=["frozen_coverage"],
    )
    attempt("checkpoint= a DDP file", model=Net(), checkpoint=root / "ddp.pt", audits=["frozen_coverage"])
    attempt(
        "checkpoint= the matching file (clean)",
        model=Net(),
        checkpoint=root / "plain.pt",
        audits=["frozen_coverage"],
    )
    attempt(
        "model handed over in eval() (as from_pretrained)", model=Net().eval(), audits=["frozen_coverage"]
    )
    attempt("the same model in train() (clean)", model=Net().train(), audits=["frozen_coverage"])
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    attempt(
        "lr_scheduler= cosine T_max=5 epochs, interval step",
        model=model,
        optimizer=optimizer,
        loss=nn.CrossEntropyLoss(),
        lr_scheduler={"scheduler": cosine, "interval": "step", "epochs": 5},
        audits=["gradient_probe"],
        gradient_probe=probe,
    )
    attempt(
        "lr_scheduler= the same, interval epoch (clean)",
        model=model,
        optimizer=optimizer,
        loss=nn.CrossEntropyLoss(),
        lr_scheduler={"scheduler": cosine, "interval": "epoch", "epochs": 5},
        audits=["gradient_probe"],
        gradient_probe=probe,
    )


def run_lightning() -> None:
    try:
        import lightning as L
    except ImportError:
        print("lightning | not installed")
        return
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    import auditor
    from auditor.integrations.lightning import AuditCallback

    train = TensorDataset(torch.rand(24, 3, 8, 8), torch.arange(24) % 3)

    class Module(L.LightningModule):
        def __init__(self, wrapped_in_eval: bool = False, interval: str | None = "none") -> None:
            super().__init__()
            self.model = nn.Sequential(
                nn.Flatten(),
                nn.Linear(192, 16),
                nn.BatchNorm1d(16),
                nn.ReLU(),
                nn.Dropout(0.2),
                nn.Linear(16, 3),
            )
            if wrapped_in_eval:
                self.model.eval()
            self.interval, self.steps = interval, 0

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            self.steps += 1
            return F.cross_entropy(self.model(batch[0]), batch[1])

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            if self.interval == "none":
                return optimizer
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=36)
            config: dict[str, Any] = {"scheduler": scheduler}
            if self.interval:
                config["interval"] = self.interval
            return {"optimizer": optimizer, "lr_scheduler": config}

    def fit(name: str, module: Any) -> None:
        callback = AuditCallback(
            audits=["frozen_coverage", "gradient_probe"], gradient_probe={"steps": 1, "overfit_steps": 0}
        )
        trainer = L.Trainer(
            max_epochs=3,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[callback],
            default_root_dir=tempfile.mkdtemp(),
        )
        try:
            trainer.fit(module, DataLoader(train, batch_size=2))
            found = callback.result.findings if callback.result is not None else []
            print(f"Lightning fit | {name} | fit ran {module.steps} steps | {codes(found)}")
        except auditor.AuditFailed as exc:
            print(
                f"Lightning fit | {name} | AuditFailed after {module.steps} steps | {codes(exc.report['findings'])}"
            )

    fit("module wraps a model left in eval()", Module(wrapped_in_eval=True))
    fit("module in train() (clean)", Module())
    fit("OneCycleLR (36 steps) at the default interval", Module(interval=None))
    fit("OneCycleLR with interval='step' (clean)", Module(interval="step"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    from auditor.testing import make_image_folder

    root = args.workdir or Path(tempfile.mkdtemp(prefix="loop-state-"))
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "cases_project.py").write_text(PROJECT, encoding="utf-8")
    make_image_folder(root / "data", {"a": 4, "b": 4, "c": 4}, size=16)
    sys.path.insert(0, str(root / "src"))
    from cases_project import Net

    torch.manual_seed(1)
    state = Net().state_dict()
    torch.save(state, root / "plain.pt")
    torch.save({f"module.{k}": v for k, v in state.items()}, root / "ddp.pt")
    torch.save({k: v for k, v in state.items() if k.startswith("fc.")}, root / "head.pt")
    run_manifests(root)
    run_live(root)
    run_lightning()


if __name__ == "__main__":
    main()
