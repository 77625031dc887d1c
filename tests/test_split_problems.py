"""A split that cannot be opened: one manifest problem per split, in auditor's words, and audits skipped."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART

from auditor.testing import run_cli


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """The quickstart with two wrong tables, run once: val names a missing column, test misses the default one."""
    base = tmp_path_factory.mktemp("broken")
    project = base / "project"
    shutil.copytree(
        QUICKSTART, project, ignore=shutil.ignore_patterns("reports", ".auditor-cache", "__pycache__")
    )
    manifest = yaml.safe_load((project / "audit.yaml").read_text(encoding="utf-8"))
    manifest["data"]["val"] = {"format": "csv", "path": "val.csv", "label_column": "lable"}
    manifest["data"]["test"] = {"format": "csv", "path": "test.csv"}
    manifest["audits"] = {"label_distribution": {}, "split_leakage": {}, "transform_parity": {"samples": 0}}
    manifest["report"] = {"dir": "reports", "formats": ["json", "markdown"]}
    (project / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    (project / "val.csv").write_text("path,label\ndata/val/cat/leak_exact_0.jpg,cat\n", encoding="utf-8")
    (project / "test.csv").write_text("file,label\ndata/val/cat/leak_exact_0.jpg,cat\n", encoding="utf-8")
    # `auditor run DIR` reads DIR/audit.yaml; COLUMNS=80 shows whether piped output hard-wraps.
    done = run_cli("run", "project", cwd=base, env={"COLUMNS": "80"})
    report = json.loads((project / "reports" / "report.json").read_text(encoding="utf-8"))
    return done, report


def test_each_broken_split_is_one_manifest_problem(broken):
    done, report = broken
    assert done.returncode == 2, done.stdout + done.stderr
    assert [p["key"] for p in report["problems"]] == ["data.val.label_column", "data.test.path_column"]
    assert report["exit_code"] == 2
    out = done.stdout
    assert out.count("'lable' is not among its columns ['path', 'label']") == 1, out
    assert out.count("'path' (the default) is not among its columns ['file', 'label']") == 1, out
    assert "usecols" not in out and "pandas" not in out.lower(), "a library's own message leaked"
    assert "2 manifest problems" in out and "0 infos" not in out and "no info" in out


def test_audits_that_need_a_broken_split_are_skipped_pointing_at_it(broken):
    _, report = broken
    for audit in report["audits"]:
        assert audit["status"] == "skipped", audit
        assert "data.val and data.test could not be opened" in audit["reason"], audit["reason"]
    assert report["findings"] == []


def test_run_dir_and_output_without_hard_wraps(broken):
    done, _ = broken
    assert re.search(
        r"^auditor \S+: project/audit.yaml$", done.stdout, re.MULTILINE
    )  # the file a folder stands for
    long_lines = [line for line in done.stdout.splitlines() if len(line) > 80]
    assert any("could not be opened" in line for line in long_lines), "piped output was wrapped at 80 columns"
    assert not any(line.startswith(("data.", "split ", "'")) for line in done.stdout.splitlines()), (
        "a continuation line at column 0"
    )


def test_markdown_lists_the_problems(broken):
    _, report = broken
    md = (Path(report["manifest"]["path"]).parent / "reports" / "report.md").read_text(encoding="utf-8")
    assert "**Manifest problems**" in md and "errored" in md
    assert "data.val.label\\_column" in md and "data.test.path\\_column" in md
