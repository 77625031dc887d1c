"""examples/notebook.ipynb executed by a real Jupyter kernel: auditor.check's report is displayed inline."""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from conftest import REPO

NOTEBOOK = REPO / "examples" / "notebook.ipynb"
KERNEL = "auditor-test-venv"


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that runs this interpreter (the test's venv), found through JUPYTER_PATH only."""
    from ipykernel.kernelspec import write_kernel_spec

    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    write_kernel_spec(
        spec_dir,
        overrides={
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "auditor tests",
        },
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


@pytest.mark.slow
def test_notebook_runs_and_displays_the_report(kernel_name: str, tmp_path: Path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name=kernel_name, timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    shown = [
        out["data"]["text/html"]
        for out in outputs
        if out.get("output_type") == "execute_result" and "text/html" in out.get("data", {})
    ]
    reports = [page for page in shown if "auditor-report" in page]
    assert len(reports) == 1
    page = reports[0]
    assert "<iframe srcdoc=" in page and "<script" not in page
    inner = html.unescape(page.split('srcdoc="', 1)[1].split('"', 1)[0])
    assert inner.lstrip().lower().startswith("<!doctype html") and "<script" not in inner.lower()
    codes_cell = next(
        out
        for out in outputs
        if out.get("output_type") == "execute_result"
        and "text/plain" in out.get("data", {})
        and "exit" not in out["data"]["text/plain"]
        and out["data"]["text/plain"].startswith("([")
    )
    codes = json.loads(codes_cell["data"]["text/plain"].split("]")[0].lstrip("(").replace("'", '"') + "]")
    assert {"SL001", "FZ003", "GP008"} <= set(codes)
    assert all(code in inner for code in codes)
    # The text repr is there too, for consoles that cannot show HTML.
    report_result = next(
        out
        for out in outputs
        if out.get("output_type") == "execute_result"
        and "auditor-report" in out.get("data", {}).get("text/html", "")
    )
    assert report_result["data"]["text/plain"].startswith("auditor: exit code 1")
    assert not list(tmp_path.glob(".auditor-cache"))  # no cache written beside the notebook by default
