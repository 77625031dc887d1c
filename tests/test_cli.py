"""The CLI as a user runs it: subprocesses, exit codes, and no torch import where it must stay fast."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import QUICKSTART, REPO

from auditor._util.paths import display_path

NO_TORCH_CHECK = textwrap.dedent("""
    import runpy, sys
    sys.argv = ["auditor", *{args!r}]
    try:
        runpy.run_module("auditor", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    heavy = sorted(m for m in ("torch", "torchvision", "numpy", "PIL", "pandas") if m in sys.modules)
    print("HEAVY=" + ",".join(heavy))
    sys.exit(code)
""")


def _run_checking_imports(*args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_CHECK.format(args=list(args))],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    heavy = result.stdout.strip().splitlines()[-1]
    return result, heavy


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["validate", str(QUICKSTART / "audit.yaml")],
        ["list"],
        ["explain", "LD001"],
        ["schema", "report"],
    ],
)
def test_fast_commands_do_not_import_torch(args):
    result, heavy = _run_checking_imports(*args)
    assert result.returncode == 0, result.stderr
    assert heavy == "HEAVY=", f"{args} imported {heavy}"


def test_validate_reports_every_problem_with_exit_2(tmp_path, cli):
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\ndata:\n  train: {format: image_folder, root: data}\n")
    (tmp_path / "data").mkdir()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\noptimiser: {factory: torch.optim:SGD}\ndata:\n  train: {format: image_folder}\n"
    )
    result = cli("validate", good, bad)
    assert result.returncode == 2
    assert f"ok {good}" in result.stdout  # the path as given
    # Problems show paths relative to the working folder when that is shorter (the CLI runs in ours).
    err = " ".join(result.stderr.split())
    assert f"{display_path(bad)}:2: optimiser" in err and "did you mean 'optimizer'" in err
    assert f"{display_path(bad)}:4: data.train.root" in err
    assert cli("validate", good, "--quiet").stdout == ""


def test_explain_prints_the_documented_text(cli):
    from auditor.cli.explain import catalog_markdown
    from auditor.run.registry import load_registry

    result = cli("explain", "ld004")
    assert result.returncode == 0
    assert result.stdout.startswith("## LD004: imbalanced data with an unweighted loss")
    for part in ("What it means", "Why it breaks training", "How to fix it", "Example"):
        assert part in result.stdout
    docs = (REPO / "docs" / "codes.md").read_text(encoding="utf-8")
    assert result.stdout in docs
    assert docs == catalog_markdown(load_registry(autoload=False)), (
        "docs/codes.md is stale: run `python -m auditor.cli.explain > docs/codes.md`"
    )
    unknown = cli("explain", "LD999")
    assert unknown.returncode == 2 and "LD999" in unknown.stderr


def test_schema_command_prints_valid_json(cli):
    for name in ("manifest", "report"):
        result = cli("schema", name)
        assert result.returncode == 0
        assert json.loads(result.stdout)["title"].startswith("auditor")


def test_bad_command_line_is_exit_2(cli):
    assert cli("run", "--fail-on", "sometimes").returncode == 2
    assert cli("frobnicate").returncode == 2


def test_report_command_rerenders_a_saved_report(tmp_path, image_folder, manifest_writer, cli):
    image_folder(tmp_path / "train", {"cat": 12, "dog": 12})
    manifest = manifest_writer(
        tmp_path, {"version": 1, "data": {"train": {"format": "image_folder", "root": "train"}}}
    )
    assert cli("run", manifest, "--only", "label_distribution", "--format", "json").returncode == 0
    result = cli(
        "report", tmp_path / "reports" / "report.json", "--format", "json", "--output-dir", tmp_path / "again"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "again" / "report.json").read_text())["tool"]["name"] == "auditor"
    (tmp_path / "junk.json").write_text("{}")
    assert cli("report", tmp_path / "junk.json", "--format", "json").returncode == 2
