"""The GitHub Action (action.yml + action/auditor_action.py), run locally as the runner runs it.

The script runs in a subprocess with the variables a runner sets (``INPUT_*``, ``GITHUB_WORKSPACE``,
``GITHUB_STEP_SUMMARY``, ``GITHUB_OUTPUT``); the tests read what it printed (the annotations), the
summary file, the outputs file and the SARIF, and hold them to GitHub's documented limits: at most
10 error, 10 warning and 10 notice annotations per step, ranked, one notice counting the rest;
code scanning's repository-relative ``artifactLocation.uri``, ``region.startLine`` and stable
``partialFingerprints``, at most 5,000 results.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from _many_findings import many_findings_project
from conftest import REPO

from auditor.report.view import ReportView
from auditor.run.registry import load_registry

SCRIPT = REPO / "action" / "auditor_action.py"
ANNOTATION = re.compile(r"^::(error|warning|notice)( [^:]*)?::(.*)$")


def run_action(workspace: Path, **inputs: str) -> dict[str, Any]:
    """Run the action's audit step in ``workspace``; return what a runner would keep of it."""
    summary = workspace / "step-summary.md"
    outputs = workspace / "github-output.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    env.update(
        GITHUB_WORKSPACE=str(workspace),
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_OUTPUT=str(outputs),
        COLUMNS="200",
        NO_COLOR="1",
        **{f"INPUT_{key.upper()}": value for key, value in inputs.items()},
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=workspace, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr  # the verdict is the last step's, not this one's
    values = dict(
        line.split("=", 1) for line in outputs.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    return {
        "stdout": done.stdout,
        "annotations": [m.groups() for m in map(ANNOTATION.match, done.stdout.splitlines()) if m],
        "summary": summary.read_text(encoding="utf-8") if summary.exists() else "",
        "outputs": values,
    }


def _kinds(annotations: list[tuple[str, str, str]]) -> dict[str, int]:
    return {kind: sum(1 for k, _, _ in annotations if k == kind) for kind in ("error", "warning", "notice")}


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workspace = tmp_path_factory.mktemp("workspace")
    many_findings_project(workspace / "proj")
    first = run_action(workspace, manifest="proj/audit.yaml", output_dir="out")
    first_sarif = json.loads((workspace / first["outputs"]["sarif"]).read_text(encoding="utf-8"))
    second = run_action(workspace, manifest="proj/audit.yaml", output_dir="out-again")
    report = json.loads((workspace / "out" / "report.json").read_text(encoding="utf-8"))
    return {"workspace": workspace, "first": first, "sarif": first_sarif, "second": second, "report": report}


def test_annotations_stay_within_what_github_shows_and_one_notice_counts_the_rest(many):
    annotations = many["first"]["annotations"]
    kinds = _kinds(annotations)
    assert kinds["error"] == 10 and kinds["warning"] == 10, kinds
    assert kinds["notice"] <= 10
    summary = many["report"]["summary"]
    assert summary["error"] > 10 and summary["warning"] > 10  # the project has more than GitHub shows
    last_kind, _, last_text = annotations[-1]
    assert last_kind == "notice"
    left = summary["total"] - (kinds["error"] + kinds["warning"] + kinds["notice"] - 1)
    assert last_text.startswith(f"{left} more annotations not shown")
    assert (
        f"{summary['error'] - 10} errors" in last_text and f"{summary['warning'] - 10} warnings" in last_text
    )
    # Highest severity first: every error is printed before any warning.
    order = [kind for kind, _, _ in annotations[:-1]]
    assert order == sorted(order, key=["error", "warning", "notice"].index)


def test_annotations_point_at_the_manifest_relative_to_the_workspace(many):
    for _, properties, _ in many["first"]["annotations"]:
        assert "file=proj/audit.yaml" in properties


def test_step_summary_is_the_ranked_markdown_report(many):
    text = many["first"]["summary"]
    assert text.startswith("### auditor: ")
    rows = [line for line in text.splitlines() if line.startswith("| \u274c") or line.startswith("| \u26a0")]
    assert rows and rows[0].startswith("| \u274c error")
    first_warning = next(i for i, row in enumerate(rows) if "warning" in row)
    assert all("error" in row.split("|")[1] for row in rows[:first_warning])
    assert "LD002" in text and "LD005" in text


def test_outputs_name_the_exit_code_and_the_sarif(many):
    outputs = many["first"]["outputs"]
    assert outputs["exit-code"] == "1"
    assert outputs["sarif"] == "out/report.sarif"
    assert outputs["report-dir"] == "out"


def test_sarif_has_relative_uris_start_lines_and_stable_fingerprints(many):
    run = many["sarif"]["runs"][0]
    results = run["results"]
    assert 0 < len(results) <= 5000
    assert len(results) == many["report"]["summary"]["total"]
    for result in results:
        location = result["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert uri == "proj/audit.yaml" and location["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert isinstance(location["region"]["startLine"], int) and location["region"]["startLine"] >= 1
        assert re.fullmatch(r"[0-9a-f]{32}(:[0-9]+)?", result["partialFingerprints"]["auditorFinding/v2"])
    prints = [r["partialFingerprints"]["auditorFinding/v2"] for r in results]
    assert len(set(prints)) == len(prints)
    # The same findings on a second run (another output folder, other timestamps): the same fingerprints.
    again = json.loads((many["workspace"] / "out-again" / "report.sarif").read_text(encoding="utf-8"))
    assert sorted(
        r["partialFingerprints"]["auditorFinding/v2"] for r in again["runs"][0]["results"]
    ) == sorted(prints)
    # And they are the fingerprints report.json states, the ones a baseline records.
    assert sorted(prints) == sorted(f["fingerprint"] for f in many["report"]["findings"])


def test_sarif_rules_carry_the_help_text_of_auditor_explain(many):
    from auditor.cli.explain import explanation_markdown

    registry = load_registry()
    rules = many["sarif"]["runs"][0]["tool"]["driver"]["rules"]
    assert rules
    for rule in rules:
        info = registry.catalog[rule["id"]]
        assert rule["help"]["markdown"] == info.explanation.strip()
        assert info.explanation.strip() in explanation_markdown(info, "label_distribution")
        assert len(rule["properties"]["tags"]) <= 20


def test_sarif_validates_against_the_schema(many):
    schema_path = REPO.parent.parent / "shared" / "data" / "sarif-schema-2.1.0.json"
    if not schema_path.exists():
        schema_path = REPO.parent / "shared" / "data" / "sarif-schema-2.1.0.json"
    if not schema_path.exists():
        pytest.skip(f"the SARIF 2.1.0 schema is not at {schema_path} (../shared/data is absent here)")
    import jsonschema

    jsonschema.validate(many["sarif"], json.loads(schema_path.read_text(encoding="utf-8")))


def test_sarif_keeps_the_5000_most_severe_results_and_says_how_many_it_left_out(many):
    from auditor_plugins.reports.sarif import MAX_RESULTS, sarif_log

    report = json.loads(json.dumps(many["report"]))
    template = report["findings"]
    report["findings"] = [
        {**template[i % len(template)], "evidence": {"split": f"s{i}"}, "fingerprint": ""}
        for i in range(MAX_RESULTS + 7)
    ]
    for finding in report["findings"]:
        finding.pop("fingerprint")
    log = sarif_log(ReportView.from_document(report), load_registry().catalog)
    run = log["runs"][0]
    assert len(run["results"]) == MAX_RESULTS
    assert run["properties"]["omitted_results"] == 7
    levels = [r["level"] for r in run["results"]]
    assert levels == sorted(levels, key=["error", "warning", "note"].index)
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("7 more results" in n["message"]["text"] for n in notes)


def test_validate_mode_summarises_the_command_output(tmp_path):
    many_findings_project(tmp_path / "proj")
    done = run_action(tmp_path, manifest="proj/audit.yaml", mode="validate")
    assert done["outputs"]["exit-code"] == "0"
    assert done["outputs"]["sarif"] == ""
    assert done["summary"].startswith("### auditor validate: passed")
    assert "ok proj/audit.yaml" in done["summary"]


def test_a_wrong_input_stops_the_step_with_the_allowed_values(tmp_path):
    env = {**os.environ, "INPUT_MODE": "everything", "GITHUB_OUTPUT": str(tmp_path / "o")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "input mode: expected one of ['run', 'static', 'validate'], found 'everything'" in done.stderr


def test_action_yml_is_a_composite_action_wired_to_the_script():
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    audit = next(s for s in steps if s.get("id") == "audit")
    assert "action/auditor_action.py" in audit["run"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif"))
    assert upload["continue-on-error"] is True and "always()" in upload["if"]
    assert steps[-1]["run"].startswith('exit "${EXIT_CODE')
    for name in ("manifest", "mode", "fail-on", "extras", "requirements", "torch-index-url", "upload-sarif"):
        assert name in action["inputs"]
    # Every INPUT_ the script reads is passed by the step.
    script = SCRIPT.read_text(encoding="utf-8")
    for read in set(re.findall(r'_input\("([A-Z_]+)"', script)):
        assert f"INPUT_{read}" in audit["env"]


def test_the_examples_workflow_uses_the_action():
    workflow = yaml.safe_load(
        (REPO / ".github" / "workflows" / "auditor-examples.yml").read_text(encoding="utf-8")
    )
    uses = [step.get("uses") for job in workflow["jobs"].values() for step in job["steps"]]
    assert uses.count("./") >= 2
    manifests = [
        step["with"]["manifest"]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("uses") == "./"
    ]
    for manifest in manifests:
        assert (REPO / manifest).exists(), manifest


@pytest.mark.slow
def test_quickstart_through_the_action(tmp_path):
    """The quickstart as the examples workflow runs it: all audits, the model included."""
    import shutil

    from conftest import QUICKSTART

    shutil.copytree(
        QUICKSTART,
        tmp_path / "examples" / "quickstart",
        ignore=shutil.ignore_patterns("reports", ".auditor-cache"),
    )
    done = run_action(tmp_path, manifest="examples/quickstart/audit.yaml", fail_on="never")
    assert done["outputs"]["exit-code"] == "0"
    report = json.loads((tmp_path / "auditor-reports" / "report.json").read_text(encoding="utf-8"))
    kinds = _kinds(done["annotations"])
    assert all(n <= 10 for n in kinds.values())
    shown = sum(kinds.values())
    assert shown == report["summary"]["total"] or done["annotations"][-1][2].split()[0].isdigit()
    assert done["summary"].startswith("### auditor: ")
    assert "file=examples/quickstart/audit.yaml" in done["annotations"][0][1]
