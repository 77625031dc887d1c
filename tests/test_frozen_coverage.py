"""frozen_coverage: every FZ code triggered and not triggered, with real torchvision models and optimizers.

The models and optimizer factories live in a real module (``fz_project``) written once per
session and imported through the manifest's ``pythonpath``, as a user's project would be.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parent.parent

PROJECT = textwrap.dedent('''
    """Models and optimizers of a transfer-learning project, correct and broken."""
    import torch
    from torch import nn
    from torchvision.models import resnet18, squeezenet1_0


    def resnet(num_classes=3, freeze="none"):
        torch.manual_seed(0)
        model = resnet18(weights=None)
        if freeze in ("backbone", "all", "partial"):
            model.requires_grad_(False)
        model.fc = nn.Linear(model.fc.in_features, num_classes)  # a new head is trainable
        if freeze == "all":
            model.requires_grad_(False)  # the mistake: freezing after the head was attached
        if freeze == "partial":
            model.layer4.requires_grad_(True)
        if freeze == "head":
            model.fc.requires_grad_(False)
        return model


    class FrozenBackbone(nn.Module):
        """A frozen ResNet-18 backbone whose train() keeps it (BatchNorm included) in eval mode."""

        def __init__(self, num_classes=3):
            super().__init__()
            self.backbone = resnet18(weights=None)
            self.backbone.fc = nn.Identity()
            self.backbone.requires_grad_(False)
            self.head = nn.Linear(512, num_classes)

        def train(self, mode=True):
            super().train(mode)
            self.backbone.eval()
            return self

        def forward(self, x):
            return self.head(self.backbone(x))


    def tiny(num_classes=3, freeze_head=False):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                              nn.Flatten(), nn.Linear(4, num_classes))
        if freeze_head:
            model[5].requires_grad_(False)
        return model


    def squeeze(num_classes=5):
        return squeezenet1_0(weights=None, num_classes=num_classes)


    def sgd_trainable(model, lr=0.01):
        return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)


    def sgd_all(model, lr=0.01):
        return torch.optim.SGD(model.parameters(), lr=lr)


    def layer4_only(model):
        return torch.optim.SGD(model.layer4.parameters(), lr=0.01)  # forgets the head


    def other_instance(model):
        return torch.optim.SGD(resnet(3).parameters(), lr=0.01)  # built over a second model


    def discriminative(model):
        return torch.optim.SGD([{"params": model.layer4.parameters(), "lr": 1e-4},
                                {"params": model.fc.parameters()}], lr=1e-3, momentum=0.9)


    def zero_lr_backbone(model):
        backbone = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
        head = model.fc.parameters()
        return torch.optim.AdamW([{"params": backbone, "lr": 0.0}, {"params": head, "lr": 1e-3}])


    class ListOptimizer:
        """An optimizer-like object (as some wrappers are) that does not refuse duplicate parameters."""

        def __init__(self, groups):
            self.param_groups = [dict(g, params=list(g["params"])) for g in groups]


    def duplicated(model):
        return ListOptimizer([{"params": model.parameters(), "lr": 1e-3},
                              {"params": model.fc.parameters(), "lr": 1e-2}])
''')


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fz_project")
    (folder / "fz_project.py").write_text(PROJECT, encoding="utf-8")
    return folder


def _manifest(
    project: Path,
    data_root: Path,
    model: str,
    *,
    kwargs: dict | None = None,
    optimizer: str | None = "sgd_trainable",
    head: str | None = None,
    task: dict | None = None,
    loss: str | None = None,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "version": 1,
        "pythonpath": [str(project)],
        "model": {
            "factory": f"fz_project:{model}",
            "kwargs": kwargs or {},
            "pretrained": "torchvision:ResNet18_Weights.IMAGENET1K_V1",
        },
        "data": {"train": {"format": "image_folder", "root": str(data_root)}},
        "audits": {"frozen_coverage": {}},
    }
    if head:
        manifest["model"]["head"] = head
    if optimizer:
        manifest["optimizer"] = {"factory": f"fz_project:{optimizer}"}
    if task:
        manifest["task"] = task
    if loss:
        manifest["loss"] = {"factory": loss}
    return manifest


@pytest.fixture
def audit(tmp_path, project, image_folder, manifest_writer, run_audit):
    """Run frozen_coverage on a manifest built by :func:`_manifest`; return (outcome, audit entry)."""
    classes = {"cat": 1, "dog": 1, "fox": 1}

    def _run(model: str, *, classes: dict[str, int] = classes, expect_error: bool = False, **options: Any):
        root = tmp_path / "data"
        if not root.exists():
            image_folder(root, classes, size=8)
        outcome = run_audit(
            manifest_writer(tmp_path, _manifest(project, root, model, **options)), only=["frozen_coverage"]
        )
        (entry,) = [a for a in outcome.report["audits"] if a["status"] != "disabled"]
        if not expect_error:
            assert entry["status"] != "errored", entry["error"]
        return outcome, entry

    return _run


def _one(outcome, code: str) -> dict[str, Any]:
    found = [f for f in outcome.report["findings"] if f["code"] == code]
    assert len(found) == 1, (code, outcome.report["findings"])
    return found[0]


def test_fully_trainable_model_with_complete_optimizer_is_clean(audit):
    outcome, entry = audit("resnet", head="fc")
    assert outcome.report["findings"] == []
    assert entry["status"] == "passed"
    evidence = entry["evidence"]
    assert evidence["totals"]["frozen"] == 0
    assert evidence["totals"]["trainable"] == 11_178_051  # resnet18 with a 3-class head
    assert [m["name"] for m in evidence["modules"]][:2] == ["conv1", "bn1"]
    assert {m["state"] for m in evidence["modules"]} == {"trainable"}
    assert evidence["head"]["outputs"] == 3 and evidence["head"]["how"] == "manifest"
    assert evidence["optimizer"]["groups"][0]["trainable_tensors"] == 62


def test_no_trainable_parameters_fz001(audit):
    outcome, _ = audit("resnet", kwargs={"freeze": "all"}, optimizer="sgd_all")
    fz001 = _one(outcome, "FZ001")
    assert "all 11,178,051 parameters of ResNet are frozen" in fz001["message"]
    assert "model.fc.requires_grad_(True)" in fz001["hint"]
    # FZ001 says it all: the head/backbone findings would only repeat it.
    assert not {"FZ002", "FZ003", "FZ004"} & outcome.codes()
    assert "FZ006" in outcome.codes()


def test_optimizer_missing_the_head_fz002(audit):
    outcome, entry = audit("resnet", optimizer="layer4_only")
    fz002 = _one(outcome, "FZ002")
    assert fz002["evidence"]["count"] == 47  # every trainable tensor outside layer4 (62 - 15)
    assert "fc (2 tensors)" in fz002["message"] and "conv1.weight" in fz002["message"]
    assert "head is among them" in fz002["hint"]
    assert "fc.weight" in fz002["evidence"]["parameters"]
    assert entry["evidence"]["optimizer"]["missing"] == 47


def test_optimizer_over_another_model_instance_fz002(audit):
    outcome, entry = audit("resnet", optimizer="other_instance")
    fz002 = _one(outcome, "FZ002")
    assert "another model instance" in fz002["hint"]
    # Identity, not value: the second model has identical initial weights (same seed).
    assert fz002["evidence"]["count"] == 62
    assert any("not parameters of the model" in note for note in entry["notes"])


def test_zero_lr_group_fz002(audit):
    outcome, entry = audit("resnet", optimizer="zero_lr_backbone")
    fz002 = _one(outcome, "FZ002")
    assert fz002["message"].startswith("param group 0 has lr 0, so its 60 trainable tensors never change")
    assert fz002["evidence"]["group"] == 0
    assert [g["lr"] for g in entry["evidence"]["optimizer"]["groups"]] == [0.0, 0.001]


def test_partial_fine_tuning_with_discriminative_param_groups(audit):
    outcome, entry = audit("resnet", kwargs={"freeze": "partial"}, optimizer="discriminative", head="fc")
    assert not {"FZ001", "FZ002", "FZ003", "FZ004", "FZ006", "FZ007", "FZ008"} & outcome.codes()
    modules = {m["name"]: m for m in entry["evidence"]["modules"]}
    assert modules["layer4"]["state"] == "trainable" and modules["layer3"]["state"] == "frozen"
    assert modules["fc"]["state"] == "trainable"
    tree = {m["name"]: m for m in entry["evidence"]["tree"]}
    assert tree["layer4.0"]["depth"] == 2 and tree["layer4.0.bn1"]["state"] == "trainable"
    groups = entry["evidence"]["optimizer"]["groups"]
    assert [(g["lr"], g["trainable_tensors"]) for g in groups] == [(1e-4, 15), (1e-3, 2)]
    # the frozen layers 1-3 still have BatchNorm in train mode: only those are reported
    fz005 = _one(outcome, "FZ005")
    assert fz005["evidence"]["count"] == 15 and "layer4" not in fz005["message"]


def test_frozen_backbone_fz003_fz005_and_fz006(audit):
    outcome, _ = audit("resnet", kwargs={"freeze": "backbone"}, optimizer="sgd_all", head="fc")
    fz003 = _one(outcome, "FZ003")
    assert "all 11,176,512 backbone parameters" in fz003["message"]
    assert "unfreeze the last block 'layer4'" in fz003["hint"] and "then 'layer3'" in fz003["hint"]
    assert "lower lr" in fz003["hint"]
    assert [b["name"] for b in fz003["evidence"]["blocks"]][-2:] == ["layer3", "layer4"]
    fz005 = _one(outcome, "FZ005")
    assert fz005["evidence"]["count"] == 20 and "BatchNorm2d" in fz005["message"]
    fz006 = _one(outcome, "FZ006")
    assert fz006["severity"] == "info" and fz006["evidence"]["count"] == 60


def test_custom_train_keeping_frozen_batchnorm_in_eval_mode_is_not_fz005(audit):
    outcome, entry = audit("FrozenBackbone")
    assert "FZ005" not in outcome.codes()
    assert entry["evidence"]["updating_norm_layers"] == 0
    # still a linear probe: the head is inferred and the backbone blocks are named one level down
    fz003 = _one(outcome, "FZ003")
    assert "only the head 'head'" in fz003["message"] and "backbone.layer4" in fz003["hint"]


def test_frozen_head_fz004_declared_and_inferred(audit, tmp_path):
    outcome, _ = audit("resnet", kwargs={"freeze": "head"}, head="fc")
    fz004 = _one(outcome, "FZ004")
    assert "the head 'fc' is entirely frozen" in fz004["message"]
    assert "FZ003" not in outcome.codes()
    inferred, _ = audit("tiny", kwargs={"freeze_head": True})
    fz004 = _one(inferred, "FZ004")
    assert "the head '5' (inferred" in fz004["message"]
    clean, _ = audit("tiny")
    assert "FZ004" not in clean.codes() and clean.findings == []


def test_head_size_fz007(audit):
    outcome, _ = audit("resnet", kwargs={"num_classes": 10}, head="fc")
    fz007 = _one(outcome, "FZ007")
    assert fz007["message"].startswith("the head 'fc' has 10 outputs but the data has 3 classes")
    assert "nn.Linear(in_features, 3)" in fz007["hint"]


def test_one_logit_is_fine_for_binary_but_not_for_cross_entropy(audit):
    classes = {"neg": 1, "pos": 1}
    binary, _ = audit("tiny", kwargs={"num_classes": 1}, classes=classes, loss="torch.nn:BCEWithLogitsLoss")
    assert "FZ007" not in binary.codes()


def test_one_logit_with_cross_entropy_is_fz007(audit):
    outcome, _ = audit(
        "tiny", kwargs={"num_classes": 1}, classes={"neg": 1, "pos": 1}, loss="torch.nn:CrossEntropyLoss"
    )
    fz007 = _one(outcome, "FZ007")
    assert "BCEWithLogitsLoss" in fz007["message"]


def test_pointwise_conv_head_before_global_pooling_is_found(audit):
    outcome, entry = audit("squeeze", optimizer="sgd_all")
    assert entry["evidence"]["head"]["name"] == "classifier.1"
    fz007 = _one(outcome, "FZ007")
    assert "has 5 outputs but the data has 3 classes" in fz007["message"]
    assert "inferred as 'classifier.1'" in fz007["message"]


def test_parameter_in_two_groups_fz008(audit):
    outcome, _ = audit("resnet", optimizer="duplicated")
    fz008 = _one(outcome, "FZ008")
    assert "fc (2 tensors)" in fz008["message"]
    assert fz008["evidence"]["parameters"]["fc.weight"] == [0, 1]
    assert "FZ002" not in outcome.codes()


def test_without_optimizer_only_model_checks_run(audit):
    outcome, entry = audit("resnet", kwargs={"freeze": "backbone"}, optimizer=None)
    assert {"FZ003", "FZ005"} <= outcome.codes()
    assert not {"FZ002", "FZ006"} & outcome.codes()
    assert any("no optimizer" in note for note in entry["notes"])
    assert "optimizer" not in entry["evidence"]


def test_unknown_head_name_is_a_manifest_error(audit):
    outcome, entry = audit("resnet", head="fcc", expect_error=True)
    assert entry["status"] == "errored"
    assert "model.head" in entry["error"]["message"] and "did you mean 'fc'" in entry["error"]["message"]
    assert outcome.exit_code == 2


def test_quickstart_static_cli(cli, tmp_path):
    """Both static audits on the quickstart, through the real CLI with --static."""
    result = cli(
        "run",
        REPO / "examples" / "quickstart" / "audit.yaml",
        "--static",
        "--only",
        "frozen_coverage,transform_parity",
        "--output-dir",
        tmp_path,
        "--format",
        "json",
    )
    assert result.returncode == 1, result.stderr  # errors planted
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    statuses = {a["name"]: a["status"] for a in report["audits"] if a["status"] != "disabled"}
    assert statuses == {"transform_parity": "failed", "frozen_coverage": "failed"}
    codes = sorted((f["code"], f["location"]) for f in report["findings"])
    assert codes == [
        ("FZ003", "model"),
        ("FZ005", "model"),
        ("FZ007", "model.head"),
        ("TP001", "data.val"),
        ("TP003", "data.val"),
        ("TP004", "data.val"),
        ("TP005", "data.train"),
        ("TP005", "data.val"),
    ]
    fz007 = next(f for f in report["findings"] if f["code"] == "FZ007")
    assert "'owl'" in fz007["message"]


def test_norm_layer_rules():
    """Running statistics decide, not the class: GroupNorm has none; momentum 0 never updates."""
    from torch import nn

    from auditor_plugins.common.model_parts import updating_norm_layers

    frozen = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4, affine=False),  # no parameters of its own; its parent is frozen
        nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
        nn.GroupNorm(2, 4),
        nn.BatchNorm2d(4, momentum=0.0),
        nn.BatchNorm2d(4, track_running_stats=False),
    ).requires_grad_(False)
    model = nn.Sequential(frozen, nn.BatchNorm1d(4)).train()  # the trainable BatchNorm1d is fine
    assert [layer["name"] for layer in updating_norm_layers(model)] == ["0.1", "0.2"]
    assert updating_norm_layers(model.eval()) == []


def test_backbone_blocks_of_common_architectures():
    from torchvision import models

    from auditor_plugins.common.model_parts import backbone_blocks, find_head

    expected = {
        "resnet18": ("fc", "layer4"),
        "efficientnet_b0": ("classifier.1", "features.8"),
        "mobilenet_v3_small": ("classifier.3", "classifier.0"),
    }
    for name, (head_name, last_block) in expected.items():
        model = models.get_model(name, weights=None)
        head = find_head(model, None)
        assert head is not None and (head.name, head.outputs) == (head_name, 1000)
        assert backbone_blocks(model, head.name)[-1][0] == last_block
