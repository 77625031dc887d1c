"""Data-loading failures a real training run hits are errors before training (DL001-DL003, GP012).

Every case is a real image folder or CSV, a real module of transforms, datasets and a tiny
torch model written into the test's folder, and a real run; each asserts the code, its
severity, the exit code and that the audit that found it is not ``passed``.
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import load_json_report

from auditor.testing import make_image, make_image_folder, write_manifest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROJECT = textwrap.dedent('''
    """Transforms, datasets and a tiny model as a fine-tuning project writes them."""
    import torch
    from PIL import Image
    from torch import nn
    from torchvision import datasets, transforms

    tensor_tf = transforms.Compose([transforms.Resize((16, 16)), transforms.ToTensor()])
    no_resize_tf = transforms.ToTensor()
    pil_tf = transforms.Resize((16, 16))  # the eval pipeline that forgot ToTensor()
    crop_tf = transforms.Compose([transforms.RandomCrop(24), transforms.ToTensor()])


    def tiny(num_classes=2, frozen=False):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))
        for parameter in model.parameters():
            parameter.requires_grad = not frozen
        return model


    def sgd(model, lr=0.01):
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.SGD(params or list(model.parameters()), lr=lr)


    class NoConvert(torch.utils.data.Dataset):
        """An ImageFolder lookalike whose loader skips convert('RGB')."""

        def __init__(self, root):
            self.inner = datasets.ImageFolder(root, loader=lambda path: Image.open(path).copy())
            self.classes, self.class_to_idx, self.targets = self.inner.classes, self.inner.class_to_idx, self.inner.targets
            self.samples = self.inner.samples
            self.transform = transforms.Compose([transforms.Resize((16, 16)), transforms.ToTensor()])

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, index):
            image, label = self.inner[index]
            return (self.transform(image) if self.transform else image), label


    def pad_collate(pairs):
        """Pads inputs to the largest height and width: batches of mixed sizes work."""
        height = max(x.shape[1] for x, _ in pairs)
        width = max(x.shape[2] for x, _ in pairs)
        out = torch.zeros(len(pairs), 3, height, width)
        for row, (x, _) in enumerate(pairs):
            out[row, :, : x.shape[1], : x.shape[2]] = x
        return out, torch.tensor([y for _, y in pairs])


    def hang_collate(pairs):
        """A collate function that waits on something that never comes (a queue, a lock, a server)."""
        import threading

        threading.Event().wait()
''')

AUDITS = {
    "data_loading": {},
    "frozen_coverage": {},
    "gradient_probe": {"steps": 2, "overfit_steps": 0, "batch_size": 4, "device": "cpu"},
}


def _project(
    folder: Path,
    data: dict[str, Any],
    *,
    model_kwargs: dict[str, Any] | None = None,
    audits: dict[str, Any] | None = None,
) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "dl_project.py").write_text(PROJECT, encoding="utf-8")
    return write_manifest(
        folder,
        {
            "version": 1,
            "pythonpath": ["src"],
            "model": {"factory": "dl_project:tiny", "kwargs": model_kwargs or {}},
            "optimizer": {"factory": "dl_project:sgd"},
            "loss": {"factory": "torch.nn:CrossEntropyLoss"},
            "data": data,
            "audits": audits or AUDITS,
        },
    )


def _folder(root: Path, counts: dict[str, int] | None = None, size: int = 16) -> str:
    make_image_folder(root, counts or {"a": 6, "b": 6}, size=size)
    return str(root)


def _audit(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in report["audits"] if a["name"] == name)


def _one(report: dict[str, Any], code: str) -> dict[str, Any]:
    found = [f for f in report["findings"] if f["code"] == code]
    assert len(found) == 1, [(f["code"], f["message"]) for f in report["findings"]]
    return found[0]


def test_mixed_channel_counts_are_dl001_and_the_probe_stops_with_gp012(tmp_path, run_audit):
    root = tmp_path / "train"
    _folder(root)
    for i in range(2):  # grayscale files among RGB ones, opened without convert("RGB")
        from PIL import Image

        Image.new("L", (16, 16), 90 + i).save(root / "b" / f"gray{i}.png")
    manifest = _project(
        tmp_path,
        {"train": {"format": "callable", "factory": "dl_project:NoConvert", "kwargs": {"root": str(root)}}},
    )
    report = run_audit(manifest).report
    dl001 = _one(report, "DL001")
    assert dl001["severity"] == "error" and dl001["location"] == "data.train"
    assert "Tensor[1, 16, 16]" in dl001["message"] and "Tensor[3, 16, 16]" in dl001["message"]
    assert "convert('RGB')" in dl001["hint"]
    odd = [g for g in dl001["evidence"]["groups"] if g["signature"].startswith("Tensor[1,")]
    assert (
        odd
        and odd[0]["count"] == 2
        and odd[0]["paths"] == [str(root / "b" / f"gray{i}.png") for i in range(2)]
    )
    gp012 = _one(report, "GP012")
    assert gp012["severity"] == "error" and gp012["caused_by"] == dl001["id"]
    assert _audit(report, "data_loading")["status"] == "failed"
    assert _audit(report, "gradient_probe")["status"] == "failed"
    assert report["exit_code"] == 1


def test_pil_outputs_stop_the_probe_at_zero_steps_and_are_never_passed(tmp_path, run_audit):
    manifest = _project(
        tmp_path,
        {
            "train": {
                "format": "image_folder",
                "root": _folder(tmp_path / "train"),
                "transform": "dl_project:pil_tf",
            }
        },
    )
    report = run_audit(manifest).report
    dl001 = _one(report, "DL001")
    assert "PIL.Image RGB 16x16" in dl001["message"] and "ToTensor()" in dl001["hint"]
    gp012 = _one(report, "GP012")
    assert gp012["severity"] == "error" and gp012["evidence"]["steps_done"] == 0
    assert "trained 0 of 2 steps" in gp012["message"] and str(tmp_path / "train") in gp012["message"]
    assert _audit(report, "gradient_probe")["status"] == "failed"
    assert report["exit_code"] == 1


def test_eval_pipeline_without_to_tensor_is_an_error_before_training(tmp_path, cli):
    manifest = _project(
        tmp_path,
        {
            "train": {
                "format": "image_folder",
                "root": _folder(tmp_path / "train"),
                "transform": "dl_project:tensor_tf",
            },
            "val": {
                "format": "image_folder",
                "root": _folder(tmp_path / "val"),
                "transform": "dl_project:pil_tf",
            },
        },
        audits={"data_loading": {}},
    )
    done = cli("run", manifest, "--format", "json", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr

    report = load_json_report(tmp_path / "reports")
    dl001 = _one(report, "DL001")
    assert dl001["location"] == "data.val" and dl001["severity"] == "error"
    assert _audit(report, "data_loading")["status"] == "failed"
    assert "DL001 error" in done.stdout


def test_different_sizes_without_resize_are_dl001_unless_the_declared_collate_pads(tmp_path, run_audit):
    root = tmp_path / "val"
    make_image_folder(root, {"a": 3, "b": 3}, size=16)
    make_image(root / "a" / "big.png", seed=7, size=20)
    data = {"val": {"format": "image_folder", "root": str(root), "transform": "dl_project:no_resize_tf"}}
    report = run_audit(_project(tmp_path, data, audits={"data_loading": {}})).report
    dl001 = _one(report, "DL001")
    assert "Tensor[3, 20, 20]" in dl001["message"] and "Resize" in dl001["hint"]
    assert str(root / "a" / "big.png") in dl001["message"]
    assert report["exit_code"] == 1
    # The run pads in its collate_fn: declared, the same samples batch fine.
    data["val"]["collate_fn"] = "dl_project:pad_collate"
    report = run_audit(_project(tmp_path, data, audits={"data_loading": {}})).report
    assert report["findings"] == [] and _audit(report, "data_loading")["status"] == "passed"
    assert (
        _audit(report, "data_loading")["evidence"]["splits"]["val"]["collate_fn"] == "dl_project:pad_collate"
    )


def test_a_collate_function_that_never_returns_fails_the_audit_and_the_run_exits(tmp_path, cli):
    data = {
        "train": {
            "format": "image_folder",
            "root": _folder(tmp_path / "train"),
            "transform": "dl_project:tensor_tf",
            "collate_fn": "dl_project:hang_collate",
        }
    }
    manifest = _project(tmp_path, data, audits={"data_loading": {}, "label_distribution": {}})
    manifest.write_text(manifest.read_text(encoding="utf-8") + "call_timeout_s: 2\n", encoding="utf-8")
    done = cli("run", manifest, "--format", "json", "--no-cache", cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # user code that hangs: a finding (DL006)
    report = load_json_report(tmp_path / "reports")
    loading = _audit(report, "data_loading")
    assert loading["status"] == "failed"
    (finding,) = [f for f in report["findings"] if f["code"] == "DL006"]
    assert "collate function dl_project:hang_collate" in finding["message"]
    assert "did not return within 2 s" in finding["message"]
    assert _audit(report, "label_distribution")["status"] != "errored"  # the other audits still ran


def test_a_corrupt_file_and_a_transform_that_raises_are_dl002_with_index_and_path(tmp_path, run_audit):
    root = tmp_path / "train"
    _folder(root, size=32)
    broken = root / "b" / "0002.png"
    broken.write_bytes(broken.read_bytes()[:40])  # truncated: PIL cannot decode it
    small = make_image(root / "a" / "0001.png", seed=3, size=16)  # RandomCrop(24) raises on 16 px
    manifest = _project(
        tmp_path,
        {"train": {"format": "image_folder", "root": str(root), "transform": "dl_project:crop_tf"}},
        audits={"data_loading": {}},
    )
    report = run_audit(manifest).report
    dl002 = _one(report, "DL002")
    assert dl002["severity"] == "error" and dl002["location"] == "data.train"
    failed = {f["path"]: f for f in dl002["evidence"]["failures"]}
    assert set(failed) == {str(broken), str(small)}
    assert "larger than input image size" in failed[str(small)]["error"]
    assert "'train': 2 of 12 samples checked fail to load" in dl002["message"]
    assert _audit(report, "data_loading")["status"] == "failed" and report["exit_code"] == 1


def test_a_split_whose_every_file_is_missing_is_dl003(tmp_path, run_audit):
    with open(tmp_path / "val.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([(f"images/{i}.png", i % 2) for i in range(6)])  # images/ was never copied
    manifest = _project(
        tmp_path,
        {
            "train": {
                "format": "image_folder",
                "root": _folder(tmp_path / "train"),
                "transform": "dl_project:tensor_tf",
            },
            "val": {"format": "csv", "path": "val.csv", "transform": "dl_project:tensor_tf"},
        },
        audits={"data_loading": {}},
    )
    report = run_audit(manifest).report
    dl003 = _one(report, "DL003")
    assert dl003["severity"] == "error" and dl003["location"] == "data.val"
    assert "none of the 6 files it lists exists" in dl003["message"]
    assert str(tmp_path / "images" / "0.png") in dl003["message"]
    assert _audit(report, "data_loading")["status"] == "failed" and report["exit_code"] == 1


def test_an_all_frozen_model_skips_the_probe_and_fz001_stands(tmp_path, run_audit):
    manifest = _project(
        tmp_path,
        {
            "train": {
                "format": "image_folder",
                "root": _folder(tmp_path / "train"),
                "transform": "dl_project:tensor_tf",
            }
        },
        model_kwargs={"frozen": True},
    )
    report = run_audit(manifest).report
    probe = _audit(report, "gradient_probe")
    assert probe["status"] == "skipped" and "nothing to train" in probe["reason"] and probe["error"] is None
    assert _one(report, "FZ001")["severity"] == "error"
    assert report["exit_code"] == 1


def test_clean_project_loads_cleanly_and_notes_show_without_findings(tmp_path, cli):
    manifest = _project(
        tmp_path,
        {
            "train": {
                "format": "image_folder",
                "root": _folder(tmp_path / "train"),
                "transform": "dl_project:tensor_tf",
            },
            "val": {
                "format": "image_folder",
                "root": _folder(tmp_path / "val"),
                "transform": "dl_project:tensor_tf",
            },
            "test": {
                "format": "image_folder",
                "root": str(tmp_path / "test"),
                "transform": "dl_project:tensor_tf",
            },
        },
        audits={"data_loading": {}},
    )
    (tmp_path / "test").mkdir()
    done = cli("run", manifest, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    report = load_json_report(tmp_path / "reports")
    assert report["findings"] == [] and _audit(report, "data_loading")["status"] == "passed"
    # An audit with notes and no findings still shows its notes on the console.
    assert "data_loading: notes" in done.stdout and "'test' is empty" in done.stdout
    assert _audit(report, "data_loading")["evidence"]["splits"]["train"]["signatures"] == {
        "Tensor[3, 16, 16] float32": 12
    }


def test_a_warm_rerun_reuses_the_result_and_a_changed_file_is_loaded_again(tmp_path, run_audit):
    root = tmp_path / "train"
    _folder(root)
    manifest = _project(
        tmp_path,
        {"train": {"format": "image_folder", "root": str(root), "transform": "dl_project:tensor_tf"}},
        audits={"data_loading": {}},
    )
    first = run_audit(manifest).report
    assert (
        _audit(first, "data_loading")["evidence"]["cache"] == {"train": "loaded"} and first["findings"] == []
    )
    second = run_audit(manifest).report
    assert _audit(second, "data_loading")["evidence"]["cache"] == {"train": "reused"}
    assert second["findings"] == []
    broken = root / "a" / "0003.png"
    broken.write_bytes(broken.read_bytes()[:40])
    third = run_audit(manifest).report
    assert _audit(third, "data_loading")["evidence"]["cache"] == {"train": "loaded"}
    assert _one(third, "DL002")["evidence"]["failures"][0]["path"] == str(broken)
