"""transform_parity's contracts on real pipelines and a real model: TP007 (channels), TP008 (normalized twice)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from auditor.testing import Project, run_in_process

PIPELINES = textwrap.dedent("""
    from torch import nn
    from torchvision import models, transforms

    MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    once = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    twice = transforms.Compose([once, transforms.Normalize(MEAN, STD)])
    preset = models.ResNet18_Weights.IMAGENET1K_V1.transforms(crop_size=32, resize_size=32)
    preset_then_normalize = transforms.Compose([preset, transforms.Normalize(MEAN, STD)])
    gray1 = transforms.Compose([transforms.Resize((32, 32)), transforms.Grayscale(1), transforms.ToTensor()])
    gray3 = transforms.Compose([transforms.Resize((32, 32)), transforms.Grayscale(3), transforms.ToTensor()])


    def resnet(num_classes=2):
        return models.resnet18(weights=None, num_classes=num_classes)
""")


@pytest.fixture
def project(tmp_path) -> Project:
    project = Project(tmp_path / "project")
    project.write("src/pipes.py", PIPELINES)
    project.image_folder("data/train", {"a": 6, "b": 6}, size=40)
    return project


def _run(project: Project, transform: str, model: bool = False) -> Any:
    sections: dict[str, Any] = {"pythonpath": ["src"]}
    if model:
        sections["model"] = {"factory": "pipes:resnet"}
    path = project.manifest(
        {"train": {"format": "image_folder", "root": "data/train", "transform": f"pipes:{transform}"}},
        audits={"transform_parity": {"samples": 8}},
        name=f"{transform}.yaml",
        **sections,
    )
    return run_in_process(path)


@pytest.mark.parametrize(
    ("transform", "first"),
    [("twice", "Normalize(mean="), ("preset_then_normalize", "the weights preset ImageClassification")],
)
def test_normalizing_twice_is_tp008_naming_both_steps(project, transform, first):
    run = _run(project, transform)
    (tp008,) = run.findings_for("TP008")
    assert tp008["severity"] == "error" and run.exit_code == 1
    assert f"'train': inputs are normalized twice, first by {first}" in tp008["message"]
    assert "then by Normalize(mean=[0.485, 0.456, 0.406]" in tp008["message"]
    assert "measured on 8 samples" in tp008["message"]
    assert "keep one of the two" in tp008["hint"]
    assert len(tp008["evidence"]["steps"]) == 2


@pytest.mark.parametrize("transform", ["once", "preset"])
def test_normalizing_once_is_clean(project, transform):
    run = _run(project, transform)
    assert not [f for f in run.findings if f["severity"] in ("error", "warning")], run.findings


def test_grayscale_into_a_three_channel_stem_is_tp007(project):
    run = _run(project, "gray1", model=True)
    (tp007,) = run.findings_for("TP007")
    assert tp007["severity"] == "error"
    assert (
        "the pipeline gives 1-channel inputs [1, 32, 32] but the model's first conv `conv1` takes 3"
        in tp007["message"]
    )
    assert "Grayscale(num_output_channels=3)" in tp007["hint"]
    assert tp007["location"] == "data.train.transform"


def test_grayscale_with_three_output_channels_is_clean(project):
    run = _run(project, "gray3", model=True)
    assert not run.findings_for("TP007")
    assert not [f for f in run.findings if f["severity"] == "error"], run.findings
