"""docs/manifest.md is generated from the schemas and lists every key with its default."""

from __future__ import annotations

import json

from conftest import REPO

from auditor._util.schemas import load_schema
from auditor.data.splits import COMMON_SPLIT_PROPERTIES
from auditor.manifest._docs import manifest_markdown
from auditor.run.registry import load_registry


def test_committed_page_is_current():
    page = (REPO / "docs" / "manifest.md").read_text(encoding="utf-8")
    assert page == manifest_markdown(load_registry(autoload=False)), (
        "docs/manifest.md is stale: run `python -m auditor.manifest._docs > docs/manifest.md`"
    )


def _keys(properties, prefix=""):
    for name, schema in properties.items():
        yield prefix + name, schema
        if isinstance(schema.get("properties"), dict):
            yield from _keys(schema["properties"], f"{prefix}{name}.")


def test_every_key_and_default_is_listed():
    registry = load_registry(autoload=False)
    page = manifest_markdown(registry)
    rows = {
        line.split("|")[1].strip().strip("`"): line for line in page.splitlines() if line.startswith("| `")
    }
    expected = dict(_keys(load_schema("manifest")["properties"]))
    expected.update(_keys(COMMON_SPLIT_PROPERTIES, "data.SPLIT."))
    for fmt in registry.data_formats.values():
        expected.update(_keys(fmt.properties, "data.SPLIT."))
    for audit in registry.audits.values():
        expected.update(_keys(audit.options_schema.get("properties") or {}, f"audits.{audit.name}."))
    expected.pop("data")
    expected.pop("audits")
    for key, schema in expected.items():
        assert key in rows, f"{key} is missing from docs/manifest.md"
        if "default" in schema:
            assert f"| `{json.dumps(schema['default'])}` |" in rows[key], (key, rows[key])
    # the defaults a user asked for in the issue: the csv columns
    assert '`data.SPLIT.label_column` | string | `"label"`' in page
    assert '`data.SPLIT.path_column` | string | `"path"`' in page
