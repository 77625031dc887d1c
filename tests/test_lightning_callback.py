"""AuditCallback: a real Lightning fit is audited at its start, stopped on a planted error, left alone when clean."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

L = pytest.importorskip("lightning")  # the `lightning` extra; `make test` installs it

import torch
from conftest import REPO
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import auditor
from auditor.integrations.lightning import AuditCallback
from auditor.report.document import validate_report

PROBE = {"steps": 3, "overfit_steps": 3}


class TinyModule(L.LightningModule):
    """The loss lives in training_step; ``log_of_logits`` plants NLL on log(raw logits), NaN at once."""

    def __init__(self, log_of_logits: bool = False) -> None:
        super().__init__()
        self.log_of_logits = log_of_logits
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 3))
        self.steps_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.nll_loss(torch.log(logits), y) if self.log_of_logits else F.cross_entropy(logits, y)
        self.log("train_loss", loss)
        self.steps_seen += 1
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def split(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 3, 8, 8, generator=generator), torch.arange(n) % 3)


def fit(module: TinyModule, callback: AuditCallback, tmp_path) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        default_root_dir=tmp_path,
    )
    trainer.fit(
        module, DataLoader(split(36, 0), batch_size=6, shuffle=True), DataLoader(split(9, 1), batch_size=3)
    )
    return trainer


def test_planted_error_in_training_step_stops_the_fit(tmp_path):
    torch.manual_seed(0)
    module = TinyModule(log_of_logits=True)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    callback = AuditCallback(fail_on="error", report_dir=tmp_path / "reports", gradient_probe=PROBE)
    with pytest.raises(auditor.AuditFailed, match="GP001") as raised:
        fit(module, callback, tmp_path)
    assert raised.value.exit_code == 1
    # The probe ran the module's own training_step (on a copy): its loss went NaN; the fit never stepped.
    assert module.steps_seen == 0
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    report = json.loads((tmp_path / "reports" / "report.json").read_text(encoding="utf-8"))
    validate_report(report)
    assert report["manifest"]["name"] == "TinyModule"
    probe = next(a for a in report["audits"] if a["name"] == "gradient_probe")
    assert probe["evidence"]["steps_done"] == 1 and probe["evidence"]["loss_curve"] == [None]
    assert (tmp_path / "reports" / "report.html").is_file()


def test_clean_module_is_audited_then_trains(tmp_path):
    torch.manual_seed(0)
    module = TinyModule()
    callback = AuditCallback(
        fail_on="error", gradient_probe=PROBE, label_distribution={"min_samples_per_class": 5}
    )
    trainer = fit(module, callback, tmp_path)
    assert trainer.current_epoch == 1 and trainer.global_step == 6 and module.steps_seen == 6
    result = callback.result
    assert result is not None and result.exit_code == 0, repr(result)
    validate_report(result.report)
    audits = {a["name"]: a for a in result.report["audits"]}
    assert set(audits) >= {"label_distribution", "split_leakage", "frozen_coverage", "gradient_probe"}
    probe = audits["gradient_probe"]
    assert probe["status"] == "passed" and probe["evidence"]["steps_done"] == 3
    assert probe["evidence"]["outputs"]["start"]["shape"] == [6, 3]  # the output seen inside training_step
    assert (tmp_path / "auditor" / "report.json").is_file()  # default: <default_root_dir>/auditor


@pytest.mark.slow
def test_lightning_example_stops_on_its_planted_bug():
    script = REPO / "examples" / "lightning" / "train.py"
    done = subprocess.run(
        [sys.executable, str(script), "--forgot-softmax"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the fit was stopped before training" in done.stderr and "GP001" in done.stderr
