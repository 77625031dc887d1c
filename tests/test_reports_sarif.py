"""sarif report format on a real quickstart run: schema-valid, one rule per code, lines, fingerprints."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from _reports_quickstart import quickstart_run, run_cli
from conftest import REPO

SCHEMA = REPO.parent / "shared" / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def qs(tmp_path_factory):
    return quickstart_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def log(qs):
    return json.loads(qs.text("sarif"))


def _render(report):
    from auditor.run.registry import load_registry
    from auditor_plugins.reports import sarif

    return sarif.sarif_log(copy.deepcopy(report), load_registry().catalog)


def test_valid_against_the_sarif_2_1_0_schema(log):
    if not SCHEMA.is_file():
        pytest.skip(f"the SARIF 2.1.0 schema is not at {SCHEMA} (../shared/data is absent in this checkout)")
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    broken = copy.deepcopy(log)
    broken["runs"][0]["results"][0]["level"] = "fatal"  # the validator does reject a bad log
    assert list(validator.iter_errors(broken))


def test_one_rule_per_code_with_descriptions_from_the_explanations(qs, log):
    from auditor.run.registry import load_registry

    catalog = load_registry().catalog
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    checked = sorted({c for a in qs.report["audits"] for c in a["codes"]})
    assert [r["id"] for r in rules] == checked
    levels = {"error": "error", "warning": "warning", "info": "note"}
    for rule in rules:
        info = catalog[rule["id"]]
        assert rule["shortDescription"]["text"] == info.title
        assert rule["fullDescription"]["text"] and rule["fullDescription"]["text"] in " ".join(
            info.explanation.replace("**", "").replace("`", "").split()
        )
        assert not rule["fullDescription"]["text"].startswith("What it means")
        assert rule["help"]["markdown"] == info.explanation.strip()
        assert rule["defaultConfiguration"]["level"] == levels[info.severity.value]
    assert run["tool"]["driver"]["version"] == qs.report["tool"]["version"]
    assert run["invocations"][0]["exitCode"] == qs.report["exit_code"]


def test_results_point_at_the_manifest_line_of_their_key(qs, log):
    results = log["runs"][0]["results"]
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert len(results) == len(qs.report["findings"]) >= 1
    manifest_lines = (qs.project / "audit.yaml").read_text(encoding="utf-8").splitlines()
    levels = {"error": "error", "warning": "warning", "info": "note"}
    by_code = {}
    for finding in qs.report["findings"]:
        by_code.setdefault(finding["code"], []).append(finding)
    located = 0
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        finding = by_code[result["ruleId"]][0]
        assert result["level"] == levels[finding["severity"]]
        physical = result["locations"][0]["physicalLocation"]
        assert (
            physical["artifactLocation"]["uri"] == "audit.yaml"
        )  # relative to the folder the run started in
        location = result["locations"][0].get("logicalLocations", [{}])[0].get("fullyQualifiedName", "")
        if "region" in physical:
            line = physical["region"]["startLine"]
            assert line == qs.report["lines"][location]
            key = location.split(".")[-1]
            assert manifest_lines[line - 1].strip().startswith(f"{key}:"), (
                location,
                manifest_lines[line - 1],
            )
            located += 1
    assert located >= 1


def test_fingerprints_are_unique_and_survive_changing_numbers(qs, log):
    prints = [r["partialFingerprints"]["auditorFinding/v2"] for r in log["runs"][0]["results"]]
    assert len(set(prints)) == len(prints)
    # The run wrote each finding's fingerprint; SARIF uses exactly those (the baseline matches them).
    assert prints == [f["fingerprint"] for f in _sorted_findings(qs.report)]
    later = copy.deepcopy(qs.report)
    for finding in later["findings"]:
        finding.pop("fingerprint")  # a report saved before 1.2: derived the same way when rendered
        finding["message"] = finding["message"].replace("1", "7") + " (changed)"
        finding["evidence"]["count"] = 12345
    later["started_at"] = "2031-01-01T00:00:00+00:00"
    again = _render(later)["runs"][0]["results"]
    assert sorted(r["partialFingerprints"]["auditorFinding/v2"] for r in again) == sorted(prints)
    moved = copy.deepcopy(qs.report)
    for finding in moved["findings"]:
        finding.pop("fingerprint")
    moved["findings"][0]["location"] = "somewhere.else"
    assert sorted(
        r["partialFingerprints"]["auditorFinding/v2"] for r in _render(moved)["runs"][0]["results"]
    ) != sorted(prints)


def _sorted_findings(report):
    from auditor.findings import severity_rank

    return sorted(
        report["findings"],
        key=lambda f: (-severity_rank(f["severity"]), f["code"], f["location"], f["message"], f["hint"]),
    )


def test_crashed_audit_is_a_tool_notification(qs):
    report = copy.deepcopy(qs.report)
    report["audits"][0].update(
        status="errored", error={"type": "RuntimeError", "message": "boom", "traceback": ""}
    )
    report["exit_code"] = 2
    invocation = _render(report)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert "boom" in invocation["toolExecutionNotifications"][0]["message"]["text"]


def test_rerendered_from_the_json_report_with_format_flags(qs, tmp_path: Path):
    done = run_cli(
        "report",
        qs.reports / "report.json",
        "--format",
        "sarif",
        "--format",
        "junit",
        "--output-dir",
        tmp_path,
        cwd=qs.project,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "report.sarif").read_text()) == json.loads(qs.text("sarif"))
    assert (tmp_path / "report.junit.xml").read_text() == qs.text("junit")
