"""gradient_probe: every GP code triggered by a real small model, and not triggered by a correct one.

The models, optimizers and transforms live in a real module written once per session
(``gp_probe_models``, imported through the manifest's ``pythonpath``); the images are
tiny (16 px) but carry class structure (a class colour), so a correct setup learns.
"""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODELS = textwrap.dedent('''
    """Tiny real models, optimizers and transforms for the gradient_probe tests."""
    import torch
    from torch import nn
    from torchvision import transforms


    class ScaleTo255:
        """PILToTensor as float: values stay in 0..255 (the forgotten-ToTensor mistake)."""

        def __call__(self, image):
            return transforms.functional.pil_to_tensor(image).float()


    train_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.25] * 3)])
    raw_tf = ScaleTo255()


    def small_cnn(num_classes=2):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
        )


    def plain_cnn(num_classes=2):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                             nn.Linear(128, num_classes))


    def flat_head(num_classes=2):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 16 * 16, num_classes))


    def dead_relu(num_classes=2):
        torch.manual_seed(0)
        bottleneck = nn.Linear(8 * 4 * 4, 8)
        nn.init.constant_(bottleneck.bias, -100.0)  # every pre-activation negative: the ReLU after it is dead
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                             bottleneck, nn.ReLU(), nn.Linear(8, num_classes))


    def with_softmax(num_classes=2):
        return nn.Sequential(small_cnn(num_classes), nn.Softmax(dim=1))


    def with_sigmoid():
        return nn.Sequential(small_cnn(1), nn.Sigmoid())


    def sigmoid_stack(num_classes=2, depth=12):
        torch.manual_seed(0)
        layers = [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 16), nn.Sigmoid()]
        for _ in range(depth):
            layers += [nn.Linear(16, 16), nn.Sigmoid()]
        return nn.Sequential(*layers, nn.Linear(16, num_classes))


    def zero_head(num_classes=2):
        model = small_cnn(num_classes)
        nn.init.zeros_(model[-1].weight)
        nn.init.zeros_(model[-1].bias)
        return model


    class FrozenBackbone(nn.Module):
        """A pretrained-style backbone, frozen, with a new trainable head."""

        def __init__(self, num_classes=2, bn_eval=False):
            super().__init__()
            self.backbone = small_cnn(num_classes)[:-1]
            for p in self.backbone.parameters():
                p.requires_grad = False
            self.head = nn.Linear(16, num_classes)
            self.bn_eval = bn_eval

        def train(self, mode=True):
            super().train(mode)
            if self.bn_eval:  # the fix: frozen BatchNorm layers stay in eval mode
                for m in self.backbone.modules():
                    if isinstance(m, nn.BatchNorm2d):
                        m.eval()
            return self

        def forward(self, x):
            return self.head(self.backbone(x))


    def frozen_backbone(num_classes=2, bn_eval=False):
        return FrozenBackbone(num_classes, bn_eval)


    class MaxNormFrozen(nn.Module):
        """A frozen projection rescaled in place on every forward pass."""

        def __init__(self, num_classes=2):
            super().__init__()
            torch.manual_seed(0)
            self.features = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())
            self.project = nn.Linear(12, 12)
            self.project.requires_grad_(False)
            self.head = nn.Linear(12, num_classes)

        def forward(self, x):
            with torch.no_grad():
                self.project.weight.mul_(0.9)  # "frozen", yet written on every step
            return self.head(torch.relu(self.project(self.features(x))))


    def max_norm_frozen(num_classes=2):
        return MaxNormFrozen(num_classes)


    def _bce_targets(output, target):
        """What a training step for a BCE loss over an image folder's class indices does itself."""
        if target.ndim == 1 and output.ndim == 2 and output.shape[1] > 1:
            return nn.functional.one_hot(target.long(), output.shape[1]).float()
        return target.float().view_as(output)


    class UserBCE(nn.BCEWithLogitsLoss):
        """The user's own loss: BCEWithLogitsLoss that shapes class-index targets itself."""

        def forward(self, output, target):
            return super().forward(output, _bce_targets(output, target))


    class UserBCEProbs(nn.BCELoss):
        def forward(self, output, target):
            return super().forward(output, _bce_targets(output, target))


    def adam(model, lr=1e-3):
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


    def sgd(model, lr=0.01, momentum=0.9):
        return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)
''')

PALETTE = [(200, 40, 40), (40, 60, 200), (40, 180, 60)]


def make_class_images(root: Path, counts: dict[str, int], size: int = 16, seed: int = 0) -> list[Path]:
    """Images whose background colour depends on the class (learnable), with random blobs on top."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    written = []
    for k, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            base = tuple(max(0, min(255, c + rng.randint(-40, 40))) for c in PALETTE[k % len(PALETTE)])
            image = Image.new("RGB", (size, size), base)
            pen = ImageDraw.Draw(image)
            for _ in range(3):
                x, y, r = rng.randint(0, size), rng.randint(0, size), rng.randint(1, size // 4)
                pen.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randint(0, 255) for _ in range(3)))
            path = root / name / f"{i:03d}.png"
            image.save(path)
            written.append(path)
    return written


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared data and model module: two classes, three classes, and a multilabel table."""
    root = tmp_path_factory.mktemp("gp_project")
    (root / "src").mkdir()
    (root / "src" / "gp_probe_models.py").write_text(MODELS, encoding="utf-8")
    make_class_images(root / "two", {"a": 12, "b": 12})
    make_class_images(root / "three", {"a": 8, "b": 8, "c": 8}, seed=1)
    rows = ["path,label"]
    for path in make_class_images(root / "multi", {"a": 8, "b": 8, "c": 8}, seed=2):
        labels = {"a": "a|b", "b": "b", "c": "c|a"}[path.parent.name]
        rows.append(f"{path.parent.name}/{path.name},{labels}")
    (root / "multi.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def probe(
    tmp_path: Path,
    project: Path,
    manifest_writer: Any,
    run_audit: Any,
    model: str,
    *,
    optimizer: str = "sgd",
    loss: str = "torch.nn:CrossEntropyLoss",
    data: str = "two",
    transform: str = "train_tf",
    model_kwargs: dict | None = None,
    optimizer_kwargs: dict | None = None,
    options: dict | None = None,
    task: dict | None = None,
) -> tuple[Any, dict, dict[str, list[dict]]]:
    """Run gradient_probe alone on a manifest; returns (outcome, audit entry, findings by code)."""
    split: dict[str, Any] = {
        "format": "image_folder",
        "root": str(project / data),
        "transform": f"gp_probe_models:{transform}",
    }
    if data == "multi":
        split = {
            "format": "csv",
            "path": str(project / "multi.csv"),
            "root": str(project / "multi"),
            "label_separator": "|",
            "transform": f"gp_probe_models:{transform}",
        }
    manifest: dict[str, Any] = {
        "version": 1,
        "pythonpath": [str(project / "src")],
        "model": {"factory": f"gp_probe_models:{model}", "kwargs": model_kwargs or {}},
        "optimizer": {"factory": f"gp_probe_models:{optimizer}", "kwargs": optimizer_kwargs or {}},
        "loss": {"factory": loss},
        "data": {"train": split},
        "audits": {"gradient_probe": {"device": "cpu", **(options or {})}},
    }
    if task:
        manifest["task"] = task
    outcome = run_audit(manifest_writer(tmp_path, manifest), only=["gradient_probe"])
    (audit,) = [a for a in outcome.report["audits"] if a["status"] != "disabled"]
    assert audit["status"] != "errored", audit["error"]
    found: dict[str, list[dict]] = {}
    for finding in outcome.report["findings"]:
        found.setdefault(finding["code"], []).append(finding)
    return outcome, audit, found


def test_correct_full_finetune_gives_only_the_timing_info(tmp_path, project, manifest_writer, run_audit):
    outcome, audit, found = probe(tmp_path, project, manifest_writer, run_audit, "small_cnn")
    assert set(found) == {"GP011"}, {c: f[0]["message"] for c, f in found.items()}
    assert audit["status"] == "passed" and outcome.exit_code == 0
    evidence = audit["evidence"]
    assert evidence["device"] == "cpu" and outcome.report["environment"]["device"] == "cpu"
    assert evidence["steps_done"] == 20 and len(evidence["loss_curve"]) == 20
    assert (
        len(evidence["overfit_curve"]) == 20 and evidence["overfit_curve"][-1] < evidence["overfit_curve"][0]
    )
    names = [row["name"] for row in evidence["grad_norms"]]
    assert names[0] == "0.weight" and "8.bias" in names
    row = evidence["grad_norms"][0]
    assert set(row) == {"name", "grad_norm", "param_norm", "ratio"}
    assert row["grad_norm"] > 0 and row["ratio"] == pytest.approx(row["grad_norm"] / row["param_norm"])
    assert (
        evidence["outputs"]["start"]["shape"] == [8, 2]
        and evidence["outputs"]["end"]["relative_spread"] > 0.01
    )
    (info,) = found["GP011"]
    assert info["severity"] == "info" and info["evidence"]["steps_per_epoch"] == 3
    assert info["evidence"]["step_time_s"] > 0 and info["evidence"]["peak_memory_mb"] > 0
    assert audit["notes"] == []


@pytest.mark.parametrize("case", ["binary_one_logit", "multilabel"])
def test_bce_targets_shaped_by_the_user_or_multi_hot_from_a_table_are_clean(
    tmp_path, project, manifest_writer, run_audit, case
):
    if case == "binary_one_logit":  # the user's loss shapes an image folder's class indices itself
        kwargs = {"model_kwargs": {"num_classes": 1}, "data": "two", "loss": "gp_probe_models:UserBCE"}
    else:  # the table's label lists become multi-hot rows (the format's own representation)
        kwargs = {"model_kwargs": {"num_classes": 3}, "data": "multi", "loss": "torch.nn:BCEWithLogitsLoss"}
    _, audit, found = probe(
        tmp_path,
        project,
        manifest_writer,
        run_audit,
        "small_cnn",
        optimizer="adam",
        optimizer_kwargs={"lr": 1e-2},
        **kwargs,
    )
    assert set(found) == {"GP011"}, {c: f[0]["message"] for c, f in found.items()}
    assert audit["evidence"]["loss"] == "BCEWithLogitsLoss"
    assert audit["evidence"]["outputs"]["start"]["shape"] == [8, 1 if case == "binary_one_logit" else 3]


@pytest.mark.parametrize("model", ["plain_cnn", "small_cnn"])
def test_huge_learning_rate_is_gp001(tmp_path, project, manifest_writer, run_audit, model):
    outcome, audit, found = probe(
        tmp_path, project, manifest_writer, run_audit, model, optimizer_kwargs={"lr": 1e6}
    )
    (gp001,) = found["GP001"]
    assert gp001["severity"] == "error" and outcome.exit_code == 1
    if model == "plain_cnn":  # no normalisation: the loss goes to inf/NaN and the probe stops there
        assert "became non-finite" in gp001["message"]
        assert audit["evidence"]["steps_done"] < 20
        assert audit["evidence"]["loss_curve"][-1] is None  # NaN is written as null: strict JSON
        json.dumps([audit, outcome.report["findings"]], allow_nan=False)
    assert "more than 10 x its reference" in gp001["message"]
    (gp006,) = found["GP006"]
    assert "too high" in gp006["message"]


def test_dead_relu_bottleneck_is_gp002_and_gp004(tmp_path, project, manifest_writer, run_audit):
    _, _, found = probe(tmp_path, project, manifest_writer, run_audit, "dead_relu", optimizer="adam")
    (gp002,) = found["GP002"]
    assert gp002["evidence"]["parameters"] == ["0.weight", "0.bias", "4.weight", "4.bias", "6.weight"]
    assert {"module": "5", "dead_fraction": 1.0} in gp002["evidence"]["dead_relu"]
    assert "dead ReLU" in gp002["message"] and "'5' 100%" in gp002["message"]
    (gp004,) = found["GP004"]
    assert "at the start and after 20 steps" in gp004["message"]
    assert gp004["evidence"]["end"]["relative_spread"] == 0.0
    (gp005,) = found["GP005"]  # the head can only learn its bias: probabilities stay at the 50/50 prior
    assert gp005["evidence"]["uniform_deviation"] < 0.1
    (gp006,) = found["GP006"]
    assert "gradients do not flow" in gp006["message"]
    assert "GP001" not in found and "GP008" not in found


def test_softmax_before_cross_entropy_is_gp009(tmp_path, project, manifest_writer, run_audit):
    _, _, found = probe(tmp_path, project, manifest_writer, run_audit, "with_softmax", optimizer="adam")
    (gp009,) = found["GP009"]
    assert gp009["evidence"]["trailing_module"] == ["1", "Softmax"]
    assert "CrossEntropyLoss expects raw logits" in gp009["message"] and "sums to 1" in gp009["message"]
    assert "GP007" not in found


def test_softmax_before_nll_loss_is_gp009_and_a_negative_initial_loss_is_gp007(
    tmp_path, project, manifest_writer, run_audit
):
    _, _, found = probe(
        tmp_path,
        project,
        manifest_writer,
        run_audit,
        "with_softmax",
        optimizer="adam",
        loss="torch.nn:NLLLoss",
    )
    assert "NLLLoss expects log-probabilities" in found["GP009"][0]["message"]
    (gp007,) = found["GP007"]
    assert gp007["evidence"]["initial_loss"] < 0 and "far below" in gp007["message"]


def test_sigmoid_before_bce_with_logits_is_gp009_but_not_before_bce(
    tmp_path, project, manifest_writer, run_audit
):
    _, _, found = probe(
        tmp_path,
        project,
        manifest_writer,
        run_audit,
        "with_sigmoid",
        optimizer="adam",
        loss="torch.nn:BCEWithLogitsLoss",
    )
    (gp009,) = found["GP009"]
    assert gp009["evidence"]["trailing_module"] == ["1", "Sigmoid"]
    assert "BCEWithLogitsLoss expects raw logits" in gp009["message"]
    _, _, found = probe(
        tmp_path / "bce",
        project,
        manifest_writer,
        run_audit,
        "with_sigmoid",
        optimizer="adam",
        loss="gp_probe_models:UserBCEProbs",
    )
    assert set(found) == {"GP011"}, {c: f[0]["message"] for c, f in found.items()}


def test_frozen_batchnorm_statistics_drift_is_gp008(tmp_path, project, manifest_writer, run_audit):
    outcome, _, found = probe(
        tmp_path, project, manifest_writer, run_audit, "frozen_backbone", optimizer="adam"
    )
    (gp008,) = found["GP008"]
    assert "2 frozen BatchNorm layers updated their running statistics" in gp008["message"]
    assert set(gp008["evidence"]["buffers"]) == {
        f"backbone.{i}.{b}" for i in (1, 4) for b in ("running_mean", "running_var", "num_batches_tracked")
    }
    assert gp008["evidence"]["parameters"] == [] and outcome.exit_code == 1
    # The fix (frozen BatchNorm kept in eval mode) leaves nothing to report.
    _, _, found = probe(
        tmp_path / "fixed",
        project,
        manifest_writer,
        run_audit,
        "frozen_backbone",
        optimizer="adam",
        optimizer_kwargs={"lr": 1e-2},
        model_kwargs={"bn_eval": True},
    )
    assert set(found) == {"GP011"}, {c: f[0]["message"] for c, f in found.items()}


def test_frozen_parameter_written_in_forward_is_gp008(tmp_path, project, manifest_writer, run_audit):
    _, _, found = probe(tmp_path, project, manifest_writer, run_audit, "max_norm_frozen", optimizer="adam")
    (gp008,) = found["GP008"]
    assert gp008["evidence"]["parameters"] == ["project.weight"] and gp008["evidence"]["buffers"] == []


@pytest.mark.parametrize(
    "case",
    [
        "one_output_for_two_classes",
        "labels_beyond_outputs",
        "too_many_outputs",
        "bce_width",
        "multilabel_width",
    ],
)
def test_output_shape_that_does_not_fit_the_labels_is_gp010(
    tmp_path, project, manifest_writer, run_audit, case
):
    kwargs: dict[str, Any] = {
        "one_output_for_two_classes": {"model_kwargs": {"num_classes": 1}},
        "labels_beyond_outputs": {"model_kwargs": {"num_classes": 2}, "data": "three"},
        "too_many_outputs": {"model_kwargs": {"num_classes": 3}},
        "bce_width": {
            "model_kwargs": {"num_classes": 5},
            "loss": "gp_probe_models:UserBCE",
            "task": {"type": "binary", "num_classes": 2},
        },
        "multilabel_width": {
            "model_kwargs": {"num_classes": 2},
            "loss": "torch.nn:BCEWithLogitsLoss",
            "data": "multi",
        },
    }[case]
    outcome, audit, found = probe(tmp_path, project, manifest_writer, run_audit, "small_cnn", **kwargs)
    (gp010,) = found["GP010"]
    assert gp010["severity"] == "error" and outcome.exit_code == 1 and audit["status"] == "failed"
    fatal = case in ("one_output_for_two_classes", "labels_beyond_outputs", "multilabel_width")
    assert gp010["evidence"]["fatal"] is fatal
    if fatal:  # stopped gracefully before any step: no timing, no other verdict
        assert "[8, 1]" in gp010["message"] or "[8, 2]" in gp010["message"]
        assert "targets" in gp010["message"] and "stopped before training" in gp010["message"]
        assert "labels 0.." in gp010["message"] or "label indices 0..2" in gp010["message"]
        assert set(found) == {"GP010"} and audit["evidence"]["steps_done"] == 0
    else:
        assert "outputs per sample but the task has 2 classes" in gp010["message"]
        assert "GP011" in found and audit["evidence"]["steps_done"] == 20


def test_sigmoid_stack_has_vanishing_gradients_gp003(tmp_path, project, manifest_writer, run_audit):
    _, _, found = probe(tmp_path, project, manifest_writer, run_audit, "sigmoid_stack", optimizer="adam")
    (gp003,) = found["GP003"]
    assert gp003["evidence"]["direction"] == "vanishing" and gp003["severity"] == "warning"
    worst = gp003["evidence"]["layers"][0]
    assert worst["name"] in ("2.weight", "4.weight") and worst["ratio"] < 1e-9


def test_unnormalised_inputs_give_a_high_initial_loss_gp007_and_exploding_gradients_gp003(
    tmp_path, project, manifest_writer, run_audit
):
    _, _, found = probe(
        tmp_path, project, manifest_writer, run_audit, "flat_head", optimizer="adam", transform="raw_tf"
    )
    (gp007,) = found["GP007"]
    assert "far above" in gp007["message"] and gp007["evidence"]["uniform_loss"] == pytest.approx(
        0.6931, abs=1e-3
    )
    (gp003,) = found["GP003"]
    assert gp003["evidence"]["direction"] == "exploding"
    assert all(layer["max_ratio"] > 100 for layer in gp003["evidence"]["layers"])


def test_learning_rate_far_too_low_is_gp006(tmp_path, project, manifest_writer, run_audit):
    _, _, found = probe(
        tmp_path, project, manifest_writer, run_audit, "small_cnn", optimizer_kwargs={"lr": 1e-7}
    )
    (gp006,) = found["GP006"]
    assert "learning rate looks too low" in gp006["message"] and "1e-07" in gp006["message"]
    assert gp006["evidence"]["overfit_curve"][0] == pytest.approx(
        gp006["evidence"]["overfit_curve"][-1], rel=1e-4
    )


def test_zero_initialised_head_is_not_a_collapse(tmp_path, project, manifest_writer, run_audit):
    _, audit, found = probe(tmp_path, project, manifest_writer, run_audit, "zero_head", optimizer="adam")
    assert "GP004" not in found and "GP005" not in found
    assert any("identical across the batch at the start" in note for note in audit["notes"])
    assert audit["evidence"]["outputs"]["start"]["relative_spread"] == 0.0
