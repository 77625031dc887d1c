"""What the Lightning AuditCallback says and logs: a real Trainer, real loggers (CSV, MLflow file store).

On pass one line (counts, report path); on failure the top findings with their fixes, then the report
path; and the results go through the trainer's own logger when one is configured.
"""

from __future__ import annotations

import csv

import pytest

L = pytest.importorskip("lightning")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import auditor  # noqa: E402
from auditor.integrations.lightning import AuditCallback  # noqa: E402

PROBE = {"steps": 3, "overfit_steps": 3}


class Tiny(L.LightningModule):
    def __init__(self, log_of_logits: bool = False) -> None:
        super().__init__()
        self.log_of_logits = log_of_logits
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        return F.nll_loss(torch.log(logits), y) if self.log_of_logits else F.cross_entropy(logits, y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data(n: int, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(torch.rand(n, 3, 8, 8, generator=generator), torch.arange(n) % 3)
    return DataLoader(dataset, batch_size=6, shuffle=seed == 0)


def _fit(module: Tiny, callback: AuditCallback, logger: object, tmp_path) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        default_root_dir=tmp_path,
        limit_val_batches=0,
    )
    trainer.fit(module, _data(36, 0))
    return trainer


def test_a_passing_audit_prints_one_line_and_logs_its_counts_to_the_csv_logger(tmp_path, capsys):
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(0)
    logger = CSVLogger(tmp_path / "logs", name="run")
    callback = AuditCallback(gradient_probe=PROBE, label_distribution={"min_samples_per_class": 5})
    _fit(Tiny(), callback, logger, tmp_path)
    assert callback.result is not None and callback.result.exit_code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("auditor:")]
    assert len(lines) == 1, lines
    report = str(tmp_path / "auditor" / "report.html")
    assert lines[0].startswith("auditor: passed (exit 0): 0 errors") and lines[0].endswith(
        f"report: {report}"
    )
    with open(logger.log_dir + "/metrics.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    audit_row = next(row for row in rows if row.get("auditor/error"))
    assert float(audit_row["auditor/error"]) == 0.0 and float(audit_row["auditor/exit_code"]) == 0.0
    assert "auditor/gradient_probe/warning" in audit_row


@pytest.mark.slow
def test_a_failing_audit_prints_the_top_findings_with_fixes_and_logs_to_mlflow(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    logger = MLFlowLogger(experiment_name="pets", tracking_uri=uri)
    torch.manual_seed(0)
    callback = AuditCallback(report_dir=tmp_path / "reports", gradient_probe=PROBE)
    with pytest.raises(auditor.AuditFailed):
        _fit(Tiny(log_of_logits=True), callback, logger, tmp_path)
    out = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("auditor: failed (exit 1)"))
    said = out[start:]
    assert any(line.strip().startswith("GP001 error:") for line in said)
    fix = said[said.index(next(line for line in said if "GP001 error:" in line)) + 1]
    assert fix.strip().startswith("fix: ") and "`auditor explain GP001`" in fix
    assert said[-1].strip() == f"report: {tmp_path / 'reports' / 'report.html'}"
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logger.run_id)
    assert run.data.metrics["auditor/error"] == callback.result.report["summary"]["error"] >= 1
    assert run.data.tags["auditor.verdict"] == "failed"
    paths = {a.path for a in client.list_artifacts(logger.run_id, "auditor")}
    assert {"auditor/report.json", "auditor/report.html", "auditor/findings.json"} <= paths
