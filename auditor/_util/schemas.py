"""Locating the JSON Schemas shipped in ``schemas/`` (a checkout) or the wheel."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_NAMES", "load_schema", "schema_path"]

SCHEMA_NAMES = ("manifest", "report")


def schema_path(name: str) -> Path:
    """Path of ``schemas/<name>.schema.json``, installed or in a source checkout."""
    if name not in SCHEMA_NAMES:
        raise KeyError(f"unknown schema {name!r}; expected one of {SCHEMA_NAMES}")
    filename = f"{name}.schema.json"
    try:
        import auditor_schemas  # the wheel maps schemas/ to this package

        for location in getattr(auditor_schemas, "__path__", []):
            candidate = Path(location) / filename
            if candidate.is_file():
                return candidate
    except ImportError:
        pass
    checkout = Path(__file__).resolve().parents[2] / "schemas" / filename
    if checkout.is_file():
        return checkout
    raise FileNotFoundError(f"schema {filename} is not installed; reinstall auditor")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    return json.loads(schema_path(name).read_text(encoding="utf-8"))
