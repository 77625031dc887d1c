"""Weights & Biases: keep a run's pre-flight results next to the run (``pip install 'auditor[wandb]'``).

    import auditor, wandb
    from auditor.integrations.wandb import log_report

    run = wandb.init(project="pets")
    result = auditor.check(model, optimizer, loss, train=train_loader, val=val_loader)
    log_report(result)              # into wandb.run

One call logs, into ``run`` (default ``wandb.run``; with none, a new run with ``job_type="auditor"``,
finished again here):

- the summary metrics ``auditor/error``, ``auditor/warning``, ``auditor/info``, ``auditor/total``,
  ``auditor/accepted``, ``auditor/exit_code`` and ``auditor/<audit>/<severity>`` per audit, and
  ``auditor/verdict``;
- the table ``auditor/findings`` (a ``wandb.Table``: one row per finding) and the HTML report
  inline (``auditor/report``, a ``wandb.Html``);
- an artifact of type ``auditor-report`` holding report.json and report.html.

Offline mode (``WANDB_MODE=offline``) writes all of it to the local run folder for ``wandb sync``.
"""

from __future__ import annotations

from typing import Any

try:
    import wandb
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "auditor.integrations.wandb needs Weights & Biases, which is not installed; "
        "hint: pip install 'auditor[wandb]'"
    ) from exc

from auditor.integrations import _tracking

__all__ = ["log_report"]


def log_report(result: Any, *, run: Any = None, prefix: str = "auditor", commit: bool = False) -> Any:
    """Log ``result`` (an :class:`auditor.CheckResult` or its report dict) to W&B; return the run.

    ``commit``: whether the table and HTML are logged as a step of their own. The default
    (False) adds them to the run's current step, so a training loop's step count is not moved.
    """
    report = _tracking.as_report(result)
    own = False
    if run is None:
        run = wandb.run
    if run is None:
        name = str(report.get("manifest", {}).get("name") or "run")
        run = wandb.init(job_type="auditor", name=f"auditor {name}")
        own = True
    try:
        _log(run, report, prefix, commit)
    finally:
        if own:
            run.finish()
    return run


def _log(run: Any, report: dict[str, Any], prefix: str, commit: bool) -> None:
    values: dict[str, Any] = dict(_tracking.metrics(report, prefix=prefix))
    values[f"{prefix}/verdict"] = {0: "passed", 1: "failed"}.get(report.get("exit_code"), "errored")  # type: ignore[arg-type]
    run.summary.update(values)
    table = wandb.Table(columns=list(_tracking.COLUMNS), data=_tracking.finding_rows(report))
    with _tracking.report_files(report) as files:
        html = next((p for p in files if p.suffix == ".html"), None)
        logged: dict[str, Any] = {f"{prefix}/findings": table}
        if html is not None:
            logged[f"{prefix}/report"] = wandb.Html(html.read_text(encoding="utf-8"), inject=False)
        run.log(logged, commit=commit)
        artifact = wandb.Artifact(f"{prefix}-report-{run.id}", type="auditor-report")
        for path in files:
            artifact.add_file(str(path), name=path.name)
        run.log_artifact(artifact)
