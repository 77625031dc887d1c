"""Finding ids and cause links (``id`` / ``caused_by`` in report.json) and how the console shows them."""

from __future__ import annotations

from pathlib import Path

import pytest
from _reports_quickstart import QuickstartRun, quickstart_run

from auditor.findings import Finding, Severity
from auditor.run.finding_links import assign_ids, finalize_findings, link_findings


@pytest.fixture(scope="module")
def qs(tmp_path_factory: pytest.TempPathFactory) -> QuickstartRun:
    return quickstart_run(tmp_path_factory.getbasetemp())


def _finding(code: str, location: str = "", **evidence: object) -> Finding:
    return Finding(
        code=code,
        audit="a",
        severity=Severity.ERROR,
        title="t",
        message="m",
        location=location,
        evidence=dict(evidence),
    )


def test_every_finding_has_a_unique_id_and_links_point_at_roots(qs: QuickstartRun) -> None:
    findings = qs.report["findings"]
    ids = [f["id"] for f in findings]
    assert all(ids) and len(set(ids)) == len(ids)
    by_id = {f["id"]: f for f in findings}
    for finding in findings:
        assert "caused_by" in finding
        if finding["caused_by"]:
            root = by_id[finding["caused_by"]]
            assert root["caused_by"] is None, "links are one level deep: the target is a root"


def test_quickstart_links_the_three_planted_chains(qs: QuickstartRun) -> None:
    # The quickstart plants: eval without Normalize, an 'owl' class only in val, a frozen backbone whose
    # BatchNorm layers stay in train mode.
    caused = {f["code"]: f["caused_by"] for f in qs.report["findings"] if f["caused_by"]}
    assert caused.get("TP003") == "TP001@data.val"
    assert caused.get("FZ007") == "LD002@data.val"
    assert caused.get("GP010") == "LD002@data.val"
    assert caused.get("GP008") == "FZ005@model"


def test_console_shows_the_root_first_and_consequences_under_it(qs: QuickstartRun) -> None:
    lines = qs.stdout.splitlines()
    root = next(i for i, line in enumerate(lines) if line.startswith("  FZ005 warning"))
    consequence = next(i for i, line in enumerate(lines) if line.lstrip().startswith("-> GP008"))
    assert root < consequence, qs.stdout
    assert all(
        not line.startswith("  FZ") and not line.startswith("  GP") for line in lines[root + 1 : consequence]
    )
    assert "GP008 follows from FZ005@model (frozen_coverage)" in qs.stdout
    # The same-audit consequence (TP003 under TP001) is printed once, under its root.
    assert sum("TP003 error" in line for line in lines) == 1


def test_ids_are_code_at_location_with_repeats_numbered() -> None:
    findings = [
        _finding("SL001", "data.val"),
        _finding("SL001", "data.val"),
        _finding("GP011"),
        _finding("SL001", "data.test"),
        _finding("SL001", "data.val"),
    ]
    assign_ids(findings)
    assert [f.id for f in findings] == [
        "SL001@data.val",
        "SL001@data.val#2",
        "GP011",
        "SL001@data.test",
        "SL001@data.val#3",
    ]


def test_an_audit_cause_resolves_to_the_root_and_cycles_are_dropped() -> None:
    root, middle, leaf = _finding("AA001", "x"), _finding("AA002", "y"), _finding("AA003", "z")
    middle.cause, leaf.cause = root, middle
    ignored = _finding("AA004")
    orphan = _finding("AA005")
    orphan.cause = ignored  # its cause was filtered out (--ignore): no link
    finalize_findings([root, middle, leaf, orphan])
    assert (root.caused_by, middle.caused_by, leaf.caused_by, orphan.caused_by) == (
        None,
        "AA001@x",
        "AA001@x",
        None,
    )

    a, b = _finding("BB001", "a"), _finding("BB002", "b")
    assign_ids([a, b])
    a.caused_by, b.caused_by = b.id, a.id
    link_findings([a, b], rules=())
    assert a.caused_by is None or b.caused_by is None


def test_no_link_without_the_shared_cause(tmp_path: Path) -> None:
    # FZ005 names layers the probe did not see change: GP008 (frozen weights written in forward) stands alone.
    fz005 = _finding("FZ005", "model", layers=[{"name": "bn1", "type": "BatchNorm2d"}])
    gp008 = _finding("GP008", "model", parameters=["fc.weight"], buffers=[])
    tp001 = _finding("TP001", "data.test", split="test")
    tp003 = _finding("TP003", "data.val", split="val")
    finalize_findings([fz005, gp008, tp001, tp003])
    assert gp008.caused_by is None and tp003.caused_by is None
