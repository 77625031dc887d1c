"""Class weights per loss (issue 22 item 5): hints in the loss's own terms, and LD009 for a weight that is there.

Real image folders (ImageFolder indexes classes alphabetically) and real torch losses.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from auditor.testing import Project, run_in_process

LOSSES = textwrap.dedent("""
    import torch
    from torch import nn


    def ce(weight=None):
        return nn.CrossEntropyLoss(weight=None if weight is None else torch.tensor(weight))


    def bce(pos_weight=None):
        return nn.BCEWithLogitsLoss(pos_weight=None if pos_weight is None else torch.tensor(pos_weight))
""")

#: The issue's example, scaled down: listed as normal, benign, malignant; ImageFolder's order is alphabetical.
COUNTS = {"normal": 40, "benign": 6, "malignant": 2}


@pytest.fixture
def project(tmp_path) -> Project:
    project = Project(tmp_path / "project")
    project.write("src/ld_weight_losses.py", LOSSES)
    return project


def _run(project: Project, counts: dict[str, int], loss: str, kwargs: dict[str, Any]) -> Any:
    root = project.image_folder("data/train", counts, size=8)
    path = project.manifest(
        {"train": root},
        audits={"label_distribution": {}},
        pythonpath=["src"],
        loss={"factory": f"ld_weight_losses:{loss}", "kwargs": kwargs},
    )
    return run_in_process(path)


def test_weights_in_the_listed_order_not_the_class_index_order_are_ld009(project):
    listed = [round(48 / c, 4) for c in COUNTS.values()]  # inverse frequency, in the order the user listed
    run = _run(project, COUNTS, "ce", {"weight": listed})
    (ld009,) = run.findings_for("LD009")
    assert ld009["severity"] == "error" and run.exit_code == 1
    assert "CrossEntropyLoss's weight favours the larger classes" in ld009["message"]
    assert "'normal' (40) x24" in ld009["message"]
    assert (
        "'benign' -> 0 (6 samples), 'malignant' -> 1 (2 samples), 'normal' -> 2 (40 samples)"
        in ld009["message"]
    )
    assert "CrossEntropyLoss(weight=torch.tensor([2.6667, 8.0, 0.4]))" in ld009["hint"]
    assert ld009["evidence"]["class_to_idx"] == {"benign": 0, "malignant": 1, "normal": 2}
    assert not run.findings_for("LD004")  # weighted: the weighting is what is wrong


def test_weights_in_class_index_order_are_clean(project):
    run = _run(project, COUNTS, "ce", {"weight": [2.6667, 8.0, 0.4]})
    assert not run.findings_for("LD009") and not run.findings_for("LD004")


def test_a_weight_of_the_wrong_length_is_ld009(project):
    run = _run(project, COUNTS, "ce", {"weight": [1.0, 2.0]})
    (ld009,) = run.findings_for("LD009")
    assert "weight has 2 values but training has 3 classes" in ld009["message"]
    assert "one value per class in class-index order" in ld009["hint"]


def test_bce_imbalance_hint_is_pos_weight_from_the_real_counts(project):
    run = _run(project, {"neg": 40, "pos": 2}, "bce", {})
    (ld004,) = run.findings_for("LD004")
    assert "BCEWithLogitsLoss(pos_weight=torch.tensor([20.0]))" in ld004["hint"]
    assert "'pos' (index 1) as the positive class" in ld004["hint"]
    (ld001,) = run.findings_for("LD001")
    assert "pos_weight=torch.tensor([20.0])" in ld001["hint"]


def test_a_pos_weight_for_the_wrong_class_is_ld009_and_the_right_one_is_clean(project):
    run = _run(project, {"neg": 40, "pos": 2}, "bce", {"pos_weight": [0.05]})
    (ld009,) = run.findings_for("LD009")
    assert "pos_weight 0.05 favours the larger class" in ld009["message"]
    assert "BCEWithLogitsLoss(pos_weight=torch.tensor([20.0]))" in ld009["hint"]
    fixed = Project(project.root.parent / "fixed")
    fixed.write("src/ld_weight_losses.py", LOSSES)
    run = _run(fixed, {"neg": 40, "pos": 2}, "bce", {"pos_weight": [20.0]})
    assert not run.findings_for("LD009") and not run.findings_for("LD004")
