"""MLflow: keep a run's pre-flight results next to the run (``pip install 'auditor[mlflow]'``).

    import auditor, mlflow
    from auditor.integrations.mlflow import log_report

    with mlflow.start_run():
        result = auditor.check(model, optimizer, loss, train=train_loader, val=val_loader)
        log_report(result)          # into the active run
        ...                         # training

One call logs, into the active run (or ``run_id``; with neither, a new run named after the manifest):

- metrics ``auditor/error``, ``auditor/warning``, ``auditor/info``, ``auditor/total``,
  ``auditor/accepted``, ``auditor/exit_code`` and ``auditor/<audit>/<severity>`` per audit;
- tags ``auditor.verdict`` (passed | failed | errored), ``auditor.version`` and ``auditor.summary``;
- artifacts ``auditor/report.json`` and ``auditor/report.html``;
- a table of findings ``auditor/findings.json`` (MLflow's table artifact: the UI's "Evaluation" view
  and ``mlflow.load_table`` read it).

Works with the ``mlflow-skinny`` client alone: a file store (``file:./mlruns``) or a tracking server.
"""

from __future__ import annotations

from typing import Any

try:
    import mlflow
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "auditor.integrations.mlflow needs MLflow, which is not installed; hint: pip install 'auditor[mlflow]'"
    ) from exc

from auditor.integrations import _tracking

__all__ = ["log_report"]


def log_report(
    result: Any,
    *,
    run_id: str | None = None,
    artifact_path: str = "auditor",
    step: int = 0,
    client: MlflowClient | None = None,
) -> str:
    """Log ``result`` (an :class:`auditor.CheckResult` or its report dict) to MLflow; return the run id.

    ``run_id``: the run to log into; default the active run, else a new run (ended again here).
    ``artifact_path``: the folder of the run's artifacts the files go to, also the metrics' prefix.
    """
    report = _tracking.as_report(result)
    client = client or MlflowClient()
    own_run = None
    if run_id is None:
        active = mlflow.active_run()
        if active is not None:
            run_id = active.info.run_id
        else:
            name = str(report.get("manifest", {}).get("name") or "run")
            own_run = mlflow.start_run(run_name=f"auditor {name}")
            run_id = own_run.info.run_id
    try:
        _log(client, run_id, report, artifact_path, step)
    finally:
        if own_run is not None:
            mlflow.end_run()
    return run_id


def _log(client: MlflowClient, run_id: str, report: dict[str, Any], folder: str, step: int) -> None:
    import time

    import pandas as pd

    now = int(time.time() * 1000)
    values = _tracking.metrics(report, prefix=folder)
    verdict = {0: "passed", 1: "failed"}.get(report.get("exit_code"), "errored")  # type: ignore[arg-type]
    tags = {
        f"{folder}.verdict": verdict,
        f"{folder}.version": str(report.get("tool", {}).get("version", "")),
        f"{folder}.summary": _tracking.one_line(report),
    }
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, step) for key, value in values.items()],
        tags=[RunTag(key, value) for key, value in tags.items()],
    )
    with _tracking.report_files(report) as files:
        for path in files:
            client.log_artifact(run_id, str(path), folder)
    table = pd.DataFrame(_tracking.finding_rows(report), columns=list(_tracking.COLUMNS))
    client.log_table(run_id, data=table, artifact_file=f"{folder}/findings.json")
