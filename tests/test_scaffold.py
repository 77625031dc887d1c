"""`auditor new-plugin`: names, refusals, the rendered template, and a generated package that passes its tests."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile

import pytest
import tomllib
from _venvs import overlay_venv, pip_install, run_pytest
from conftest import REPO

from auditor.cli._scaffold import plugin_names, scaffold
from auditor.errors import UsageError

TEMPLATE = REPO / "auditor" / "templates" / "plugin"


@pytest.mark.parametrize(
    ("name", "dist", "package", "audit", "prefix"),
    [
        ("image-stats", "auditor-image-stats", "auditor_image_stats", "image_stats", "IS"),
        ("auditor-blur", "auditor-blur", "auditor_blur", "blur", "BL"),
        (
            "Label_Noise_Check",
            "auditor-label-noise-check",
            "auditor_label_noise_check",
            "label_noise_check",
            "LNC",
        ),
        ("a", "auditor-a", "auditor_a", "a", "AX"),
    ],
)
def test_names_derived_from_the_plugin_name(name, dist, package, audit, prefix):
    names = plugin_names(name)
    assert (names.dist, names.package, names.audit, names.prefix) == (dist, package, audit, prefix)


@pytest.mark.parametrize(
    ("name", "prefix", "message"),
    [
        ("9lives", None, "starting with a letter"),
        ("image stats", None, "found 'image stats'"),
        ("ok-name", "X", "2-4 capital letters"),
        ("ok-name", "ab1", "2-4 capital letters"),
    ],
)
def test_bad_names_and_prefixes_are_usage_errors(name, prefix, message):
    with pytest.raises(UsageError, match=message):
        plugin_names(name, prefix)


def test_rendered_package_is_complete_and_consistent(tmp_path):
    _names, target, written = scaffold("empty-files", tmp_path, prefix="EMF")
    assert target == tmp_path / "auditor-empty-files"
    relative = sorted(p.relative_to(target).as_posix() for p in written)
    assert relative == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/auditor_empty_files/__init__.py",
        "src/auditor_empty_files/plugin.py",
        "tests/test_plugin.py",
    ]
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert "${" not in text and "__package__" not in str(path), path
    project = tomllib.loads((target / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "auditor-empty-files"
    assert project["entry-points"]["auditor"] == {"empty_files": "auditor_empty_files.plugin"}
    assert any(dep.startswith("auditor>=") for dep in project["dependencies"])
    plugin = (target / "src/auditor_empty_files/plugin.py").read_text(encoding="utf-8")
    compile(plugin, "plugin.py", "exec")
    assert 'prefix="EMF"' in plugin and '"EMF001"' in plugin and "import torch" not in plugin


def test_every_template_file_is_rendered(tmp_path):
    """A template file added later must come out of the generator too (and as the right name)."""
    sources = sorted(
        p.relative_to(TEMPLATE) for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    _, _, written = scaffold("x-y", tmp_path)
    assert len(written) == len(sources)
    assert all(str(s).endswith(".tmpl") for s in sources), (
        "template files end in .tmpl so tools leave them alone"
    )


def test_cli_creates_the_package_and_prints_next_steps(tmp_path, cli):
    result = cli("new-plugin", "image-stats", "--output-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "auditor-image-stats" in result.stdout and "IS001" in result.stdout
    assert "pip install -e '.[test]'" in result.stdout
    assert (tmp_path / "auditor-image-stats" / "src" / "auditor_image_stats" / "plugin.py").is_file()


def test_cli_refuses_an_existing_folder_and_overwrites_nothing(tmp_path, cli):
    existing = tmp_path / "auditor-image-stats"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    result = cli("new-plugin", "image-stats", "--output-dir", tmp_path)
    assert result.returncode == 2
    assert "existing" in result.stderr and "--output-dir" in result.stderr
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]


def test_cli_refuses_a_prefix_an_installed_audit_uses(tmp_path, cli):
    result = cli("new-plugin", "label-drift", "--output-dir", tmp_path)  # LD belongs to label_distribution
    assert result.returncode == 2
    assert "'LD' is already used" in result.stderr and "--prefix" in result.stderr
    assert not (tmp_path / "auditor-label-drift").exists()
    assert cli("new-plugin", "label-drift", "--prefix", "LDR", "--output-dir", tmp_path).returncode == 0


@pytest.mark.slow
def test_generated_package_installs_and_passes_its_own_tests(tmp_path, cli):
    assert cli("new-plugin", "empty-files", "--output-dir", tmp_path).returncode == 0
    project = tmp_path / "auditor-empty-files"
    python = overlay_venv(tmp_path / "venv")
    installed = pip_install(python, project)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    tests = run_pytest(python, project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout, tests.stdout
    # The test venv itself never saw the package: other tests' runs stay unaffected.
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("auditor-empty-files")


@pytest.mark.slow
def test_templates_ship_in_the_wheel(tmp_path):
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
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = tmp_path.glob("auditor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"auditor/templates/plugin/{p.relative_to(TEMPLATE).as_posix()}"
        for p in TEMPLATE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert expected <= names, sorted(expected - names)
    assert "auditor/testing.py" in names and "auditor/cli/_scaffold.py" in names
