"""Weights that really loaded (FZ010, FZ012): every load_state_dict while the factories build the model.

Real checkpoints are written with ``torch.save`` and loaded by a real project module through the
manifest, as a training script would: a DataParallel checkpoint (``module.`` keys), a head-only
file and another architecture's weights, all with ``strict=False``, are errors; a matching file and
a backbone file under a new head are clean, and so is ``pretrained:`` declared on a random-init model.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from conftest import QUICKSTART
from torch import nn
from torch.utils.data import TensorDataset

import auditor
from auditor.testing import make_image_folder, run_cli, run_in_process, write_manifest

PROJECT = textwrap.dedent('''
    """A project whose model factory loads its own checkpoint."""
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, num_classes=3):
            super().__init__()
            self.backbone = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            self.fc = nn.Linear(16, num_classes)

        def forward(self, x):
            return self.fc(self.backbone(x))


    def build(checkpoint=None, strict=False, into="model", num_classes=3):
        model = Net(num_classes)
        if checkpoint:
            state = torch.load(checkpoint, weights_only=True)
            target = model.backbone if into == "backbone" else model
            target.load_state_dict(state, strict=strict)
        return model


    def broken(checkpoint):
        build(checkpoint)
        raise RuntimeError("the factory fails after loading")
''')


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loads")
    (root / "src").mkdir()
    (root / "src" / "loads_project.py").write_text(PROJECT, encoding="utf-8")
    make_image_folder(root / "data" / "train", {"a": 3, "b": 3, "c": 3}, size=16)
    import sys

    sys.path.insert(0, str(root / "src"))
    try:
        from loads_project import Net
    finally:
        sys.path.remove(str(root / "src"))
    torch.manual_seed(1)
    trained = Net().state_dict()
    torch.save(trained, root / "plain.pt")
    torch.save({f"module.{k}": v for k, v in trained.items()}, root / "ddp.pt")
    torch.save({k: v for k, v in trained.items() if k.startswith("fc.")}, root / "head.pt")
    torch.save(
        {k.removeprefix("backbone."): v for k, v in trained.items() if k.startswith("backbone.")},
        root / "backbone.pt",
    )
    torch.save(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)).state_dict(), root / "other.pt")
    (root / "notes.pt").write_text("not a checkpoint", encoding="utf-8")
    return root


def manifest(root: Path, name: str, **kwargs: object) -> Path:
    factory = str(kwargs.pop("factory", "loads_project:build"))
    return write_manifest(
        root / name / "audit.yaml",
        {
            "version": 1,
            "pythonpath": [str(root / "src")],
            "model": {"factory": factory, "kwargs": kwargs, "head": "fc"},
            "data": {"train": {"format": "image_folder", "root": str(root / "data" / "train")}},
            "audits": {"frozen_coverage": {}},
        },
    )


@pytest.mark.slow  # a subprocess `auditor run` (torch import): the in-process cases below cover the logic
def test_dataparallel_checkpoint_loaded_with_strict_false_exits_1_through_auditor_run(project: Path):
    path = manifest(project, "ddp", checkpoint=str(project / "ddp.pt"))
    result = run_cli("run", path, "--format", "json", output_dir=path.parent / "reports")
    result.assert_exit_code(1)
    [finding] = result.findings_for("FZ010")
    assert finding["severity"] == "error"
    assert "filled 0 of its 14 keys (0%)" in finding["message"]
    assert "first unfilled: backbone.0.weight" in finding["message"]
    assert "module.backbone.0.weight" in finding["message"]
    assert "'module.'" in finding["hint"] and "removeprefix" in finding["hint"]
    assert finding["evidence"]["prefix_fix"] == ["strip", "module.", 14]
    assert finding["evidence"]["where"] == "model.factory"


@pytest.mark.parametrize(
    ("checkpoint", "matched"),
    [("head.pt", "filled 2 of its 14 keys (14%)"), ("other.pt", "filled 0 of its 14 keys (0%)")],
)
def test_head_only_and_foreign_checkpoints_are_weights_that_never_loaded(
    project: Path, checkpoint: str, matched: str
):
    run = run_in_process(manifest(project, "m-" + checkpoint, checkpoint=str(project / checkpoint)))
    [finding] = run.findings_for("FZ010")
    assert matched in finding["message"]
    assert run.exit_code == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"checkpoint": "plain.pt"},
        {"checkpoint": "backbone.pt", "into": "backbone"},
        {"checkpoint": "plain.pt", "strict": True},
        {},
    ],
    ids=["matching", "backbone-into-backbone", "strict", "no-load"],
)
def test_loads_that_fill_the_module_are_clean(project: Path, kwargs: dict[str, object]):
    if "checkpoint" in kwargs:
        kwargs = {**kwargs, "checkpoint": str(project / str(kwargs["checkpoint"]))}
    name = "clean-" + "-".join(f"{k}{v}" for k, v in kwargs.items()).replace("/", "_")[-40:]
    run = run_in_process(manifest(project, name, **kwargs))
    run.assert_no_codes("FZ010", "FZ012")
    loads = run.audit("frozen_coverage")["evidence"]["weight_loads"]
    assert len(loads) == (1 if kwargs else 0)
    if kwargs.get("into") == "backbone":
        assert loads[0]["target"] == "backbone" and loads[0]["share"] == 1.0


def test_the_patch_is_removed_even_when_the_factory_raises(project: Path):
    original = torch.nn.Module.load_state_dict
    run = run_in_process(
        manifest(project, "broken", factory="loads_project:broken", checkpoint=str(project / "ddp.pt"))
    )
    assert run.exit_code == 1  # the factory's exception, reported as the user's failed call (DL005)
    assert "DL005" in run.codes()
    assert torch.nn.Module.load_state_dict is original


def test_pretrained_metadata_on_a_random_init_example_stays_clean(tmp_path: Path):
    import shutil

    shutil.copytree(
        QUICKSTART, tmp_path / "quickstart", ignore=shutil.ignore_patterns("reports", ".auditor-cache")
    )
    if not (tmp_path / "quickstart" / "data" / "train").is_dir():
        pytest.skip("the quickstart's data folder is generated by make_data.py")
    run = run_in_process(tmp_path / "quickstart" / "audit.yaml", only=["frozen_coverage"])
    run.assert_no_codes("FZ010", "FZ011", "FZ012")


# -- live objects ------------------------------------------------------------------------------


#: A few labelled samples: auditor.check audits a model together with the data it trains on.
TRAIN = TensorDataset(torch.zeros(6, 3, 16, 16), torch.arange(6) % 3)


def live_net(project: Path) -> nn.Module:
    import sys

    sys.path.insert(0, str(project / "src"))
    try:
        from loads_project import Net
    finally:
        sys.path.remove(str(project / "src"))
    return Net()


def test_check_with_the_load_result_of_a_dataparallel_checkpoint(project: Path):
    model = live_net(project)
    result = model.load_state_dict(torch.load(project / "ddp.pt", weights_only=True), strict=False)
    report = auditor.check(model, load_result=result, train=TRAIN, audits=["frozen_coverage"], progress=False)
    [finding] = [f for f in report.findings if f.code == "FZ010"]
    assert "filled 0 of its 14 keys" in finding.message and "module." in finding.hint
    assert report.exit_code == 1


def test_check_with_a_checkpoint_path_compares_without_loading(project: Path):
    model = live_net(project)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bad = auditor.check(
        model, checkpoint=project / "ddp.pt", train=TRAIN, audits=["frozen_coverage"], progress=False
    )
    assert [f.code for f in bad.findings if f.code.startswith("FZ01")] == ["FZ010"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    good = auditor.check(
        model,
        checkpoint=[project / "plain.pt", project / "backbone.pt"],
        train=TRAIN,
        audits=["frozen_coverage"],
        progress=False,
    )
    assert not [f for f in good.findings if f.code in ("FZ010", "FZ012")]
    loads = next(a for a in good.report["audits"] if a["name"] == "frozen_coverage")["evidence"][
        "weight_loads"
    ]
    assert [(entry["target"], entry["share"]) for entry in loads] == [("", 1.0), ("backbone", 1.0)]


def test_an_unreadable_checkpoint_is_said_never_passed(project: Path):
    model = live_net(project)
    report = auditor.check(
        model, checkpoint=project / "notes.pt", train=TRAIN, audits=["frozen_coverage"], progress=False
    )
    [finding] = [f for f in report.findings if f.code == "FZ012"]
    assert "notes.pt" in finding.message and "weights_only=True" in finding.message


def test_a_load_result_of_the_wrong_type_is_a_usage_error():
    with pytest.raises(auditor.UsageError, match="load_result= expected what load_state_dict returned"):
        auditor.check(
            nn.Linear(2, 2),
            load_result={"missing": []},
            train=TRAIN,
            audits=["frozen_coverage"],
            progress=False,
        )


def test_a_folder_given_as_checkpoint_is_said(project: Path):
    report = auditor.check(
        live_net(project), checkpoint=project / "src", train=TRAIN, audits=["frozen_coverage"], progress=False
    )
    [finding] = [f for f in report.findings if f.code == "FZ012"]
    assert "src" in finding.message


def test_interleaved_recordings_never_leave_a_wrapper_behind():
    from auditor.run.weight_loads import recording_loads

    original = torch.nn.Module.load_state_dict
    first, second = recording_loads("first"), recording_loads("second")
    seen_first, seen_second = first.__enter__(), second.__enter__()
    nn.Linear(2, 2).load_state_dict(nn.Linear(2, 2).state_dict())
    first.__exit__(None, None, None)  # the build that started first ends first
    nn.Linear(2, 2).load_state_dict(nn.Linear(2, 2).state_dict(), strict=False)
    second.__exit__(None, None, None)
    assert torch.nn.Module.load_state_dict is original
    assert [r.where for r in seen_first] == ["first"]
    assert [(r.where, r.strict, r.share) for r in seen_second] == [
        ("second", True, 1.0),
        ("second", False, 1.0),
    ]
