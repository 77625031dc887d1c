"""Accepting findings as linters do: ``ignore:`` entries with a reason, and ``auditor baseline``.

Real CLI runs on a small project with many findings (tests/_many_findings.py); an accepted finding
is still reported, apart and with its reason, and never decides the exit code.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from _many_findings import EVAL_SPLITS, many_findings_project

from auditor.testing import make_image_folder, run_cli


def _report(project: Path) -> dict:
    from auditor.report.document import validate_report

    report = json.loads((project / "reports" / "report.json").read_text(encoding="utf-8"))
    validate_report(report)
    return report


def _edit(manifest: Path, **keys: object) -> None:
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    data.update(keys)
    manifest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_an_ignore_entry_accepts_findings_with_its_reason_shown(tmp_path):
    manifest = many_findings_project(
        tmp_path,
        extra={
            "ignore": [
                {"code": "LD005", "reason": "few samples per class on purpose: a smoke-test set"},
                {"code": "LD002", "location": "data.e00", "reason": "e00 holds an out-of-distribution class"},
            ]
        },
    )
    done = run_cli("run", manifest, "--format", "markdown,sarif,html", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr  # 11 LD002 nobody accepted
    report = _report(tmp_path)
    accepted = report["accepted"]
    assert {f["code"] for f in accepted} == {"LD005", "LD002"}
    assert sum(f["code"] == "LD005" for f in accepted) == 14
    assert [f["location"] for f in accepted if f["code"] == "LD002"] == ["data.e00"]
    assert all(f["accepted"]["by"] == "ignore" for f in accepted)
    assert {f["accepted"]["source"] for f in accepted} == {"ignore[0]", "ignore[1]"}
    assert not any(f["code"] == "LD005" for f in report["findings"])
    assert report["summary"]["total"] == len(report["findings"])  # accepted ones are not counted
    # Shown apart, with the reason, in the console and the Markdown summary.
    assert "accepted (15; they do not fail the run)" in done.stdout
    assert "accepted by ignore: few samples per class on purpose: a smoke-test set" in done.stdout
    markdown = (tmp_path / "reports" / "report.md").read_text(encoding="utf-8")
    assert "15 accepted findings" in markdown and "e00 holds an out-of-distribution class" in markdown
    html = (tmp_path / "reports" / "report.html").read_text(encoding="utf-8")
    assert "Accepted findings (15; they do not fail the run)" in html
    assert "few samples per class on purpose: a smoke-test set" in html
    sarif = json.loads((tmp_path / "reports" / "report.sarif").read_text(encoding="utf-8"))
    suppressed = [r for r in sarif["runs"][0]["results"] if r.get("suppressions")]
    assert len(suppressed) == 15
    assert suppressed[0]["suppressions"][0]["kind"] == "inSource"
    assert suppressed[0]["suppressions"][0]["justification"]


def test_accepting_every_failing_finding_passes_the_run(tmp_path):
    manifest = many_findings_project(
        tmp_path,
        extra={"ignore": [{"code": "LD", "reason": "label checks are reviewed by hand for this set"}]},
    )
    done = run_cli("run", manifest, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = _report(tmp_path)
    assert report["findings"] == [] and len(report["accepted"]) == 38
    assert next(a for a in report["audits"] if a["name"] == "label_distribution")["status"] == "passed"


def test_a_bare_code_in_ignore_is_refused_with_the_form_that_works(tmp_path):
    manifest = many_findings_project(tmp_path, extra={"ignore": ["LD005"]})
    done = run_cli("validate", manifest, cwd=tmp_path)
    assert done.returncode == 2
    assert "ignore.0" in done.stderr
    assert "write '- {code: LD005, reason: why it is accepted}'" in done.stderr.replace("\n", " ")


def test_an_ignore_entry_without_a_reason_is_refused(tmp_path):
    manifest = many_findings_project(tmp_path, extra={"ignore": [{"code": "LD005"}]})
    done = run_cli("run", manifest, cwd=tmp_path)
    assert done.returncode == 2
    assert "ignore.0.reason" in done.stderr
    blank = many_findings_project(tmp_path / "blank", extra={"ignore": [{"code": "LD005", "reason": "  "}]})
    done = run_cli("run", blank, cwd=tmp_path)
    assert done.returncode == 2 and "ignore.0.reason" in done.stderr


def test_a_baseline_accepts_todays_findings_and_runs_fail_only_on_new_ones(tmp_path):
    manifest = many_findings_project(tmp_path)
    recorded = run_cli(
        "baseline", manifest, "--reason", "known before the label cleanup (JIRA-12)", cwd=tmp_path
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    baseline = json.loads((tmp_path / "auditor-baseline.json").read_text(encoding="utf-8"))
    assert len(baseline["findings"]) == 38
    assert {e["reason"] for e in baseline["findings"]} == {"known before the label cleanup (JIRA-12)"}
    assert "recorded 38 findings" in recorded.stdout

    again = run_cli("run", manifest, "--format", "sarif", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    report = _report(tmp_path)
    assert report["findings"] == [] and len(report["accepted"]) == 38
    assert {f["accepted"]["by"] for f in report["accepted"]} == {"baseline"}
    assert {f["accepted"]["source"] for f in report["accepted"]} == {"auditor-baseline.json"}

    # A new evaluation split with a class train lacks: only its findings fail the run.
    make_image_folder(tmp_path / "data" / "late", {"c00": 1, "only_late": 1}, size=8, seed=99)
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))["data"]
    _edit(manifest, data={**data, "late": {"format": "image_folder", "root": "data/late"}})
    new = run_cli("run", manifest, "--format", "sarif", cwd=tmp_path)
    assert new.returncode == 1
    report = _report(tmp_path)
    assert {f["location"] for f in report["findings"]} == {"data.late"}
    assert len(report["accepted"]) == 38
    sarif = json.loads((tmp_path / "reports" / "report.sarif").read_text(encoding="utf-8"))
    states = {r["baselineState"] for r in sarif["runs"][0]["results"]}
    assert states == {"new", "unchanged"}

    # --no-baseline: everything fails again.
    full = run_cli("run", manifest, "--no-baseline", cwd=tmp_path)
    assert full.returncode == 1 and len(_report(tmp_path)["findings"]) > 38

    # Recording again keeps the old reasons and adds the new findings with the new one.
    run_cli("baseline", manifest, "--reason", "late split accepted", cwd=tmp_path)
    baseline = json.loads((tmp_path / "auditor-baseline.json").read_text(encoding="utf-8"))
    reasons = {e["location"]: e["reason"] for e in baseline["findings"]}
    assert reasons["data.late"] == "late split accepted"
    assert reasons[f"data.{EVAL_SPLITS[0]}"] == "known before the label cleanup (JIRA-12)"


def test_a_broken_or_missing_baseline_is_a_usage_error(tmp_path):
    manifest = many_findings_project(tmp_path)
    (tmp_path / "auditor-baseline.json").write_text("{not json", encoding="utf-8")
    done = run_cli("run", manifest, cwd=tmp_path)
    assert done.returncode == 2
    assert "auditor-baseline.json" in done.stderr and "--no-baseline" in done.stderr
    missing = run_cli("run", manifest, "--baseline", tmp_path / "nope.json", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.json" in missing.stderr
    empty_reason = run_cli("baseline", manifest, "--reason", " ", cwd=tmp_path)
    assert empty_reason.returncode == 2
