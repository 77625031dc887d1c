"""split_leakage on real image files, tables, tensors and broken files: every code fires and stays quiet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageEnhance, ImageOps

from auditor.testing import make_image

SIZE = 64


def _folder(root: Path, counts: dict[str, int], seed: int) -> list[Path]:
    """``root/<class>/<i>.jpg``: distinct 64 px JPEGs (blobs on a background)."""
    paths = []
    for c, (name, count) in enumerate(counts.items()):
        for i in range(count):
            paths.append(
                make_image(root / name / f"{name}_{i:02d}.jpg", seed=seed * 1000 + c * 100 + i, size=SIZE)
            )
    return paths


def _manifest(tmp: Path, writer: Any, options: dict[str, Any] | None = None, **splits: Any) -> Path:
    data = {
        name: (spec if isinstance(spec, dict) else {"format": "image_folder", "root": spec})
        for name, spec in splits.items()
    }
    return writer(tmp, {"version": 1, "data": data, "audits": {"split_leakage": options or {}}})


def _findings(outcome: Any, code: str | None = None) -> list[dict[str, Any]]:
    return [
        f
        for f in outcome.report["findings"]
        if f["audit"] == "split_leakage" and (code is None or f["code"] == code)
    ]


def _audit(outcome: Any) -> dict[str, Any]:
    return next(a for a in outcome.report["audits"] if a["name"] == "split_leakage")


def _edit(source: Path, target: Path, edit: Any, quality: int = 70) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        edit(image.convert("RGB")).save(target, quality=quality)
    return target


@pytest.fixture
def clean(tmp_path: Path, manifest_writer: Any) -> Path:
    _folder(tmp_path / "train", {"cat": 6, "dog": 6}, seed=1)
    _folder(tmp_path / "val", {"cat": 3, "dog": 3}, seed=2)
    return _manifest(tmp_path, manifest_writer, train="train", val="val")


def test_distinct_splits_give_no_finding_and_a_summary(clean: Path, run_audit: Any) -> None:
    outcome = run_audit(clean, only=["split_leakage"])
    assert _findings(outcome) == []
    audit = _audit(outcome)
    assert audit["status"] == "passed"
    evidence = audit["evidence"]
    assert evidence["samples"] == 18 and evidence["files_hashed"] == evidence["hashed"] == 18
    assert evidence["cache_hits"] == 0
    assert evidence["per_split"]["train"]["samples"] == 12
    assert evidence["cross"] == {"train/val": {"same_path": 0, "exact": 0, "near": 0}}
    assert evidence["seconds"] >= 0


def test_exact_copy_across_splits_is_sl001_with_pairs_relative_to_the_manifest(
    clean: Path, run_audit: Any
) -> None:
    root = clean.parent
    shutil.copyfile(root / "train/cat/cat_03.jpg", root / "val/cat/copy.jpg")
    shutil.copyfile(root / "train/dog/dog_01.jpg", root / "val/cat/mislabelled_copy.jpg")
    outcome = run_audit(clean, only=["split_leakage"])
    (finding,) = _findings(outcome, "SL001")
    assert finding["severity"] == "error" and finding["location"] == "data.val"
    assert finding["evidence"]["count"] == 2
    assert "2 samples in 'val' are byte-identical to samples in 'train'" in finding["message"]
    pairs = {(p["b"]["path"], p["a"]["path"]): p for p in finding["evidence"]["pairs"]}
    pair = pairs[("val/cat/copy.jpg", "train/cat/cat_03.jpg")]
    assert pair["a"] == {"split": "train", "path": "train/cat/cat_03.jpg", "index": 3, "label": "cat"}
    assert pair["b"]["label"] == "cat" and pair["distance"] == 0
    assert pairs[("val/cat/mislabelled_copy.jpg", "train/dog/dog_01.jpg")]["a"]["label"] == "dog"
    # An identical copy is reported once, as SL001, never again as a near duplicate.
    assert _findings(outcome, "SL002") == []
    assert outcome.exit_code == 1


def test_near_copies_are_sl002_including_mirrored(clean: Path, run_audit: Any) -> None:
    root = clean.parent
    train = root / "train" / "cat"
    _edit(train / "cat_00.jpg", root / "val/cat/reencoded.jpg", lambda im: im, quality=60)
    _edit(train / "cat_01.jpg", root / "val/cat/resized.jpg", lambda im: im.resize((48, 48), Image.BICUBIC))
    _edit(
        train / "cat_02.jpg",
        root / "val/cat/brighter.jpg",
        lambda im: ImageEnhance.Brightness(im).enhance(1.1),
    )
    _edit(train / "cat_04.jpg", root / "val/cat/mirrored.jpg", ImageOps.mirror)
    outcome = run_audit(clean, only=["split_leakage"])
    (finding,) = _findings(outcome, "SL002")
    assert finding["severity"] == "warning"
    evidence = finding["evidence"]
    assert evidence["count"] == 4 and evidence["mirrored"] == 1 and evidence["max_distance"] == 8
    by_copy = {Path(p["b"]["path"]).name: p for p in evidence["pairs"]}
    assert {name: Path(p["a"]["path"]).name for name, p in by_copy.items()} == {
        "reencoded.jpg": "cat_00.jpg",
        "resized.jpg": "cat_01.jpg",
        "brighter.jpg": "cat_02.jpg",
        "mirrored.jpg": "cat_04.jpg",
    }
    assert by_copy["mirrored.jpg"]["mirrored"] is True and by_copy["resized.jpg"]["mirrored"] is False
    for pair in evidence["pairs"]:
        assert pair["distance"] <= 8 and pair["similarity"] >= 0.97
    assert "1 mirrored" in finding["message"]
    assert _findings(outcome, "SL001") == []


def test_near_duplicate_options_turn_the_search_off_or_tighter(
    clean: Path, run_audit: Any, manifest_writer: Any
) -> None:
    root = clean.parent
    shutil.copyfile(root / "train/cat/cat_00.jpg", root / "val/cat/copy.jpg")
    _edit(root / "train/cat/cat_01.jpg", root / "val/cat/mirrored.jpg", ImageOps.mirror)
    off = _manifest(root, manifest_writer, {"near_duplicates": False}, train="train", val="val")
    outcome = run_audit(off, only=["split_leakage"])
    assert {f["code"] for f in _findings(outcome)} == {"SL001"}
    no_flip = _manifest(root, manifest_writer, {"mirrored": False}, train="train", val="val")
    assert {f["code"] for f in _findings(run_audit(no_flip, only=["split_leakage"]))} == {"SL001"}


def test_max_pairs_caps_the_listed_pairs_but_not_the_count(
    clean: Path, run_audit: Any, manifest_writer: Any
) -> None:
    root = clean.parent
    for i in range(3):
        shutil.copyfile(root / f"train/dog/dog_0{i}.jpg", root / f"val/dog/copy_{i}.jpg")
    shutil.copyfile(root / "train/dog/dog_04.jpg", root / "train/cat/dog_in_cat.jpg")
    manifest = _manifest(root, manifest_writer, {"max_pairs": 1}, train="train", val="val")
    (finding,) = _findings(run_audit(manifest, only=["split_leakage"]), "SL001")
    assert finding["evidence"]["count"] == 3
    assert len(finding["evidence"]["pairs"]) == finding["evidence"]["pairs_shown"] == 1
    none = _manifest(root, manifest_writer, {"max_pairs": 0}, train="train", val="val")
    found = {f["code"]: f for f in _findings(run_audit(none, only=["split_leakage"]))}
    assert set(found) == {"SL001", "SL003"}
    assert all(f["evidence"]["pairs"] == [] and f["hint"] for f in found.values())


def test_same_file_in_two_csv_splits_is_sl005(tmp_path: Path, manifest_writer: Any, run_audit: Any) -> None:
    paths = _folder(tmp_path / "images", {"a": 4, "b": 4}, seed=3)
    rows = [(p.relative_to(tmp_path).as_posix(), p.parent.name) for p in paths]
    (tmp_path / "train.csv").write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in rows[:6]))
    # val repeats two training files: one spelled differently (./ and ..), one as is.
    shared = [f"./images/../{rows[0][0]}", rows[5][0]]
    (tmp_path / "val.csv").write_text(
        "path,label\n" + "".join(f"{p},x\n" for p in shared) + "".join(f"{p},{lab}\n" for p, lab in rows[6:])
    )
    manifest = _manifest(
        tmp_path,
        manifest_writer,
        train={"format": "csv", "path": "train.csv"},
        val={"format": "csv", "path": "val.csv"},
    )
    outcome = run_audit(manifest, only=["split_leakage"])
    (finding,) = _findings(outcome, "SL005")
    assert finding["severity"] == "error" and finding["evidence"]["count"] == 2
    assert "2 files listed in 'val' are also listed in 'train'" in finding["message"]
    # Listed twice is one problem: not also an identical (SL001) or near (SL002) copy.
    assert _findings(outcome, "SL001") == [] and _findings(outcome, "SL002") == []
    # The csv listings sit beside the manifest: the cache folder is still allowed there.
    assert (tmp_path / ".auditor-cache" / "split_leakage.sqlite").is_file()
    # Two spellings of one file are one file: hashed once, then one cache hit.
    assert _audit(outcome)["evidence"]["files_hashed"] == 8
    again = _audit(run_audit(manifest, only=["split_leakage"]))["evidence"]
    assert again["files_hashed"] == 0 and again["cache_hits"] == 8


def test_duplicates_within_a_split_are_sl003_or_sl004_by_label(clean: Path, run_audit: Any) -> None:
    root = clean.parent
    shutil.copyfile(root / "train/cat/cat_00.jpg", root / "train/dog/same_photo_other_label.jpg")
    shutil.copyfile(root / "train/dog/dog_02.jpg", root / "train/dog/saved_twice.jpg")
    _edit(root / "train/dog/dog_03.jpg", root / "train/dog/smaller.jpg", lambda im: im.resize((40, 40)))
    outcome = run_audit(clean, only=["split_leakage"])
    (conflict,) = _findings(outcome, "SL003")
    assert conflict["severity"] == "warning" and conflict["location"] == "data.train"
    assert conflict["evidence"]["count"] == 1 and conflict["evidence"]["samples"] == 2
    (pair,) = conflict["evidence"]["pairs"]
    assert {pair["a"]["label"], pair["b"]["label"]} == {"cat", "dog"}
    (same,) = _findings(outcome, "SL004")
    assert same["severity"] == "info" and same["evidence"]["count"] == 2 and same["evidence"]["groups"] == 2
    kinds = {Path(p["b"]["path"]).name: p["kind"] for p in same["evidence"]["pairs"]}
    assert kinds == {"saved_twice.jpg": "exact", "smaller.jpg": "near"}
    # Duplicates inside a split are not leakage.
    assert not _findings(outcome, "SL001") and not _findings(outcome, "SL002")


def test_within_split_exact_only_and_off(clean: Path, run_audit: Any, manifest_writer: Any) -> None:
    root = clean.parent
    shutil.copyfile(root / "train/dog/dog_02.jpg", root / "train/dog/saved_twice.jpg")
    _edit(root / "train/dog/dog_03.jpg", root / "train/dog/smaller.jpg", lambda im: im.resize((40, 40)))
    exact = _manifest(root, manifest_writer, {"within_split": "exact"}, train="train", val="val")
    (finding,) = _findings(run_audit(exact, only=["split_leakage"]), "SL004")
    assert finding["evidence"]["count"] == 1
    off = _manifest(root, manifest_writer, {"within_split": "off"}, train="train", val="val")
    assert _findings(run_audit(off, only=["split_leakage"])) == []


def test_corrupt_truncated_and_non_image_files_are_sl006_and_do_not_stop_the_audit(
    clean: Path, run_audit: Any
) -> None:
    root = clean.parent
    good = (root / "train/cat/cat_00.jpg").read_bytes()
    (root / "val/cat/truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "val/cat/notes.jpg").write_text("not an image at all")
    (root / "val/dog/empty.png").write_bytes(b"")
    shutil.copyfile(root / "train/dog/dog_00.jpg", root / "val/dog/leak.jpg")
    outcome = run_audit(clean, only=["split_leakage"])
    (broken,) = _findings(outcome, "SL006")
    assert broken["severity"] == "info" and broken["evidence"]["count"] == 3
    errors = {Path(f["path"]).name: f["error"] for f in broken["evidence"]["files"]}
    assert set(errors) == {"truncated.jpg", "notes.jpg", "empty.png"}
    assert errors["notes.jpg"] == "not an image PIL can identify" and errors["empty.png"] == "empty file"
    assert "truncated" in errors["truncated.jpg"]
    assert _findings(outcome, "SL001")[0]["evidence"]["count"] == 1  # the rest was still checked
    assert _audit(outcome)["evidence"]["per_split"]["val"]["unreadable"] == 3


def test_missing_file_in_a_listing_is_sl006(tmp_path: Path, manifest_writer: Any, run_audit: Any) -> None:
    paths = _folder(tmp_path / "images", {"a": 3}, seed=4)
    (tmp_path / "train.csv").write_text(
        "path,label\n" + "".join(f"images/a/{p.name},a\n" for p in paths) + "images/a/gone.jpg,a\n"
    )
    manifest = _manifest(tmp_path, manifest_writer, train={"format": "csv", "path": "train.csv"})
    (finding,) = _findings(run_audit(manifest, only=["split_leakage"]), "SL006")
    assert finding["evidence"]["files"] == [
        {"path": "images/a/gone.jpg", "index": 3, "error": "cannot read: no such file"}
    ]


def test_an_empty_split_is_compared_without_error(
    tmp_path: Path, manifest_writer: Any, run_audit: Any
) -> None:
    _folder(tmp_path / "train", {"cat": 3, "dog": 3}, seed=5)
    (tmp_path / "val" / "cat").mkdir(parents=True)
    manifest = _manifest(tmp_path, manifest_writer, train="train", val="val")
    outcome = run_audit(manifest, only=["split_leakage"])
    audit = _audit(outcome)
    assert audit["status"] == "passed" and _findings(outcome) == []
    assert audit["evidence"]["per_split"]["val"]["samples"] == 0


def test_no_samples_anywhere_skips_the_audit(tmp_path: Path, manifest_writer: Any, run_audit: Any) -> None:
    (tmp_path / "train" / "cat").mkdir(parents=True)
    manifest = _manifest(tmp_path, manifest_writer, train="train")
    audit = _audit(run_audit(manifest, only=["split_leakage"]))
    assert audit["status"] == "skipped" and "no samples" in audit["reason"]


def test_a_single_split_still_reports_duplicates_inside_it(
    tmp_path: Path, manifest_writer: Any, run_audit: Any
) -> None:
    _folder(tmp_path / "train", {"cat": 4}, seed=6)
    shutil.copyfile(tmp_path / "train/cat/cat_00.jpg", tmp_path / "train/cat/again.jpg")
    manifest = _manifest(tmp_path, manifest_writer, train="train")
    outcome = run_audit(manifest, only=["split_leakage"])
    assert [f["code"] for f in _findings(outcome)] == ["SL004"]


def test_cli_run_reports_leakage_and_no_cache_writes_nothing(
    tmp_path: Path, manifest_writer: Any, cli: Any
) -> None:
    _folder(tmp_path / "train", {"cat": 4, "dog": 4}, seed=7)
    _folder(tmp_path / "val", {"cat": 2, "dog": 2}, seed=8)
    shutil.copyfile(tmp_path / "train/cat/cat_01.jpg", tmp_path / "val/cat/leak.jpg")
    manifest = _manifest(tmp_path, manifest_writer, train="train", val="val")
    result = cli(
        "run",
        manifest,
        "--only",
        "split_leakage",
        "--format",
        "json",
        "--no-cache",
        "--output-dir",
        tmp_path / "out",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SL001" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (finding,) = [f for f in report["findings"] if f["code"] == "SL001"]
    assert finding["evidence"]["pairs"][0]["b"]["path"] == "val/cat/leak.jpg"
    assert not (tmp_path / ".auditor-cache").exists()
    audit = next(a for a in report["audits"] if a["name"] == "split_leakage")
    assert audit["evidence"]["cache"] == "disabled (--no-cache)"
    explained = cli("explain", "SL002")
    assert explained.returncode == 0 and "mirrored" in explained.stdout


def test_unknown_option_is_a_manifest_error(clean: Path, manifest_writer: Any, cli: Any) -> None:
    manifest = _manifest(clean.parent, manifest_writer, {"threshold": 3}, train="train", val="val")
    result = cli("run", manifest, "--only", "split_leakage", "--no-cache")
    assert result.returncode == 2
    assert "threshold" in result.stdout + result.stderr
