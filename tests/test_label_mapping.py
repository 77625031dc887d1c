"""Class index maps that differ between splits (LD007) and unusable label cells (LD008), on real files."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path
from typing import Any

import pytest

from auditor.testing import make_image_folder, write_manifest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROJECT = textwrap.dedent("""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize((16, 16)), transforms.ToTensor()])


    def image_folder(root):
        return datasets.ImageFolder(root, transform=tf)
""")


def _run(run_audit: Any, folder: Path, data: dict[str, Any]) -> dict[str, Any]:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "lm_project.py").write_text(PROJECT, encoding="utf-8")
    manifest = write_manifest(
        folder,
        {
            "version": 1,
            "pythonpath": ["src"],
            "data": data,
            "audits": {"label_distribution": {"min_samples_per_class": 1}},
        },
    )
    return run_audit(manifest).report


def _codes(report: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["code"] == code]


def _status(report: dict[str, Any]) -> str:
    return next(a["status"] for a in report["audits"] if a["name"] == "label_distribution")


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("fmt", ["image_folder", "callable"])
def test_a_split_missing_a_class_folder_shifts_indices(tmp_path, run_audit, fmt):
    make_image_folder(tmp_path / "train", {"cat": 3, "dog": 3, "fox": 3}, size=8)
    make_image_folder(tmp_path / "val", {"cat": 3, "fox": 3}, size=8, seed=1)
    if fmt == "image_folder":
        data = {s: {"format": "image_folder", "root": s} for s in ("train", "val")}
    else:  # torchvision ImageFolder per split: class_to_idx is read from the datasets
        data = {
            s: {
                "format": "callable",
                "factory": "lm_project:image_folder",
                "kwargs": {"root": str(tmp_path / s)},
            }
            for s in ("train", "val")
        }
    report = _run(run_audit, tmp_path, data)
    (ld007,) = _codes(report, "LD007")
    assert ld007["severity"] == "error" and ld007["location"] == "data.val"
    assert "'fox' is 1 in 'val' but 2 in 'train'" in ld007["message"]
    assert ld007["evidence"]["mismatches"] == [{"class": "fox", "train": 2, "val": 1}]
    assert _status(report) == "failed" and report["exit_code"] == 1


def test_a_class_absent_from_train_is_the_cause_of_the_shift(tmp_path, run_audit):
    _write_csv(tmp_path / "train.csv", [(f"x{i}.png", name) for i, name in enumerate(["ant", "cow"] * 3)])
    _write_csv(
        tmp_path / "val.csv", [(f"y{i}.png", name) for i, name in enumerate(["ant", "bee", "cow"] * 2)]
    )
    report = _run(
        run_audit,
        tmp_path,
        {"train": {"format": "csv", "path": "train.csv"}, "val": {"format": "csv", "path": "val.csv"}},
    )
    (ld002,) = _codes(report, "LD002")
    (ld007,) = _codes(report, "LD007")
    assert "'cow' is 2 in 'val' but 1 in 'train'" in ld007["message"]
    assert ld007["caused_by"] == ld002["id"] == "LD002@data.val"
    assert report["exit_code"] == 1


def test_same_classes_in_every_split_is_clean(tmp_path, run_audit):
    make_image_folder(tmp_path / "train", {"cat": 3, "dog": 3}, size=8)
    make_image_folder(tmp_path / "val", {"cat": 2, "dog": 2}, size=8, seed=1)
    report = _run(run_audit, tmp_path, {s: {"format": "image_folder", "root": s} for s in ("train", "val")})
    assert not _codes(report, "LD007") and not _codes(report, "LD008")


def test_blank_cells_in_an_integer_column_keep_integer_labels(tmp_path, run_audit):
    labels = ["0", "1", "2", "", "1", "2", "0", "", "2"]
    _write_csv(tmp_path / "train.csv", [(f"x{i}.png", v) for i, v in enumerate(labels)])
    report = _run(run_audit, tmp_path, {"train": {"format": "csv", "path": "train.csv"}})
    (ld008,) = _codes(report, "LD008")
    assert ld008["severity"] == "error" and ld008["location"] == "data.train"
    assert ld008["evidence"]["counts"] == {"blank": 2}
    assert [r["line"] for r in ld008["evidence"]["rows"]] == [5, 9]  # CSV lines (the header is line 1)
    assert (
        "2 rows of column 'label' hold no usable class label (2 blank): line 5 (blank); line 9 (blank)"
        in ld008["message"]
    )
    counts = next(a for a in report["audits"] if a["name"] == "label_distribution")["evidence"]["counts"][
        "train"
    ]
    assert counts == {"0": 2, "1": 2, "2": 3}  # no '-1', no '0.0'
    assert report["task"]["class_names"] == ["0", "1", "2"]
    assert _status(report) == "failed" and report["exit_code"] == 1


def test_unparsable_and_nan_labels_in_parquet_and_text_columns(tmp_path, run_audit):
    import pandas as pd

    pd.DataFrame(
        {"path": [f"x{i}.png" for i in range(6)], "label": ["cat", None, "dog", "cat", float("nan"), "dog"]}
    ).to_parquet(tmp_path / "train.parquet")
    _write_csv(tmp_path / "val.csv", [("y0.png", "1"), ("y1.png", "0"), ("y2.png", "one"), ("y3.png", "1")])
    report = _run(
        run_audit,
        tmp_path,
        {"train": {"format": "csv", "path": "train.parquet"}, "val": {"format": "csv", "path": "val.csv"}},
    )
    by_split = {f["evidence"]["split"]: f for f in _codes(report, "LD008")}
    assert by_split["train"]["evidence"]["counts"] == {"blank": 2}
    assert [r["row"] for r in by_split["train"]["evidence"]["rows"]] == [1, 4]
    assert by_split["val"]["evidence"]["counts"] == {"unparsable": 1}
    assert "line 4 (unparsable 'one')" in by_split["val"]["message"]
    counts = next(a for a in report["audits"] if a["name"] == "label_distribution")["evidence"]["counts"]
    assert set(counts["train"]) == {"cat", "dog"} and set(counts["val"]) == {"0", "1"}
    assert report["exit_code"] == 1
