"""auditor.check: the audits on live objects, with the same report as `auditor run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

import auditor
from auditor.report.document import validate_report
from auditor.testing import make_image_folder

FAST_PROBE = {"steps": 2, "overfit_steps": 2, "batch_size": 4, "device": "cpu"}


def tiny_model(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )


def tensor_split(
    n: int, classes: int = 3, seed: int = 0, dtype: torch.dtype = torch.float32
) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 12, 12, generator=generator)
    if dtype == torch.uint8:
        images = (images * 255).to(torch.uint8)
    labels = torch.arange(n) % classes
    return TensorDataset(images, labels)


def test_import_auditor_does_not_import_torch_or_lightning():
    code = (
        "import sys, auditor; assert callable(auditor.check); "
        "print(sorted(m for m in ('torch', 'lightning', 'pytorch_lightning', 'IPython') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_caller_model_optimizer_and_loss_are_bit_identical_afterwards():
    model = tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.CrossEntropyLoss()
    # One real step first, so the optimizer holds state (Adam moments) that the probe must not touch.
    images, labels = tensor_split(8).tensors
    loss(model(images), labels).backward()
    optimizer.step()
    model.eval()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    state = optimizer.state_dict()
    saved_state = {k: {n: t.clone() for n, t in v.items()} for k, v in state["state"].items()}
    saved_groups = json.dumps(state["param_groups"])
    rng = torch.get_rng_state()

    result = auditor.check(
        model, optimizer, loss, train=tensor_split(24), val=tensor_split(9, seed=1), gradient_probe=FAST_PROBE
    )

    assert result.report["audits"], result
    probe = next(a for a in result.report["audits"] if a["name"] == "gradient_probe")
    assert probe["status"] in ("passed", "failed"), probe  # it really trained (copies)
    assert all(torch.equal(params[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(grads[n], p.grad) for n, p in model.named_parameters())
    assert flags == {n: p.requires_grad for n, p in model.named_parameters()}
    assert model.training is False
    after = optimizer.state_dict()
    assert json.dumps(after["param_groups"]) == saved_groups
    for key, tensors in saved_state.items():
        assert all(torch.equal(t, after["state"][key][n]) for n, t in tensors.items())
    assert all(p in {q for g in optimizer.param_groups for q in g["params"]} for p in model.parameters())
    assert torch.equal(rng, torch.get_rng_state())


def test_report_is_the_run_document_and_saves_every_format(tmp_path):
    model = tiny_model(2)  # planted: 3 classes in the data, 2 outputs
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = auditor.check(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        train=tensor_split(24),
        val=tensor_split(9, seed=1),
        gradient_probe=FAST_PROBE,
        name="tiny",
    )
    validate_report(result.report)
    assert result.report["manifest"]["name"] == "tiny"
    assert {"FZ007", "GP010"} <= result.codes()
    assert result.exit_code == 1 and not result.ok
    assert {f.code for f in result.findings} == {f["code"] for f in result.report["findings"]}
    with pytest.raises(auditor.AuditFailed) as raised:
        result.raise_for_errors()
    assert (
        raised.value.exit_code == 1 and "FZ007" in str(raised.value) and "fail_on=error" in str(raised.value)
    )

    from auditor.run.registry import load_registry

    formats = sorted(load_registry().report_formats)
    written = result.save(tmp_path / "reports", formats=formats)
    assert len(written) == len(formats) and all(p.is_file() and p.stat().st_size for p in written)
    saved = json.loads((tmp_path / "reports" / "report.json").read_text(encoding="utf-8"))
    assert saved["findings"] == result.report["findings"]
    page = (tmp_path / "reports" / "report.html").read_text(encoding="utf-8")
    assert "FZ007" in page and "<script" not in page

    text = repr(result)
    assert text.startswith("auditor: exit code 1") and "FZ007" in text
    inline = result._repr_html_()
    assert (
        "<iframe srcdoc=" in inline and "&lt;html" in inline and "FZ007" in inline and "<script" not in inline
    )


def test_clean_setup_passes_and_raise_for_errors_is_silent():
    model = tiny_model(3)
    result = auditor.check(
        model,
        torch.optim.SGD(model.parameters(), lr=0.01),
        nn.CrossEntropyLoss(),
        train=tensor_split(24),
        val=tensor_split(9, seed=1),
        audits=["label_distribution", "frozen_coverage"],
        fail_on="error",
    )
    ran = [a["name"] for a in result.report["audits"] if a["status"] != "disabled"]
    assert ran == ["label_distribution", "frozen_coverage"]  # a list selects; the others are disabled
    assert result.exit_code == 0, repr(result)
    result.raise_for_errors()


def test_dataloader_gives_batch_size_collate_and_weighted_sampler():
    counts = [60, 4, 4]  # imbalanced: LD004 fires unless the training loop balances classes
    labels = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    images = (torch.rand(len(labels), 3, 12, 12, generator=torch.Generator().manual_seed(3)) * 255).to(
        torch.uint8
    )
    train_set = TensorDataset(images, labels)

    def to_float(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        # The model needs floats: only a probe that batches through this collate function can run it.
        return torch.stack([x for x, _ in batch]).float() / 255, torch.stack([y for _, y in batch])

    weights = (1.0 / torch.tensor(counts, dtype=torch.float))[labels]
    plain = DataLoader(train_set, batch_size=6, shuffle=True, collate_fn=to_float)
    balanced = DataLoader(
        train_set,
        batch_size=6,
        collate_fn=to_float,
        sampler=WeightedRandomSampler(weights, num_samples=len(labels)),
    )
    probe_options = {k: v for k, v in FAST_PROBE.items() if k != "batch_size"}

    def run(loader: DataLoader) -> Any:
        model = tiny_model(3)
        return auditor.check(
            model,
            torch.optim.SGD(model.parameters(), lr=0.01),
            nn.CrossEntropyLoss(),
            train=loader,
            audits={"label_distribution": {}, "gradient_probe": probe_options},
        )

    unbalanced, weighted = run(plain), run(balanced)
    assert "LD004" in unbalanced.codes()
    assert "LD004" not in weighted.codes()
    probe = next(a for a in weighted.report["audits"] if a["name"] == "gradient_probe")
    assert probe["status"] != "errored", probe["error"]
    assert probe["options"]["batch_size"] == 6
    assert probe["evidence"]["steps_done"] == 2
    assert probe["evidence"]["outputs"]["start"]["shape"] == [6, 3]  # batches of 6 through to_float


def test_image_folder_datasets_are_hashed_by_file_others_by_content(tmp_path):
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    make_image_folder(tmp_path / "train", {"a": 4, "b": 4}, size=16)
    make_image_folder(tmp_path / "val", {"a": 2, "b": 2}, size=16)
    (tmp_path / "val" / "b" / "0000.png").write_bytes((tmp_path / "train" / "b" / "0001.png").read_bytes())
    tf = transforms.ToTensor()
    result = auditor.check(
        train=ImageFolder(str(tmp_path / "train"), tf),
        val=ImageFolder(str(tmp_path / "val"), tf),
        audits=["split_leakage"],
    )
    leak = next(a for a in result.report["audits"] if a["name"] == "split_leakage")
    assert leak["evidence"]["files"] == 12 and leak["evidence"]["in_memory_samples"] == 0
    assert "SL001" in result.codes()
    assert not (tmp_path / "train" / ".auditor-cache").exists() and not Path(".auditor-cache").exists()

    copies = tensor_split(6)
    result = auditor.check(
        train=copies,
        splits={"test": TensorDataset(*(t[:2] for t in copies.tensors))},
        audits=["split_leakage"],
    )
    leak = next(a for a in result.report["audits"] if a["name"] == "split_leakage")
    assert leak["evidence"]["in_memory_samples"] == 8
    assert "SL001" in result.codes()


def test_wrong_options_are_reported_like_a_manifest():
    with pytest.raises(auditor.ManifestInvalid) as raised:
        auditor.check(train=tensor_split(6), gradient_probe={"steps": 0})
    assert "audits.gradient_probe.steps" in str(raised.value)
    with pytest.raises(TypeError, match="gradient_prob"):
        auditor.check(train=tensor_split(6), gradient_prob={"steps": 1})
    with pytest.raises(TypeError, match="IterableDataset"):
        auditor.check(train=iter([1, 2]))


@pytest.mark.slow
def test_quickstart_objects_give_the_codes_of_auditor_run(tmp_path):
    """The quickstart built in Python as its manifest builds it: the same finding codes as the CLI run.

    Both sides run a shorter probe than the manifest's (3 steps, a generous time budget) so the
    comparison is cheaper and cannot depend on machine load; everything else is the manifest as written.
    """
    import yaml
    from _reports_quickstart import copy_quickstart, run_cli
    from torchvision.datasets import ImageFolder

    project = copy_quickstart(tmp_path / "quickstart", formats=["json"])
    manifest = yaml.safe_load((project / "audit.yaml").read_text(encoding="utf-8"))
    # overfit_steps stays at its default: the two sides' models start from different random weights,
    # and a 3-step overfit can land either side of GP006's threshold.
    manifest["audits"]["gradient_probe"] = {
        **manifest["audits"].get("gradient_probe", {}),
        "steps": 3,
        "time_budget_s": 3600,
    }
    (project / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    done = run_cli("run", "audit.yaml", "--no-cache", cwd=project)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    cli = json.loads((project / "reports" / "report.json").read_text(encoding="utf-8"))

    sys.path.insert(0, str(project / "src"))
    try:
        from quickstart import data, model, train
    finally:
        sys.path.remove(str(project / "src"))
    from auditor.run.context import MODEL_BUILD_SEED

    torch.manual_seed(MODEL_BUILD_SEED)  # the weights `auditor run` builds, so GP006/GP007 see the same head
    net = model.build(**manifest["model"]["kwargs"])
    result = auditor.check(
        net,
        train.make_optimizer(net, **manifest["optimizer"]["kwargs"]),
        nn.CrossEntropyLoss(),
        train=ImageFolder(str(project / "data" / "train"), data.train_tf),
        val=ImageFolder(str(project / "data" / "val"), data.eval_tf()),
        pretrained=manifest["model"]["pretrained"],
        head=manifest["model"]["head"],
        audits=manifest["audits"],
        fail_on=manifest["fail_on"],
    )
    validate_report(result.report)
    expected = {f["code"] for f in cli["findings"]}
    notes = {a["name"]: a["notes"] for a in result.report["audits"]}
    assert result.codes() == expected, (
        sorted(result.codes() - expected),
        sorted(expected - result.codes()),
        notes,
    )
    assert result.exit_code == cli["exit_code"]
    assert [a["name"] for a in result.report["audits"]] == [a["name"] for a in cli["audits"]]
