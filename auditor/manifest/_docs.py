"""docs/manifest.md: every manifest key, every data-format option and every audit option, from the schemas.

One source for the docs and the validator: the manifest's JSON Schema, each
data format's option schema and each audit's option schema. ``python -m
auditor.manifest._docs > docs/manifest.md`` regenerates the page, and
``tests/test_manifest_docs.py`` fails when the committed page differs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from auditor._util.schemas import load_schema
from auditor.data.splits import COMMON_SPLIT_PROPERTIES
from auditor.run.registry import Registry, load_registry

__all__ = ["manifest_markdown"]

_INTRO = """\
# Manifest reference

Every key of a manifest (`audit.yaml`, `version: 1`), every option of each data
format and of each audit, with its default. Generated from the JSON Schemas that
`auditor validate` checks against (`python -m auditor.manifest._docs > docs/manifest.md`),
so this page and the validator never disagree. `auditor schema manifest` prints
the manifest's own schema.

Paths are relative to the manifest's folder; `module:attr` strings are imported
with `pythonpath` prepended to `sys.path`. `auditor run DIR` reads `DIR/audit.yaml`.

Limits (each refused with exit 2 and a message naming the file; see
[reliability](reliability.md#paths-caches-and-parsers)): a manifest is at most
{max_bytes} KiB; values nest at most {max_depth} levels deep, as written and once
aliases are expanded; aliases may add at most {max_expanded:,} values; no number
may be NaN or infinite (`.nan`, `.inf`): for no practical limit write a large one.
"""


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return merged
    return schema


def _kind(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """The accepted values of a key in a few words."""
    schema = _resolve(schema, root)
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "oneOf" in schema or "anyOf" in schema:
        return " or ".join(_kind(branch, root) for branch in schema.get("oneOf") or schema.get("anyOf"))
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    words = []
    for k in kinds:
        if k == "array":
            items = schema.get("items")
            words.append(f"list of {_kind(items, root)}" if isinstance(items, Mapping) else "list")
        elif k == "object":
            words.append("mapping")
        elif k == "string" and schema.get("pattern"):
            pattern = str(schema["pattern"])
            if "torchvision" in pattern:
                words.append("string `torchvision:...` / `timm:...`")
            elif pattern.startswith("^[A-Za-z_]") and ":[A-Za-z_]" in pattern:
                words.append("`module:attr`")
            else:
                words.append(f"string matching `{pattern}`")
        elif k == "null":
            words.append("null")
        else:
            words.append(str(k))
    limits = [
        f"{op} {schema[key]}"
        for key, op in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        )
        if key in schema
    ]
    text = " or ".join(words) or "any"
    return text + (f" ({', '.join(limits)})" if limits else "")


def _default(schema: Mapping[str, Any], required: bool) -> str:
    if "default" in schema:
        return f"`{json.dumps(schema['default'])}`"
    return "required" if required else "not set"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows(
    properties: Mapping[str, Any], required: set[str], root: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """One table row per key, nested mappings with known keys flattened as ``parent.child``."""
    rows = []
    for name in properties:
        schema = _resolve(properties[name], root)
        key = f"{prefix}{name}"
        description = schema.get("description", "")
        rows.append(
            f"| `{key}` | {_cell(_kind(schema, root))} | {_default(schema, name in required)} | "
            f"{_cell(description)} |"
        )
        nested = schema.get("properties")
        if isinstance(nested, Mapping) and schema.get("type") == "object":
            rows += _rows(nested, set(schema.get("required") or []), root, f"{key}.")
    return rows


def _table(
    properties: Mapping[str, Any], required: set[str], root: Mapping[str, Any], prefix: str = ""
) -> str:
    head = ["| key | value | default | what it is |", "| --- | --- | --- | --- |"]
    return "\n".join(head + _rows(properties, required, root, prefix)) + "\n"


def manifest_markdown(registry: Registry) -> str:
    schema = load_schema("manifest")
    top = {k: v for k, v in schema["properties"].items() if k not in ("data", "audits")}
    from auditor.manifest._read import MAX_MANIFEST_BYTES
    from auditor.manifest._yaml import MAX_DEPTH, MAX_EXPANDED

    intro = _INTRO.format(
        max_bytes=MAX_MANIFEST_BYTES // 1024, max_depth=MAX_DEPTH, max_expanded=MAX_EXPANDED
    )
    parts = [intro, "## Top-level keys\n", _table(top, set(schema.get("required") or []), schema)]
    data = schema["properties"]["data"]
    audits = schema["properties"]["audits"]
    parts += [
        "## `data`: the splits\n",
        (
            f"{data.get('description', '')}. Required. Every split has the keys below, plus the options of its "
            "`format`.\n"
        ),
        _table(COMMON_SPLIT_PROPERTIES, {"format"}, schema, "data.SPLIT."),
    ]
    for name in sorted(registry.data_formats):  # autoload=False: the built-in formats only
        fmt = registry.data_formats[name]
        parts += [
            f"### format `{name}`\n",
            f"{fmt.description}.\n",
            _table(fmt.properties, set(fmt.required), fmt.schema(), "data.SPLIT."),
        ]
    parts += [
        "## `audits`: options per audit (every installed audit runs)\n",
        f"{audits.get('description', '')}. An unknown option is an error naming the allowed ones.\n",
        "`audits:` configures; it never selects: an audit the manifest does not list runs with its "
        "defaults. `name: false` turns one off, and every run reports it with the status `disabled` "
        "(so do `--only`/`--skip`); `auditor validate` prints a note for it.\n\n"
        "```yaml\naudits:\n  gradient_probe: {steps: 10}\n  split_leakage: false   # disabled, and reported as such\n```\n",
    ]
    for audit in registry.ordered_audits():
        if registry.audit_plugin[audit.name].distribution.lower() != "auditor":
            continue
        options = audit.options_schema.get("properties") or {}
        parts.append(f"### `{audit.name}`\n")
        parts.append(
            _table(
                options,
                set(audit.options_schema.get("required") or []),
                audit.options_schema,
                f"audits.{audit.name}.",
            )
            if options
            else "No options.\n"
        )
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(manifest_markdown(load_registry(autoload=False)))
