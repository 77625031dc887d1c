"""Plugins through real entry points, crash isolation, selection options and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_json_report

PLUGIN_SOURCE = """
from auditor import Audit, CodeInfo, hookimpl

def _run(ctx):
    if ctx.options.get("crash"):
        1 / 0
    for split in ctx.splits.values():
        if len(split) < ctx.options["min_size"]:
            yield ctx.finding("{prefix}001", f"split '{{split.name}}' has {{len(split)}} samples",
                              location=split.location)

AUDIT = Audit(
    name="{name}", version="1.2.0", prefix="{prefix}",
    codes=[CodeInfo("{prefix}001", "warning", "small split", "What: a split is small. Why: noisy metrics.")],
    run=_run,
    options_schema={{"type": "object", "additionalProperties": False,
                    "properties": {{"min_size": {{"type": "integer", "default": 100}},
                                   "crash": {{"type": "boolean", "default": False}}}}}},
    needs=frozenset({{"data"}}),
)

@hookimpl
def auditor_audits():
    return [AUDIT]
"""


def install_fake_distribution(site: Path, dist: str, module: str, name: str, prefix: str) -> None:
    """A real installed distribution: module + dist-info with an entry point in group 'auditor'."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(PLUGIN_SOURCE.format(name=name, prefix=prefix))
    info = site / f"{dist.replace('-', '_')}-1.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.0\n")
    (info / "entry_points.txt").write_text(f"[auditor]\n{name} = {module}\n")
    (info / "RECORD").write_text("")


def test_every_built_in_plugin_loads():
    # The built-ins' own tests no longer skip when one is missing ("not installed yet"): this says which.
    import tomllib
    from conftest import REPO

    from auditor.run.registry import load_registry

    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "entry-points"
    ]["auditor"]
    registry = load_registry(autoload=False)
    broken = {b.name: b.error for b in registry.broken}
    assert not broken, f"built-in plugins failed to load: {broken}"
    loaded = {p.name for p in registry.plugins if p.distribution == "auditor"}
    assert set(declared) <= loaded, (
        f"declared in pyproject.toml but not loaded: {sorted(set(declared) - loaded)}"
    )
    assert {
        "label_distribution",
        "split_leakage",
        "transform_parity",
        "frozen_coverage",
        "gradient_probe",
    } <= set(registry.audits)


@pytest.fixture
def project(tmp_path, image_folder, manifest_writer):
    image_folder(tmp_path / "train", {"cat": 12, "dog": 12})
    return manifest_writer(
        tmp_path, {"version": 1, "data": {"train": {"format": "image_folder", "root": "train"}}}
    )


def test_third_party_plugin_registers_through_entry_point(tmp_path, project, cli):
    site = tmp_path / "site"
    install_fake_distribution(site, "auditor-small-splits", "small_splits", "small_splits", "SMS")
    env = {"PYTHONPATH": str(site)}
    listed = cli("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "small_splits" in listed.stdout and "auditor-small-splits 1.2.0" in listed.stdout
    assert "SMS001" in listed.stdout and "label_distribution" in listed.stdout

    result = cli("run", project, "--only", "small_splits", "--fail-on", "warning", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    report = load_json_report(project.parent / "reports")
    assert [f["code"] for f in report["findings"]] == ["SMS001"]
    assert {"name": "small_splits", "distribution": "auditor-small-splits", "version": "1.2.0"} in report[
        "environment"
    ]["plugins"]

    explained = cli("explain", "sms001", env=env)
    assert explained.returncode == 0 and "small split" in explained.stdout

    # The switch for tests and debugging: only auditor's own plugins load.
    disabled = cli("list", env={**env, "AUDITOR_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "small_splits" not in disabled.stdout and "label_distribution" in disabled.stdout


def test_two_plugins_claiming_one_prefix_exit_2_naming_both(tmp_path, project, cli):
    site = tmp_path / "site"
    install_fake_distribution(site, "auditor-first", "first_plugin", "first_audit", "DUP")
    install_fake_distribution(site, "auditor-second", "second_plugin", "second_audit", "DUP")
    result = cli("run", project, env={"PYTHONPATH": str(site)})
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "'DUP'" in message and "auditor-first" in message and "auditor-second" in message


def test_crashing_audit_is_isolated(tmp_path, project, cli):
    site = tmp_path / "site"
    install_fake_distribution(site, "auditor-small-splits", "small_splits", "small_splits", "SMS")
    text = project.read_text() + "audits:\n  label_distribution: {}\n  small_splits: {crash: true}\n"
    project.write_text(text)
    result = cli("run", project, env={"PYTHONPATH": str(site)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "crashed" in result.stdout and "ZeroDivisionError" in result.stdout
    report = load_json_report(project.parent / "reports")
    statuses = {a["name"]: a for a in report["audits"]}
    assert statuses["small_splits"]["status"] == "errored"
    assert "ZeroDivisionError" in statuses["small_splits"]["error"]["traceback"]
    assert statuses["label_distribution"]["status"] == "passed"  # the other audit still ran
    assert report["exit_code"] == 2


def test_exit_codes_and_fail_on(tmp_path, image_folder, manifest_writer, cli):
    image_folder(tmp_path / "train", {"cat": 30, "dog": 2})
    manifest = manifest_writer(
        tmp_path, {"version": 1, "data": {"train": {"format": "image_folder", "root": "train"}}}
    )
    # LD001 and LD005 are warnings: below the default fail_on (error).
    assert cli("run", manifest, "--only", "label_distribution").returncode == 0
    assert cli("run", manifest, "--only", "label_distribution", "--fail-on", "warning").returncode == 1
    assert cli("run", manifest, "--only", "label_distribution", "--fail-on", "never").returncode == 0
    manifest.write_text(manifest.read_text() + "fail_on: warning\n")
    assert cli("run", manifest, "--only", "label_distribution").returncode == 1
    # --select/--ignore filter by code or prefix before fail_on applies.
    assert cli("run", manifest, "--only", "label_distribution", "--ignore", "LD").returncode == 0
    result = cli("run", manifest, "--only", "label_distribution", "--select", "LD005", "--format", "json")
    assert result.returncode == 1
    report = load_json_report(tmp_path / "reports")
    assert [f["code"] for f in report["findings"]] == ["LD005"]
    # wrong command line or manifest: 2
    assert cli("run", manifest, "--only", "label_distributon").returncode == 2
    assert cli("run", manifest, "--format", "pdf").returncode == 2
    assert cli("run", tmp_path / "missing.yaml").returncode == 2


def test_skip_static_and_output_dir(tmp_path, image_folder, manifest_writer, run_audit):
    from auditor.run.api import run_manifest

    image_folder(tmp_path / "train", {"cat": 12, "dog": 12})
    manifest = manifest_writer(
        tmp_path, {"version": 1, "data": {"train": {"format": "image_folder", "root": "train"}}}
    )
    out = tmp_path / "elsewhere"
    outcome = run_manifest(manifest, skip=["label_distribution"], formats=["json"], output_dir=out)
    statuses = {a["name"]: (a["status"], a["reason"]) for a in outcome.report["audits"]}
    assert statuses["label_distribution"] == ("disabled", "disabled by --skip label_distribution")
    assert (out / "report.json").is_file()
    outcome = run_manifest(manifest, static=True, formats=["json"], output_dir=out)
    for audit in outcome.report["audits"]:
        if audit["name"] == "gradient_probe":
            assert audit["status"] == "skipped" and "--static" in audit["reason"]


def test_manifest_audits_section_configures_and_never_limits_the_run(
    tmp_path, image_folder, manifest_writer, run_audit
):
    image_folder(tmp_path / "train", {"cat": 12, "dog": 12})
    manifest = manifest_writer(
        tmp_path,
        {
            "version": 1,
            "data": {"train": {"format": "image_folder", "root": "train"}},
            "audits": {"label_distribution": None},
        },
        only_listed=False,
    )
    outcome = run_audit(manifest)
    # audits: configures, it never selects: the unlisted audits run with their defaults
    statuses = {a["name"]: a["status"] for a in outcome.report["audits"]}
    assert statuses["label_distribution"] == "passed" and statuses["split_leakage"] == "passed"
    assert "disabled" not in statuses.values()


def test_unreadable_data_is_a_recorded_problem_not_a_traceback(tmp_path, manifest_writer, cli):
    manifest = manifest_writer(
        tmp_path,
        {
            "version": 1,
            "data": {"train": {"format": "image_folder", "root": "nope"}},
            "audits": {"label_distribution": {}},
        },
    )
    result = cli("run", manifest)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "data.train.root" in result.stdout and "does not exist" in result.stdout
    # Told apart from a bug in an audit: the manifest is what needs fixing, said once, not once per audit.
    assert "1 manifest problem" in result.stdout and "crashed" not in result.stdout
    assert result.stdout.count("does not exist") == 1
    report = load_json_report(tmp_path / "reports")
    assert [p["key"] for p in report["problems"]] == ["data.train.root"]
    assert report["audits"][0]["status"] == "skipped"
    assert "data.train could not be opened" in report["audits"][0]["reason"]
