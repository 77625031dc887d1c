"""Finding ids and cause links (``id`` / ``caused_by`` in report.json) and how the console shows them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from _reports_quickstart import QuickstartRun, quickstart_run

from auditor import Audit, AuditContext, CauseRule, CodeInfo, Finding, Severity, hookimpl
from auditor.run.finding_links import assign_ids, finalize_findings, link_findings
from auditor.run.registry import load_registry
from auditor.testing import Project, run_in_process

REPO = Path(__file__).resolve().parent.parent


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
    link_findings([a, b])
    assert a.caused_by is None or b.caused_by is None


def test_no_link_without_the_shared_cause(tmp_path: Path) -> None:
    # FZ005 names layers the probe did not see change: GP008 (frozen weights written in forward) stands alone.
    fz005 = _finding("FZ005", "model", layers=[{"name": "bn1", "type": "BatchNorm2d"}])
    gp008 = _finding("GP008", "model", parameters=["fc.weight"], buffers=[])
    tp001 = _finding("TP001", "data.test", split="test")
    tp003 = _finding("TP003", "data.val", split="val")
    finalize_findings([fz005, gp008, tp001, tp003], load_registry().ordered_audits())
    assert gp008.caused_by is None and tp003.caused_by is None


def test_the_built_in_rules_link_when_the_shared_cause_is_there() -> None:
    audits = load_registry().ordered_audits()
    fz005 = _finding("FZ005", "model", layers=[{"name": "bn1", "type": "BatchNorm2d"}])
    gp008 = _finding("GP008", "model", parameters=[], buffers=["bn1.running_mean"])
    dl001 = _finding("DL001", "data.train", split="train")
    dl003 = _finding("DL003", "data.train", split="train")
    gp012 = _finding("GP012", "data.train", split="train")
    finalize_findings([fz005, gp008, dl001, dl003, gp012], audits)
    assert gp008.caused_by == "FZ005@model"
    assert gp012.caused_by == "DL003@data.train", "the declared order of caused_by codes decides"


# -- the host knows no built-in code -----------------------------------------------------------

#: A finding code of a built-in audit.
BUILT_IN_CODE = re.compile(r"\b(LD|SL|TP|FZ|GP|DL|FF)\d{3}\b")
#: Where auditor/ may still spell one: examples of the code syntax in user-facing text, not rules.
ALLOWED = {
    ("auditor/findings.py", "e.g. 'LD001'"),
    ("auditor/cli/app.py", "(e.g. SL, LD001)"),
    ("auditor/run/runner.py", "``SL`` matches ``SL001``; ``LD00`` matches ``LD001``"),
}


def test_no_built_in_code_appears_in_the_host() -> None:
    # Docstrings and comments count too: a host comment naming a check is host knowledge of it.
    found = []
    for path in sorted((REPO / "auditor").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if BUILT_IN_CODE.search(line) and not any(
                file == relative and text in line for file, text in ALLOWED
            ):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, (
        "auditor/ names built-in finding codes; the host must know no check (declare cause links in the "
        "audit's `causes`, word comments without codes):\n" + "\n".join(found)
    )


# -- declarations by a third-party plugin ------------------------------------------------------

_EXPLANATION = "**What it means.** x. **Why it breaks training.** x. **How to fix it.** x. **Example.** x"


def _unseen_classes(ctx: AuditContext) -> list[Finding]:
    return [
        ctx.finding("CX001", f"{split.name} has captions for unseen classes", location=split.location)
        for split in ctx.eval_splits
    ]


def _same_location(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    return cause.location == effect.location


class _CaptionPlugin:
    """A third-party audit, never installed, whose finding follows from a built-in's."""

    def __init__(self, when: object = _same_location) -> None:
        self.when = when

    @hookimpl
    def auditor_audits(self) -> list[Audit]:
        return [
            Audit(
                name="captions",
                version="0.0.1",
                prefix="CX",
                codes=[CodeInfo("CX001", Severity.WARNING, "captions name unseen classes", _EXPLANATION)],
                run=_unseen_classes,
                causes=[
                    CauseRule("CX001", ("LD002",), self.when, "a class absent from train has no caption")
                ],  # type: ignore[arg-type]
            )
        ]


def _unseen_class_project(tmp_path: Path) -> Path:
    project = Project(tmp_path / "project")
    train = project.image_folder("data/train", {"cat": 2, "dog": 2}, size=8)
    val = project.image_folder("data/val", {"cat": 1, "dog": 1, "owl": 1}, size=8, seed=3)
    test = project.image_folder("data/test", {"cat": 1, "dog": 1}, size=8, seed=5)
    return project.manifest(
        data={"train": train, "val": val, "test": test}, audits={"label_distribution": {}, "captions": {}}
    )


def test_a_third_party_audit_declares_its_finding_follows_from_a_built_in_code(tmp_path: Path) -> None:
    run = run_in_process(_unseen_class_project(tmp_path), plugins=[_CaptionPlugin()])
    caused = {f["id"]: f["caused_by"] for f in run.findings_for("CX")}
    # 'owl' is only in val: LD002 there; test has every class, so its CX001 has no cause.
    assert caused == {"CX001@data.val": "LD002@data.val", "CX001@data.test": None}
    assert run.audit("captions")["notes"] == []


def test_a_cause_test_that_raises_links_nothing_and_is_noted_on_its_audit(tmp_path: Path) -> None:
    def broken(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
        raise KeyError("split")

    run = run_in_process(_unseen_class_project(tmp_path), plugins=[_CaptionPlugin(broken)])
    assert all(f["caused_by"] is None for f in run.findings_for("CX"))
    assert run.audit("captions")["notes"] == [
        "the cause rule CX001 <- LD002 could not be applied (KeyError: 'split'); those findings are "
        "shown unlinked"
    ]
    assert run.audit("label_distribution")["status"] == "failed", "the other audits are unaffected"


def test_an_audit_declares_causes_of_its_own_codes_only() -> None:
    info = CodeInfo("CX001", Severity.WARNING, "t", _EXPLANATION)
    with pytest.raises(ValueError, match=r"cause rule for LD002 names a code this audit does not declare"):
        Audit("captions", "1", "CX", [info], run=lambda ctx: [], causes=[CauseRule("LD002", ("CX001",))])
    with pytest.raises(ValueError, match=r"expected finding codes like 'AB001', found 'ld002'"):
        CauseRule("CX001", ("ld002",))
    assert CauseRule("CX001", "LD002").caused_by == ("LD002",)
