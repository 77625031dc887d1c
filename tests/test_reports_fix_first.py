"""The HTML report's "Fix these first": root causes first, consequences under their cause, from report.json alone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from auditor import FindingView
from auditor_plugins.reports import _common, html

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _finding(
    code: str,
    severity: str,
    location: str,
    *,
    fid: str | None = None,
    caused_by: str | None = None,
    audit: str = "demo",
    hint: str = "",
) -> dict[str, Any]:
    finding: dict[str, Any] = {
        "code": code,
        "audit": audit,
        "severity": severity,
        "title": f"title of {code}",
        "message": f"message of {code}",
        "hint": hint or f"fix {code}\nwhy it works",
        "location": location,
        "evidence": {},
    }
    if fid is not None:
        finding["id"] = fid
    if caused_by is not None:
        finding["caused_by"] = caused_by
    return finding


def _report(findings: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("error", "warning", "info")}
    return {
        "schema_version": "1",
        "tool": {"name": "auditor", "version": "0"},
        "manifest": {"path": "/p/audit.yaml", "name": "demo"},
        "started_at": "2026-12-01T00:00:00+00:00",
        "duration_s": 1.0,
        "fail_on": "error",
        "exit_code": 1 if counts["error"] else 0,
        "environment": {},
        "summary": {**counts, "total": len(findings)},
        "audits": [{"name": "demo", "version": "1", "status": "failed", "duration_s": 0.5}],
        "findings": findings,
    }


def _render(report: dict[str, Any]) -> str:
    from auditor.run.registry import load_registry

    return html.render(report, load_registry().catalog)


def _codes(causes: list[_common.Cause]) -> list[str]:
    return [c.finding.code for c in causes]


def _roots(findings: list[dict[str, Any]]) -> list[_common.Cause]:
    return _common.root_causes(FindingView.from_document(f) for f in findings)


def test_without_ids_every_finding_is_its_own_root_most_severe_and_widest_first():
    findings = [
        _finding("X003", "warning", "data.val"),
        _finding("X001", "error", "data.val"),
        _finding("X002", "error", "model"),
        _finding("X004", "info", "model"),
        _finding("X005", "warning", "data.train"),
    ]
    roots = _roots(findings)
    # errors before warnings before info; within a severity what spoils every training step (model, train) first
    assert _codes(roots) == ["X002", "X001", "X005", "X003", "X004"]
    assert all(c.consequences == [] for c in roots)


def test_consequences_nest_under_their_cause_and_a_cause_with_more_ranks_first():
    findings = [
        _finding("A001", "error", "model", fid="A001@model"),
        _finding("B001", "error", "data.val", fid="B001@data.val"),
        _finding("C001", "error", "model.head", fid="C001@model.head", caused_by="B001@data.val"),
        _finding("D001", "error", "model", fid="D001@model", caused_by="C001@model.head"),
        _finding("E001", "warning", "data.val", fid="E001@data.val", caused_by="B001@data.val"),
    ]
    roots = _roots(findings)
    assert _codes(roots) == ["B001", "A001"], (
        "the error with three consequences wastes more than the lone one"
    )
    b = roots[0]
    assert _codes(b.consequences) == ["C001", "E001"]
    assert _codes(b.consequences[0].consequences) == ["D001"]
    assert b.size() == 4


def test_unknown_causes_and_cycles_keep_every_finding():
    findings = [
        _finding("A001", "error", "model", fid="a", caused_by="b"),
        _finding("B001", "error", "model", fid="b", caused_by="a"),
        _finding("C001", "warning", "model", fid="c", caused_by="a"),
        _finding("D001", "warning", "model", fid="d", caused_by="filtered-out-by-select"),
        _finding("E001", "warning", "model", fid="e", caused_by="e"),
    ]
    roots = _roots(findings)
    seen = []

    def walk(causes: list[_common.Cause]) -> None:
        for cause in causes:
            seen.append(cause.finding.code)
            walk(cause.consequences)

    walk(roots)
    assert sorted(seen) == ["A001", "B001", "C001", "D001", "E001"], "a finding was dropped or shown twice"
    assert {"D001", "E001"} <= set(_codes(roots))


def _section(text: str) -> str:
    return text.split('<section id="fix-first" class="fix-first">')[1].split("</section>")[0]


def test_page_opens_with_fix_these_first_linking_each_root_to_its_details():
    findings = [
        _finding("LD002", "error", "data.val", fid="LD002@data.val", audit="label_distribution"),
        _finding(
            "FZ007",
            "error",
            "model.head",
            fid="FZ007@model.head",
            caused_by="LD002@data.val",
            audit="frozen_coverage",
        ),
        _finding(
            "GP010", "error", "model", fid="GP010@model", caused_by="FZ007@model.head", audit="gradient_probe"
        ),
        _finding("TP004", "warning", "data.val", fid="TP004@data.val", audit="transform_parity"),
        _finding("GP011", "info", "data.train", fid="GP011@data.train", audit="gradient_probe"),
    ]
    text = _render(_report(findings))
    main = text.split("<main>")[1]
    assert main.lstrip().startswith('<section id="fix-first"'), "Fix these first is not the first section"
    section = _section(text)
    ids = set(re.findall(r'\sid="([^"]+)"', text))
    links = re.findall(r'<a href="#(finding-[^"]+)"><span class="code">(\w+)</span>', section)
    assert [code for _, code in links] == ["LD002", "FZ007", "GP010", "TP004"], (
        "info is not a thing to fix first"
    )
    assert all(anchor in ids for anchor, _ in links), "a link in Fix these first leads nowhere"
    # consequences nested under their cause, each one level deeper
    nested = re.sub(r"\s+", " ", section.split("TP004")[0])
    assert re.search(
        r'LD002</span>.*<ul class="consequences"> <li class="fix sev-error">.*FZ007</span>.*'
        r'<ul class="consequences"> <li class="fix sev-error">.*GP010</span>',
        nested,
    ), nested
    assert section.index("FZ007") < section.index("GP010") < section.index("TP004")
    # the fix is the hint's first line, not the whole hint
    assert "<span>fix:</span> fix LD002</p>" in section and "why it works" not in section
    # a consequence's own article points back at its cause
    article = text.split('id="finding-GP010-model"')[1].split("</article>")[0]
    assert 'follows from <a href="#finding-FZ007-model.head">' in article


def test_reports_without_ids_still_get_the_section():
    findings = [_finding("TP001", "error", "data.val"), _finding("TP004", "warning", "data.val")]
    section = _section(_render(_report(findings)))
    assert re.findall(r'<span class="code">(\w+)</span>', section) == ["TP001", "TP004"]
    assert "consequences" not in section


def test_nothing_to_fix_and_no_findings():
    text = _render(_report([_finding("GP011", "info", "data.train")]))
    assert "Nothing to fix" in _section(text)
    assert 'id="fix-first"' not in _render(_report([]))


def test_long_names_break_at_separators_and_stay_escaped():
    out = str(
        html.breakable("see data/val/cat/<b>leak_0.jpg and torchvision:ResNet18_Weights.IMAGENET1K_V1 ok")
    )
    assert "data/<wbr>val/<wbr>cat/<wbr>&lt;b&gt;leak_<wbr>0.<wbr>jpg" in out
    assert "torchvision:<wbr>ResNet18_<wbr>Weights.<wbr>IMAGENET1K_<wbr>V1" in out
    assert "<b>" not in out and str(html.breakable("short words stay")) == "short words stay"


def test_a_warning_that_causes_an_error_ranks_with_the_errors():
    findings = [
        _finding("A001", "error", "data.val", fid="a"),
        _finding("W001", "warning", "model", fid="w"),
        _finding("E001", "error", "model", fid="e", caused_by="w"),
        _finding("W002", "warning", "model", fid="w2"),
    ]
    assert _codes(_roots(findings)) == ["W001", "A001", "W002"]
