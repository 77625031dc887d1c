"""Shared fixtures: real image folders, manifests, CLI runs as subprocesses."""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart"


def make_image(path: Path, seed: int, size: int = 32, fmt: str | None = None) -> Path:
    """A distinct, natural-looking-enough RGB image (random blobs over a gradient)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(rng.randint(0, 255) for _ in range(3)))
    pen = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randint(0, size), rng.randint(0, size)
        r = rng.randint(2, max(3, size // 3))
        pen.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


def make_image_folder(
    root: Path, counts: Mapping[str, int], *, size: int = 32, seed: int = 0, ext: str = ".png"
) -> list[Path]:
    """``root/<class>/<i>.png`` with ``counts[class]`` distinct images each."""
    paths = []
    for class_index, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            paths.append(
                make_image(root / name / f"{i:04d}{ext}", seed * 100_003 + class_index * 10_007 + i, size)
            )
    return paths


def write_manifest(
    folder: Path, manifest: Mapping[str, Any], name: str = "audit.yaml", *, only_listed: bool = True
) -> Path:
    """Write ``manifest``; with ``only_listed``, every installed audit its ``audits:`` omits is written as
    ``name: false``, so the test runs only the audits it lists (``audits:`` configures, it never selects)."""
    manifest = dict(manifest)
    if only_listed and isinstance(manifest.get("audits"), Mapping):
        manifest["audits"] = {**{n: False for n in _installed_audits()}, **manifest["audits"]}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


@functools.cache
def _installed_audits() -> tuple[str, ...]:
    from auditor.run.registry import load_registry

    return tuple(load_registry().audits)


def run_cli(
    *args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m auditor ARGS`` in a subprocess, as a user would run it."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "auditor", *map(str, args)],
        cwd=cwd,
        env=full_env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_json_report(folder: Path) -> dict[str, Any]:
    from auditor.report.document import validate_report

    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    validate_report(report)
    return report


@pytest.fixture
def image_folder() -> Callable[..., list[Path]]:
    return make_image_folder


@pytest.fixture
def manifest_writer() -> Callable[..., Path]:
    return write_manifest


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture
def run_audit() -> Callable[..., Any]:
    """Run a manifest in-process; the JSON report is validated against its schema."""
    from auditor.report.document import validate_report
    from auditor.run.api import run_manifest

    def _run(manifest: Path, **kwargs: Any) -> Any:
        kwargs.setdefault("formats", ["json"])
        kwargs.setdefault("output_dir", manifest.parent / "reports")
        outcome = run_manifest(manifest, **kwargs)
        validate_report(outcome.report)
        return outcome

    return _run
