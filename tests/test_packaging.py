"""The wheel is the product: build it, install it non-editable into a fresh venv, use it there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import QUICKSTART, REPO

pytestmark = pytest.mark.slow


def _dependency_farm(target: Path) -> Path:
    """The test venv's installed dependencies, minus auditor itself.

    Installing torch afresh costs minutes and gigabytes, so the fresh venv sees
    the already-installed dependencies through a .pth file — but only through
    links that leave out this checkout's editable auditor, so what runs is the
    wheel alone.
    """
    site = Path(sysconfig.get_paths()["purelib"])
    target.mkdir()
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("auditor", "__editable__", "_auditor")) or name.endswith(".pth"):
            continue
        (target / entry.name).symlink_to(entry)
    return target


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = dist.glob("auditor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "auditor_schemas/manifest.schema.json" in names and "auditor_schemas/report.schema.json" in names
    assert "auditor_plugins/label_distribution/__init__.py" in names
    # Every module of every built-in sub-package ships: a package missing from the build config would
    # import in the checkout (editable) and fail only for people who pip install the wheel.
    shipped = {
        f"auditor_plugins/{p.relative_to(REPO / 'plugins').as_posix()}"
        for p in (REPO / "plugins").rglob("*.py")
    }
    assert shipped - set(names) == set()
    shipped_host = {
        f"auditor/{p.relative_to(REPO / 'auditor').as_posix()}" for p in (REPO / "auditor").glob("*.py")
    }
    assert shipped_host - set(names) == set()
    assert not any(n.startswith("plugins/") for n in names), "built-ins must not install as a bare 'plugins'"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "label_distribution = auditor_plugins.label_distribution"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    farm = _dependency_farm(tmp_path / "deps")
    venv_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (venv_site / "zz_test_dependencies.pth").write_text(str(farm) + "\n")

    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns("reports", ".auditor-cache"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(COLUMNS="200", NO_COLOR="1")
    probe = (
        "import auditor, auditor_plugins, auditor._util.schemas as s;"
        "print(auditor.__file__); print(auditor_plugins.__file__); print(s.schema_path('report'))"
    )
    where = subprocess.run(
        [str(python), "-c", probe], cwd=project, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    assert all(path.startswith(str(venv)) for path in where), where

    auditor = venv / "bin" / "auditor"
    listed = subprocess.run(
        [str(auditor), "list"], cwd=project, env=env, check=False, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert "label_distribution" in listed.stdout and "broken plugin" not in listed.stdout, listed.stdout

    run = subprocess.run(
        [str(auditor), "run", "audit.yaml"],
        cwd=project,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr
    assert (project / "reports" / "report.json").is_file()
    assert "LD001" in run.stdout


def test_everything_the_test_extra_lists_is_installed():
    # Tests use importorskip for optional integrations; in CI (`make test` = pip install '.[test]') a missing
    # one would turn those tests into silent skips. This fails instead, naming the package.
    import importlib.metadata
    import re

    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    missing = []
    for requirement in extra["test"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
    assert not missing, f"the test extra lists {missing}, which are not installed: pip install -e '.[test]'"
