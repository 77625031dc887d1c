"""The JSON report document: strict JSON whatever an audit returns; no side channels into it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from auditor import Audit, CodeInfo, Severity, hookimpl
from auditor.testing import run_cli

TEXT = "**What it means.** x **Why it breaks training.** x **How to fix it.** x **Example.** x"
NON_FINITE = {"nan": math.nan, "inf": math.inf, "minus_inf": -math.inf}


def _strict_loads(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"report.json holds {name}, which strict JSON parsers reject")

    return json.loads(text, parse_constant=refuse)


class _NonFinite:
    """A third-party audit (in-process) whose evidence and findings hold NaN and infinity, as a diverging loss does."""

    @hookimpl
    def auditor_audits(self) -> list[Audit]:
        def run(ctx):
            ctx.evidence.update(NON_FINITE)
            ctx.evidence["curve"] = [1.0, math.nan, math.inf, 2.5]
            ctx.evidence["numpy"] = {"scalar": np.float32("nan"), "array": np.array([0.5, np.inf, -np.inf])}
            ctx.evidence[("tuple", "key")] = -math.inf
            return [
                ctx.finding(
                    "NF001",
                    "the loss diverged",
                    evidence={"loss": math.nan, "grad": [math.inf], "ratio": np.float64("-inf")},
                )
            ]

        return [
            Audit(
                name="non_finite",
                version="0.1",
                prefix="NF",
                run=run,
                codes=[CodeInfo("NF001", Severity.WARNING, "loss diverged", TEXT)],
            )
        ]


def test_report_json_is_strict_json_with_null_for_non_finite_numbers(auditor_project, auditor_run, tmp_path):
    train = auditor_project.image_folder("data/train", {"a": 2, "b": 2}, size=8)
    manifest = auditor_project.manifest(data={"train": train}, audits={"non_finite": {}})
    result = auditor_run(
        manifest, plugins=[_NonFinite()], formats=["json", "html", "sarif", "junit", "markdown"]
    )
    text = result.file("json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    report = _strict_loads(text)

    (audit,) = [a for a in report["audits"] if a["status"] != "disabled"]
    assert audit["status"] == "passed", audit["error"]
    evidence = audit["evidence"]
    assert (evidence["nan"], evidence["inf"], evidence["minus_inf"]) == (None, None, None)
    assert evidence["curve"] == [1.0, None, None, 2.5]
    assert evidence["numpy"] == {"scalar": None, "array": [0.5, None, None]}
    assert evidence["('tuple', 'key')"] is None
    (finding,) = report["findings"]
    assert finding["evidence"] == {"loss": None, "grad": [None], "ratio": None}
    assert report == result.report  # the in-memory report (Python API) is the same strict document

    # Every other format renders from it, and a re-render reads it back.
    again = run_cli(
        "report", result.file("json"), "--format", "html,markdown", "--output-dir", tmp_path / "again"
    )
    again.assert_exit_code(0)
    assert (tmp_path / "again" / "report.html").is_file()


def test_a_report_written_with_bare_nan_still_loads_as_null(auditor_project, auditor_run, tmp_path):
    # Reports saved before report.json was strict may hold bare NaN; `auditor report` reads them as null.
    from auditor.report.document import dump_report, load_report

    train = auditor_project.image_folder("data/train", {"a": 2, "b": 2}, size=8)
    result = auditor_run(auditor_project.manifest(data={"train": train}, audits={"label_distribution": {}}))
    legacy = dict(result.report, duration_s=0.5)
    legacy["audits"] = [
        dict(
            next(a for a in result.report["audits"] if a["name"] == "label_distribution"),
            evidence={"loss": math.nan},
        )
    ]
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(legacy), encoding="utf-8")
    assert "NaN" in path.read_text(encoding="utf-8")
    loaded = load_report(path)
    assert loaded["audits"][0]["evidence"] == {"loss": None}
    assert "NaN" not in dump_report(loaded)


class _Device:
    """Records the device it ran a model on, as gradient_probe does: the report's environment reads it there."""

    @hookimpl
    def auditor_audits(self) -> list[Audit]:
        def run(ctx):
            ctx.evidence["device"] = "cuda:7"
            return []

        return [
            Audit(
                name="on_device",
                version="0.1",
                prefix="DV",
                run=run,
                codes=[CodeInfo("DV001", Severity.INFO, "device", TEXT)],
            )
        ]


class _OpensSplits:
    @hookimpl
    def auditor_audits(self) -> list[Audit]:
        def run(ctx):
            ctx.note(f"{len(ctx.splits)} split(s)")
            return []

        return [
            Audit(
                name="opens_splits",
                version="0.1",
                prefix="OS",
                run=run,
                codes=[CodeInfo("OS001", Severity.INFO, "opens", TEXT)],
            )
        ]


def test_the_device_reaches_the_report_through_audit_evidence(auditor_project, auditor_run):
    train = auditor_project.image_folder("data/train", {"a": 2, "b": 2}, size=8)
    on_device = auditor_run(
        auditor_project.manifest(data={"train": train}, audits={"on_device": {}}), plugins=[_Device()]
    )
    assert on_device.report["environment"]["device"] == "cuda:7"
    no_model = auditor_run(auditor_project.manifest(data={"train": train}, audits={"label_distribution": {}}))
    assert no_model.report["environment"]["device"] == "cpu"


def test_the_task_is_reported_only_when_the_splits_were_opened(auditor_project, auditor_run):
    from auditor.manifest.load import load_manifest
    from auditor.run.context import RunContext
    from auditor.run.registry import load_registry

    train = auditor_project.image_folder("data/train", {"a": 2, "b": 2}, size=8)
    opened = auditor_run(
        auditor_project.manifest(data={"train": train}, audits={"opens_splits": {}}), plugins=[_OpensSplits()]
    )
    assert opened.report["task"] == {
        "type": "multiclass",
        "num_classes": 2,
        "source": "inferred",
        "class_names": ["a", "b"],
    }
    # The runner opens every split before the audits (a broken split is one manifest problem), so the
    # task is known even for an audit that never asks for it; with no audit to run nothing is opened.
    not_asked = auditor_run(
        auditor_project.manifest(data={"train": train}, audits={"on_device": {}}), plugins=[_Device()]
    )
    assert not_asked.report["task"] == opened.report["task"]
    nothing_ran = auditor_run(
        auditor_project.manifest(data={"train": train}, audits={"on_device": {}}),
        plugins=[_Device()],
        skip=["on_device"],
    )
    assert nothing_ran.report["task"] is None

    registry = load_registry(autoload=False)
    context = RunContext(load_manifest(auditor_project.manifest(data={"train": train}), registry), registry)
    assert not context.splits_opened and not context.splits_opened  # asking opens nothing
    assert list(context.splits) == ["train"] and context.splits_opened


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_strict_json_maps_every_non_finite_number_to_null(value):
    from auditor.report.document import dump_report, strict_json

    assert strict_json({"x": [value, (value,), {value}]}) == {"x": [None, [None], [None]]}
    assert _strict_loads(dump_report({"x": value, "y": np.float32(value)})) == {"x": None, "y": None}


def test_schema_and_docs_state_the_rule():
    repo = Path(__file__).resolve().parent.parent
    schema = json.loads((repo / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
    assert "NaN" in schema["description"] and "null" in schema["description"]
    assert "null" in (repo / "docs" / "report.md").read_text(encoding="utf-8").split("## Strict JSON", 1)[1]
