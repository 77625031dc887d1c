"""label_distribution: every LD code triggered and not triggered, on real data of every format."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _manifest(
    folder: Path,
    data: dict,
    *,
    loss: dict | None = None,
    options: dict | None = None,
    task: dict | None = None,
    pythonpath: list[str] | None = None,
) -> dict:
    manifest: dict = {"version": 1, "data": data, "audits": {"label_distribution": options or {}}}
    if loss:
        manifest["loss"] = loss
    if task:
        manifest["task"] = task
    if pythonpath:
        manifest["pythonpath"] = pythonpath
    return manifest


def _run(tmp_path, manifest_writer, run_audit, manifest: dict):
    outcome = run_audit(manifest_writer(tmp_path, manifest), only=["label_distribution"])
    (audit,) = [a for a in outcome.report["audits"] if a["status"] != "disabled"]
    assert audit["status"] != "errored", audit["error"]
    return outcome, audit


def _by_code(outcome, code):
    return [f for f in outcome.report["findings"] if f["code"] == code]


def test_balanced_folders_produce_nothing(tmp_path, image_folder, manifest_writer, run_audit):
    image_folder(tmp_path / "train", {"cat": 12, "dog": 12})
    image_folder(tmp_path / "val", {"cat": 4, "dog": 4}, seed=1)
    data = {
        "train": {"format": "image_folder", "root": "train"},
        "val": {"format": "image_folder", "root": "val"},
    }
    outcome, audit = _run(
        tmp_path,
        manifest_writer,
        run_audit,
        _manifest(tmp_path, data, loss={"factory": "torch.nn:CrossEntropyLoss"}),
    )
    assert outcome.report["findings"] == []
    assert audit["status"] == "passed"
    assert audit["evidence"]["counts"] == {"train": {"cat": 12, "dog": 12}, "val": {"cat": 4, "dog": 4}}
    assert outcome.exit_code == 0


def test_imbalance_unweighted_loss_rare_class_and_drift(tmp_path, image_folder, manifest_writer, run_audit):
    image_folder(tmp_path / "train", {"cat": 60, "dog": 12, "fox": 3})
    image_folder(tmp_path / "val", {"cat": 2, "dog": 10, "fox": 2, "owl": 2}, seed=1)
    data = {
        "train": {"format": "image_folder", "root": "train"},
        "val": {"format": "image_folder", "root": "val"},
    }
    outcome, audit = _run(
        tmp_path,
        manifest_writer,
        run_audit,
        _manifest(tmp_path, data, loss={"factory": "torch.nn:CrossEntropyLoss"}),
    )
    assert {"LD001", "LD002", "LD003", "LD004", "LD005"} <= outcome.codes()
    (ld001,) = _by_code(outcome, "LD001")
    assert ld001["evidence"]["ratio"] == 20.0
    # inverse frequency N / (C * n_c) with N=75, C=3
    assert ld001["evidence"]["class_weights"] == {"cat": 0.4167, "dog": 2.0833, "fox": 8.3333}
    assert "CrossEntropyLoss(weight=torch.tensor([0.4167, 2.0833, 8.3333]))" in ld001["hint"]
    (ld002,) = _by_code(outcome, "LD002")
    assert ld002["evidence"]["classes"] == ["owl"] and ld002["severity"] == "error"
    (ld005,) = _by_code(outcome, "LD005")
    assert ld005["evidence"] == {"class": "fox", "count": 3, "min_samples_per_class": 10}
    (ld003,) = _by_code(outcome, "LD003")
    assert ld003["evidence"]["distance"] > 0.15
    assert outcome.exit_code == 1  # LD002 is an error
    assert audit["status"] == "failed"


def test_thresholds_are_options(tmp_path, image_folder, manifest_writer, run_audit):
    image_folder(tmp_path / "train", {"cat": 30, "dog": 3})
    data = {"train": {"format": "image_folder", "root": "train"}}
    options = {"max_imbalance_ratio": 20, "min_samples_per_class": 2}
    outcome, _ = _run(tmp_path, manifest_writer, run_audit, _manifest(tmp_path, data, options=options))
    assert outcome.codes() == set()


def test_weighted_loss_or_sampler_silences_ld004(tmp_path, image_folder, manifest_writer, run_audit):
    image_folder(tmp_path / "train", {"cat": 30, "dog": 2})
    (tmp_path / "losses.py").write_text(
        textwrap.dedent("""
        import torch
        def weighted():
            return torch.nn.CrossEntropyLoss(weight=torch.tensor([0.5, 8.0]))
        def bce_elementwise():
            return torch.nn.BCELoss(weight=torch.ones(4))
    """)
    )
    data = {"train": {"format": "image_folder", "root": "train"}}
    outcome, _ = _run(
        tmp_path,
        manifest_writer,
        run_audit,
        _manifest(tmp_path, data, loss={"factory": "losses:weighted"}, pythonpath=["."]),
    )
    assert "LD001" in outcome.codes() and "LD004" not in outcome.codes()

    data["train"]["sampler"] = "weighted"
    outcome, _ = _run(
        tmp_path,
        manifest_writer,
        run_audit,
        _manifest(tmp_path, data, loss={"factory": "torch.nn:CrossEntropyLoss"}),
    )
    assert "LD004" not in outcome.codes()

    # BCELoss(weight=...) rescales batch elements: it is not a class weight.
    del data["train"]["sampler"]
    outcome, _ = _run(
        tmp_path,
        manifest_writer,
        run_audit,
        _manifest(tmp_path, data, loss={"factory": "losses:bce_elementwise"}, pythonpath=["."]),
    )
    (ld004,) = _by_code(outcome, "LD004")
    assert "BCELoss" in ld004["message"]


def test_binary_hint_gives_pos_weight(tmp_path, image_folder, manifest_writer, run_audit):
    image_folder(tmp_path / "train", {"negative": 44, "positive": 4})
    data = {"train": {"format": "image_folder", "root": "train"}}
    outcome, _ = _run(
        tmp_path,
        manifest_writer,
        run_audit,
        _manifest(tmp_path, data, loss={"factory": "torch.nn:BCEWithLogitsLoss"}),
    )
    (ld001,) = _by_code(outcome, "LD001")
    assert ld001["evidence"]["pos_weight"] == 11.0
    assert "BCEWithLogitsLoss(pos_weight=torch.tensor([11.0]))" in ld001["hint"]
    assert "LD004" in outcome.codes()


def test_empty_split_and_single_class(tmp_path, image_folder, manifest_writer, run_audit):
    image_folder(tmp_path / "train", {"cat": 15})
    (tmp_path / "val" / "cat").mkdir(parents=True)
    data = {
        "train": {"format": "image_folder", "root": "train"},
        "val": {"format": "image_folder", "root": "val"},
    }
    outcome, _ = _run(tmp_path, manifest_writer, run_audit, _manifest(tmp_path, data))
    messages = sorted(f["message"] for f in _by_code(outcome, "LD006"))
    assert messages == ["'train' holds a single class ('cat', 15 samples)", "split 'val' is empty"]
    assert outcome.exit_code == 1


def test_csv_string_and_integer_labels_and_parquet(tmp_path, manifest_writer, run_audit):
    import pandas as pd

    rows = [{"file": f"img/{i}.jpg", "y": "cat" if i < 40 else "dog"} for i in range(43)]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame([{"file": "x.jpg", "y": "cat"}, {"file": "y.jpg", "y": "dog"}]).to_parquet(
        tmp_path / "val.parquet"
    )
    data = {
        "train": {"format": "csv", "path": "train.csv", "path_column": "file", "label_column": "y"},
        "val": {"format": "csv", "path": "val.parquet", "path_column": "file", "label_column": "y"},
    }
    outcome, audit = _run(tmp_path, manifest_writer, run_audit, _manifest(tmp_path, data))
    assert audit["evidence"]["counts"]["train"] == {"cat": 40, "dog": 3}
    assert audit["evidence"]["counts"]["val"] == {"cat": 1, "dog": 1}
    assert {"LD001", "LD005", "LD003"} <= outcome.codes()

    pd.DataFrame({"path": [f"{i}.png" for i in range(30)], "label": [i % 3 for i in range(30)]}).to_csv(
        tmp_path / "ints.csv", index=False
    )
    data = {"train": {"format": "csv", "path": "ints.csv"}}
    outcome, audit = _run(tmp_path, manifest_writer, run_audit, _manifest(tmp_path, data))
    assert audit["evidence"]["counts"]["train"] == {"0": 10, "1": 10, "2": 10}
    assert outcome.codes() == set()


def test_multilabel_counts_per_label(tmp_path, manifest_writer, run_audit):
    import pandas as pd

    labels = ["cat|dog"] * 20 + ["cat"] * 20 + ["bird"] * 2
    pd.DataFrame({"path": [f"{i}.png" for i in range(len(labels))], "label": labels}).to_csv(
        tmp_path / "ml.csv", index=False
    )
    data = {"train": {"format": "csv", "path": "ml.csv", "label_separator": "|"}}
    outcome, audit = _run(tmp_path, manifest_writer, run_audit, _manifest(tmp_path, data))
    assert audit["evidence"]["counts"]["train"] == {"bird": 2, "cat": 40, "dog": 20}
    assert audit["evidence"]["task"] == "multilabel"
    (ld001,) = _by_code(outcome, "LD001")
    assert ld001["evidence"]["pos_weight"]["bird"] == 20.0  # (42 - 2) / 2
    assert "LD006" not in outcome.codes()


def test_callable_dataset_reads_targets_attribute_without_decoding(tmp_path, manifest_writer, run_audit):
    (tmp_path / "ds.py").write_text(
        textwrap.dedent("""
        class Counted:
            classes = ["a", "b"]
            def __init__(self, n):
                self.targets = [0] * (n - 2) + [1] * 2
            def __len__(self):
                return len(self.targets)
            def __getitem__(self, i):
                raise AssertionError("labels must come from .targets, not from decoding samples")

        class NoAttr:
            def __len__(self):
                return 12
            def __getitem__(self, i):
                return [float(i)], i % 2
    """)
    )
    data = {
        "train": {"format": "callable", "factory": "ds:Counted", "kwargs": {"n": 40}},
        "val": {"format": "callable", "factory": "ds:NoAttr"},
    }
    outcome, audit = _run(tmp_path, manifest_writer, run_audit, _manifest(tmp_path, data, pythonpath=["."]))
    assert audit["evidence"]["counts"] == {"train": {"a": 38, "b": 2}, "val": {"0": 6, "1": 6}}
    assert {"LD001", "LD005"} <= outcome.codes()
    # val's classes are unnamed ('0', '1') while train's are 'a', 'b': nothing from val is in train.
    assert "LD002" in outcome.codes()
