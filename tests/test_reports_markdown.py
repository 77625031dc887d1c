"""markdown report format: a compact, escaped summary for pull-request comments and job summaries."""

from __future__ import annotations

import copy

import pytest
from _reports_quickstart import quickstart_run, run_cli


@pytest.fixture(scope="module")
def qs(tmp_path_factory):
    return quickstart_run(tmp_path_factory.getbasetemp())


def _render(report) -> str:
    from auditor.run.registry import load_registry
    from auditor_plugins.reports import markdown

    return markdown.render(copy.deepcopy(report), load_registry().catalog)


def _table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        # split on pipes that are not escaped
        cells, cell, escaped = [], "", False
        for char in line[1:]:
            if char == "|" and not escaped:
                cells.append(cell.strip())
                cell = ""
            else:
                cell += char
            escaped = char == "\\" and not escaped
        rows.append(cells)
    return rows


def test_summary_of_the_quickstart_run(qs):
    text = qs.text("markdown")
    word = {0: "passed", 1: "failed"}.get(qs.report["exit_code"], "errored")
    assert text.startswith("### auditor: ") and word in text.splitlines()[0]
    summary = qs.report["summary"]
    assert f"{summary['error']} error" in text and f"{summary['warning']} warning" in text
    audits = _table(text, "| audit | status | errors | warnings | info | time |")
    assert [row[0].replace("\\_", "_") for row in audits] == [a["name"] for a in qs.report["audits"]]
    assert all(len(row) == 6 for row in audits)
    findings = _table(text, "| severity | code | where | finding |")
    assert sorted(row[1] for row in findings) == sorted(f["code"] for f in qs.report["findings"])
    assert all(len(row) == 4 for row in findings)
    assert len(text) < 20_000


def test_long_runs_are_capped_and_cells_escaped(qs):
    from auditor_plugins.reports import markdown

    report = copy.deepcopy(qs.report)
    evil = {
        "code": "SL001",
        "audit": "split_leakage",
        "severity": "error",
        "title": "x",
        "location": "data.val",
        "message": "<img src=x onerror=alert(1)>.jpg | a|b\nnext line **bold** [link](http://x)",
        "hint": "",
        "evidence": {},
    }
    report["findings"] = [dict(evil) for _ in range(markdown.MAX_ROWS + 7)]
    text = _render(report)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;.jpg" in text
    assert "**bold**" not in text and " [link](http" not in text and "\\[link\\](http" in text
    rows = _table(text, "| severity | code | where | finding |")
    assert len(rows) == markdown.MAX_ROWS and all(len(r) == 4 for r in rows)
    assert "and 7 more findings" in text


def test_selected_with_format_on_the_command_line(tmp_path):
    from _reports_quickstart import copy_quickstart

    project = copy_quickstart(tmp_path / "qs", formats=["json"])
    done = run_cli(
        "run", "audit.yaml", "--static", "--only", "label_distribution", "--format", "markdown", cwd=project
    )
    assert done.returncode == 1, done.stdout + done.stderr
    text = (project / "reports" / "report.md").read_text(encoding="utf-8")
    assert "label\\_distribution" in text and "LD001" in text
    assert not (project / "reports" / "report.html").exists()
