"""A pytest plugin for people who write auditor plugins.

Installed with auditor and loaded by pytest automatically (entry point
``pytest11``), it gives a plugin's own test suite three fixtures:

``auditor_project``
    a :class:`Project` in a fresh temporary folder: write real images (any
    size, colour mode or a corrupt file), image folders and a manifest.
``auditor_run``
    run a manifest in-process, exactly as ``auditor run`` does, and get an
    :class:`AuditorRun` back: ``.codes()``, ``.exit_code``, ``.findings_for()``
    and ``assert_*`` helpers whose failure messages list what was found.
``auditor_cli``
    run the ``auditor`` command line in a subprocess (``python -m auditor``)
    and get a :class:`CliResult` with its exit code, output and report.

Example::

    def test_tiny_images_are_reported(auditor_project, auditor_run):
        train = auditor_project.image_folder("data/train", {"cat": 3, "dog": 3}, size=(8, 8))
        manifest = auditor_project.manifest(data={"train": train}, audits={"image_properties": {}})
        auditor_run(manifest).assert_codes("IP003")

Nothing here imports torch; the helpers import PIL and auditor's runner only
when they are used, so loading the plugin costs pytest nothing.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "AuditorRun",
    "CliResult",
    "Project",
    "auditor_cli",
    "auditor_project",
    "auditor_run",
    "make_image",
    "make_image_folder",
    "run_cli",
    "run_in_process",
    "write_manifest",
]

# -- data and manifests --------------------------------------------------------------


def make_image(
    path: Path | str,
    *,
    size: int | tuple[int, int] = 32,
    mode: str = "RGB",
    seed: int = 0,
    fmt: str | None = None,
) -> Path:
    """Write a distinct image (random blobs over a flat background) and return its path.

    ``size`` is ``side`` or ``(width, height)``; ``mode`` is any PIL mode that the
    file format can store (``"RGB"``, ``"L"`` for grayscale, ``"RGBA"``, ...).
    Different seeds give different pixels, so duplicate detectors see distinct files.
    """
    from PIL import Image, ImageDraw

    width, height = (size, size) if isinstance(size, int) else size
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), tuple(rng.randint(0, 255) for _ in range(3)))
    pen = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randint(0, width), rng.randint(0, height)
        r = rng.randint(2, max(3, min(width, height) // 3))
        pen.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (image if mode == "RGB" else image.convert(mode)).save(path, format=fmt)
    return path


def make_image_folder(
    root: Path | str,
    counts: Mapping[str, int],
    *,
    size: int | tuple[int, int] = 32,
    mode: str = "RGB",
    seed: int = 0,
    ext: str = ".png",
) -> Path:
    """``root/<class>/<i><ext>`` with ``counts[class]`` distinct images per class; returns ``root``."""
    root = Path(root)
    for class_index, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            make_image(
                root / name / f"{i:04d}{ext}",
                size=size,
                mode=mode,
                seed=seed * 100_003 + class_index * 10_007 + i,
            )
    return root


def write_manifest(path: Path | str, manifest: Mapping[str, Any], *, only_listed: bool = True) -> Path:
    """Write ``manifest`` as YAML to ``path`` (a file name, or a folder to hold ``audit.yaml``).

    A manifest's ``audits:`` configures and never selects, so with ``only_listed`` (the default) every
    installed audit its ``audits:`` mapping omits is written as ``name: false`` (reported ``disabled``):
    a test of one audit runs that audit only. Without an ``audits:`` mapping every installed audit runs.
    """
    import yaml

    manifest = dict(manifest)
    audits = manifest.get("audits")
    if only_listed and isinstance(audits, Mapping):
        from auditor.run.registry import load_registry

        manifest["audits"] = {**{n: False for n in load_registry().audits if n not in audits}, **audits}
    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        path = path / "audit.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


class Project:
    """A throw-away project folder: data files, images and a manifest, all real files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, relative: str | Path) -> Path:
        return self.root / relative

    def image(
        self,
        relative: str | Path,
        *,
        size: int | tuple[int, int] = 32,
        mode: str = "RGB",
        seed: int = 0,
        fmt: str | None = None,
    ) -> Path:
        """One image file at ``relative`` (see :func:`make_image`)."""
        return make_image(self.path(relative), size=size, mode=mode, seed=seed, fmt=fmt)

    def image_folder(
        self,
        relative: str | Path,
        counts: Mapping[str, int],
        *,
        size: int | tuple[int, int] = 32,
        mode: str = "RGB",
        seed: int = 0,
        ext: str = ".png",
    ) -> Path:
        """An ``image_folder`` split: one sub-folder of images per class (see :func:`make_image_folder`)."""
        return make_image_folder(self.path(relative), counts, size=size, mode=mode, seed=seed, ext=ext)

    def corrupt_image(self, relative: str | Path, *, seed: int = 0) -> Path:
        """A PNG cut off half-way: its header reads fine, decoding it fails, like an interrupted download."""
        path = make_image(self.path(relative), size=64, seed=seed, fmt="PNG")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    def write(self, relative: str | Path, content: str | bytes) -> Path:
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def manifest(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        audits: Mapping[str, Any] | None = None,
        name: str = "audit.yaml",
        only_listed: bool = True,
        **sections: Any,
    ) -> Path:
        """Write a ``version: 1`` manifest into the project and return its path.

        ``data`` maps split names to a split mapping, or to a folder path (made
        by :meth:`image_folder`), which means an ``image_folder`` split there.
        ``audits`` maps audit names to their options (``False`` disables one).
        A manifest's ``audits:`` configures and never selects, so with
        ``only_listed`` (the default) every other installed audit is written as
        ``name: false`` and the run reports it ``disabled``: a test of one audit
        runs that audit only. Absent ``audits``: every installed audit runs.
        Other sections (``model``, ``loss``, ``fail_on``, ...) pass through.
        """
        manifest: dict[str, Any] = {"version": 1, **sections}
        if data is not None:
            manifest["data"] = {split: self._split(value) for split, value in data.items()}
        if audits is not None:
            listed = {
                audit: options if isinstance(options, bool) else dict(options or {})
                for audit, options in audits.items()
            }
            manifest["audits"] = listed
        return write_manifest(self.path(name), manifest, only_listed=only_listed)

    def _split(self, value: Any) -> Any:
        if isinstance(value, (str, Path)):
            root = Path(value)
            relative = (
                root.relative_to(self.root) if root.is_absolute() and root.is_relative_to(self.root) else root
            )
            return {"format": "image_folder", "root": relative.as_posix()}
        return dict(value)


# -- results -------------------------------------------------------------------------


def _describe(findings: Sequence[Mapping[str, Any]]) -> str:
    if not findings:
        return "no findings"
    return "findings:\n" + "\n".join(
        f"  {f['code']} {f['severity']} [{f.get('location', '')}] {f['message']}" for f in findings
    )


class _Findings:
    """What in-process and subprocess results share: the report and assertions on it."""

    report: dict[str, Any]

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.report["findings"])

    def codes(self) -> set[str]:
        return {f["code"] for f in self.report["findings"]}

    def findings_for(self, code: str) -> list[dict[str, Any]]:
        """Every finding of ``code`` (a code like ``IP003`` or a prefix like ``IP``)."""
        return [f for f in self.report["findings"] if f["code"].startswith(code)]

    def audit(self, name: str) -> dict[str, Any]:
        """The report's entry for audit ``name`` (status, duration, evidence, ...)."""
        for entry in self.report["audits"]:
            if entry["name"] == name:
                return dict(entry)
        raise AssertionError(
            f"audit {name!r} is not in the report; it has {[a['name'] for a in self.report['audits']]}"
        )

    def assert_codes(self, *codes: str) -> None:
        """Each code (or prefix) is among the findings."""
        missing = [code for code in codes if not self.findings_for(code)]
        assert not missing, f"expected {missing} among the findings; got {_describe(self.findings)}"

    def assert_no_codes(self, *codes: str) -> None:
        """None of the codes (or prefixes) is among the findings."""
        present = [f for code in codes for f in self.findings_for(code)]
        assert not present, f"expected none of {list(codes)}; got {_describe(present)}"

    def assert_only_codes(self, *codes: str) -> None:
        """The findings carry exactly these codes, no other."""
        assert self.codes() == set(codes), f"expected exactly {sorted(codes)}; got {_describe(self.findings)}"

    def assert_clean(self) -> None:
        """No finding at all and exit code 0."""
        assert not self.findings and self.report["exit_code"] == 0, (
            f"expected a clean run; exit code {self.report['exit_code']}, {_describe(self.findings)}"
        )


@dataclass
class AuditorRun(_Findings):
    """The outcome of :func:`run_in_process`."""

    report: dict[str, Any]
    written: list[tuple[str, Path]]
    output_dir: Path

    @property
    def exit_code(self) -> int:
        return int(self.report["exit_code"])

    def assert_exit_code(self, expected: int) -> None:
        assert self.exit_code == expected, (
            f"expected exit code {expected}, got {self.exit_code}; {_describe(self.findings)}"
        )

    def file(self, fmt: str) -> Path:
        """The file report format ``fmt`` wrote."""
        for name, path in self.written:
            if name == fmt:
                return path
        raise AssertionError(f"no {fmt!r} report was written; written: {[n for n, _ in self.written]}")


@dataclass
class CliResult(_Findings):
    """The outcome of :func:`run_cli`: exit code, output, and the JSON report when one was written."""

    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    output_dir: Path | None = None
    _report: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def returncode(self) -> int:
        """:attr:`exit_code` by the name ``subprocess.CompletedProcess`` gives it.

        So a check first written against ``subprocess.run`` reads a :class:`CliResult` unchanged.
        """
        return self.exit_code

    @property
    def report(self) -> dict[str, Any]:  # type: ignore[override]
        if self._report is None:
            path = (self.output_dir or Path.cwd()) / "report.json"
            if not path.is_file():  # the command failed early, or the manifest sets report.dir
                raise AssertionError(
                    f"`auditor {' '.join(self.args)}` wrote no {path}; "
                    f"exit code {self.exit_code}, output:\n{self.output}"
                )
            self._report = json.loads(path.read_text(encoding="utf-8"))
        return self._report

    def listed_audit(self, name: str) -> dict[str, str]:
        """The row of audit ``name`` in the table ``auditor list`` printed, as ``{column: text}``."""
        header: list[str] | None = None
        for line in self.stdout.splitlines():
            # Piped (as here), `auditor list` prints tab-separated lines under a header; on a terminal,
            # rich draws the header between heavy bars "┃" and the rows between light ones "│".
            if "\t" in line:
                cells = [cell.strip() for cell in line.split("\t")]
            else:
                cells = [cell.strip() for cell in re.split("[\u2502\u2503]", line)[1:-1]]
            if not cells:
                continue
            if header is None:
                header = cells
            elif cells[0] == name:
                return dict(zip(header, cells, strict=False))
        raise AssertionError(f"audit {name!r} is not in the `auditor list` table:\n{self.output}")

    def assert_exit_code(self, expected: int) -> None:
        assert self.exit_code == expected, (
            f"`auditor {' '.join(self.args)}` exited {self.exit_code}, "
            f"expected {expected}; output:\n{self.output}"
        )


# -- running -----------------------------------------------------------------------------


def run_in_process(
    manifest: Path | str,
    *,
    plugins: Iterable[object] = (),
    formats: Sequence[str] = ("json",),
    output_dir: Path | None = None,
    validate: bool = True,
    **options: Any,
) -> AuditorRun:
    """Run ``manifest`` like ``auditor run`` does, in this process.

    ``plugins`` are plugin modules or objects to register without installing
    them (useful before ``pip install -e .``); installed plugins load as usual,
    so do not pass one that is also installed. ``options`` are those of
    :func:`auditor.run.api.run_manifest` (``only``, ``skip``, ``select``,
    ``ignore``, ``static``, ``fail_on``, ``use_cache``). The JSON report is
    checked against ``report.schema.json`` unless ``validate`` is false.
    """
    from auditor.report.document import validate_report
    from auditor.run.api import run_manifest
    from auditor.run.registry import load_registry

    manifest = Path(manifest)
    extra = [(getattr(p, "__name__", type(p).__name__), p) for p in plugins]
    registry = load_registry(extra) if extra else None
    target = output_dir or manifest.parent / "reports"
    outcome = run_manifest(manifest, formats=list(formats), output_dir=target, registry=registry, **options)
    if validate:
        validate_report(outcome.report)
    return AuditorRun(outcome.report, outcome.written, target)


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    output_dir: Path | None = None,
) -> CliResult:
    """``python -m auditor ARGS`` in a subprocess with this interpreter, plain text, 200 columns wide.

    Pass ``output_dir`` when the command writes reports somewhere other than
    ``cwd``, so :attr:`CliResult.report` finds ``report.json``.
    """
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    argv = [str(a) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "auditor", *argv],
        cwd=cwd,
        env=full_env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(
        argv,
        done.returncode,
        done.stdout,
        done.stderr,
        output_dir or _report_dir(argv, Path(cwd or Path.cwd())),
    )


def _report_dir(argv: Sequence[str], cwd: Path) -> Path | None:
    """Where ``auditor run`` wrote its report: ``--output-dir``, else ``reports/`` beside the manifest.

    A manifest's own ``report.dir`` is not read here; pass ``output_dir`` then.
    """
    if not argv or argv[0] != "run":
        return None
    manifest = "audit.yaml"
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--output-dir" and i + 1 < len(argv):
            return cwd / argv[i + 1]
        if arg.startswith("--output-dir="):
            return cwd / arg.partition("=")[2]
    positional = [
        a
        for i, a in enumerate(argv[1:], start=1)
        if not a.startswith("-") and argv[i - 1] not in _VALUE_OPTIONS
    ]
    if positional:
        manifest = positional[0]
    return (cwd / manifest).parent / "reports"


#: ``auditor run`` options that take a value (so the value is not mistaken for the manifest).
_VALUE_OPTIONS = frozenset(
    {"--only", "--skip", "--select", "--ignore", "--fail-on", "--format", "--output-dir"}
)


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture
def auditor_project(tmp_path: Path) -> Project:
    """A :class:`Project` in a fresh temporary folder."""
    return Project(tmp_path / "project")


@pytest.fixture
def auditor_run() -> Callable[..., AuditorRun]:
    """:func:`run_in_process`: ``auditor_run(manifest, **options) -> AuditorRun``."""
    return run_in_process


@pytest.fixture
def auditor_cli() -> Callable[..., CliResult]:
    """:func:`run_cli`: ``auditor_cli("run", manifest, "--static", cwd=...) -> CliResult``."""
    return run_cli
