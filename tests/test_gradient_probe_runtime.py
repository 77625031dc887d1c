"""gradient_probe as a good citizen: untouched user objects and RNG, time budget, bad samples, CLI, options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_gradient_probe import MODELS, make_class_images

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _project(
    root: Path, options: dict[str, Any] | None = None, model: str = "small_cnn", size: int = 16
) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "gp_probe_models.py").write_text(MODELS, encoding="utf-8")
    make_class_images(root / "train", {"a": 12, "b": 12}, size=size)
    manifest = {
        "version": 1,
        "pythonpath": ["src"],
        "model": {"factory": f"gp_probe_models:{model}"},
        "optimizer": {"factory": "gp_probe_models:sgd"},
        "loss": {"factory": "torch.nn:CrossEntropyLoss"},
        "data": {
            "train": {"format": "image_folder", "root": "train", "transform": "gp_probe_models:train_tf"}
        },
        "audits": {"gradient_probe": options or {}},
    }
    import yaml

    path = root / "audit.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


def test_user_model_optimizer_and_rng_are_left_untouched(tmp_path):
    import random

    import numpy as np
    import torch

    from auditor.manifest.load import load_manifest
    from auditor.run.context import AuditContext, RunContext
    from auditor.run.registry import load_registry
    from auditor_plugins.gradient_probe import AUDIT

    registry = load_registry()
    loaded = load_manifest(_project(tmp_path, {"device": "cpu", "steps": 5}), registry)
    context = RunContext(loaded, registry)
    before = {k: v.clone() for k, v in context.model.state_dict().items()}
    shared_optimizer = context.optimizer
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)

    audit_context = AuditContext(context, AUDIT, loaded.audit_options["gradient_probe"])
    findings = list(AUDIT.run(audit_context))

    assert {f.code for f in findings} == {"GP011"}
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    after = context.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the user's model changed"
    assert all(p.grad is None for p in context.model.parameters())
    assert shared_optimizer.state_dict()["state"] == {}, "the user's optimizer was stepped"
    # The device reaches the report through the probe's evidence, not an attribute set on the shared context.
    assert audit_context.evidence["device"] == "cpu" and not hasattr(context, "device_used")


def test_time_budget_stops_the_probe_early_and_says_so(tmp_path, run_audit):
    path = _project(tmp_path, {"device": "cpu", "steps": 10000, "overfit_steps": 10000, "time_budget_s": 1.5})
    outcome = run_audit(path, only=["gradient_probe"])
    (audit,) = [a for a in outcome.report["audits"] if a["status"] != "disabled"]
    assert audit["status"] == "passed", outcome.report["findings"]
    assert 1 <= audit["evidence"]["steps_done"] < 10000
    assert any("the time budget of 1.5 s was reached" in note for note in audit["notes"])
    # No wall-clock assertion: how long 1.5 s of steps takes to stop depends on the machine's load
    # (benchmarks/probe.py measures it). 10000 steps cannot fit in 1.5 s, so stopping early shows the budget.


def test_unreadable_images_are_skipped_not_a_crash(tmp_path, run_audit):
    path = _project(tmp_path, {"device": "cpu", "steps": 6, "overfit_steps": 4, "batch_size": 4})
    (tmp_path / "train" / "a" / "000.png").write_bytes(b"not a png at all")
    (tmp_path / "train" / "b" / "003.png").write_bytes(b"")
    outcome = run_audit(path, only=["gradient_probe"])
    (audit,) = [a for a in outcome.report["audits"] if a["status"] != "disabled"]
    assert (
        audit["status"] == "passed" and audit["evidence"]["steps_done"] == 6
    )  # one epoch: every sample drawn
    (note,) = [n for n in audit["notes"] if "could not be loaded" in n]
    assert note.startswith("2 training samples could not be loaded")


def test_dataloader_workers_option(tmp_path, run_audit):
    path = _project(tmp_path, {"device": "cpu", "steps": 3, "overfit_steps": 3, "num_workers": 1})
    outcome = run_audit(path, only=["gradient_probe"])
    (audit,) = [a for a in outcome.report["audits"] if a["status"] != "disabled"]
    assert audit["status"] == "passed" and audit["evidence"]["steps_done"] == 3


def test_unknown_threshold_is_a_manifest_error(tmp_path):
    from auditor.errors import ManifestInvalid
    from auditor.run.api import run_manifest

    path = _project(tmp_path, {"thresholds": {"vanishing": 1e-6}})
    with pytest.raises(ManifestInvalid, match="vanishing"):
        run_manifest(path, only=["gradient_probe"], formats=["json"], output_dir=tmp_path / "reports")


def test_thresholds_are_options(tmp_path, run_audit):
    # A stuck margin above any reachable value turns the healthy run into GP005.
    path = _project(
        tmp_path, {"device": "cpu", "steps": 3, "overfit_steps": 3, "thresholds": {"stuck_margin": 5.0}}
    )
    outcome = run_audit(path, only=["gradient_probe"])
    assert "GP005" in outcome.codes()
    assert (
        next(a for a in outcome.report["audits"] if a["name"] == "gradient_probe")["evidence"]["thresholds"][
            "stuck_margin"
        ]
        == 5.0
    )


def test_cli_static_skips_the_probe_and_cuda_request_falls_back(tmp_path, cli):
    import torch

    path = _project(tmp_path, {"device": "cuda", "steps": 3, "overfit_steps": 3})
    static = cli("run", path, "--static", "--format", "json", "--only", "gradient_probe")
    assert static.returncode == 0, static.stderr
    report = json.loads((tmp_path / "reports" / "report.json").read_text(encoding="utf-8"))
    (audit,) = [a for a in report["audits"] if a["status"] != "disabled"]
    assert audit["status"] == "skipped" and "static" in audit["reason"]

    full = cli("run", path, "--format", "json", "--only", "gradient_probe")
    assert full.returncode == 0, full.stdout + full.stderr
    report = json.loads((tmp_path / "reports" / "report.json").read_text(encoding="utf-8"))
    (audit,) = [a for a in report["audits"] if a["status"] != "disabled"]
    assert audit["status"] == "passed"
    if torch.cuda.is_available():
        assert report["environment"]["device"].startswith("cuda")
    else:
        assert report["environment"]["device"] == "cpu"
        assert any("CUDA is not available" in note for note in audit["notes"])


def test_plugin_import_stays_torch_free():
    code = (
        "import sys, auditor_plugins.gradient_probe as gp; "
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules; print(len(gp.CODES))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    from auditor_plugins.gradient_probe.codes import CODES

    # Every code declared (read here, so a branch adding codes does not have to edit a count).
    assert result.returncode == 0 and result.stdout.strip() == str(len(CODES)), result.stderr
    assert len(CODES) >= 24


@pytest.mark.slow
def test_resnet18_at_64px_default_configuration_is_clean(tmp_path, run_audit):
    # Default options except the time budget: on a loaded machine the default 120 s cut the overfit
    # short (13 of 20 steps) and the test failed for the machine's sake. Wall time and the cost bound
    # are measured by benchmarks/probe.py, not asserted here.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "gp_resnet.py").write_text(
        "import torch\nfrom torchvision import models, transforms\n\n"
        "tf = transforms.Compose([transforms.RandomResizedCrop(64, scale=(0.7, 1.0)), transforms.ToTensor(),\n"
        "                         transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])\n\n"
        "def build(num_classes=3):\n    torch.manual_seed(0)\n    model = models.resnet18(weights=None)\n"
        "    model.fc = torch.nn.Linear(512, num_classes)\n    return model\n\n"
        "def make_optimizer(model, lr=0.01):\n"
        "    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)\n",
        encoding="utf-8",
    )
    make_class_images(tmp_path / "train", {"a": 16, "b": 16, "c": 16}, size=64)
    import yaml

    manifest = {
        "version": 1,
        "pythonpath": ["src"],
        "model": {"factory": "gp_resnet:build"},
        "optimizer": {"factory": "gp_resnet:make_optimizer"},
        "loss": {"factory": "torch.nn:CrossEntropyLoss"},
        "data": {"train": {"format": "image_folder", "root": "train", "transform": "gp_resnet:tf"}},
        "audits": {"gradient_probe": {"time_budget_s": 86_400}},
    }
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    outcome = run_audit(tmp_path / "audit.yaml", only=["gradient_probe"])
    (audit,) = [a for a in outcome.report["audits"] if a["status"] != "disabled"]
    assert audit["evidence"]["steps_done"] == 20 and len(audit["evidence"]["overfit_curve"]) == 20
    assert outcome.codes() == {"GP011"}, [f["message"] for f in outcome.report["findings"]]
    assert set(audit["evidence"]["timing"]) >= {"build_s", "probe_steps_s", "overfit_steps_s"}
