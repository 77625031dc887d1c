"""Training mode at the first real step (FZ011): dropout, BatchNorm, drop-path left in eval() where they train.

Through ``auditor run`` (a model whose ``train()`` override leaves trainable layers in eval),
``auditor.check`` (a model handed over in eval(), as ``from_pretrained`` returns one) and a real
Lightning ``Trainer`` (2.2+ keeps submodule modes: a wrapped model in eval() trains in eval()).
The clean counterparts: the same models in train(), and a frozen backbone kept in eval() on purpose.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision.ops import StochasticDepth

import auditor
from auditor.testing import make_image_folder, run_in_process, write_manifest

PROJECT = textwrap.dedent('''
    """Models whose train() override decides which layers train."""
    from torch import nn


    class Net(nn.Module):
        def __init__(self, keep_eval="none"):
            super().__init__()
            self.keep_eval = keep_eval
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.drop = nn.Dropout(0.3)
            self.fc = nn.Linear(8, 3)
            if keep_eval == "frozen-body":
                self.body.requires_grad_(False)

        def train(self, mode=True):
            super().train(mode)
            if self.keep_eval in ("everything", "frozen-body"):
                self.body.eval()  # the frozen-BatchNorm pattern; a mistake where the body trains
            if self.keep_eval == "everything":
                self.drop.eval()
            return self

        def forward(self, x):
            return self.fc(self.drop(self.body(x)))


    def build(keep_eval="none"):
        return Net(keep_eval)
''')


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("modes")
    (root / "src").mkdir()
    (root / "src" / "modes_project.py").write_text(PROJECT, encoding="utf-8")
    make_image_folder(root / "data" / "train", {"a": 3, "b": 3, "c": 3}, size=16)
    return root


def manifest(root: Path, keep_eval: str) -> Path:
    return write_manifest(
        root / keep_eval / "audit.yaml",
        {
            "version": 1,
            "pythonpath": [str(root / "src")],
            "model": {"factory": "modes_project:build", "kwargs": {"keep_eval": keep_eval}, "head": "fc"},
            "data": {"train": {"format": "image_folder", "root": str(root / "data" / "train")}},
            "audits": {"frozen_coverage": {}},
        },
    )


def test_a_train_override_that_leaves_trainable_layers_in_eval_is_an_error(project: Path):
    run = run_in_process(manifest(project, "everything"))
    [finding] = run.findings_for("FZ011")
    assert finding["severity"] == "error" and run.exit_code == 1
    assert "body.1, drop" in finding["message"] and "batchnorm/dropout" in finding["message"]
    assert [m["name"] for m in finding["evidence"]["modules"]] == ["body.1", "drop"]


@pytest.mark.parametrize("keep_eval", ["none", "frozen-body"])
def test_train_mode_and_a_frozen_body_kept_in_eval_are_clean(project: Path, keep_eval: str):
    run = run_in_process(manifest(project, keep_eval))
    run.assert_no_codes("FZ011")


TRAIN = TensorDataset(torch.rand(12, 3, 8, 8), torch.arange(12) % 3)


def block() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        StochasticDepth(0.1, "row"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(8, 3),
    )


def test_check_on_a_model_handed_over_in_eval_names_the_modules():
    model = block().eval()  # what from_pretrained returns
    result = auditor.check(model, train=TRAIN, audits=["frozen_coverage"], progress=False)
    [finding] = [f for f in result.findings if f.code == "FZ011"]
    assert finding.message.startswith("the whole model is in eval() mode")
    assert "batchnorm/drop-path/dropout" in finding.message and "1, 3, 6" in finding.message
    assert not model.training  # read, never changed


def test_check_on_the_same_model_in_train_mode_or_with_inert_layers_is_clean():
    assert not [
        f
        for f in auditor.check(
            block().train(), train=TRAIN, audits=["frozen_coverage"], progress=False
        ).findings
        if f.code == "FZ011"
    ]
    # Dropout(p=0) and BatchNorm without running statistics compute the same in either mode.
    inert = nn.Sequential(
        nn.Flatten(),
        nn.Linear(192, 8),
        nn.BatchNorm1d(8, track_running_stats=False),
        nn.Dropout(0.0),
        nn.Linear(8, 3),
    ).eval()
    result = auditor.check(inert, train=TRAIN, audits=["frozen_coverage"], progress=False)
    assert not [f for f in result.findings if f.code == "FZ011"]


# -- a real Lightning Trainer --------------------------------------------------------------------

L = pytest.importorskip("lightning")
from auditor.integrations.lightning import AuditCallback  # noqa: E402


class Wrapper(L.LightningModule):
    """Wraps a model built elsewhere (as from_pretrained), optionally left in eval()."""

    def __init__(self, wrapped_in_eval: bool = False, eval_after_validation: bool = False) -> None:
        super().__init__()
        self.model = block()
        if wrapped_in_eval:
            self.model.eval()
        self.eval_after_validation = eval_after_validation
        self.steps_seen = 0

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.steps_seen += 1
        return F.cross_entropy(self.model(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.model(x), y))

    def on_validation_model_train(self) -> None:
        self.train()
        if self.eval_after_validation:
            self.model[6].eval()  # a hook that restores modes by hand and forgets one

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def fit(module: Wrapper, tmp_path: Path, **trainer_options) -> AuditCallback:
    callback = AuditCallback(audits=["frozen_coverage"], report_dir=tmp_path / "reports")
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        default_root_dir=tmp_path,
        **{"max_epochs": 1, **trainer_options},
    )
    trainer.fit(module, DataLoader(TRAIN, batch_size=4), DataLoader(TRAIN, batch_size=4))
    return callback


def test_lightning_module_wrapping_a_model_in_eval_stops_before_the_first_step(tmp_path: Path):
    module = Wrapper(wrapped_in_eval=True)
    with pytest.raises(auditor.AuditFailed, match="FZ011"):
        fit(module, tmp_path)
    assert module.steps_seen == 0


def test_lightning_modes_left_in_eval_after_the_first_validation_are_found(tmp_path: Path):
    module = Wrapper(eval_after_validation=True)
    with pytest.raises(auditor.AuditFailed, match="FZ011"):
        fit(module, tmp_path, max_epochs=2, num_sanity_val_steps=0)
    assert module.steps_seen == 3  # the first epoch ran; the audit stopped the second before its first step
    callback_reports = sorted(p.name for p in (tmp_path / "reports").iterdir() if p.is_dir())
    assert callback_reports == ["after-the-first-validation"]


def test_lightning_module_in_train_mode_fits_without_a_mode_finding(tmp_path: Path):
    module = Wrapper()
    callback = fit(module, tmp_path, max_epochs=2)
    assert module.steps_seen == 6
    assert callback.result is not None and not [f for f in callback.result.findings if f.code == "FZ011"]
    assert callback.mode_results == {}
