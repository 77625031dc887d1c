"""One real CLI run of the quickstart example, shared by the report-format tests.

The quickstart manifest lists all five built-in audits; the copy runs them all
(a built-in that fails to load fails these tests, never hides behind a skip)
and asks for every report format through ``report.formats``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from conftest import QUICKSTART

FORMATS = ["json", "html", "sarif", "junit", "github", "markdown"]
FILES = {
    "json": "report.json",
    "html": "report.html",
    "sarif": "report.sarif",
    "junit": "report.junit.xml",
    "github": "github-annotations.txt",
    "markdown": "report.md",
}


@dataclass(frozen=True)
class QuickstartRun:
    project: Path
    reports: Path
    report: dict[str, Any]
    returncode: int
    stdout: str
    stderr: str

    def text(self, fmt: str) -> str:
        return (self.reports / FILES[fmt]).read_text(encoding="utf-8")


def cli_env() -> dict[str, str]:
    """The user's environment minus GITHUB_WORKSPACE, so paths are relative to the run's folder."""
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_WORKSPACE"}
    env.update(COLUMNS="200", NO_COLOR="1")
    return env


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditor", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )


def copy_quickstart(target: Path, formats: list[str] = FORMATS) -> Path:
    shutil.copytree(
        QUICKSTART, target, ignore=shutil.ignore_patterns("reports", ".auditor-cache", "__pycache__")
    )
    manifest = yaml.safe_load((target / "audit.yaml").read_text(encoding="utf-8"))
    manifest["report"] = {"dir": "reports", "formats": list(formats)}
    (target / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return target


_RUNS: dict[str, QuickstartRun] = {}


def quickstart_run(base: Path) -> QuickstartRun:
    """Run ``auditor run audit.yaml`` once per test process; later calls reuse it."""
    key = str(base)
    if key not in _RUNS:
        project = copy_quickstart(base / "quickstart")
        done = run_cli("run", "audit.yaml", cwd=project)
        assert done.returncode in (0, 1), done.stdout + done.stderr
        reports = project / "reports"
        report = json.loads((reports / "report.json").read_text(encoding="utf-8"))
        _RUNS[key] = QuickstartRun(project, reports, report, done.returncode, done.stdout, done.stderr)
    return _RUNS[key]
