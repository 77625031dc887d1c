"""Group leakage (SL008, SL009): the same subject in train and an evaluation split, from real files and live data.

Image folders with ``patient_NN`` sub-folders and a CSV table with a patient column, run through
the real CLI (``auditor run``, ``auditor validate``) and ``auditor.check(groups=...)``; hostile ids
(HTML, escape codes), patterns that match nothing or capture nothing, a missing column, and more
shared groups than the evidence lists.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

import auditor
from auditor.testing import make_image

PATTERN = r"patient_(\d+)/"


def _patients(root: Path, patients: list[int], *, per_patient: int = 2, seed: int = 0) -> None:
    """``root/<class>/patient_NN/scan_i.png``: distinct tiny images, two classes."""
    for c, name in enumerate(("cat", "dog")):
        for p in patients:
            for i in range(per_patient):
                make_image(
                    root / name / f"patient_{p:02d}" / f"scan_{i}.png",
                    seed=seed + c * 10_000 + p * 10 + i,
                    size=16,
                )


def _manifest(tmp: Path, writer: Any, data: dict[str, Any], **options: Any) -> Path:
    return writer(tmp, {"version": 1, "data": data, "audits": {"split_leakage": options}})


def _folder(root: str, **keys: Any) -> dict[str, Any]:
    return {"format": "image_folder", "root": root, **keys}


def _findings(report: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["code"] == code]


def _audit(report: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in report["audits"] if a["name"] == "split_leakage")


@pytest.fixture
def leaky(tmp_path: Path, manifest_writer: Any) -> Path:
    """train: patients 1-4; val: patients 4-6 (patient 4 in both) and one file outside any patient folder."""
    _patients(tmp_path / "train", [1, 2, 3, 4])
    _patients(tmp_path / "val", [4, 5, 6], seed=500)
    make_image(tmp_path / "val" / "cat" / "loose.png", seed=999, size=16)
    return _manifest(
        tmp_path,
        manifest_writer,
        {"train": _folder("train", group_pattern=PATTERN), "val": _folder("val", group_pattern=PATTERN)},
        near_duplicates=False,
    )


def test_cli_run_reports_a_patient_in_train_and_val_under_static_and_without_near_duplicates(
    leaky: Path, cli: Any
) -> None:
    out = leaky.parent / "out"
    result = cli(
        "run", leaky, "--static", "--no-cache", "--format", "json,html,markdown", "--output-dir", out
    )
    assert result.returncode == 1, result.output
    assert "SL008" in result.stdout and "SL009" in result.stdout
    report = json.loads((out / "report.json").read_text())
    (leak,) = _findings(report, "SL008")
    assert leak["severity"] == "error" and leak["location"] == "data.val"
    assert "1 group of 'val' (4 samples of 13)" in leak["message"] and "'04'" in leak["message"]
    assert "GroupShuffleSplit" in leak["hint"]
    evidence = leak["evidence"]
    assert evidence["count"] == 1 and evidence["train_samples"] == 4 and evidence["eval_samples"] == 4
    (group,) = evidence["groups"]
    assert group["group"] == "04" and group["train_count"] == 4 and group["eval_count"] == 4
    assert {s["path"] for s in group["eval_samples"]} == {
        f"val/{c}/patient_04/scan_{i}.png" for c in ("cat", "dog") for i in (0, 1)
    }
    assert {s["label"] for s in group["train_samples"]} == {"cat", "dog"}
    pair = evidence["pairs"][0]
    assert pair["a"]["split"] == "train" and pair["b"]["path"].startswith("val/cat/patient_04/")
    (missing,) = _findings(report, "SL009")
    assert missing["severity"] == "warning" and missing["evidence"]["count"] == 1
    assert missing["evidence"]["files"][0]["path"] == "val/cat/loose.png"
    assert "val/cat/loose.png" in missing["message"]
    summary = _audit(report)["evidence"]["groups"]
    assert summary["per_split"]["train"] == {
        "source": f"group_pattern '{PATTERN}'",
        "samples": 16,
        "groups": 4,
        "missing": 0,
    }
    assert summary["per_split"]["val"]["groups"] == 3 and summary["per_split"]["val"]["missing"] == 1
    assert summary["shared"] == {"train/val": {"groups": 1, "samples": 4}}
    html = (out / "report.html").read_text()
    assert "SL008" in html and "same group" in html
    assert "SL008" in (out / "report.md").read_text()


def test_disjoint_patients_pass_and_the_summary_counts_groups(
    tmp_path: Path, manifest_writer: Any, run_audit: Any
) -> None:
    _patients(tmp_path / "train", [1, 2, 3])
    _patients(tmp_path / "val", [4, 5], seed=500)
    anchored = r"^(?:cat|dog)/patient_(\d+)/"  # matches only paths relative to the split's root
    manifest = _manifest(
        tmp_path,
        manifest_writer,
        {"train": _folder("train", group_pattern=anchored), "val": _folder("val", group_pattern=anchored)},
    )
    report = run_audit(manifest, only=["split_leakage"], use_cache=False).report
    assert [f["code"] for f in report["findings"] if f["audit"] == "split_leakage"] == []
    audit = _audit(report)
    assert audit["status"] == "passed"
    assert audit["evidence"]["groups"]["shared"] == {}
    assert audit["evidence"]["groups"]["per_split"]["val"] == {
        "source": f"group_pattern '{anchored}'",
        "samples": 8,
        "groups": 2,
        "missing": 0,
    }


def test_a_pattern_matching_nothing_is_sl009_for_every_sample_and_no_false_pass(
    tmp_path: Path, manifest_writer: Any, run_audit: Any
) -> None:
    _patients(tmp_path / "train", [1, 2])
    _patients(tmp_path / "val", [1], seed=500)  # patient 1 in both, but the pattern never matches
    wrong = r"subject-(\d+)/"
    manifest = _manifest(
        tmp_path,
        manifest_writer,
        {"train": _folder("train", group_pattern=wrong), "val": _folder("val", group_pattern=wrong)},
        max_pairs=3,
    )
    report = run_audit(manifest, only=["split_leakage"], use_cache=False).report
    assert _findings(report, "SL008") == []
    missing = {f["evidence"]["split"]: f for f in _findings(report, "SL009")}
    assert set(missing) == {"train", "val"}
    assert missing["train"]["evidence"]["count"] == 8 and missing["train"]["evidence"]["files_shown"] == 3
    assert missing["train"]["message"].startswith("all 8 samples of 'train' have no group id")


def test_csv_group_column_reads_ids_as_written_and_keeps_rows_aligned(
    tmp_path: Path, manifest_writer: Any, run_audit: Any
) -> None:
    for i in range(6):
        make_image(tmp_path / "img" / f"{i}.png", seed=i, size=16)
    # '007' and '7' are different patients (read as text, not numbers); row 2 of val has no label
    # and is left out of the split, so the ids after it must move up with their rows.
    (tmp_path / "train.csv").write_text("path,label,patient\nimg/0.png,cat,007\nimg/1.png,dog,12\n")
    (tmp_path / "val.csv").write_text(
        "path,label,patient\nimg/2.png,cat,7\nimg/3.png,,12\nimg/4.png,dog,12\nimg/5.png,cat,\n"
    )
    manifest = _manifest(
        tmp_path,
        manifest_writer,
        {
            "train": {"format": "csv", "path": "train.csv", "group_column": "patient"},
            "val": {"format": "csv", "path": "val.csv", "group_column": "patient"},
        },
    )
    report = run_audit(manifest, only=["split_leakage"], use_cache=False).report
    (leak,) = _findings(report, "SL008")
    (group,) = leak["evidence"]["groups"]
    assert group["group"] == "12" and group["eval_count"] == 1
    assert [s["path"] for s in group["eval_samples"]] == ["img/4.png"]
    assert [s["path"] for s in group["train_samples"]] == ["img/1.png"]
    (missing,) = _findings(report, "SL009")
    assert missing["evidence"]["files"][0]["path"] == "img/5.png"
    assert "blank" in missing["message"]


def test_validate_names_each_wrong_group_key(tmp_path: Path, manifest_writer: Any, cli: Any) -> None:
    _patients(tmp_path / "train", [1])
    (tmp_path / "t.csv").write_text("path,label,patient\ntrain/cat/patient_01/scan_0.png,cat,1\n")
    manifest = _manifest(
        tmp_path,
        manifest_writer,
        {
            "train": _folder("train", group_pattern=r"patient_\d+/"),
            "val": _folder("train", group_pattern=r"patient_(\d+/"),
            "test": _folder("train", group_column="patient"),
            "extra": {"format": "csv", "path": "t.csv", "group_column": "patiant"},
        },
    )
    result = cli("validate", manifest)
    assert result.returncode == 2, result.output
    lines = result.output
    assert (
        "data.train.group_pattern: expected a regular expression with at least one capturing group" in lines
    )
    assert "which has no capturing group" in lines and "audit.yaml" in lines
    assert "data.val.group_pattern" in lines and "does not compile" in lines
    assert "data.test.group_column" in lines and "use group_pattern" in lines
    assert "data.extra.group_column" in lines and "did you mean 'patient'?" in lines
    assert "hint:" in lines


def test_valid_group_keys_validate_without_importing_torch(leaky: Path) -> None:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['auditor', 'validate', {str(leaky)!r}]\n"
        "try:\n    runpy.run_module('auditor', run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "print('HEAVY=' + ','.join(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def _tensors(count: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, 8, 8, generator=generator)
    return TensorDataset(images, torch.arange(count) % 2)


def test_check_groups_keyword_reports_hostile_ids_printably(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    escape = "\x1b[31mred\x1b[0m"
    train_ids = [hostile, escape, "p1", "p2", "p3", None]
    val_ids = [hostile, escape, "p9", "p9"]
    result = auditor.check(
        train=_tensors(6, 1),
        val=_tensors(4, 2),
        groups={"train": train_ids, "val": val_ids},
        audits=["split_leakage"],
        report_dir=tmp_path / "out",
        formats=["json", "html"],
    )
    (leak,) = [f for f in result.findings if f.code == "SL008"]
    assert leak.evidence["count"] == 2 and leak.evidence["eval_samples"] == 2
    assert {g["group"] for g in leak.evidence["groups"]} == {hostile, escape}
    assert "\x1b" not in leak.message and "\\x1b[31mred" in leak.message
    (missing,) = [f for f in result.findings if f.code == "SL009"]
    assert missing.evidence["split"] == "train" and missing.evidence["files"][0]["index"] == 5
    assert "train[5]" in missing.message
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_check_reads_a_datasets_auditor_groups_and_ignores_an_unrelated_groups(tmp_path: Path) -> None:
    train, val = _tensors(4, 1), _tensors(3, 2)
    train.auditor_groups = ["a", "b", "c", "d"]  # type: ignore[attr-defined]
    val.auditor_groups = ["d", "e", "f"]  # type: ignore[attr-defined]
    result = auditor.check(train=train, val=val, audits=["split_leakage"])
    (leak,) = [f for f in result.findings if f.code == "SL008"]
    assert leak.evidence["groups"][0]["group"] == "d"
    assert leak.evidence["source"] == {"train": "dataset.auditor_groups", "val": "dataset.auditor_groups"}

    other_train, other_val = _tensors(4, 1), _tensors(3, 2)
    other_train.groups = {"mammals": [0, 1]}  # type: ignore[attr-defined]  # another meaning: left alone
    result = auditor.check(train=other_train, val=other_val, audits=["split_leakage"])
    assert not [f for f in result.findings if f.code in ("SL008", "SL009")]
    audit = next(a for a in result.report["audits"] if a["name"] == "split_leakage")
    assert "groups" not in audit["evidence"]


def test_check_groups_wrong_types_raise_type_error_up_front() -> None:
    train, val = _tensors(2, 1), _tensors(2, 2)
    cases: list[tuple[Any, str]] = [
        (["a", "b"], "groups: expected a mapping"),
        ({"test": ["a", "b"]}, "expected keys naming the splits given ['train', 'val'], found 'test'"),
        ({"train": "ab"}, "groups['train']: expected a sequence of group ids"),
        ({"train": ["a", object()]}, "groups['train'][1]: expected a group id"),
    ]
    for groups, words in cases:
        with pytest.raises(TypeError, match=r"auditor\.check: ") as raised:
            auditor.check(train=train, val=val, groups=groups, audits=["split_leakage"])
        assert words in str(raised.value), str(raised.value)


def test_check_groups_of_the_wrong_length_errors_the_audit_naming_the_entry() -> None:
    result = auditor.check(
        train=_tensors(3, 1), val=_tensors(2, 2), groups={"train": ["a", "b"]}, audits=["split_leakage"]
    )
    audit = next(a for a in result.report["audits"] if a["name"] == "split_leakage")
    assert audit["status"] == "errored"
    assert "groups['train']" in audit["error"]["message"] and "2 ids" in audit["error"]["message"]


def test_many_shared_groups_are_capped_in_the_evidence_but_counted() -> None:
    count = 300
    ids = [f"p{i}" for i in range(count)]
    result = auditor.check(
        train=_tensors(count, 1),
        val=_tensors(count, 2),
        groups={"train": ids, "val": ids},
        audits={"split_leakage": {"max_pairs": 7, "near_duplicates": False}},
    )
    (leak,) = [f for f in result.findings if f.code == "SL008"]
    assert leak.evidence["count"] == count and leak.evidence["eval_samples"] == count
    assert leak.evidence["groups_shown"] == len(leak.evidence["groups"]) == 7
    assert len(leak.evidence["pairs"]) == 7
    assert f"{count} groups of 'val'" in leak.message and ", ..." in leak.message


def test_analysis_of_a_huge_number_of_groups_stays_pure_and_capped() -> None:
    from auditor_plugins.split_leakage.groups import analyse, finding_data

    size = 200_000
    train = [f"s{i}" for i in range(size)]
    val = [f"s{i}" for i in range(0, size, 2)] + [None]
    analysis = analyse(["train", "val", "test"], {"train": ("x", train), "val": ("x", val)})
    assert analysis.notes and "'test'" in analysis.notes[0]
    (leak,) = analysis.leaks
    assert len(leak.groups) == size // 2
    data = finding_data(analysis, lambda name: (None, None), max_pairs=5)
    codes = [d.code for d in data]
    assert codes == ["SL008", "SL009"]
    assert len(data[0].evidence["groups"]) == 5 and data[0].evidence["count"] == size // 2
    assert data[1].evidence["count"] == 1 and "val[100000]" in data[1].message


def test_groups_without_a_train_split_are_a_note_not_a_pass_of_sl008() -> None:
    from auditor_plugins.split_leakage.groups import analyse

    analysis = analyse(["a", "b"], {"a": ("x", ["1"]), "b": ("x", ["1"])})
    assert analysis.leaks == [] and "no split named 'train'" in analysis.notes[0]
    analysis = analyse(["train", "val"], {"val": ("x", ["1"])})
    assert analysis.leaks == [] and "'train' declares no group ids" in analysis.notes[0]


def test_group_pattern_is_searched_relative_to_a_url_root(
    tmp_path: Path, manifest_writer: Any, run_audit: Any
) -> None:
    """fsspec lists 'memory:///bucket/...' under the root 'memory://bucket': still relative to the root."""
    import io

    import fsspec
    from PIL import Image

    memory = fsspec.filesystem("memory")
    bucket = f"groups-{tmp_path.name}"
    for split, patients in (("train", [1, 2]), ("val", [2, 3])):
        for p in patients:
            buffer = io.BytesIO()
            Image.new("RGB", (8, 8), (p * 40, 10 if split == "train" else 200, 3)).save(buffer, "PNG")
            memory.pipe(f"/{bucket}/{split}/cat/patient_{p}/x.png", buffer.getvalue())
    anchored = r"^cat/patient_(\d+)/"  # matches only when the path is relative to the split's root
    manifest = _manifest(
        tmp_path,
        manifest_writer,
        {s: _folder(f"memory://{bucket}/{s}", group_pattern=anchored) for s in ("train", "val")},
    )
    try:
        report = run_audit(manifest, only=["split_leakage"], use_cache=False).report
    finally:
        memory.rm(f"/{bucket}", recursive=True)
    assert _findings(report, "SL009") == []
    (leak,) = _findings(report, "SL008")
    assert leak["evidence"]["groups"][0]["group"] == "2"
