"""Every installed audit runs unless turned off visibly, and audits see the state training sees (issue 22 items 1, 8).

Real manifests, real image folders, real torch models; the CLI runs as a subprocess.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import pytest
from torchvision import transforms
from torchvision.datasets import ImageFolder

import auditor
from auditor import Audit, hookimpl
from auditor.testing import Project, make_image_folder, run_cli, run_in_process

FACTORIES = textwrap.dedent('''
    import torch
    from torch import nn
    from torchvision import models, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.25] * 3)])


    def resnet(num_classes=3, freeze_backbone=False, eval_mode=False):
        model = models.resnet18(weights=None, num_classes=num_classes)
        if freeze_backbone:  # the usual place
            for name, p in model.named_parameters():
                p.requires_grad = name.startswith("fc")
        return model.eval() if eval_mode else model


    def adam(model, lr=1e-3):
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


    def freeze_then_adam(model, lr=1e-3, head="fc"):
        """The training-script pattern: freeze by parameter name inside the optimizer factory."""
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith(head)
        return torch.optim.Adam(model.parameters(), lr=lr)
''')

DATA_AUDITS = ("label_distribution", "split_leakage", "transform_parity", "data_loading")


@pytest.fixture
def project(tmp_path) -> Project:
    project = Project(tmp_path / "project")
    project.write("src/sel_models.py", FACTORIES)
    project.image_folder("data/train", {"a": 10, "b": 10, "c": 10}, size=16)
    return project


def _data() -> dict[str, Any]:
    return {"train": {"format": "image_folder", "root": "data/train", "transform": "sel_models:tf"}}


# -- item 1: selection you can trust ----------------------------------------------------------------


def test_an_audits_section_configures_and_never_selects(project):
    # The README's pattern: options for one audit. Every other installed audit still runs.
    path = project.manifest(
        _data(),
        audits={"label_distribution": {"max_imbalance_ratio": 5}},
        only_listed=False,
        pythonpath=["src"],
    )
    run = run_in_process(path)
    statuses = {a["name"]: a["status"] for a in run.report["audits"]}
    assert set(DATA_AUDITS) <= set(statuses)
    assert all(statuses[name] in ("passed", "failed") for name in DATA_AUDITS), statuses
    assert run.audit("label_distribution")["options"]["max_imbalance_ratio"] == 5
    assert "disabled" not in statuses.values()


def test_name_false_disables_visibly_in_validate_console_and_report(project):
    path = project.manifest(
        _data(),
        audits={"split_leakage": False, "label_distribution": {}},
        only_listed=False,
        pythonpath=["src"],
    )
    validate = run_cli("validate", path)
    validate.assert_exit_code(0)
    assert (
        "note:" in validate.stdout and "audits.split_leakage: false disables split_leakage" in validate.stdout
    )
    done = run_cli("run", path, "--format", "json", cwd=project.root)
    done.assert_exit_code(0)
    entry = done.audit("split_leakage")
    assert entry["status"] == "disabled"
    assert entry["reason"] == "disabled in the manifest (audits.split_leakage: false)"
    assert "disabled split_leakage" in done.stdout  # the per-audit line
    assert "1 audit disabled (split_leakage)" in done.stdout  # the summary
    assert done.audit("label_distribution")["status"] in ("passed", "failed")
    assert done.audit("data_loading")["status"] in ("passed", "failed")


def test_only_and_skip_disable_with_the_option_named(project):
    path = project.manifest(_data(), pythonpath=["src"])
    done = run_cli("run", path, "--format", "json", "--only", "label_distribution", cwd=project.root)
    done.assert_exit_code(0)
    names = [a["name"] for a in done.report["audits"]]
    assert "gradient_probe" in names and "split_leakage" in names  # listed, not dropped
    assert done.audit("split_leakage")["reason"] == "disabled by --only label_distribution"
    assert done.audit("split_leakage")["status"] == "disabled"
    skipped = run_cli("run", path, "--format", "json", "--skip", "split_leakage", cwd=project.root)
    assert skipped.audit("split_leakage") == {**skipped.audit("split_leakage"), "status": "disabled"}
    assert skipped.audit("split_leakage")["reason"] == "disabled by --skip split_leakage"


def test_check_audits_list_selects_and_mapping_configures(tmp_path):
    make_image_folder(tmp_path / "train", {"a": 6, "b": 6}, size=16)
    train = ImageFolder(str(tmp_path / "train"), transforms.ToTensor())
    listed = auditor.check(train=train, audits=["label_distribution"])
    by_name = {a["name"]: a for a in listed.report["audits"]}
    assert by_name["label_distribution"]["status"] != "disabled"
    assert by_name["split_leakage"]["status"] == "disabled"
    assert by_name["split_leakage"]["reason"] == "disabled by auditor.check(audits=[...]) label_distribution"
    mapped = auditor.check(train=train, audits={"split_leakage": False, "label_distribution": {}})
    by_name = {a["name"]: a for a in mapped.report["audits"]}
    assert by_name["split_leakage"]["status"] == "disabled"
    assert by_name["data_loading"]["status"] in ("passed", "failed")  # not listed: runs


# -- item 8: the state training sees ----------------------------------------------------------------


def _fz(
    project: Project, model_kwargs: dict[str, Any], optimizer: str, opt_kwargs: dict[str, Any] | None = None
) -> Any:
    path = project.manifest(
        _data(),
        audits={"frozen_coverage": {}, "gradient_probe": {"device": "cpu", "steps": 2, "overfit_steps": 2}},
        pythonpath=["src"],
        model={"factory": "sel_models:resnet", "kwargs": model_kwargs},
        optimizer={"factory": f"sel_models:{optimizer}", "kwargs": opt_kwargs or {}},
        loss={"factory": "torch.nn:CrossEntropyLoss"},
        name=f"{optimizer}-{len(model_kwargs)}.yaml",
    )
    return run_in_process(path)


@pytest.mark.slow
def test_freezing_in_the_optimizer_factory_gives_the_findings_of_freezing_in_the_model_factory(project):
    in_model = _fz(project, {"freeze_backbone": True}, "adam")
    in_optimizer = _fz(project, {}, "freeze_then_adam")
    fz_model = {(f["code"], f["severity"]) for f in in_model.findings_for("FZ")}
    fz_optimizer = {(f["code"], f["severity"]) for f in in_optimizer.findings_for("FZ")}
    assert ("FZ003", "info") in fz_model or ("FZ003", "warning") in fz_model
    # FZ006 (the optimizer holds frozen tensors) is the one difference: that factory passes them all
    assert fz_optimizer - {("FZ006", "info")} == fz_model
    (fz003,) = in_optimizer.findings_for("FZ003")
    assert "only the head 'fc'" in fz003["message"]


def test_an_optimizer_factory_that_freezes_everything_is_fz001_and_the_probe_skip_names_no_code(project):
    run = _fz(project, {}, "freeze_then_adam", {"head": "classifier"})  # a ResNet's head is `fc`
    (fz001,) = run.findings_for("FZ001")
    assert fz001["severity"] == "error" and run.exit_code == 1
    probe = run.audit("gradient_probe")
    assert probe["status"] == "skipped" and "after the model and optimizer factories ran" in probe["reason"]
    reported = {f["code"] for f in run.findings}
    assert set(re.findall(r"[A-Z]{2}\d{3}", probe["reason"])) <= reported


class _ModeProbe:
    """A third-party audit that records what it sees: the model's mode and trainable tensors."""

    @hookimpl
    def auditor_audits(self) -> list[Audit]:
        def run(ctx: Any) -> list[Any]:
            model = ctx.run.model
            ctx.evidence["training"] = model.training
            ctx.evidence["trainable"] = sum(1 for p in model.parameters() if p.requires_grad)
            return []

        return [
            Audit(
                name="mode_probe",
                version="1",
                prefix="MP",
                codes=[],
                run=run,
                needs=frozenset({"model"}),
                description="records the model's state",
            )
        ]


def test_audits_read_the_model_in_train_mode_after_the_optimizer_factory(project):
    path = project.manifest(
        _data(),
        audits={"mode_probe": {}},
        pythonpath=["src"],
        model={"factory": "sel_models:resnet", "kwargs": {"eval_mode": True}},
        optimizer={"factory": "sel_models:freeze_then_adam"},
        loss={"factory": "torch.nn:CrossEntropyLoss"},
    )
    run = run_in_process(path, plugins=[_ModeProbe()])
    evidence = run.audit("mode_probe")["evidence"]
    assert evidence["training"] is True
    assert evidence["trainable"] == 2  # fc.weight and fc.bias: the optimizer factory froze the rest
