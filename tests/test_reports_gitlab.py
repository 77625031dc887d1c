"""``--format gitlab``: GitLab Code Quality JSON, the fields GitLab documents, stable fingerprints."""

from __future__ import annotations

import json
import re
from pathlib import Path

from _many_findings import many_findings_project

from auditor.testing import run_cli

GITLAB_SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


def _issues(folder: Path) -> list[dict]:
    return json.loads((folder / "gl-code-quality-report.json").read_text(encoding="utf-8"))


def test_every_issue_has_the_fields_gitlab_requires(tmp_path):
    manifest = many_findings_project(tmp_path / "proj")
    done = run_cli("run", manifest, "--format", "gitlab", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    issues = _issues(tmp_path / "proj" / "reports")
    report = json.loads((tmp_path / "proj" / "reports" / "report.json").read_text(encoding="utf-8"))
    assert isinstance(issues, list) and len(issues) == report["summary"]["total"]
    for issue in issues:
        assert isinstance(issue["description"], str) and issue["description"]
        assert re.fullmatch(r"[A-Z]{2,4}[0-9]{3}", issue["check_name"])
        assert issue["severity"] in GITLAB_SEVERITIES
        assert issue["location"]["path"] == "proj/audit.yaml"  # relative to where CI runs
        assert (
            isinstance(issue["location"]["lines"]["begin"], int) and issue["location"]["lines"]["begin"] >= 1
        )
        assert re.fullmatch(r"[0-9a-f]{32}(:[0-9]+)?", issue["fingerprint"])
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    by_code = {i["check_name"]: i["severity"] for i in issues}
    assert by_code["LD002"] == "critical" and by_code["LD005"] == "major"
    # The same fingerprints as report.json (and so as SARIF and a baseline).
    assert sorted(i["fingerprint"] for i in issues) == sorted(f["fingerprint"] for f in report["findings"])
    # Each split's LD002 sits on its own manifest line.
    lines = {i["location"]["lines"]["begin"] for i in issues if i["check_name"] == "LD002"}
    assert len(lines) == 12


def test_fingerprints_are_the_same_on_a_second_run(tmp_path):
    manifest = many_findings_project(tmp_path / "proj")
    first = run_cli("run", manifest, "--format", "gitlab", "--output-dir", tmp_path / "one", cwd=tmp_path)
    second = run_cli("run", manifest, "--format", "gitlab", "--output-dir", tmp_path / "two", cwd=tmp_path)
    assert first.returncode == second.returncode == 1
    one, two = _issues(tmp_path / "one"), _issues(tmp_path / "two")
    assert [i["fingerprint"] for i in one] == [i["fingerprint"] for i in two]
    assert one == two


def test_a_crashed_audit_and_a_broken_split_are_blocker_issues(tmp_path):
    from auditor.run.registry import load_registry
    from auditor_plugins.reports.gitlab import code_quality

    manifest = many_findings_project(tmp_path / "proj")
    run_cli("run", manifest, cwd=tmp_path)
    report = json.loads((tmp_path / "proj" / "reports" / "report.json").read_text(encoding="utf-8"))
    report["audits"][0].update(
        status="errored", error={"type": "RuntimeError", "message": "boom", "traceback": ""}
    )
    report["problems"] = [
        {"key": "data.e00", "message": "data.e00: expected a folder, found none", "line": 7}
    ]
    issues = code_quality(report)
    blockers = [i for i in issues if i["severity"] == "blocker"]
    assert {i["check_name"] for i in blockers} == {"auditor/audit-crashed", "auditor/manifest-problem"}
    assert (
        next(i for i in blockers if i["check_name"] == "auditor/manifest-problem")["location"]["lines"][
            "begin"
        ]
        == 7
    )
    assert "gitlab" in load_registry().report_formats
