"""LD010 (issue 22 item 6): an unshuffled training loader over data stored class by class."""

from __future__ import annotations

from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import ImageFolder

import auditor
from auditor.testing import Project, make_image_folder, run_in_process


def _manifest_run(tmp_path, shuffle: bool | None):
    project = Project(tmp_path / f"project-{shuffle}")
    root = project.image_folder("data/train", {"a": 40, "b": 40, "c": 40}, size=8)
    split = {"format": "image_folder", "root": root.relative_to(project.root).as_posix()}
    if shuffle is not None:
        split["shuffle"] = shuffle
    return run_in_process(project.manifest({"train": split}, audits={"label_distribution": {}}))


def test_manifest_shuffle_false_over_an_image_folder_is_ld010(tmp_path):
    run = _manifest_run(tmp_path, False)
    (ld010,) = run.findings_for("LD010")
    assert ld010["severity"] == "warning" and ld010["location"] == "data.train"
    assert "data.train (shuffle: false) reads 'train' in stored order" in ld010["message"]
    assert "2 of 4 batches of 32 hold a single class" in ld010["message"]
    assert "shuffle=True" in ld010["hint"]


def test_manifest_default_shuffles_the_training_split(tmp_path):
    assert not _manifest_run(tmp_path, None).findings_for("LD010")


def test_check_reads_the_real_loader_order(tmp_path):
    make_image_folder(tmp_path / "train", {"a": 16, "b": 16}, size=8)
    dataset = ImageFolder(str(tmp_path / "train"), transforms.ToTensor())
    ordered = auditor.check(train=DataLoader(dataset, batch_size=8), audits=["label_distribution"])
    (ld010,) = [f for f in ordered.findings if f.code == "LD010"]
    assert "the training DataLoader (a SequentialSampler: shuffle=False)" in ld010.message
    assert "4 of 4 batches of 8 hold a single class" in ld010.message
    shuffled = auditor.check(
        train=DataLoader(dataset, batch_size=8, shuffle=True), audits=["label_distribution"]
    )
    assert "LD010" not in {f.code for f in shuffled.findings}
