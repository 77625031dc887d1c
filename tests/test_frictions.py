"""Newcomer frictions of issue 28: hints that name codes that did not run, `auditor list` cutting names,
README tables gone stale."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from auditor.run.registry import load_registry
from auditor.testing import run_cli, run_in_process

CODE = re.compile(r"\b[A-Z]{2,4}[0-9]{3}\b")


def _texts(report: dict) -> list[str]:
    texts = [f"{f['message']} {f['hint']}" for f in report["findings"]]
    texts += [note for audit in report["audits"] for note in audit.get("notes") or []]
    return texts


def _named_but_not_run(report: dict) -> list[tuple[str, str]]:
    """(code, text) for every code a finding or note names whose audit did not finish its job here."""
    registry = load_registry()
    status = {a["name"]: a["status"] for a in report["audits"]}
    bad = []
    for text in _texts(report):
        for code in CODE.findall(text):
            owner = registry.audit_for_code(code)
            if owner is not None and status.get(owner.name) not in ("passed", "failed"):
                bad.append((code, text))
    return bad


TINY_MODEL = """
from torch import nn, optim


def build(outputs=2):
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 8), nn.ReLU(), nn.Linear(8, outputs))


def make_optimizer(model):
    return optim.SGD(model.parameters(), lr=0.01)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    """A head of 2 outputs for 3 classes, one of them only in 'val': FZ007 with a cross-reference to LD002."""
    from auditor.testing import make_image_folder, write_manifest

    root = tmp_path_factory.mktemp("tiny")
    (root / "src").mkdir()
    (root / "src" / "tinymod.py").write_text(TINY_MODEL, encoding="utf-8")
    make_image_folder(root / "data" / "train", {"a": 12, "b": 12}, size=8)
    make_image_folder(root / "data" / "val", {"a": 3, "b": 3, "c": 3}, size=8, seed=1)
    transform = {"transform": "torchvision.transforms:ToTensor"}
    write_manifest(
        root / "audit.yaml",
        {
            "version": 1,
            "name": "tiny",
            "pythonpath": ["src"],
            "model": {"factory": "tinymod:build", "kwargs": {"outputs": 2}},
            "optimizer": {"factory": "tinymod:make_optimizer"},
            "loss": {"factory": "torch.nn:CrossEntropyLoss"},
            "data": {
                "train": {"format": "image_folder", "root": "data/train", **transform},
                "val": {"format": "image_folder", "root": "data/val", **transform},
            },
        },
    )
    return root


@pytest.mark.parametrize(
    "selection",
    [
        {"skip": ["label_distribution"]},
        {"only": ["frozen_coverage"]},
        pytest.param(
            {"skip": ["data_loading", "label_distribution", "transform_parity"]}, marks=pytest.mark.slow
        ),
    ],
)
def test_no_hint_names_a_code_that_did_not_run(project, tmp_path, selection):
    done = run_in_process(project / "audit.yaml", static=True, output_dir=tmp_path, **selection)
    assert done.exit_code in (0, 1)
    assert done.report["findings"], "the project has findings; the check below must have something to read"
    assert _named_but_not_run(done.report) == []


def test_the_cross_reference_is_there_when_its_audit_runs(project, tmp_path):
    def fz007(**selection: object) -> dict:
        done = run_in_process(project / "audit.yaml", static=True, output_dir=tmp_path, **selection)
        return next(f for f in done.report["findings"] if f["code"] == "FZ007")

    assert "(see LD002)" in fz007(only=["frozen_coverage", "label_distribution"])["message"]
    assert "LD002" not in fz007(only=["frozen_coverage"])["message"]
    assert "LD002" not in fz007(only=["frozen_coverage", "label_distribution"], ignore=["LD002"])["message"]


def test_auditor_list_never_cuts_a_name_when_piped(tmp_path):
    done = run_cli("list", cwd=tmp_path, env={"COLUMNS": "30"})
    assert done.returncode == 0, done.stderr
    registry = load_registry()
    for audit in registry.ordered_audits():
        row = done.listed_audit(audit.name)
        owner = registry.audit_plugin[audit.name]
        assert row["distribution"] == f"{owner.distribution} {owner.version}"
        assert row["codes"] == " ".join(c.code for c in audit.codes)
    assert "\u2026" not in done.stdout
    assert "report formats: " + ", ".join(sorted(registry.report_formats)) in done.stdout


def test_auditor_list_on_a_narrow_terminal_wraps_names_whole():
    import io

    from rich.console import Console
    from rich.table import Table

    # What _cmd_list builds for a terminal: every column folds, none ends in an ellipsis.
    table = Table()
    for column in ("audit", "codes"):
        table.add_column(column, overflow="fold")
    name = "a_very_long_third_party_plugin_audit_name"
    table.add_row(name, "XYZ001 XYZ002 XYZ003")
    out = io.StringIO()
    Console(file=out, width=30, color_system=None).print(table)
    text = out.getvalue()
    assert "\u2026" not in text
    first_column = [
        line.split("\u2502")[1].strip() for line in text.splitlines() if line.count("\u2502") == 3
    ]
    assert "".join(first_column) == name


def test_readme_tables_are_generated_from_the_registry():
    from auditor.cli._readme import render_readme

    text = (REPO / "README.md").read_text(encoding="utf-8")
    fresh = render_readme(text, load_registry(autoload=False))
    assert fresh == text, "README.md tables are stale: run `python -m auditor.cli._readme`"
    registry = load_registry(autoload=False)
    for audit in registry.ordered_audits():
        assert f"| `{audit.name}` |" in text
    last = max(c.code for a in registry.ordered_audits() for c in a.codes if c.code.startswith("FZ"))
    assert last in text  # the table once stopped at FZ007 when FZ008 existed
