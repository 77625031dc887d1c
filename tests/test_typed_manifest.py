"""The typed manifest: every default declared once, equal to the schema's, and no raw reads outside it."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from auditor.manifest.sections import (
    DEFAULTS,
    FactorySection,
    LRSchedulerSection,
    ManifestSections,
    ModelSection,
)

SCHEMA = json.loads((REPO / "schemas" / "manifest.schema.json").read_text(encoding="utf-8"))


def _plain(value: Any) -> Any:
    """A typed value as JSON would hold it: tuples as lists, mappings as dicts."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _resolve(prop: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    return SCHEMA["$defs"][ref.rsplit("/", 1)[-1]] if ref else prop


def _schema_defaults() -> list[tuple[str, Any]]:
    """(dotted key, default) for every default the schema declares, one level into the sections."""
    found = []
    for key, prop in SCHEMA["properties"].items():
        if "default" in prop:
            found.append((key, prop["default"]))
        for leaf, sub in (_resolve(prop).get("properties") or {}).items():
            if "default" in sub:
                found.append((f"{key}.{leaf}", sub["default"]))
    return found


def test_the_schema_declares_defaults_at_all():
    # Guards the guard: an empty list would make the next test pass whatever the code says.
    keys = [key for key, _ in _schema_defaults()]
    assert {
        "fail_on",
        "call_timeout_s",
        "pythonpath",
        "report.dir",
        "report.formats",
        "report.redact",
    } <= set(keys)


@pytest.mark.parametrize(("key", "default"), _schema_defaults(), ids=lambda v: str(v))
def test_typed_defaults_equal_the_schema_defaults(key: str, default: Any):
    section, _, leaf = key.partition(".")
    if not leaf:
        assert _plain(getattr(DEFAULTS, section)) == default, key
        return
    # Sections absent by default (model, optimizer, loss) still declare their leaves' defaults.
    typed = getattr(DEFAULTS, section)
    if typed is None:
        typed = {"model": ModelSection, "lr_scheduler": LRSchedulerSection}.get(section, FactorySection)()
    assert _plain(getattr(typed, leaf)) == default, key


def test_every_top_level_key_has_a_typed_attribute():
    fields = {field.name for field in dataclasses.fields(ManifestSections)}
    assert fields == set(SCHEMA["properties"])


def test_a_written_manifest_reads_back_typed(tmp_path):
    typed = ManifestSections.from_mapping(
        {
            "version": 1,
            "name": "pets",
            "pythonpath": ["src"],
            "task": {"type": "binary"},
            "model": {
                "factory": "m:build",
                "pretrained": "torchvision:ResNet18_Weights.DEFAULT",
                "head": "fc",
            },
            "loss": {"factory": "torch.nn:BCEWithLogitsLoss", "kwargs": {"reduction": "sum"}},
            "data": {"train": {"format": "image_folder", "root": "data/train"}},
            "audits": {"gradient_probe": {"steps": 3}, "label_distribution": None},
            "report": {"formats": ["json", "sarif"]},
            "fail_on": "warning",
            "call_timeout_s": 5,
        }
    )
    assert typed.name == "pets" and typed.pythonpath == ("src",)
    assert typed.task.type == "binary" and typed.task.declared and typed.task.num_classes is None
    assert typed.model == ModelSection("m:build", {}, "torchvision:ResNet18_Weights.DEFAULT", "fc")
    assert typed.optimizer is None
    assert typed.loss == FactorySection("torch.nn:BCEWithLogitsLoss", {"reduction": "sum"})
    assert typed.report.formats == ("json", "sarif") and typed.report.dir == "reports"
    assert typed.report.redact is False
    assert typed.fail_on == "warning" and typed.call_timeout_s == 5.0 and typed.scheduler is None
    assert typed.audits == {"gradient_probe": {"steps": 3}, "label_distribution": None}


def _raw_reads(path: Path) -> list[int]:
    """Lines of ``path`` that read an attribute ``raw`` (a method call ``split.raw(i)`` is something else)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "raw" and id(node) not in called
    ]


def test_no_raw_manifest_reads_outside_the_manifest_package():
    manifest_package = REPO / "auditor" / "manifest"
    offenders = [
        f"{path.relative_to(REPO)}:{line}"
        for top in ("auditor", "plugins", "tests")
        for path in sorted((REPO / top).rglob("*.py"))
        if manifest_package not in path.parents
        for line in _raw_reads(path)
    ]
    assert not offenders, (
        "expected the manifest's typed attributes (manifest.model, .task, .report, .fail_on, ...) outside "
        f"auditor/manifest/, found reads of .raw at {offenders}; hint: add a typed attribute to "
        "auditor/manifest/sections.py instead"
    )


def test_the_raw_guard_sees_a_raw_read(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("x = manifest.raw.get('fail_on')\ny = split.raw(3)\n", encoding="utf-8")
    assert _raw_reads(sample) == [1]
