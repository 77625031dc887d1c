"""The data -> model -> loss contract on the first real batch (issue 22 items 2-4).

Every test builds a real model, loss and dataset (a module of factories written into
the project), runs gradient_probe through ``run_manifest`` and asserts the code, the
severity and the words of the fix; each has a clean counterpart that gives no error and
no warning from the probe. The probe never repairs targets, so a clean counterpart is one
whose dataset already gives what the loss takes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from auditor.testing import Project, run_in_process

FACTORIES = textwrap.dedent('''
    import warnings

    import torch
    from torch import nn
    from torchvision import transforms

    rgb_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.25] * 3)])
    gray_tf = transforms.Compose([transforms.Grayscale(1), transforms.ToTensor()])


    import collections
    from collections import OrderedDict

    # GoogLeNet/Inception in train mode return a namedtuple of logits and aux logits.
    AuxOutputs = collections.namedtuple("AuxOutputs", ["logits", "aux_logits"])


    class ModelOutput(OrderedDict):
        """The shape of transformers' ModelOutput: a dict whose fields are also attributes."""

        def __getattr__(self, name):
            try:
                return self[name]
            except KeyError:
                raise AttributeError(name) from None


    class Net(nn.Module):
        """A small CNN whose stem is called conv1, like torchvision's ResNets."""

        def __init__(self, num_classes=3, last=None, detach=False, warn=None, wrap=None):
            super().__init__()
            torch.manual_seed(0)
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, num_classes)
            self.last = {"log_softmax": nn.LogSoftmax(dim=1), None: nn.Identity()}[last]
            self.detach, self.warn, self.wrap = detach, warn, wrap
            self.aux = nn.Linear(8, num_classes) if wrap else None

        def forward(self, x):
            if self.warn == "user":
                warnings.warn("inputs were not clipped to the expected range", UserWarning)
            elif self.warn == "deprecation":
                warnings.warn("Net.forward(x) is deprecated; call Net.embed(x)", DeprecationWarning)
            features = self.pool(torch.relu(self.conv1(x))).flatten(1)
            out = self.last(self.fc(features))
            out = out.detach() if self.detach else out
            if self.aux is None:
                return out
            aux = self.aux(features)
            if self.wrap == "namedtuple":
                return AuxOutputs(out, aux)
            if self.wrap == "model_output":
                return ModelOutput(logits=out, hidden=features)
            if self.wrap == "dict":
                return {"out": out, "aux": aux}
            if self.wrap == "two_heads":
                return {"species": out, "breed": aux}
            return out


    def net(**kwargs):
        return Net(**kwargs)


    def adam(model, lr=1e-2):
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


    class Tensors(torch.utils.data.Dataset):
        """Random inputs with labels ``i % classes`` in the form ``kind`` asks for."""

        def __init__(self, kind="int", n=24, classes=3):
            g = torch.Generator().manual_seed(0)
            self.x = torch.randn(n, 3, 16, 16, generator=g)
            self.classes_n, self.kind, self.n = classes, kind, n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            y = i % self.classes_n
            x = self.x[i] * 0.5 + (y - 1.0)  # the label shifts the input: a few steps learn it
            if self.kind == "float":  # class indices read from a CSV column as 0.0/1.0/2.0
                return x, float(y)
            if self.kind == "regression":  # float32 targets shaped like a one-output head: [1]
                return x, torch.tensor([y / 2.0])
            if self.kind == "regression_flat":  # a scalar target per sample: [B] after collate
                return x, torch.tensor(y / 2.0)
            if self.kind == "bce_column":  # one 0/1 float per sample, shaped like the output [1]
                return x * 3.0, torch.tensor([float(y % 2)])
            if self.kind == "bce_indices":  # class indices 0..2 as floats, shaped [1]
                return x, torch.tensor([float(y)])
            return x, y


    def tensors(kind="int", classes=3):
        return Tensors(kind, classes=classes)
''')


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = Project(tmp_path / "project")
    project.write("src/contract_models.py", FACTORIES)
    return project


def probe(
    project: Project,
    *,
    loss: str = "torch.nn:CrossEntropyLoss",
    model: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    images: str | None = None,
    lr: float = 1e-2,
) -> Any:
    """Run gradient_probe alone (few steps) and return the run."""
    if images is not None:
        root = project.image_folder("data/train", {"a": 8, "b": 8, "c": 8}, size=16)
        split: dict[str, Any] = {
            "format": "image_folder",
            "root": root.relative_to(project.root).as_posix(),
            "transform": f"contract_models:{images}",
        }
    else:
        split = {"format": "callable", "factory": "contract_models:tensors", "kwargs": dict(data or {})}
    manifest = project.manifest(
        {"train": split},
        audits={"gradient_probe": {"device": "cpu", "steps": 5, "overfit_steps": 20, "batch_size": 8}},
        pythonpath=["src"],
        model={"factory": "contract_models:net", "kwargs": dict(model or {})},
        optimizer={"factory": "contract_models:adam", "kwargs": {"lr": lr}},
        loss={"factory": loss},
    )
    return run_in_process(manifest)


def only(run: Any, code: str) -> dict[str, Any]:
    (finding,) = run.findings_for(code)
    return finding


def assert_clean_probe(run: Any) -> None:
    """The probe trained: no error and no warning from it (GP011's timing info is all)."""
    audit = run.audit("gradient_probe")
    assert audit["status"] == "passed", audit
    bad = [(f["code"], f["message"]) for f in run.findings if f["severity"] in ("error", "warning")]
    assert not bad, bad
    assert audit["evidence"]["steps_done"] == 5


# -- item 2: the loss sees what training gives it ---------------------------------------------------


def test_float_class_indices_crash_cross_entropy_as_training_would_gp013(project):
    run = probe(project, data={"kind": "float"})
    gp013 = only(run, "GP013")
    assert gp013["severity"] == "error" and run.exit_code == 1
    assert "CrossEntropyLoss(output float32 [8, 3], target float64 [8])" in gp013["message"]
    assert "expected" in gp013["message"] and "Long" in gp013["message"]
    assert "`int(label)`" in gp013["hint"] and "dtype=torch.long" in gp013["hint"]
    assert run.audit("gradient_probe")["evidence"]["steps_done"] == 0


def test_integer_class_indices_are_clean(project):
    assert_clean_probe(probe(project, data={"kind": "int"}))


def test_bce_on_class_indices_of_the_wrong_shape_is_gp013_not_repaired(project):
    run = probe(project, loss="torch.nn:BCEWithLogitsLoss", model={"num_classes": 1}, data={"classes": 2})
    gp013 = only(run, "GP013")
    assert "BCEWithLogitsLoss(output float32 [8, 1], target int64 [8])" in gp013["message"]
    assert "[8, 1]" in gp013["hint"] and "view_as(output)" in gp013["hint"]


def test_bce_with_float_targets_shaped_like_the_output_is_clean(project):
    run = probe(
        project,
        loss="torch.nn:BCEWithLogitsLoss",
        model={"num_classes": 1},
        data={"kind": "bce_column", "classes": 2},
        lr=0.1,
    )
    assert_clean_probe(run)


# -- item 3: loss contracts on the first real batch ------------------------------------------------


def test_nll_loss_on_raw_logits_is_gp014(project):
    run = probe(project, loss="torch.nn:NLLLoss")
    gp014 = only(run, "GP014")
    assert gp014["severity"] == "error" and "NLLLoss expects log-probabilities" in gp014["message"]
    assert "sums to" in gp014["message"] and "`nn.LogSoftmax(dim=1)`" in gp014["hint"]
    assert "CrossEntropyLoss" in gp014["hint"]


def test_nll_loss_after_log_softmax_is_clean(project):
    assert_clean_probe(probe(project, loss="torch.nn:NLLLoss", model={"last": "log_softmax"}))


def test_bce_loss_on_raw_logits_is_gp014(project):
    run = probe(
        project, loss="torch.nn:BCELoss", model={"num_classes": 1}, data={"kind": "bce_column", "classes": 2}
    )
    gp014 = only(run, "GP014")
    assert "BCELoss expects probabilities in [0, 1]" in gp014["message"]
    assert "`nn.BCEWithLogitsLoss()`" in gp014["hint"]


def test_mse_on_output_b1_and_target_b_is_gp015(project):
    run = probe(project, loss="torch.nn:MSELoss", model={"num_classes": 1}, data={"kind": "regression_flat"})
    gp015 = only(run, "GP015")
    assert gp015["severity"] == "error"
    assert "MSELoss gets the output float32 [8, 1] and the targets float32 [8]" in gp015["message"]
    assert "broadcast to [8, 8]" in gp015["message"]
    assert "view_as(output)" in gp015["hint"] and "squeeze(1)" in gp015["hint"]
    # a one-output head with a regression loss is not a class-count problem
    assert not run.findings_for("GP010") and not run.findings_for("FZ007")


def test_mse_on_matching_shapes_is_clean(project):
    run = probe(project, loss="torch.nn:MSELoss", model={"num_classes": 1}, data={"kind": "regression"})
    assert_clean_probe(run)


def test_class_indices_given_to_bce_are_gp016(project):
    run = probe(
        project, loss="torch.nn:BCEWithLogitsLoss", model={"num_classes": 1}, data={"kind": "bce_indices"}
    )
    gp016 = only(run, "GP016")
    assert gp016["severity"] == "error" and "range 0..2" in gp016["message"]
    assert "`nn.CrossEntropyLoss()`" in gp016["hint"] and "multi-hot" in gp016["hint"]


@pytest.mark.parametrize(
    ("warn", "code", "severity"), [("user", "GP017", "warning"), ("deprecation", "GP018", "info")]
)
def test_warnings_during_the_step_become_findings(project, warn, code, severity):
    run = probe(project, model={"warn": warn})
    finding = only(run, code)
    assert finding["severity"] == severity
    assert finding["evidence"]["count"] >= 5  # on every step (and the overfit run's), reported once
    expected = "UserWarning" if warn == "user" else "DeprecationWarning"
    assert finding["message"].startswith(f"{expected} during training step 1 (")
    assert ("not clipped" if warn == "user" else "deprecated") in finding["message"]
    assert "contract_models.py" in finding["evidence"]["source"]


# -- item 4: a failing step is a finding ----------------------------------------------------------


def test_grayscale_into_a_three_channel_stem_is_gp019_naming_the_layer(project):
    run = probe(project, images="gray_tf")
    audit = run.audit("gradient_probe")
    assert audit["status"] == "failed" and run.exit_code == 1  # a finding, not a crashed audit (exit 2)
    gp019 = only(run, "GP019")
    assert gp019["severity"] == "error"
    assert gp019["message"].startswith("the first conv `conv1` expects 3 input channels, the batch has 1")
    assert "Grayscale(num_output_channels=3)" in gp019["hint"]
    assert gp019["evidence"]["module"] == "conv1" and gp019["evidence"]["module_input_shapes"] == [
        [8, 1, 16, 16]
    ]


def test_rgb_images_into_the_same_stem_are_clean(project):
    assert_clean_probe(probe(project, images="rgb_tf"))


def test_a_detached_output_makes_backward_raise_gp019(project):
    run = probe(project, model={"detach": True})
    gp019 = only(run, "GP019")
    assert "loss.backward() raises on training batch 1" in gp019["message"]
    assert "detaches the graph" in gp019["hint"]


# -- item 7: outputs that are objects ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrap", "field"), [("namedtuple", "logits"), ("model_output", "logits"), ("dict", "out")]
)
def test_outputs_that_are_objects_give_the_loss_their_logits_field_with_a_note(project, wrap, field):
    run = probe(project, model={"wrap": wrap})
    assert_clean_probe(run)
    notes = run.audit("gradient_probe")["notes"]
    assert any(f"the loss was given its '{field}' field, as training code does" in note for note in notes), (
        notes
    )


def test_a_dict_of_two_heads_is_a_finding_naming_the_fields(project):
    run = probe(project, model={"wrap": "two_heads"})
    (gp010,) = run.findings_for("GP010")
    assert gp010["severity"] == "error" and "['species', 'breed']" in gp010["message"]
    assert "none named 'logits' or 'out'" in gp010["message"]
