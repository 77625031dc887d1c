"""transform_parity: every TP code triggered and not triggered, with real torchvision pipelines (v1 and v2),
real images, and what the backbone expects resolved offline from torchvision weights (or timm).

Pipelines and datasets live in a real module (``tp_project``) written once per session and
imported through the manifest's ``pythonpath``.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

RESNET50 = "torchvision:ResNet50_Weights.IMAGENET1K_V2"

PROJECT = textwrap.dedent('''
    """Transform pipelines and datasets of a fine-tuning project, correct and broken."""
    import torch
    from PIL import Image
    from torch import nn
    from torchvision import transforms as T
    from torchvision.models import resnet50
    from torchvision.transforms import v2

    MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

    # What ResNet50_Weights.IMAGENET1K_V2 was trained with: 224 crops, eval resize 232.
    train_ok = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                          T.Normalize(MEAN, STD)])
    eval_ok = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    train_v2 = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(224, antialias=True),
                           v2.RandomApply([v2.ColorJitter(0.3, 0.3)], p=0.5), v2.RandomHorizontalFlip(),
                           v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    eval_v2 = v2.Compose([v2.ToImage(), v2.Resize(232, antialias=True), v2.CenterCrop(224),
                          v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    # Normalizing 0..255 values with 0..255 statistics is equivalent, and fine.
    eval_v2_bytes = v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32),
                                v2.Normalize([m * 255 for m in MEAN], [s * 255 for s in STD]),
                                v2.Resize(232, antialias=True), v2.CenterCrop(224)])
    # The scale=True was forgotten: 0..255 values normalized with [0, 1] statistics.
    eval_v2_unscaled = v2.Compose([v2.ToImage(), v2.Resize(232, antialias=True), v2.CenterCrop(224),
                                   v2.ToDtype(torch.float32), v2.Normalize(MEAN, STD)])
    eval_v2_random = v2.Compose([v2.ToImage(), v2.Resize(232, antialias=True), v2.CenterCrop(224),
                                 v2.RandomChoice([v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]),
                                 v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    eval_no_norm = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor()])
    eval_half_stats = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(),
                                 T.Normalize([0.5] * 3, [0.5] * 3)])
    eval_rounded = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(),
                              T.Normalize([0.48, 0.46, 0.41], [0.23, 0.22, 0.23])])
    eval_twice = T.Compose([T.Resize(232), T.CenterCrop(224), T.PILToTensor(),
                            T.ConvertImageDtype(torch.float),
                            nn.Sequential(T.Normalize(MEAN, STD), T.Normalize(MEAN, STD))])
    eval_random_crop = T.Compose([T.Resize(232), T.RandomCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    eval_256 = T.Compose([T.Resize(292), T.CenterCrop(256), T.ToTensor(), T.Normalize(MEAN, STD)])
    eval_short_side = T.Compose([T.Resize(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    # Opaque steps: what they do is only visible by running them.
    eval_lambda_255 = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(), T.Lambda(lambda x: x * 255),
                                 T.Normalize(MEAN, STD)])
    mean_t, std_t = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)


    def standardize(x):
        return (x - mean_t) / std_t


    def jitter(x):
        return x + 0.05 * torch.rand(1)


    eval_rescaled = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD),
                               T.Lambda(lambda x: (x - x.min()) / (x.max() - x.min()))])
    identity_tf = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.0] * 3, [1.0] * 3)])
    eval_opaque_norm = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(), standardize])
    eval_opaque_random = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD),
                                    jitter])
    train_erasing = T.Compose([T.RandomResizedCrop(224), T.ToTensor(), T.Normalize(MEAN, STD),
                               T.RandomErasing(p=1.0, value="random")])
    # Normalize before ToTensor: fails on a PIL image.
    eval_crashes = T.Compose([T.Resize(232), T.Normalize(MEAN, STD), T.ToTensor()])
    eval_pil = T.Compose([T.Resize(232), T.CenterCrop(224)])
    gray_tf = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.5], [0.5])])
    small_train = T.Compose([T.RandomResizedCrop(64), T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])
    small_eval = T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])


    def eval_factory():
        return T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])


    ACCESSED = []


    class Shapes:
        """A dataset of generated images that records which samples were decoded."""

        def __init__(self, n=40, mode="RGB"):
            self.n, self.mode = n, mode
            self.targets = [i % 2 for i in range(n)]
            self.classes = ["even", "odd"]

        def __len__(self):
            return self.n

        def __getitem__(self, index):
            ACCESSED.append(index)
            value = (index * 37) % 256
            return Image.new(self.mode, (24, 24), value if self.mode == "L" else (value, 255 - value, 90)), \\
                self.targets[index]


    def build_resnet50(num_classes=3):
        model = resnet50(weights=None)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model


    def sgd(model):
        return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
''')


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tp_project")
    (folder / "tp_project.py").write_text(PROJECT, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ and val/ image folders, 2 classes, 32 px (from conftest's generator)."""
    from auditor.testing import make_image_folder

    root = tmp_path_factory.mktemp("tp_images")
    make_image_folder(root / "train", {"cat": 6, "dog": 6}, seed=1)
    make_image_folder(root / "val", {"cat": 4, "dog": 4}, seed=2)
    return root


def _folder(root: Path, split: str, transform: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {"format": "image_folder", "root": str(root / split)}
    if transform:
        config["transform"] = f"tp_project:{transform}"
    return config


@pytest.fixture
def audit(tmp_path, project, images, manifest_writer, run_audit):
    """Run transform_parity with a train and a val pipeline; return (outcome, audit entry)."""

    def _run(
        train: str | None = "train_ok",
        val: str | None = "eval_ok",
        *,
        pretrained: Any = RESNET50,
        data: dict[str, Any] | None = None,
        expect_error: bool = False,
        **options: Any,
    ):
        manifest: dict[str, Any] = {
            "version": 1,
            "pythonpath": [str(project)],
            "data": data or {"train": _folder(images, "train", train), "val": _folder(images, "val", val)},
            "audits": {"transform_parity": options},
        }
        if pretrained is not None:
            manifest["model"] = {"factory": "tp_project:build_resnet50", "pretrained": pretrained}
        outcome = run_audit(manifest_writer(tmp_path, manifest), only=["transform_parity"])
        (entry,) = [a for a in outcome.report["audits"] if a["status"] != "disabled"]
        if not expect_error:
            assert entry["status"] != "errored", entry["error"]
        return outcome, entry

    return _run


def _one(outcome, code: str, location: str | None = None) -> dict[str, Any]:
    found = [
        f
        for f in outcome.report["findings"]
        if f["code"] == code and (location is None or f["location"] == location)
    ]
    assert len(found) == 1, (code, outcome.report["findings"])
    return found[0]


def test_correct_resnet50_pipelines_produce_no_finding(audit):
    outcome, entry = audit("train_ok", "eval_ok")
    assert outcome.report["findings"] == [], outcome.report["findings"]
    evidence = entry["evidence"]
    assert evidence["expected"]["mean"] == [0.485, 0.456, 0.406]
    assert evidence["expected"]["input_size"] == [3, 224, 224] and evidence["expected"]["resize"] == 232
    measured = evidence["measured"]
    assert measured["train"]["shape"] == [3, 224, 224] and measured["val"]["shapes"] == {"3x224x224": 8}
    assert measured["val"]["kind"] == "normalized" and measured["val"]["nondeterministic"] is False
    assert (
        "train" in evidence["side_by_side"].splitlines()[0]
        and "val" in evidence["side_by_side"].splitlines()[0]
    )
    assert "RandomHorizontalFlip(p=0.5)  [random]" in evidence["pipelines"]["train"]["steps"][2]
    rows = [r for r in evidence["stats"] if r["split"] == "val"]
    assert [r["channel"] for r in rows] == [0, 1, 2] and rows[0]["expected_mean"] == 0.0


def test_correct_project_passes_both_static_audits(tmp_path, project, images, manifest_writer, run_audit):
    """ResNet-50 (built once, weights=None), matching pipelines and a full optimizer: nothing to report."""
    manifest = {
        "version": 1,
        "pythonpath": [str(project)],
        "model": {
            "factory": "tp_project:build_resnet50",
            "kwargs": {"num_classes": 2},
            "pretrained": RESNET50,
            "head": "fc",
        },
        "optimizer": {"factory": "tp_project:sgd"},
        "data": {
            "train": _folder(images, "train", "train_v2"),
            "val": _folder(images, "val", "eval_factory"),
        },
        "audits": {"transform_parity": {"samples": 8}, "frozen_coverage": {}},
    }
    outcome = run_audit(manifest_writer(tmp_path, manifest), static=True)
    assert outcome.report["findings"] == []
    assert {a["name"]: a["status"] for a in outcome.report["audits"] if a["status"] != "disabled"} == {
        "transform_parity": "passed",
        "frozen_coverage": "passed",
    }


def test_v2_pipelines(audit):
    outcome, entry = audit("train_v2", "eval_v2")
    assert outcome.report["findings"] == []
    assert entry["evidence"]["pipelines"]["train"]["normalize"]["scale"] == "unit"
    byte_scale, _ = audit("train_v2", "eval_v2_bytes")
    assert byte_scale.findings == []
    random_eval, _ = audit("train_v2", "eval_v2_random")
    tp004 = _one(random_eval, "TP004")
    assert "RandomHorizontalFlip" in tp004["message"] and "RandomVerticalFlip" in tp004["message"]
    assert tp004["location"] == "data.val"


def test_missing_normalization_tp001_and_tp003(audit):
    outcome, _ = audit("train_ok", "eval_no_norm")
    tp001 = _one(outcome, "TP001")
    assert tp001["location"] == "data.val" and tp001["severity"] == "error"
    assert "measured values lie in [0, 1]" in tp001["message"]
    assert (
        "Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]) after ToTensor()" in tp001["hint"]
    )
    tp003 = _one(outcome, "TP003")
    assert "'val' with no normalization" in tp003["message"]
    assert not {"TP002", "TP006"} & outcome.codes()


def test_wrong_statistics_tp002_and_tolerance(audit):
    outcome, _ = audit("train_ok", "eval_half_stats")
    tp002 = _one(outcome, "TP002")
    assert "mean [0.5, 0.5, 0.5] std [0.5, 0.5, 0.5]" in tp002["message"]
    assert tp002["evidence"]["distance"] == pytest.approx(0.276)
    assert "TP003" in outcome.codes()  # train uses the ImageNet statistics
    rounded, _ = audit("train_ok", "eval_rounded")
    assert "TP002" not in rounded.codes() and "TP003" not in rounded.codes()
    strict, _ = audit("train_ok", "eval_rounded", tolerance=0.001)
    assert {"TP002", "TP003"} <= strict.codes()


def test_double_normalization_tp002_and_tp006(audit):
    outcome, _ = audit("train_ok", "eval_twice")
    tp002 = _one(outcome, "TP002")
    assert "after 2 Normalize steps in a row" in tp002["message"]
    tp006 = _one(outcome, "TP006")
    assert "values reach 11." in tp006["message"]


def test_unscaled_v2_dtype_tp002_and_tp006(audit):
    outcome, _ = audit("train_v2", "eval_v2_unscaled")
    assert "applied to 0..255 values" in _one(outcome, "TP002")["message"]
    tp006 = _one(outcome, "TP006")
    assert "not scaled to [0, 1]" in tp006["message"]


def test_opaque_lambda_scaling_to_255_is_caught_empirically(audit):
    outcome, entry = audit("train_ok", "eval_lambda_255")
    # Statically the pipeline looks right: only the measurement sees the x255.
    assert not {"TP001", "TP002", "TP003"} & outcome.codes()
    tp006 = _one(outcome, "TP006")
    assert "values reach" in tp006["message"] and "Lambda(<lambda> at tp_project.py:" in tp006["message"]
    assert tp006["evidence"]["measured"]["max"][0] > 1000
    assert entry["evidence"]["pipelines"]["val"]["opaque"] == [tp006["evidence"]["opaque_steps"][0]]


def test_normalize_undone_by_an_opaque_step_tp006(audit):
    outcome, _ = audit("train_ok", "eval_rescaled")
    tp006 = _one(outcome, "TP006")
    assert "every value lies in [0, 1], as if it never ran" in tp006["message"]
    assert "Lambda(<lambda>" in tp006["message"]
    # an identity-like Normalize legitimately leaves [0, 1] values
    identity, _ = audit("identity_tf", "identity_tf", pretrained=None)
    assert identity.findings == []


def test_opaque_step_that_normalizes_correctly_is_accepted(audit):
    outcome, entry = audit("train_ok", "eval_opaque_norm")
    assert outcome.report["findings"] == []
    assert entry["evidence"]["measured"]["val"]["kind"] == "normalized"


def test_random_steps_in_evaluation_tp004(audit):
    outcome, _ = audit("train_ok", "eval_random_crop")
    tp004 = _one(outcome, "TP004")
    assert "RandomCrop(size=(224, 224)" in tp004["message"]
    # The same random step in train is augmentation, not a finding.
    assert _one(outcome, "TP004")["location"] == "data.val"
    opaque, _ = audit("train_ok", "eval_opaque_random")
    tp004 = _one(opaque, "TP004")
    assert (
        "different outputs for the same image" in tp004["message"] and "function jitter" in tp004["message"]
    )


def test_sizes_tp005(audit):
    outcome, _ = audit("train_ok", "eval_256")
    messages = sorted(f["message"] for f in outcome.report["findings"] if f["code"] == "TP005")
    assert messages == [
        "'train' feeds 224x224 inputs, 'val' 256x256",
        (
            "'val' feeds 256x256 inputs; torchvision:ResNet50_Weights.IMAGENET1K_V2 was trained at "
            "224x224; features pretrained at one scale lose accuracy at another"
        ),
    ]
    assert "Resize(232) + CenterCrop(224)" in next(
        f["hint"] for f in outcome.report["findings"] if f["message"].startswith("'val' feeds")
    )


def test_varying_sizes_within_a_split_tp005(tmp_path, audit):
    from PIL import Image

    root = tmp_path / "odd"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        Image.new("RGB", (48, 32), (200, 10, 10)).save(root / cls / "wide.png")
        Image.new("RGB", (32, 48), (10, 200, 10)).save(root / cls / "tall.png")
    data = {"train": {"format": "image_folder", "root": str(root), "transform": "tp_project:eval_short_side"}}
    outcome, _ = audit(data=data)
    pretrained, varying = sorted(
        (f for f in outcome.report["findings"] if f["code"] == "TP005"), key=lambda f: f["message"]
    )
    assert varying["message"].startswith("'train' produces 2 different input shapes: ")
    assert "3x224x336 (2)" in varying["message"] and "3x336x224 (2)" in varying["message"]
    assert "CenterCrop" in varying["hint"]
    assert "feeds 336x224 inputs" in pretrained["message"]  # the first shape seen stands for the split


def test_grayscale_into_rgb_stem_tp005(audit):
    data = {
        "train": {
            "format": "callable",
            "factory": "tp_project:Shapes",
            "kwargs": {"mode": "L"},
            "transform": "tp_project:gray_tf",
        }
    }
    outcome, entry = audit(data=data, samples=8)
    channels = [f for f in outcome.report["findings"] if f["code"] == "TP005"]
    assert len(channels) == 1 and "1-channel inputs" in channels[0]["message"]
    assert "Grayscale(num_output_channels=3)" in channels[0]["hint"]
    assert entry["evidence"]["measured"]["train"]["shape"] == [1, 224, 224]


def test_only_the_requested_samples_are_decoded(audit, project):
    data = {
        "train": {"format": "callable", "factory": "tp_project:Shapes", "transform": "tp_project:train_ok"},
        "val": {"format": "callable", "factory": "tp_project:Shapes", "transform": "tp_project:eval_ok"},
    }
    module = sys.modules.get("tp_project")
    if module is not None:
        module.ACCESSED.clear()
    outcome, entry = audit(data=data, samples=8)
    accessed = sys.modules["tp_project"].ACCESSED
    spread = [0, 5, 10, 15, 20, 25, 30, 35]
    # labels come from the `targets` attribute; each split decodes its 8 samples once (val transforms twice)
    assert sorted(accessed) == sorted(spread * 2)
    assert entry["evidence"]["measured"]["val"]["samples"] == 8
    assert outcome.report["findings"] == []


def test_failing_and_non_tensor_pipelines_are_notes_not_crashes(audit):
    _outcome, entry = audit("train_ok", "eval_crashes")
    assert entry["status"] in ("passed", "failed")
    assert any(
        "'val': the pipeline failed on 8 of 8 samples" in n and "TypeError" in n for n in entry["notes"]
    )
    _pil, entry = audit("train_ok", "eval_pil")
    assert any("returns PIL.Image, not a tensor" in n for n in entry["notes"])


def test_random_erasing_after_normalize_is_not_tp006(audit):
    outcome, _ = audit("train_erasing", "eval_ok")
    assert "TP006" not in outcome.codes()


def test_static_only_when_samples_is_zero(audit):
    outcome, entry = audit("train_ok", "eval_no_norm", samples=0)
    assert {"TP001", "TP003"} <= outcome.codes()
    assert entry["evidence"]["measured"] == {}
    assert any("samples is 0" in n for n in entry["notes"])


def test_without_pretrained_only_split_comparisons(audit):
    outcome, entry = audit("train_ok", "eval_no_norm", pretrained=None)
    assert outcome.codes() == {"TP003"}
    assert any("model.pretrained is not declared" in n for n in entry["notes"])


def test_mapping_pretrained(audit):
    mapping = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "input_size": [3, 64, 64]}
    outcome, entry = audit("small_train", "small_eval", pretrained=mapping)
    assert outcome.report["findings"] == []
    assert entry["evidence"]["expected"]["source"] == "manifest mapping"
    mismatch, _ = audit("train_ok", "eval_ok", pretrained=mapping)
    assert {"TP002", "TP005"} <= mismatch.codes()


def test_unknown_torchvision_weights_are_a_manifest_error(audit):
    outcome, entry = audit(pretrained="torchvision:ResNet50_Weights.IMAGENET1K_V3", expect_error=True)
    assert entry["status"] == "errored" and outcome.exit_code == 2
    assert "model.pretrained" in entry["error"]["message"]
    assert "did you mean ResNet50_Weights.IMAGENET1K_V2" in entry["error"]["message"]


def test_timm_missing_is_a_clear_note(audit, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    monkeypatch.setitem(sys.modules, "timm.models", None)
    outcome, entry = audit(pretrained="timm:resnet50.a1_in1k")
    assert any("pip install 'auditor[timm]'" in n for n in entry["notes"])
    assert entry["evidence"]["expected"] is None
    assert not {"TP001", "TP002"} & outcome.codes()


def test_timm_pretrained_config(audit):  # timm is in the test extra: missing fails here, never skips
    outcome, entry = audit("train_ok", "eval_ok", pretrained="timm:vit_base_patch16_224.augreg_in21k")
    expected = entry["evidence"]["expected"]
    assert expected["mean"] == [0.5, 0.5, 0.5] and expected["interpolation"] == "bicubic"
    assert expected["input_size"] == [3, 224, 224] and expected["fixed_input_size"] is True
    assert _one(outcome, "TP002", "data.train") and _one(outcome, "TP002", "data.val")
    clean, _ = audit("train_ok", "eval_ok", pretrained="timm:resnet50.a1_in1k")
    assert clean.findings == []


def test_static_reading_of_odd_objects_never_crashes():
    import torch
    from torchvision import transforms as T
    from torchvision.transforms import v2

    from auditor_plugins.transform_parity.pipeline import analyze

    for odd in (
        object(),
        42,
        "text",
        lambda x: x,
        print,
        T.Compose([]),
        v2.Compose([None]) if False else None,
    ):
        pipe = analyze(odd)
        assert isinstance(pipe.lines(), list)
    nested = T.Compose(
        [
            T.RandomApply([T.Compose([T.ColorJitter(0.2), T.GaussianBlur(3)])], p=0.3),
            T.RandomOrder([T.RandomHorizontalFlip(), T.RandomVerticalFlip()]),
            T.RandomChoice([T.Resize(10), T.Resize(20)]),
            T.ToTensor(),
            torch.nn.Sequential(T.Normalize([0.5], [0.5])),
        ]
    )
    pipe = analyze(nested)
    assert pipe.normalize is not None and pipe.normalize.mean == (0.5,)
    assert pipe.size is None  # a RandomChoice of two resizes: no single size
    assert {s.name for s in pipe.random_steps} >= {
        "RandomApply",
        "ColorJitter",
        "GaussianBlur",
        "RandomOrder",
    }
    conditional = analyze(T.Compose([T.ToTensor(), T.RandomApply([T.Normalize([0.5], [0.5])], p=0.5)]))
    assert conditional.normalize is None and conditional.conditional_normalize
    fixed = analyze(
        v2.Compose([v2.GaussianBlur(3, sigma=1.0), v2.RandomHorizontalFlip(p=0.0), v2.ColorJitter()])
    )
    assert fixed.random_steps == []
