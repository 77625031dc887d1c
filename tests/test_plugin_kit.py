"""The plugin kit: auditor.testing, third-party and broken plugins, the example package, the hook reference."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _venvs import copy_source, overlay_venv, pip_install, run_pytest
from conftest import REPO

from auditor import Audit, CodeInfo, Severity, hookimpl, hookspecs
from auditor.testing import run_cli

DOCS = REPO / "docs" / "plugins.md"
EXAMPLE = REPO / "examples" / "image-properties"
START, END = "<!-- hook-reference:start -->", "<!-- hook-reference:end -->"


# -- the hook reference in docs/plugins.md ---------------------------------------------------


def hook_functions() -> list:
    return [
        fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("auditor_") and hasattr(fn, "auditor_spec")
    ]


def hook_reference() -> str:
    """The reference section, rendered from the hook specs' signatures and docstrings."""
    parts = []
    for fn in sorted(hook_functions(), key=lambda f: inspect.getsourcelines(f)[1]):
        signature = inspect.signature(fn)
        params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
        parts.append(
            f"### `{fn.__name__}({params}) -> {signature.return_annotation}`\n\n"
            f"{inspect.cleandoc(fn.__doc__ or '')}\n"
        )
    return "\n".join(parts)


def _documented_block() -> str:
    text = DOCS.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOCS} lost its {START} / {END} markers"
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def test_every_hook_is_documented_exactly_as_specified():
    assert len(hook_functions()) >= 6
    documented = _documented_block()
    for fn in hook_functions():
        assert f"### `{fn.__name__}(" in documented, f"hook {fn.__name__} is missing from docs/plugins.md"
    assert documented == hook_reference(), (
        "docs/plugins.md's hook reference differs from auditor/hookspecs.py: run "
        "`.venv/bin/python tests/test_plugin_kit.py` to regenerate it"
    )


def test_docs_walk_through_all_three_plugin_kinds():
    text = DOCS.read_text(encoding="utf-8")
    for needle in (
        "auditor_audits",
        "auditor_data_formats",
        "auditor_report_formats",
        "[project.entry-points.auditor]",
        "auditor_project",
        "auditor_run",
        "auditor_cli",
        "auditor new-plugin",
        "twine upload",
    ):
        assert needle in text, needle


# -- auditor.testing -------------------------------------------------------------------------


def test_the_pytest_plugin_is_registered_and_cheap_to_load():
    entry = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "auditor"]
    assert [ep.value for ep in entry] == ["auditor.testing"]
    code = "import sys, auditor.testing; print(sorted(m for m in ('torch', 'PIL', 'numpy', 'auditor.run.api') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_project_writes_real_images_and_a_manifest(auditor_project):
    from PIL import Image

    gray = auditor_project.image("a/gray.png", size=(40, 10), mode="L")
    with Image.open(gray) as image:
        assert (image.mode, image.size) == ("L", (40, 10))
    broken = auditor_project.corrupt_image("a/broken.png")
    with pytest.raises(OSError), Image.open(broken) as image:
        image.load()
    train = auditor_project.image_folder("data/train", {"x": 2, "y": 1})
    assert sorted(p.name for p in train.rglob("*.png")) == ["0000.png", "0000.png", "0001.png"]
    manifest = auditor_project.manifest(
        data={"train": train}, audits={"label_distribution": None}, fail_on="info"
    )
    import yaml

    written = yaml.safe_load(manifest.read_text())
    audits = written.pop("audits")
    assert written == {
        "version": 1,
        "fail_on": "info",
        "data": {"train": {"format": "image_folder", "root": "data/train"}},
    }
    # audits: configures and never selects, so the helper disables every installed audit it does not list
    assert audits["label_distribution"] == {}
    assert {name for name, value in audits.items() if value is False} == set(auditor_project_audits()) - {
        "label_distribution"
    }
    every = auditor_project.manifest(
        data={"train": train}, audits={"label_distribution": None}, only_listed=False, name="every.yaml"
    )
    assert yaml.safe_load(every.read_text())["audits"] == {"label_distribution": {}}


def test_run_result_assertions(auditor_project, auditor_run):
    train = auditor_project.image_folder("data/train", {"cat": 12, "dog": 1}, size=8)
    result = auditor_run(auditor_project.manifest(data={"train": train}, audits={"label_distribution": {}}))
    result.assert_codes("LD001", "LD005")
    result.assert_codes("LD")  # a prefix
    result.assert_no_codes("LD002", "SL")
    result.assert_only_codes("LD001", "LD005")  # no loss declared, so LD004 is not checked
    result.assert_exit_code(0)  # warnings only, fail_on: error
    assert result.findings_for("LD005")[0]["evidence"]["class"] == "dog"
    assert result.audit("label_distribution")["status"] == "passed"
    assert result.file("json") == result.output_dir / "report.json"
    with pytest.raises(AssertionError, match=r"(?s)expected none of \['LD001'\].*LD001 warning"):
        result.assert_no_codes("LD001")
    with pytest.raises(
        AssertionError, match=r"expected \['LD002'\] among the findings; got findings:\n\s+LD00"
    ):
        result.assert_codes("LD002")
    with pytest.raises(AssertionError, match="expected a clean run; exit code 0"):
        result.assert_clean()
    with pytest.raises(AssertionError, match="expected exit code 1, got 0"):
        result.assert_exit_code(1)
    with pytest.raises(AssertionError, match="'nope' is not in the report"):
        result.audit("nope")


class _OneFindingPerSplit:
    """An in-process plugin, never installed: what ``auditor_run(plugins=[...])`` is for."""

    @hookimpl
    def auditor_audits(self) -> list[Audit]:
        explanation = "**What it means.** test. **Why it breaks training.** test. **How to fix it.** test. **Example.** x"
        return [
            Audit(
                name="split_counter",
                version="0.0.1",
                prefix="TQ",
                codes=[CodeInfo("TQ001", Severity.ERROR, "a split exists", explanation)],
                run=lambda ctx: [
                    ctx.finding("TQ001", f"split {name}", location=f"data.{name}") for name in ctx.splits
                ],
            )
        ]


def test_in_process_plugins_run_without_installing(auditor_project, auditor_run):
    train = auditor_project.image_folder("data/train", {"a": 1, "b": 1})
    manifest = auditor_project.manifest(data={"train": train, "val": train}, audits={"split_counter": {}})
    result = auditor_run(manifest, plugins=[_OneFindingPerSplit()])
    assert [f["location"] for f in result.findings_for("TQ001")] == ["data.train", "data.val"]
    result.assert_exit_code(1)
    assert any(p["distribution"] == "<in-process>" for p in result.report["environment"]["plugins"])


def test_cli_results_find_their_report(auditor_project, auditor_cli, tmp_path):
    train = auditor_project.image_folder("data/train", {"cat": 12, "dog": 1}, size=8)
    manifest = auditor_project.manifest(
        data={"train": train}, audits={"label_distribution": {}}, fail_on="warning"
    )
    beside = auditor_cli("run", manifest, "--fail-on", "warning")
    beside.assert_exit_code(1)
    assert beside.output_dir == auditor_project.root / "reports"
    beside.assert_codes("LD001")
    elsewhere = auditor_cli("run", manifest, "--output-dir", tmp_path / "out", "--select", "LD005")
    elsewhere.assert_only_codes("LD005")
    assert (tmp_path / "out" / "report.json").is_file()
    listed = auditor_cli("list")
    row = listed.listed_audit("label_distribution")
    assert row["distribution"].startswith("auditor ") and row["codes"].split()[0] == "LD001"
    with pytest.raises(AssertionError, match="exited 0, expected 2"):
        listed.assert_exit_code(2)


# -- third-party and broken plugins, installed for real (dist-info on PYTHONPATH) -----------------


def _dist_info(site: Path, dist: str, version: str, entry_points: str, module: str, source: str) -> None:
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[auditor]\n{entry_points}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    _dist_info(
        site,
        "auditor-zz-example",
        "1.2.3",
        "zz_check = auditor_zz_example",
        "auditor_zz_example",
        """
        from auditor import Audit, CodeInfo, Severity, hookimpl

        TEXT = "**What it means.** x **Why it breaks training.** x **How to fix it.** x **Example.** x"
        AUDIT = Audit(name="zz_check", version="1.2.3", prefix="ZZ", run=lambda ctx: [],
                      codes=[CodeInfo("ZZ001", Severity.WARNING, "one", TEXT),
                             CodeInfo("ZZ002", Severity.INFO, "two", TEXT)])

        @hookimpl
        def auditor_audits():
            return [AUDIT]
    """,
    )
    _dist_info(
        site,
        "auditor-broken-example",
        "0.3",
        "broken_thing = auditor_broken_example",
        "auditor_broken_example",
        "import a_module_that_does_not_exist_42\n",
    )
    return site


def test_list_shows_third_party_and_broken_plugins(plugin_site):
    listed = run_cli("list", env={"PYTHONPATH": str(plugin_site)})
    listed.assert_exit_code(0)
    row = listed.listed_audit("zz_check")
    assert (row["version"], row["distribution"], row["codes"]) == (
        "1.2.3",
        "auditor-zz-example 1.2.3",
        "ZZ001 ZZ002",
    )
    assert listed.listed_audit("label_distribution")["distribution"].startswith("auditor ")
    assert (
        "broken plugin broken_thing (auditor-broken-example): ModuleNotFoundError: No module named "
        "'a_module_that_does_not_exist_42'"
    ) in listed.stdout


def test_a_broken_plugin_does_not_stop_a_run(plugin_site, auditor_project):
    train = auditor_project.image_folder("data/train", {"cat": 12, "dog": 12}, size=8)
    manifest = auditor_project.manifest(data={"train": train})  # no audits: list every installed one
    result = run_cli("run", manifest, env={"PYTHONPATH": str(plugin_site)})
    result.assert_exit_code(0)
    assert {a["name"]: a["status"] for a in result.report["audits"]}["zz_check"] == "passed"
    broken = result.report["environment"]["broken_plugins"]
    assert [(b["name"], b["distribution"]) for b in broken if "example" in b["distribution"]] == [
        ("broken_thing", "auditor-broken-example")
    ]
    disabled = run_cli("list", env={"PYTHONPATH": str(plugin_site), "AUDITOR_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "zz_check" not in disabled.stdout and "broken_thing" not in disabled.stdout


def test_a_misspelt_hook_makes_the_plugin_broken_not_silently_empty(tmp_path, auditor_project):
    # pluggy accepts a hook that matches no specification and never calls it: without check_pending
    # this plugin would load, list nothing and let its author believe the audit runs.
    site = tmp_path / "site"
    _dist_info(
        site,
        "auditor-typo-example",
        "0.1",
        "typo_check = auditor_typo_example",
        "auditor_typo_example",
        """
        from auditor import Audit, CodeInfo, Severity, hookimpl

        TEXT = "**What it means.** x **Why it breaks training.** x **How to fix it.** x **Example.** x"
        AUDIT = Audit(name="typo_check", version="0.1", prefix="TY", run=lambda ctx: [],
                      codes=[CodeInfo("TY001", Severity.WARNING, "one", TEXT)])

        @hookimpl
        def auditor_audit():
            return [AUDIT]

        @hookimpl
        def auditor_report_formats():
            return []
    """,
    )
    env = {"PYTHONPATH": str(site)}
    listed = run_cli("list", env=env)
    listed.assert_exit_code(0)
    assert (
        "broken plugin typo_check (auditor-typo-example): hook 'auditor_audit' matches no hook of auditor "
        "(expected one of auditor_audits, "
    ) in listed.stdout
    assert "did you mean 'auditor_audits'?" in listed.stdout
    assert "TY001" not in listed.stdout and "label_distribution" in listed.stdout

    train = auditor_project.image_folder("data/train", {"cat": 12, "dog": 12}, size=8)
    result = run_cli("run", auditor_project.manifest(data={"train": train}), env=env)
    result.assert_exit_code(0)
    assert "typo_check" not in {a["name"] for a in result.report["audits"]}
    (broken,) = [b for b in result.report["environment"]["broken_plugins"] if b["name"] == "typo_check"]
    assert "'auditor_audit' matches no hook" in broken["error"]
    assert "typo_check" not in {p["name"] for p in result.report["environment"]["plugins"]}


def test_an_in_process_plugin_with_a_misspelt_hook_is_broken_too():
    from auditor.run.registry import load_registry

    class Typo:
        @hookimpl
        def auditor_data_format(self):
            return []

    registry = load_registry([("typo", Typo())], autoload=False)
    (broken,) = registry.broken
    assert (broken.name, broken.distribution) == ("typo", "<in-process>")
    assert "did you mean 'auditor_data_formats'?" in broken.error
    assert "typo" not in {p.name for p in registry.plugins}
    assert not any(registry.manager.get_name(p) == "typo" for p in registry.manager.get_plugins())


# -- the example third-party package -------------------------------------------------------------


@pytest.mark.slow
def test_example_package_installs_and_passes_its_own_tests(tmp_path):
    project = copy_source(EXAMPLE, tmp_path / "image-properties")
    python = overlay_venv(tmp_path / "venv")
    installed = pip_install(python, project)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    tests = run_pytest(python, project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed.group(1)) >= 10 and "skipped" not in tests.stdout, tests.stdout
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("auditor-image-properties")


def test_example_package_does_not_import_heavy_modules_at_import_time():
    src = EXAMPLE / "src" / "auditor_image_properties"
    for path in src.glob("*.py"):
        top_level = [line for line in path.read_text().splitlines() if re.match(r"(import|from) ", line)]
        assert not [line for line in top_level if re.search(r"\b(torch|PIL|numpy)\b", line)], path


if __name__ == "__main__":  # regenerate the hook reference in docs/plugins.md
    text = DOCS.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    DOCS.write_text(head + START + "\n" + hook_reference() + END + rest.split(END, 1)[1], encoding="utf-8")
    print(f"updated {DOCS.relative_to(REPO)}")


def auditor_project_audits() -> list[str]:
    from auditor.run.registry import load_registry

    return list(load_registry().audits)
