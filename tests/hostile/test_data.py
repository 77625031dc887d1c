"""Hostile data and manifests that validate: FIFOs, ESC in names, odd keys, bad items, odd encodings."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hostile._corpus import manifest, project, run, snapshot


def test_a_fifo_named_like_an_image_is_reported_unreadable_not_waited_on(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    os.mkfifo(root / "data" / "train" / "cat" / "x.jpg")
    os.mkfifo(root / "data" / "val" / "dog" / "y.png")
    path = manifest(
        root,
        audits={
            "transform_parity": None,
            "gradient_probe": {"device": "cpu", "steps": 2, "overfit_steps": 0},
            "split_leakage": None,
        },
    )
    before = snapshot(root, outside=root / "out")
    done = run("run", path, "--no-cache", "--output-dir", root / "out", timeout=240)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # findings maybe, never a crash
    assert "Traceback" not in done.stdout + done.stderr
    report = json.loads((root / "out" / "report.json").read_text(encoding="utf-8"))
    assert {a["name"]: a["status"] for a in report["audits"]}.keys() >= {
        "transform_parity",
        "split_leakage",
        "gradient_probe",
    }
    assert all(a["status"] != "errored" for a in report["audits"]), report["audits"]
    text = json.dumps(report)
    assert "not a regular file" in text  # reported as unreadable, not skipped silently
    assert snapshot(root, outside=root / "out") == before


def test_escape_sequences_in_names_never_reach_the_terminal_raw(tmp_path: Path) -> None:
    root = project(tmp_path / "p", train={"cat\x1b[2J\x1b]0;pwned\x07": 4, "dog": 4})
    path = manifest(
        root,
        audits={"label_distribution": {"max_imbalance_ratio": 1.0001}},
        data={
            "train": {"format": "image_folder", "root": "data/train"},
            "val": {"format": "image_folder", "root": "data/val"},
        },
    )
    (root / "data" / "train" / "dog" / "0000.png").unlink()  # imbalance: a finding naming the classes
    before = snapshot(root, outside=root / "out")
    done = run("run", path, "--no-cache", "--format", "github", "--output-dir", root / "out")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "\\x1b[2J" in done.stdout  # shown, visibly, rather than dropped
    annotations = (root / "out" / "github-annotations.txt").read_text(encoding="utf-8")
    assert "\x1b" not in annotations
    assert snapshot(root, outside=root / "out") == before


def test_integer_and_null_split_names_fail_validate_naming_the_key(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    path = root / "audit.yaml"
    path.write_text(
        "version: 1\ndata:\n  1: {format: image_folder, root: data/train}\n"
        "  null: {format: image_folder, root: data/val}\n",
        encoding="utf-8",
    )
    for command in ("validate", "run"):
        done = run(command, path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "data.1: expected a split name that is a non-empty string, found 1 (int)" in done.stderr
        assert (
            "data.null: expected a split name that is a non-empty string, found nothing (null)" in done.stderr
        )


def test_a_seed_beyond_64_bits_is_refused_by_validate(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    path = manifest(root, audits={"gradient_probe": {"seed": 2**64 + 1}})
    done = run("validate", path)
    assert done.returncode == 2
    assert "audits.gradient_probe.seed: expected a number <= 9223372036854775807" in done.stderr, done.stderr


def test_factories_returning_none_or_a_dict_name_the_key(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    for factory, found in (("hostile:returns_none", "None"), ("hostile:returns_dict", "a dict")):
        path = manifest(root, model={"factory": factory}, audits={"frozen_coverage": None})
        done = run("run", path, "--no-cache", "--output-dir", root / "out")
        assert done.returncode == 2, done.stdout + done.stderr
        assert (
            f"model.factory: expected a factory returning a torch.nn.Module, found {factory} returned {found}"
        ) in " ".join(done.stdout.split()), done.stdout
        assert "named_children" not in done.stdout


def test_a_dataset_raising_on_item_5_is_named_by_split_and_index(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    (root / "hostile.py").write_text(
        (root / "hostile.py")
        .read_text(encoding="utf-8")
        .replace("    targets = [i % 2 for i in range(8)]\n", ""),
        encoding="utf-8",
    )  # labels only via __getitem__
    path = manifest(
        root,
        data={"train": {"format": "callable", "factory": "hostile:raises_on_five"}},
        audits={"label_distribution": None},
    )
    done = run("run", path, "--no-cache", "--output-dir", root / "out")
    assert done.returncode == 2, done.stdout + done.stderr
    text = " ".join(done.stdout.split())  # the console may wrap long lines
    assert (
        "data.train.factory: expected a dataset whose every item can be read, found item 5 of split "
        "'train' raised OSError: disk went away at item five" in text
    ), done.stdout


def test_a_non_utf8_csv_is_blamed_on_its_encoding_not_on_label_column(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    table = root / "labels.csv"
    table.write_bytes("path,label\ncat/0000.png,ch\xe2t\n".encode("latin-1"))
    path = manifest(
        root,
        data={"train": {"format": "csv", "path": "labels.csv", "root": "data/train"}},
        audits={"label_distribution": None},
    )
    done = run("run", path, "--no-cache", "--output-dir", root / "out")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "data.train.path: expected a CSV file in UTF-8" in " ".join(done.stdout.split()), done.stdout
    assert "label_column" not in done.stdout


def test_report_dir_with_a_tilde_means_the_home_folder(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    home = tmp_path / "home"
    home.mkdir()
    path = manifest(
        root, report={"dir": "~/audit-reports", "formats": ["json"]}, audits={"label_distribution": None}
    )
    done = run("run", path, "--no-cache", env={"HOME": str(home)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (home / "audit-reports" / "report.json").is_file()
    assert not (root / "~").exists()
