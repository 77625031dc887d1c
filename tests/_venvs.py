"""Throw-away environments for installing plugin packages without touching the test venv.

A package installed into the shared ``.venv`` would be seen by every other
test (its audits would run on their manifests). An *overlay* venv is a real,
empty venv whose ``site-packages`` holds only what the test installs into it;
a ``.pth`` line makes the test venv's packages (auditor itself, torch, pytest,
pip, setuptools) visible behind it, so nothing is downloaded or copied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = ["clean_env", "copy_source", "overlay_venv", "pip_install", "run_pytest"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS")}
    env.update(COLUMNS="200", NO_COLOR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def overlay_venv(target: Path) -> Path:
    """Create the overlay venv at ``target``; return its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    python = target / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    parent = sysconfig.get_paths()["purelib"]
    # addsitedir (not a bare path line) so the parent's own .pth files run too: that is
    # what makes this checkout's editable auditor importable.
    (site / "zz_parent_site.pth").write_text(f"import site; site.addsitedir({parent!r})\n", encoding="utf-8")
    return python


def copy_source(source: Path, target: Path) -> Path:
    """Copy a package's source tree, so building it writes build/ and *.egg-info there, not in the repo."""
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns(
            "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "reports", ".auditor-cache"
        ),
    )
    return target


def pip_install(python: Path, source: Path) -> subprocess.CompletedProcess[str]:
    """``pip install SOURCE`` into the overlay, offline: dependencies must already be satisfied."""
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-build-isolation", "-q", str(source)],
        env=clean_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_pytest(python: Path, project: Path) -> subprocess.CompletedProcess[str]:
    """The package's own test suite, as its author would run it (from the project folder)."""
    return subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=project,
        env=clean_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
