"""Shared fixtures: real image folders, manifests, CLI runs as subprocesses.

The helpers are ``auditor.testing``'s, the ones plugin authors get: this suite tests
with the same kit it ships. Only what the kit has no use for lives here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditor.testing import AuditorRun, CliResult, make_image_folder, run_cli, run_in_process, write_manifest

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart"


def load_json_report(folder: Path) -> dict[str, Any]:
    """``folder/report.json``, checked against ``report.schema.json``."""
    from auditor.report.document import validate_report

    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    validate_report(report)
    return report


@pytest.fixture
def image_folder() -> Callable[..., Path]:
    return make_image_folder


@pytest.fixture
def manifest_writer() -> Callable[..., Path]:
    return write_manifest


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    return run_cli


@pytest.fixture
def run_audit() -> Callable[..., AuditorRun]:
    """Run a manifest in-process (``auditor.testing.run_in_process``); the JSON report is validated."""
    return run_in_process
