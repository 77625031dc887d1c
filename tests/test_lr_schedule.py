"""Learning-rate schedules (GP025-GP028): a copy of the schedule dry-run over the planned steps.

Through the manifest's ``lr_scheduler`` (``auditor run``), ``auditor.check(lr_scheduler=...)`` and a
real Lightning ``Trainer`` (``configure_optimizers``' scheduler config, ``interval`` defaulting to
``epoch``). Triggered: a cosine ``T_max`` in epochs stepped per batch, OneCycleLR left at
``interval='epoch'``, a warm-up factor that never stops growing, OneCycleLR sized too short.
Clean: the same schedules stepped in the unit they are sized in.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import auditor
from auditor.testing import make_image_folder, run_cli, run_in_process, write_manifest

PROJECT = textwrap.dedent('''
    """A project's model, optimizer and schedules."""
    import torch
    from torch import nn


    def build():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


    def sgd(model, lr=0.1):
        return torch.optim.SGD(model.parameters(), lr=lr)


    def growing_warmup(optimizer, warmup=5):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (step + 1) / warmup)  # never stops at 1


    def capped_warmup(optimizer, warmup=5):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
''')

#: 12 training images / gradient_probe's batch_size 4 = 3 steps per epoch; 4 epochs = 12 steps.
EPOCHS, PER_EPOCH = 4, 3
COSINE = "torch.optim.lr_scheduler:CosineAnnealingLR"
ONECYCLE = "torch.optim.lr_scheduler:OneCycleLR"
PROBE = {"steps": 1, "overfit_steps": 0, "batch_size": 4}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("schedules")
    (root / "src").mkdir()
    (root / "src" / "schedule_project.py").write_text(PROJECT, encoding="utf-8")
    make_image_folder(root / "data" / "train", {"a": 4, "b": 4, "c": 4}, size=16)
    return root


def manifest(root: Path, name: str, lr_scheduler: dict[str, object]) -> Path:
    return write_manifest(
        root / name / "audit.yaml",
        {
            "version": 1,
            "pythonpath": [str(root / "src")],
            "model": {"factory": "schedule_project:build"},
            "optimizer": {"factory": "schedule_project:sgd"},
            "loss": {"factory": "torch.nn:CrossEntropyLoss"},
            "lr_scheduler": lr_scheduler,
            "data": {
                "train": {
                    "format": "image_folder",
                    "root": str(root / "data" / "train"),
                    "transform": "torchvision.transforms:ToTensor",
                }
            },
            "audits": {"gradient_probe": PROBE},
        },
    )


@pytest.mark.slow  # a subprocess `auditor run` (torch import): the in-process cases below cover the logic
def test_cosine_in_epochs_stepped_per_batch_warns_with_the_curve_through_auditor_run(project: Path):
    path = manifest(
        project,
        "cosine-step",
        {"factory": COSINE, "kwargs": {"T_max": EPOCHS}, "interval": "step", "epochs": EPOCHS},
    )
    out = path.parent / "reports"
    result = run_cli("run", path, "--format", "json", "--format", "html", output_dir=out)
    result.assert_exit_code(0)  # a warning; fail_on is error
    [finding] = result.findings_for("GP025")
    assert finding["severity"] == "warning" and finding["location"] == "lr_scheduler"
    assert f"optimizer step {EPOCHS} of {EPOCHS * PER_EPOCH}" in finding["message"]
    assert f"set T_max={EPOCHS * PER_EPOCH}" in finding["hint"]
    evidence = result.audit("gradient_probe")["evidence"]
    assert evidence["lr_curve"][0] == pytest.approx(0.1) and min(evidence["lr_curve"]) < 1e-3
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Learning-rate schedule" in html and "learning rate over the planned run" in html


@pytest.mark.parametrize(
    ("name", "section", "code"),
    [
        (
            "onecycle-epoch",
            {"factory": ONECYCLE, "kwargs": {"max_lr": 0.1, "total_steps": EPOCHS * PER_EPOCH * 10}},
            "GP026",
        ),
        ("growing", {"factory": "schedule_project:growing_warmup", "interval": "step"}, "GP027"),
        (
            "onecycle-short",
            {"factory": ONECYCLE, "kwargs": {"max_lr": 0.1, "total_steps": 5}, "interval": "step"},
            "GP028",
        ),
    ],
)
def test_misplanned_schedules_in_the_manifest(
    project: Path, name: str, section: dict[str, object], code: str
):
    run = run_in_process(manifest(project, name, {**section, "epochs": EPOCHS}))
    found = run.findings_for("GP02")
    assert [f["code"] for f in found if f["code"] >= "GP025"] == [code], found
    if code == "GP028":
        assert "Tried to step" in found[-1]["message"] and found[-1]["severity"] == "error"


@pytest.mark.parametrize(
    "section",
    [
        {"factory": COSINE, "kwargs": {"T_max": EPOCHS}, "interval": "epoch"},
        {"factory": COSINE, "kwargs": {"T_max": EPOCHS * PER_EPOCH}, "interval": "step"},
        {
            "factory": ONECYCLE,
            "kwargs": {"max_lr": 0.1, "total_steps": EPOCHS * PER_EPOCH},
            "interval": "step",
        },
        {"factory": "schedule_project:capped_warmup", "interval": "step"},
    ],
    ids=["cosine-epoch", "cosine-step-sized", "onecycle-step", "capped-warmup"],
)
def test_schedules_stepped_in_their_own_unit_are_clean(project: Path, section: dict[str, object]):
    run = run_in_process(
        manifest(
            project,
            "clean-" + str(section["factory"])[-12:] + str(section.get("interval")),
            {**section, "epochs": EPOCHS},
        )
    )
    assert not [f for f in run.findings if f["code"] in ("GP025", "GP026", "GP027", "GP028")]
    assert run.audit("gradient_probe")["evidence"]["lr_schedule"]["planned_steps"] == EPOCHS * PER_EPOCH


def test_a_wrong_lr_scheduler_key_exits_2_naming_it(project: Path):
    path = manifest(project, "wrong", {"factory": COSINE, "interval": "batch", "epochs": EPOCHS})
    result = run_cli("validate", path)
    result.assert_exit_code(2)
    assert "lr_scheduler.interval" in result.output and "'batch'" in result.output
    text = (
        path.read_text(encoding="utf-8")
        .replace("interval: batch\n", "interval: step\n")
        .replace(f"epochs: {EPOCHS}\n", "")
    )
    path.write_text(text, encoding="utf-8")
    missing = run_cli("validate", path)
    missing.assert_exit_code(2)
    assert "lr_scheduler" in missing.output and "epochs" in missing.output


# -- auditor.check --------------------------------------------------------------------------------

TRAIN = TensorDataset(torch.rand(24, 3, 8, 8), torch.arange(24) % 3)


def objects() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def test_check_with_a_cosine_stepped_per_batch_and_the_callers_objects_left_alone():
    model, optimizer = objects()
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    result = auditor.check(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        train=DataLoader(TRAIN, batch_size=4),  # 6 steps per epoch
        lr_scheduler={"scheduler": scheduler, "interval": "step", "epochs": 5},
        gradient_probe=PROBE,
        audits=["gradient_probe"],
        progress=False,
    )
    [finding] = [f for f in result.findings if f.code == "GP025"]
    assert "of 30" in finding.message and "set T_max=30" in finding.hint
    assert scheduler.last_epoch == 0 and optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_check_with_a_scheduler_alone_steps_it_per_epoch_and_is_clean():
    model, optimizer = objects()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    result = auditor.check(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        train=DataLoader(TRAIN, batch_size=4),
        lr_scheduler={"scheduler": scheduler, "epochs": 6},
        gradient_probe=PROBE,
        audits=["gradient_probe"],
        progress=False,
    )
    assert not [f for f in result.findings if f.code.startswith("GP02") and f.code >= "GP025"]
    evidence = next(a for a in result.report["audits"] if a["name"] == "gradient_probe")["evidence"]
    assert evidence["lr_schedule"]["interval"] == "epoch" and evidence["lr_schedule"]["scheduler_steps"] == 6


def test_check_without_planned_epochs_says_the_dry_run_was_not_done():
    model, optimizer = objects()
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    result = auditor.check(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        train=TRAIN,
        lr_scheduler=scheduler,
        gradient_probe=PROBE,
        audits=["gradient_probe"],
        progress=False,
    )
    audit = next(a for a in result.report["audits"] if a["name"] == "gradient_probe")
    assert any("no planned epochs" in note for note in audit.get("notes", [])), json.dumps(audit.get("notes"))


def test_a_schedule_on_a_metric_is_said_not_dry_run():
    model, optimizer = objects()
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    result = auditor.check(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        train=TRAIN,
        lr_scheduler={"scheduler": scheduler, "epochs": 3},
        gradient_probe=PROBE,
        audits=["gradient_probe"],
        progress=False,
    )
    assert not [f for f in result.findings if f.code in ("GP025", "GP026", "GP027", "GP028")]
    audit = next(a for a in result.report["audits"] if a["name"] == "gradient_probe")
    assert any("ReduceLROnPlateau steps on a validation metric" in note for note in audit.get("notes", []))


def test_check_rejects_a_wrong_interval():
    model, optimizer = objects()
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    with pytest.raises(auditor.UsageError, match="interval'\\] expected 'step' or 'epoch', found 'batch'"):
        auditor.check(
            model, optimizer, train=TRAIN, lr_scheduler={"scheduler": scheduler, "interval": "batch"}
        )


# -- a real Lightning Trainer --------------------------------------------------------------------

L = pytest.importorskip("lightning")
from auditor.integrations.lightning import AuditCallback  # noqa: E402


class OneCycle(L.LightningModule):
    def __init__(self, interval: str | None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
        self.interval = interval

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        # Sized in optimizer steps: 3 epochs x 12 batches.
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=36)
        config = (
            {"scheduler": scheduler}
            if self.interval is None
            else {"scheduler": scheduler, "interval": self.interval}
        )
        return {"optimizer": optimizer, "lr_scheduler": config}


def fit_onecycle(interval: str | None, tmp_path: Path) -> AuditCallback:
    callback = AuditCallback(audits=["gradient_probe"], report_dir=tmp_path / "reports", gradient_probe=PROBE)
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        default_root_dir=tmp_path,
    )
    trainer.fit(OneCycle(interval), DataLoader(TRAIN, batch_size=2))
    return callback


def test_lightning_onecycle_left_at_the_default_epoch_interval_warns(tmp_path: Path):
    callback = fit_onecycle(None, tmp_path)
    assert callback.result is not None
    [finding] = [f for f in callback.result.findings if f.code == "GP026"]
    assert "stepped 3 times (per epoch)" in finding.message and "'interval': 'step'" in finding.hint


def test_lightning_onecycle_stepped_per_step_is_clean(tmp_path: Path):
    callback = fit_onecycle("step", tmp_path)
    assert callback.result is not None
    assert not [f for f in callback.result.findings if f.code in ("GP025", "GP026", "GP027", "GP028")]
