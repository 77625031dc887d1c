"""A report.json is data: a crafted one must not read files or render silently wrong."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.testing import make_image
from hostile._corpus import manifest, project, run, snapshot


def _report(tmp_path: Path) -> tuple[Path, dict]:
    root = project(tmp_path / "p")
    out = root / "reports"
    path = manifest(root, audits={"label_distribution": None})
    assert run("run", path, "--no-cache").returncode == 0
    return out / "report.json", json.loads((out / "report.json").read_text(encoding="utf-8"))


def _with_pair(report: dict, a: str, b: str) -> dict:
    report["findings"].append(
        {
            "code": "SL001",
            "audit": "split_leakage",
            "severity": "error",
            "title": "identical samples",
            "message": "crafted",
            "hint": "",
            "location": "data",
            "evidence": {"pairs": [{"a": {"split": "train", "path": a}, "b": {"split": "val", "path": b}}]},
        }
    )
    report["summary"]["error"] += 1
    report["summary"]["total"] += 1
    return report


def test_html_embeds_no_image_from_outside_the_manifest_folder(tmp_path: Path) -> None:
    _, report = _report(tmp_path)
    secret = make_image(tmp_path / "private" / "secret.png", seed=3)
    inside = next((tmp_path / "p" / "data" / "train" / "cat").iterdir())
    crafted = tmp_path / "crafted" / "report.json"
    crafted.parent.mkdir()
    crafted.write_text(json.dumps(_with_pair(report, str(secret), str(inside))), encoding="utf-8")
    before = snapshot(tmp_path, outside=crafted.parent)
    done = run("report", crafted, "--format", "html")
    assert done.returncode == 0, done.stdout + done.stderr
    html = (crafted.parent / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/jpeg;base64,") == 1  # the file inside the project only
    assert "outside the manifest&#39;s folder" in html or "outside the manifest's folder" in html
    assert snapshot(tmp_path, outside=crafted.parent) == before


def test_a_report_claiming_the_root_folder_as_its_manifest_folder_embeds_nothing(tmp_path: Path) -> None:
    _, report = _report(tmp_path)
    secret = make_image(tmp_path / "private" / "secret.png", seed=3)
    report["manifest"]["path"] = "/audit.yaml"
    crafted = tmp_path / "crafted" / "report.json"
    crafted.parent.mkdir()
    crafted.write_text(json.dumps(_with_pair(report, str(secret), str(secret))), encoding="utf-8")
    done = run("report", crafted, "--format", "html")
    assert done.returncode == 0, done.stderr
    assert "data:image/jpeg;base64," not in (crafted.parent / "report.html").read_text(encoding="utf-8")


def test_unknown_schema_versions_are_refused_or_warned_about(tmp_path: Path) -> None:
    _, report = _report(tmp_path)
    crafted = tmp_path / "crafted" / "report.json"
    crafted.parent.mkdir()
    crafted.write_text(json.dumps({**report, "schema_version": "7.0"}), encoding="utf-8")
    done = run("report", crafted, "--format", "markdown")
    assert done.returncode == 2
    assert "expected schema_version 1.x" in done.stderr and "found '7.0'" in done.stderr
    assert not (crafted.parent / "report.md").exists()
    crafted.write_text(json.dumps({**report, "schema_version": "1.9"}), encoding="utf-8")
    done = run("report", crafted, "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and "schema_version 1.9" in done.stderr
