"""``log_report`` into a real MLflow file store and a real W&B offline run; read back, compare.

Each tracker gets the run's result (an ``auditor.CheckResult`` from a real run of a small project):
the counts per severity and per audit as metrics, the JSON and HTML reports as files, a table of
findings. The tests read all of it back through the tracker's own reading API (MLflow) or the run
file ``wandb sync`` would upload (W&B) and compare it with the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _many_findings import many_findings_project

from auditor.run.api import run_manifest
from auditor.run.result import CheckResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> CheckResult:
    root = tmp_path_factory.mktemp("trackers")
    manifest = many_findings_project(
        root, extra={"ignore": [{"code": "LD005", "location": "data.train", "reason": "tiny on purpose"}]}
    )
    return run_manifest(manifest)


def test_mlflow_file_store_holds_metrics_tags_reports_and_the_findings_table(result, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    import mlflow
    from mlflow.tracking import MlflowClient

    from auditor.integrations.mlflow import log_report

    # MLflow 3 keeps the file store in maintenance mode behind this switch; it is still the store
    # that needs no server and no database.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    with mlflow.start_run(run_name="fine-tune") as active:
        run_id = log_report(result)
        assert run_id == active.info.run_id  # into the active run, not a new one
    report = result.report
    client = MlflowClient()
    data = client.get_run(run_id).data
    summary = report["summary"]
    for severity in ("error", "warning", "info", "total"):
        assert data.metrics[f"auditor/{severity}"] == summary[severity]
    assert data.metrics["auditor/accepted"] == len(report["accepted"]) == 14
    assert data.metrics["auditor/exit_code"] == report["exit_code"] == 1
    labels = next(a for a in report["audits"] if a["name"] == "label_distribution")
    assert data.metrics["auditor/label_distribution/warning"] == labels["counts"]["warning"]
    assert data.tags["auditor.verdict"] == "failed"
    assert data.tags["auditor.summary"].startswith("auditor: failed (exit 1): 12 errors")
    assert sorted(a.path for a in client.list_artifacts(run_id, "auditor")) == [
        "auditor/findings.json",
        "auditor/report.html",
        "auditor/report.json",
    ]
    saved = Path(client.download_artifacts(run_id, "auditor/report.json", str(tmp_path / "dl")))
    assert json.loads(saved.read_text(encoding="utf-8")) == json.loads(json.dumps(report))
    table = mlflow.load_table("auditor/findings.json", run_ids=[run_id])
    assert len(table) == summary["total"] + len(report["accepted"])
    live = table[table["accepted"] == ""]
    assert sorted(live["fingerprint"]) == sorted(f["fingerprint"] for f in report["findings"])
    assert set(table[table["accepted"] != ""]["accepted"]) == {"ignore: tiny on purpose"}
    assert next(iter(live["severity"])) == "error"  # most severe first


def test_mlflow_without_an_active_run_starts_and_ends_its_own(result, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    import mlflow
    from mlflow.tracking import MlflowClient

    from auditor.integrations.mlflow import log_report

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    run_id = log_report(result.report)  # the report dict works too
    assert mlflow.active_run() is None
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "auditor many-findings"


def test_wandb_offline_run_holds_summary_table_html_and_the_report_artifact(result, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    import wandb
    from _wandb_offline import read_offline_run

    from auditor.integrations.wandb import log_report

    for key, value in {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": "true",
        "WANDB_CONSOLE": "off",
        "WANDB_DISABLE_GIT": "true",
    }.items():
        monkeypatch.setenv(key, value)
    run = wandb.init(project="auditor-test")
    try:
        assert log_report(result) is run
        folder = Path(run.dir).parent
    finally:
        run.finish()
    back = read_offline_run(folder)
    report = result.report
    assert "auditor/error" in back.summary, (folder, back.kinds, sorted(back.summary)[:20], back.artifacts)
    for severity in ("error", "warning", "info", "total"):
        assert back.summary[f"auditor/{severity}"] == report["summary"][severity]
    assert back.summary["auditor/accepted"] == 14
    assert back.summary["auditor/verdict"] == "failed"
    assert back.summary["auditor/label_distribution/error"] == 12
    names = {(kind, tuple(sorted(paths))) for _, kind, paths in back.artifacts}
    assert ("auditor-report", ("report.html", "report.json")) in names
    table = back.media(back.history["auditor/findings/path"])
    assert table["columns"][:3] == ["severity", "code", "audit"]
    assert len(table["data"]) == report["summary"]["total"] + 14
    fingerprints = table["columns"].index("fingerprint")
    live = [row for row in table["data"] if not row[-1]]
    assert sorted(row[fingerprints] for row in live) == sorted(f["fingerprint"] for f in report["findings"])
    assert back.history["auditor/report/_type"] == "html-file"
