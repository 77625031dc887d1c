"""github report format: workflow-command annotations on the manifest lines, escaped as the runner expects."""

from __future__ import annotations

import copy
import re

import pytest
from _reports_quickstart import quickstart_run, run_cli

COMMAND = re.compile(r"^::(error|warning|notice) (?P<props>[^:]*)::(?P<data>.*)$")


@pytest.fixture(scope="module")
def qs(tmp_path_factory):
    return quickstart_run(tmp_path_factory.getbasetemp())


def _unescape(text: str) -> str:
    return (
        text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


def test_one_annotation_per_finding_on_its_manifest_line(qs):
    text = qs.text("github")
    lines = text.splitlines()
    assert len(lines) == len(qs.report["findings"]) >= 1
    kinds = {"error": "error", "warning": "warning", "info": "notice"}
    seen = []
    for line in lines:
        match = COMMAND.match(line)
        assert match, line
        props = dict(p.split("=", 1) for p in match["props"].split(","))
        assert props["file"] == "audit.yaml"
        code = _unescape(props["title"]).split()[0]
        message = _unescape(match["data"]).split("\n")[0]
        (finding,) = [f for f in qs.report["findings"] if f["code"] == code and f["message"] == message]
        assert match[1] == kinds[finding["severity"]]
        if finding["location"] in qs.report.get("lines", {}):
            assert int(props["line"]) == qs.report["lines"][finding["location"]]
        seen.append(code)
    assert sorted(seen) == sorted(f["code"] for f in qs.report["findings"])
    ranks = [{"error": 0, "warning": 1, "notice": 2}[COMMAND.match(line)[1]] for line in lines]
    assert ranks == sorted(ranks)


def test_annotations_are_echoed_to_stdout(qs):
    # workflow commands act only when the step prints them
    for line in qs.text("github").splitlines():
        assert line in qs.stdout.splitlines()


def test_writing_reports_prints_nothing_the_cli_prints(qs, tmp_path, capfd):
    # Python callers of write_reports/run_manifest own their stdout; only the `auditor` command echoes.
    from auditor.report.files import write_reports
    from auditor.run.registry import load_registry

    written = write_reports(qs.report, ["github"], tmp_path / "out", load_registry())
    assert ("github", tmp_path / "out" / "github-annotations.txt") in written
    assert capfd.readouterr() == ("", "")
    rerendered = run_cli(
        "report",
        qs.reports / "report.json",
        "--format",
        "github",
        "--output-dir",
        tmp_path / "cli",
        cwd=qs.project,
    )
    assert rerendered.returncode == 0, rerendered.stderr
    annotations = (tmp_path / "cli" / "github-annotations.txt").read_text(encoding="utf-8")
    assert annotations and annotations in rerendered.stdout


def test_escaping_follows_the_runner_rules():
    from auditor_plugins.reports import github

    assert github.escape_data("100% done\r\nnext: a,b") == "100%25 done%0D%0Anext: a,b"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    report = {
        "manifest": {"path": "/elsewhere/x, y:z.yaml"},
        "lines": {"data.val": 3},
        "fail_on": "error",
        "findings": [
            {
                "code": "SL001",
                "audit": "split_leakage",
                "severity": "error",
                "title": "t: a, b",
                "message": "50% of 'val'\nleaks",
                "hint": "",
                "location": "data.val",
            }
        ],
        "audits": [],
    }
    (line,) = github.render(copy.deepcopy(report), {}).splitlines()
    match = COMMAND.match(line)
    props = dict(p.split("=", 1) for p in match["props"].split(","))
    assert _unescape(props["file"]) == "/elsewhere/x, y:z.yaml" and props["line"] == "3"
    assert _unescape(props["title"]) == "SL001 t: a, b"
    assert _unescape(match["data"]).startswith("50% of 'val'\nleaks")


def test_crashed_audit_is_annotated():
    from auditor_plugins.reports import github

    report = {
        "manifest": {"path": "audit.yaml"},
        "findings": [],
        "audits": [
            {
                "name": "gradient_probe",
                "status": "errored",
                "error": {"type": "RuntimeError", "message": "CUDA out of memory", "traceback": ""},
            }
        ],
    }
    assert github.render(report, {}).startswith(
        "::error file=audit.yaml,title=auditor%3A audit gradient_probe crashed::"
        "RuntimeError: CUDA out of memory"
    )


def test_manifest_problem_is_annotated_on_its_line():
    from auditor_plugins.reports import github

    report = {
        "manifest": {"path": "audit.yaml"},
        "findings": [],
        "audits": [],
        "problems": [
            {
                "key": "data.val.label_column",
                "line": 25,
                "hint": "did you mean 'label'?",
                "message": "data.val.label_column: expected a column of val.csv, found 'lable'",
            }
        ],
    }
    text = github.render(report, {})
    assert text.startswith(
        "::error file=audit.yaml,line=25,title=auditor%3A manifest problem at "
        "data.val.label_column::data.val.label_column: expected a column of val.csv"
    )
    assert "%0Ahint: did you mean 'label'?" in text
