"""The typed report view: read from a real run's report.json, lenient about what older reports lack, plugin
evidence reachable, the formats' one input (and no renderer back on raw document keys)."""

from __future__ import annotations

import ast
import copy
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _reports_quickstart import QuickstartRun, quickstart_run
from rich.console import Console

import auditor
from auditor import FindingView, ReportFormat, ReportView, hookimpl
from auditor.report.console import print_report
from auditor.report.document import validate_report
from auditor.report.files import write_reports
from auditor.run.registry import load_registry

REPO = Path(__file__).resolve().parent.parent
RENDERERS = [*sorted((REPO / "plugins" / "reports").glob("*.py")), REPO / "auditor" / "report" / "console.py"]
TEMPLATES = sorted((REPO / "plugins" / "reports" / "templates").glob("*.j2"))


@pytest.fixture(scope="module")
def qs(tmp_path_factory: pytest.TempPathFactory) -> QuickstartRun:
    return quickstart_run(tmp_path_factory.getbasetemp())


def _finding(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "audit": "demo",
        "severity": "warning",
        "title": f"title of {code}",
        "message": f"message of {code}",
        "hint": "",
        "location": "model",
        "evidence": {},
        **extra,
    }


def _minimal(findings: list[dict[str, Any]], audits: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Only the keys the schema requires: what a report of an older version may hold."""
    return {
        "schema_version": "1.0",
        "tool": {"name": "auditor", "version": "0.1"},
        "manifest": {"path": "/project/audit.yaml"},
        "started_at": "2026-12-01T00:00:00+00:00",
        "duration_s": 1.5,
        "environment": {"python": "3.11.0", "device": "cpu"},
        "audits": audits or [{"name": "demo", "version": "1", "status": "failed", "duration_s": 0.5}],
        "findings": findings,
        "summary": {"error": 0, "warning": len(findings), "info": 0, "total": len(findings)},
        "exit_code": 0,
    }


# -- built from a real run ------------------------------------------------------------------------


def test_the_view_of_a_real_run_holds_what_its_report_json_says(qs: QuickstartRun) -> None:
    validate_report(qs.report)
    view = ReportView.from_document(qs.report)
    doc = qs.report
    assert view.document is doc and view.schema_version == doc["schema_version"]
    assert (view.manifest.path, view.manifest.name) == (doc["manifest"]["path"], doc["manifest"]["name"])
    assert view.manifest.folder == Path(doc["manifest"]["path"]).parent
    assert view.exit_code == doc["exit_code"] == qs.returncode and view.fail_on == doc["fail_on"]
    assert [(a.name, a.status, a.codes) for a in view.audits] == [
        (a["name"], a["status"], tuple(a["codes"])) for a in doc["audits"]
    ]
    summary = view.summary
    assert (summary.error, summary.warning, summary.info, summary.total) == tuple(
        doc["summary"][k] for k in ("error", "warning", "info", "total")
    )
    for finding, raw in zip(view.findings, doc["findings"], strict=True):
        assert (finding.code, finding.audit, finding.severity, finding.message, finding.hint, finding.location) == (
            raw["code"], raw["audit"], raw["severity"], raw["message"], raw["hint"], raw["location"],
        )  # fmt: skip
        assert finding.id == raw["id"] and finding.caused_by == raw["caused_by"]
        assert finding.evidence == raw["evidence"]
        assert view.line_of(finding) == doc["lines"].get(raw["location"])
    assert any(f.caused_by for f in view.findings), "the quickstart has cause links"
    assert view.task is not None and view.task.type == doc["task"]["type"]
    assert view.task.class_names == tuple(doc["task"]["class_names"])
    env = view.environment
    assert (env.python, env.device) == (doc["environment"]["python"], doc["environment"]["device"])
    assert [p.name for p in env.plugins] == [p["name"] for p in doc["environment"]["plugins"]]


def test_the_evidence_shapes_of_a_real_run_are_typed(qs: QuickstartRun) -> None:
    view = ReportView.from_document(qs.report)
    leak = next(f for f in view.findings if f.code == "SL001")
    raw_pairs = leak.evidence["pairs"]
    assert leak.pairs and len(leak.pairs) == len(raw_pairs) and leak.pair_count == leak.evidence["count"]
    first = leak.pairs[0]
    assert first.a is not None and first.a.path == raw_pairs[0]["a"]["path"] and first.a.split == "train"
    counts = view.audit("label_distribution").measurements.class_counts
    assert [c.split for c in counts] == ["train", "val"]
    assert dict(counts[0].counts) == {
        k: float(v) for k, v in qs.report["audits"][0]["evidence"]["counts"]["train"].items()
    }
    frozen = view.audit("frozen_coverage").measurements.modules
    assert frozen and any(m.frozen > 0 for m in frozen)
    probe = view.audit("gradient_probe").measurements
    assert probe.grad_norms and probe.loss_curve and all(g.name for g in probe.grad_norms)
    parity = view.audit("transform_parity").measurements
    assert parity.channel_stats and parity.side_by_side


def test_the_view_is_frozen(qs: QuickstartRun) -> None:
    view = ReportView.from_document(qs.report)
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.fail_on = "never"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.findings[0].severity = "info"  # type: ignore[misc]
    assert ReportView.of(view) is view


# -- lenient about what older reports lack ---------------------------------------------------------


def test_missing_optional_keys_read_as_empty_values() -> None:
    doc = _minimal([_finding("XY001"), "not a finding"])  # type: ignore[list-item]
    view = ReportView.from_document(doc)
    assert view.fail_on == "error" and view.task is None and view.problems == () and dict(view.lines) == {}
    assert view.manifest.name == "" and view.environment.torch is None and view.environment.plugins == ()
    (finding,) = view.findings
    assert finding.id == "" and finding.caused_by is None and finding.pairs == () and finding.pair_count == 0
    (audit,) = view.audits
    assert audit.error is None and audit.codes == () and audit.notes == () and audit.reason == ""
    assert audit.measurements == auditor.Measurements() and audit.count("error") == 0
    assert view.line_of(finding) is None


def test_every_built_in_format_renders_a_report_without_optional_keys(tmp_path: Path) -> None:
    doc = _minimal([_finding("XY001"), _finding("XY002", severity="error")])
    doc["audits"].append({"name": "boom", "version": "1", "status": "errored", "duration_s": 0.1})
    validate_report(doc)
    registry = load_registry(autoload=False)
    written = write_reports(doc, sorted(registry.report_formats), tmp_path, registry)
    texts = {name: path.read_text(encoding="utf-8") for name, path in written}
    assert "XY002" in texts["markdown"] and "XY002" in texts["html"] and "XY002" in texts["sarif"]
    assert "audit boom crashed" in texts["github"] and 'name="boom"' in texts["junit"]
    assert json.loads(texts["json"]) == doc


# -- plugin evidence -------------------------------------------------------------------------------


def test_plugin_evidence_and_added_keys_stay_reachable() -> None:
    own = {"sharpness": [0.1, 0.9], "worst": {"path": "a.png", "score": 3}}
    doc = _minimal(
        [_finding("XY001", evidence={**own, "pairs": [["a.png", "b.png"]], "count": 7})],
        [
            {
                "name": "demo",
                "version": "1",
                "status": "failed",
                "duration_s": 0.5,
                "evidence": {**own, "counts": {"train": {"cat": 2}}},
            }
        ],
    )
    doc["extensions"] = {"my_plugin": {"checked": 12}}
    view = ReportView.from_document(doc)
    finding, audit = view.findings[0], view.audits[0]
    assert finding.evidence["worst"] == own["worst"] and audit.evidence["sharpness"] == own["sharpness"]
    assert finding.pair_count == 7 and finding.pairs[0].a is not None and finding.pairs[0].b.path == "b.png"
    assert audit.measurements.class_counts[0].counts == (("cat", 2.0),)
    assert view.document["extensions"] == {"my_plugin": {"checked": 12}}


@pytest.mark.parametrize(
    "evidence",
    [
        {"counts": {"train": 5}, "modules": "x", "grad_norms": [1, 2], "loss_curve": "abc", "pairs": "x"},
        {
            "counts": [],
            "modules": [{"name": None, "trainable": "a"}],
            "stats": [None],
            "channel_stats": {"v": 1},
        },
        {"pairs": [None, ["only-one"], {"a": "x", "b": {"index": 3}}], "count": "many", "side_by_side": 4},
    ],
)
def test_odd_evidence_gives_empty_shapes_never_an_exception(evidence: dict[str, Any]) -> None:
    doc = _minimal(
        [_finding("XY001", evidence=evidence)],
        [{"name": "demo", "version": "1", "status": "failed", "duration_s": 0.5, "evidence": evidence}],
    )
    view = ReportView.from_document(doc)
    assert view.audits[0].measurements.side_by_side == ""
    assert view.findings[0].evidence is evidence
    assert all(p.a is None or p.a.split for p in view.findings[0].pairs)


# -- third-party formats: the view or the dict, as they declare ------------------------------------


class _Formats:
    """A real in-process plugin with one format of each kind, registered through the real registry."""

    seen: ClassVar[dict[str, str]] = {}

    @staticmethod
    def legacy(report: Any, catalog: Any) -> str:
        _Formats.seen["legacy"] = type(report).__name__
        codes = ",".join(f["code"] for f in report["findings"])
        report["findings"] = []  # a format that edits its dict must not change what the next one gets
        return codes

    @staticmethod
    def typed(report: Any, catalog: Any) -> str:
        _Formats.seen["typed"] = type(report).__name__
        return ",".join(f.code for f in report.findings)

    @hookimpl
    def auditor_report_formats(self) -> list[ReportFormat]:
        return [
            ReportFormat("legacy-csv", "legacy.txt", self.legacy, "a format written before the view"),
            ReportFormat(
                "typed-csv", "typed.txt", self.typed, "a format that asks for the view", takes_view=True
            ),
        ]


def test_a_format_gets_the_view_only_when_it_asks_for_it(tmp_path: Path) -> None:
    registry = load_registry([("formats-under-test", _Formats())], autoload=False)
    doc = _minimal([_finding("XY001"), _finding("XY002")])
    written = dict(write_reports(doc, ["legacy-csv", "typed-csv"], tmp_path, registry, include_json=False))
    assert _Formats.seen == {"legacy": "dict", "typed": "ReportView"}
    assert written["legacy-csv"].read_text(encoding="utf-8") == "XY001,XY002"
    assert written["typed-csv"].read_text(encoding="utf-8") == "XY001,XY002"
    assert len(doc["findings"]) == 2, "the legacy format edited a copy, not the run's report"
    assert ReportFormat("x", "x", _Formats.legacy).takes_view is False


def test_the_console_prints_the_same_from_the_view_and_from_the_dict(qs: QuickstartRun) -> None:
    def printed(report: Any) -> str:
        buffer = io.StringIO()
        print_report(Console(file=buffer, width=120, no_color=True), report, verbose=True, timings=False)
        return buffer.getvalue()

    text = printed(copy.deepcopy(qs.report))
    assert text == printed(ReportView.from_document(qs.report))
    assert "SL001" in text and "follows from" in text


# -- no renderer reads the document through raw keys -----------------------------------------------


def _document_keys() -> set[str]:
    """Every property name in the report schema, at any depth: what a raw read of the document names."""
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                keys.add(name)
                walk(sub)
            walk(node.get("items"))
            for sub in (node.get("$defs") or {}).values():
                walk(sub)

    walk(json.loads((REPO / "schemas" / "report.schema.json").read_text(encoding="utf-8")))
    return keys


def raw_reads(source: str, keys: set[str]) -> list[str]:
    """``x["findings"]`` and ``x.get("findings")`` style reads of a document key in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = node.slice.value if isinstance(node.slice, ast.Constant) else None
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            key = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if isinstance(key, str) and key in keys:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_guard_catches_raw_reads() -> None:
    keys = _document_keys()
    assert {"findings", "audits", "summary", "caused_by", "evidence", "traceback", "plugins"} <= keys
    bad = 'def f(report):\n    return report["findings"], report.get("summary") or {}, a.get("caused_by")\n'
    assert len(raw_reads(bad, keys)) == 3
    assert raw_reads('def f(view):\n    return view.findings, row["tests"]\n', keys) == []


@pytest.mark.parametrize("path", RENDERERS, ids=lambda p: p.name)
def test_renderers_read_the_view_not_raw_document_keys(path: Path) -> None:
    found = raw_reads(path.read_text(encoding="utf-8"), _document_keys())
    assert not found, (
        f"{path.relative_to(REPO)}: expected renderers to read auditor.ReportView (typed fields), found raw "
        "reads of report document keys:\n  " + "\n  ".join(found) + "\nhint: add the field to "
        "auditor/report/view.py (or evidence.py for an evidence shape) and read it there"
    )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_read_the_view_not_raw_document_keys(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert ".get(" not in text and "['" not in text and '["' not in text, (
        f"{path.relative_to(REPO)}: expected attribute access on the view, found a raw mapping read"
    )


def test_the_view_types_are_public() -> None:
    for name in ("ReportView", "AuditView", "FindingView", "ProblemView", "SummaryView", "EnvironmentView",
                 "LeakedPair", "Measurements"):  # fmt: skip
        assert name in auditor.__all__ and getattr(auditor, name).__module__.startswith("auditor.report.")
    assert FindingView.from_document(_finding("XY001")).audit == "demo"
