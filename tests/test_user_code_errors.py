"""Failures of user code are the user's, in words (issue 23 item 5): never "audit crashed".

In-process runs (``run_manifest`` and ``auditor.check``): an exception raised by a factory, a
``sys.exit`` in ``forward``, a model on the meta device, a dataset with an absurd ``len()`` each end
with a worded finding or problem naming the call and the user's line, and the report is returned.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import auditor
from auditor.testing import Project, run_in_process

MODULE = """
import sys
import torch


class Items(torch.utils.data.Dataset):
    classes = ["a", "b"]

    def __init__(self, n=8, targets=True):
        self.n = n
        if targets:
            self.targets = [i % 2 for i in range(n)]

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return torch.full((4,), float(index % 2)), index % 2


def items():
    return Items()


def huge():
    return Items(10**12, targets=False)


def raises():
    width = None
    return torch.nn.Linear(width, 2)


def exits():
    sys.exit(3)


def meta():
    with torch.device("meta"):
        return torch.nn.Linear(4, 2)


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)
"""


def _manifest(project: Project, factory: str, data: str = "m:items") -> Path:
    project.write("m.py", MODULE)
    return project.manifest(
        {"train": {"format": "callable", "factory": data}},
        pythonpath=["."],
        model={"factory": f"m:{factory}"},
        optimizer={"factory": "m:sgd"},
        loss={"factory": "torch.nn:CrossEntropyLoss"},
        audits={
            "frozen_coverage": {},
            "label_distribution": {},
            "gradient_probe": {"steps": 2, "batch_size": 4},
        },
        name=f"{factory}.yaml",
    )


def _only(report_audits: list[dict], name: str) -> dict:
    return next(a for a in report_audits if a["name"] == name)


def test_a_factory_that_raises_is_a_user_error_with_the_users_line(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    outcome = run_in_process(
        _manifest(project, "raises"), only=["frozen_coverage"], output_dir=tmp_path / "o"
    )
    assert outcome.audit("frozen_coverage")["status"] == "failed"  # not "errored": auditor did not crash
    (finding,) = outcome.findings_for("DL005")
    assert finding["message"].startswith("model.factory (m:raises): raised TypeError: ")
    assert "m.py:" in finding["message"] and "in raises" in finding["message"]
    assert "return torch.nn.Linear(width, 2)" in finding["evidence"]["traceback"]
    assert outcome.exit_code == 1


def test_sys_exit_in_a_factory_is_caught_in_process_and_the_next_audit_skips(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    outcome = run_in_process(
        _manifest(project, "exits"), only=["frozen_coverage", "gradient_probe"], output_dir=tmp_path / "o"
    )
    (finding,) = outcome.findings_for("DL004")
    assert "called sys.exit(3)" in finding["message"] and "in exits" in finding["message"]
    probe = outcome.audit("gradient_probe")
    assert probe["status"] == "skipped" and "failed earlier in this run" in probe["reason"]
    assert outcome.exit_code == 1


def test_a_model_on_the_meta_device_is_a_finding_with_the_fix(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    outcome = run_in_process(_manifest(project, "meta"), only=["frozen_coverage"], output_dir=tmp_path / "o")
    (finding,) = outcome.findings_for("DL008")
    assert "weight, bias" in finding["message"] and finding["location"] == "model.factory"
    assert "to_empty" in finding["hint"] and "load_state_dict" in finding["hint"]


def test_a_dataset_with_an_absurd_len_and_no_targets_is_refused_in_words(tmp_path: Path) -> None:
    project = Project(tmp_path / "p")
    outcome = run_in_process(
        _manifest(project, "raises", data="m:huge"), only=["label_distribution"], output_dir=tmp_path / "o"
    )
    entry = outcome.audit("label_distribution")
    assert entry["status"] == "errored", entry
    assert "1,000,000,000,000 samples" in entry["error"]["message"]
    assert "targets" in entry["error"]["message"]


@pytest.mark.parametrize(
    ("keyword", "value", "words"),
    [
        ("model", "torchvision.models:resnet18", "model: expected a torch.nn.Module, found 'torchvision"),
        ("optimizer", nn.Linear(2, 2), "optimizer: expected a torch.optim.Optimizer"),
        ("loss", 3, "loss: expected a callable loss"),
    ],
)
def test_check_refuses_wrong_types_up_front_naming_the_parameter(
    keyword: str, value: object, words: str
) -> None:
    with pytest.raises(TypeError, match="auditor.check: " + words.replace("(", r"\(").replace(".", r"\.")):
        auditor.check(**{keyword: value}, train=TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])))


class _ExitingForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise SystemExit(0)


def test_check_records_sys_exit_in_forward_and_returns_the_report() -> None:
    model = _ExitingForward()
    result = auditor.check(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        train=TensorDataset(torch.rand(8, 2), torch.tensor([0, 1] * 4)),
        audits=["gradient_probe"],
        gradient_probe={"steps": 2, "overfit_steps": 2, "batch_size": 4, "device": "cpu"},
    )
    (finding,) = [f for f in result.findings if f.code == "DL004"]
    assert "the model's forward" in finding.message and "sys.exit(0)" in finding.message
    assert "in forward" in finding.message
    assert result.exit_code == 1
