"""Writing reports into hostile folders: planted links, no permission, no space, rivals."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hostile._corpus import manifest, project, run, snapshot


def _static(root: Path, **sections: object) -> Path:
    """A manifest whose run needs no model: quick, and enough to write every report."""
    return manifest(root, audits={"label_distribution": None, "split_leakage": None}, **sections)


def _tiny_tmpfs(folder: Path, *options: str) -> bool:
    folder.mkdir(exist_ok=True)
    if not shutil.which("mount") or os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(["size=64k", *options]), "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


def test_a_planted_symlink_at_the_old_temporary_name_is_never_followed(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    out = root / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    for name in ("report.json.tmp", "report.md.tmp", "report.md"):
        (out / name).symlink_to(victim)
    path = _static(root)
    before = snapshot(tmp_path, outside=out)
    done = run("run", path, "--no-cache", "--format", "markdown", "--output-dir", out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert victim.read_text(encoding="utf-8") == "precious"
    # report.md was a link: the rename replaced the link itself, not the file it pointed to.
    assert not (out / "report.md").is_symlink() and "auditor" in (out / "report.md").read_text(
        encoding="utf-8"
    )
    assert not [p for p in out.iterdir() if p.name.startswith(".report")]
    assert snapshot(tmp_path, outside=out) == before


def test_read_only_output_folder_is_exit_2_naming_folder_and_error(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    out = tmp_path / "read-only"
    if os.geteuid() != 0:
        out.mkdir()
        out.chmod(0o555)
        expected = "Permission denied"
    elif _tiny_tmpfs(out, "ro"):
        expected = "Read-only file system"
    else:
        pytest.skip("as root only a read-only mount stops writing, and mounting is not permitted here")
    path = _static(root)
    before = snapshot(tmp_path, outside=out)
    try:
        done = run("run", path, "--no-cache", "--output-dir", out)
        left = list(out.iterdir())
    finally:
        out.chmod(0o755) if os.geteuid() != 0 else subprocess.run(["umount", str(out)], check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot write the json report (report.json) into {out}: {expected}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert left == []
    assert snapshot(tmp_path, outside=out) == before


def test_output_folder_that_is_a_file_is_exit_2_naming_it(tmp_path: Path) -> None:
    # Works as root too: no permission bit stops mkdir over an existing file.
    root = project(tmp_path / "p")
    blocker = root / "out"
    blocker.write_text("not a folder", encoding="utf-8")
    path = _static(root)
    before = snapshot(tmp_path)
    done = run("run", path, "--no-cache", "--output-dir", blocker / "reports")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot write the reports into {blocker / 'reports'}: Not a directory" in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(tmp_path) == before


def test_full_output_folder_is_exit_2_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    out = tmp_path / "full"
    if not _tiny_tmpfs(out):
        pytest.skip("mounting a 64 KiB tmpfs needs root and mount privileges, which this machine lacks")
    try:
        (out / "filler").write_bytes(b"\0" * (60 * 1024))  # what is left is less than an HTML report
        path = _static(root)
        before = snapshot(tmp_path, outside=out)
        done = run("run", path, "--no-cache", "--format", "html", "--output-dir", out)
        leftovers = sorted(p.name for p in out.iterdir())
    finally:
        subprocess.run(["umount", str(out)], check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"into {out}: No space left on device [ENOSPC]" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not [name for name in leftovers if name.endswith(".tmp")], leftovers
    assert snapshot(tmp_path, outside=out) == before


def test_concurrent_runs_on_one_manifest_never_crash(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    path = _static(root, report={"formats": ["json", "markdown", "sarif"]})
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "auditor", "run", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in runs]  # type: ignore[union-attr]
    for code, out, err in outcomes:
        assert code == 0 and "Traceback" not in err, out + err
    reports = root / "reports"
    assert sorted(p.name for p in reports.iterdir()) == ["report.json", "report.md", "report.sarif"]


def test_report_command_writes_only_what_was_asked_and_never_its_input(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    out = root / "out"
    assert run("run", _static(root), "--no-cache", "--output-dir", out).returncode == 0
    other = tmp_path / "OTHER"
    other.mkdir()
    source = other / "report.json"
    shutil.copy(out / "report.json", source)
    original = source.read_bytes()
    done = run("report", source, "--format", "markdown")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in other.iterdir()) == ["report.json", "report.md"]
    assert source.read_bytes() == original
    done = run("report", source, "--format", "json")
    assert done.returncode == 2
    assert "would overwrite" in done.stderr and "--output-dir" in done.stderr
    assert source.read_bytes() == original
    elsewhere = tmp_path / "rendered"
    done = run("report", source, "--format", "json,sarif", "--output-dir", elsewhere)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["report.json", "report.sarif"]
