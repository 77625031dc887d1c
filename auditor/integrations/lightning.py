"""PyTorch Lightning: audit a fit before its first step (``pip install 'auditor[lightning]'``).

    from auditor.integrations.lightning import AuditCallback
    trainer = Trainer(callbacks=[AuditCallback(fail_on="error")])
    trainer.fit(module, datamodule)   # raises auditor.AuditFailed before training when the audits fail

At the start of ``fit`` the callback audits the LightningModule with the
optimizer from its ``configure_optimizers()`` and the trainer's train and val
DataLoaders, exactly as :func:`auditor.check` would. The gradient probe trains a
deep copy of the module through the module's own ``training_step``, so a loss
computed inside the module is the loss probed. The module, its optimizer and the
DataLoaders are left as they were; the fit then starts as if nothing happened.

The learning-rate schedule from ``configure_optimizers`` (its ``interval``, default ``epoch``,
and ``frequency``) is dry-run over the fit's planned epochs (``max_epochs``, or ``max_steps``)
and steps per epoch. Lightning 2.2+ keeps each submodule's training mode instead of calling
``train()``: the modes are audited at the start of the fit, and audited again (frozen_coverage
alone) when training starts after the sanity check and after the first validation, if they
changed; those results are kept in ``self.mode_results``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - the older package name
    try:
        from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef]
    except ImportError as exc:
        raise ImportError(
            "auditor.integrations.lightning needs PyTorch Lightning, which is not installed; "
            "hint: pip install 'auditor[lightning]'"
        ) from exc

from auditor.live.check import check
from auditor.manifest.sections import DEFAULTS
from auditor.run.result import CheckResult

__all__ = ["AuditCallback", "training_step_loss"]


def training_step_loss(module: Any, batch: Any, step: int) -> Any:
    """The loss ``module.training_step(batch, step)`` returns (a tensor, ``{"loss": tensor}`` or None)."""
    with warnings.catch_warnings():
        # The probe's copy is not attached to a Trainer: its self.log() calls warn and do nothing.
        warnings.filterwarnings("ignore", message=".*self.log.*")
        warnings.filterwarnings("ignore", message=".*trainer.*reference is not registered.*")
        output = module.training_step(batch, step)
    if isinstance(output, Mapping):
        output = output.get("loss")
    return output


class AuditCallback(Callback):  # type: ignore[misc]
    """Runs auditor on the fit's module, optimizer and DataLoaders before training starts.

    ``fail_on`` (error | warning | info | never): findings at or above it stop the fit by
    raising :class:`auditor.AuditFailed`. ``audits``: as in :func:`auditor.check` (a list of
    names selects, every other audit is ``disabled``; a mapping name -> options configures and
    ``name: False`` disables); default every installed audit. ``report_dir``: where the reports go (default
    ``<default_root_dir>/auditor``), in ``formats``. Other keywords go to
    :func:`auditor.check` (``pretrained=``, ``head=``, ``task=``, ``ignore=``,
    ``gradient_probe={"steps": 5}``, ...). The result (a :class:`auditor.CheckResult`, the type
    every run returns) is kept in ``self.result``. It prints one line when the audit passes and the
    top findings with their fixes when it fails, with the report's path; ``log_to_logger`` (default
    True) logs the results through the trainer's loggers (MLflow and W&B: the full report; others:
    the counts as metrics).
    """

    def __init__(
        self,
        fail_on: str = DEFAULTS.fail_on,
        audits: Sequence[str] | Mapping[str, Any] | None = None,
        report_dir: str | Path | None = None,
        formats: Sequence[str] = DEFAULTS.report.formats,
        log_to_logger: bool = True,
        **check_options: Any,
    ) -> None:
        super().__init__()
        self.log_to_logger = log_to_logger
        self.fail_on = fail_on
        self.audits = audits
        self.report_dir = report_dir
        self.formats = list(formats)
        self.check_options = check_options
        self.result: CheckResult | None = None
        #: Re-audits of the module's training modes, by moment ("training starts", "after the first
        #: validation"), made only when the modes differ from the last audited ones.
        self.mode_results: dict[str, CheckResult] = {}
        self._modes: dict[str, bool] = {}
        self._validated = False
        self._unchanged: set[str] = set()  # moments whose modes were the ones already audited
        self._target: Path | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return  # one audit per fit, not one per process
        train, splits = _dataloaders(trainer)
        options = {"name": type(pl_module).__name__, **self.check_options}
        loss = options.pop("loss", None) or _loss_module(pl_module)
        target = (
            Path(self.report_dir)
            if self.report_dir is not None
            else Path(trainer.default_root_dir) / "auditor"
        )
        if "lr_scheduler" not in options:
            options["lr_scheduler"] = _lr_scheduler(trainer)
        self._target = target
        self._modes = _modes(pl_module)
        self.result = check(
            pl_module,
            _optimizer(trainer, pl_module),
            loss,
            train=train,
            splits=splits,
            audits=self.audits,
            fail_on=self.fail_on,
            report_dir=target,
            formats=self.formats,
            loss_step=training_step_loss if getattr(pl_module, "automatic_optimization", True) else None,
            **options,
        )
        _report_outcome(trainer, self.result, log=self.log_to_logger)
        self.result.raise_for_errors()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # After the sanity check's validation, whose hooks may have left modules in eval().
        self._recheck_modes(trainer, pl_module, "training starts")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        moment = "after the first validation"
        if self._validated and moment not in self.mode_results and moment not in self._unchanged:
            self._recheck_modes(trainer, pl_module, moment)

    def _recheck_modes(self, trainer: Any, pl_module: Any, moment: str) -> None:
        """frozen_coverage again on the module when its modes changed since they were last audited."""
        if not trainer.is_global_zero or self.result is None:
            return
        modes = _modes(pl_module)
        if modes == self._modes:
            self._unchanged.add(moment)
            return
        self._modes = modes
        options = {
            k: v for k, v in self.check_options.items() if k in ("pretrained", "head", "task", "ignore")
        }
        slug = moment.replace(" ", "-")
        result = check(
            pl_module,
            _optimizer(trainer, pl_module),
            train=_first(trainer.train_dataloader),
            audits=["frozen_coverage"],
            fail_on=self.fail_on,
            name=f"{type(pl_module).__name__} ({moment})",
            report_dir=(self._target or Path(trainer.default_root_dir) / "auditor") / slug,
            formats=self.formats,
            progress=False,
            **options,
        )
        self.mode_results[moment] = result
        result.raise_for_errors()


def _modes(module: Any) -> dict[str, bool]:
    return {name: sub.training for name, sub in module.named_modules()}


def _lr_scheduler(trainer: Any) -> Any:
    """The fit's first learning-rate schedule as auditor.check takes it, with the planned run; None if none."""
    import math

    configs = list(getattr(trainer, "lr_scheduler_configs", None) or [])
    if not configs:
        return None
    config = configs[0]
    batches = getattr(trainer, "num_training_batches", None)
    accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1) or 1))
    per_epoch = (
        max(1, math.ceil(batches / accumulate))
        if isinstance(batches, (int, float)) and math.isfinite(batches) and batches > 0
        else None
    )
    epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else None
    if trainer.max_steps not in (None, -1) and per_epoch:
        by_steps = math.ceil(trainer.max_steps / per_epoch)
        epochs = min(epochs, by_steps) if epochs else by_steps
    return {
        "scheduler": config.scheduler,
        "interval": config.interval,
        "frequency": int(config.frequency or 1),
        "epochs": epochs,
        "steps_per_epoch": per_epoch,
    }


def _report_outcome(trainer: Any, result: CheckResult, *, log: bool) -> None:
    """One line on pass, the top findings with their fixes on failure; then the trainer's loggers."""
    from auditor.integrations._callback_output import log_to_loggers, print_outcome

    print_outcome(result)
    if log:
        log_to_loggers(getattr(trainer, "loggers", None) or [], result)


def _optimizer(trainer: Any, module: Any) -> Any:
    """The optimizer the fit will step (the trainer set them up before on_fit_start)."""
    optimizers = list(getattr(trainer, "optimizers", None) or [])
    if optimizers:
        return optimizers[0]
    configured = module.configure_optimizers()
    while isinstance(configured, (list, tuple)) and configured:
        configured = configured[0]
    if isinstance(configured, Mapping):
        configured = configured.get("optimizer")
    return configured


def _loss_module(module: Any) -> Any:
    """The module's loss when it holds exactly one torch loss module (e.g. ``self.loss = CrossEntropyLoss()``)."""
    from torch.nn.modules.loss import _Loss

    found = [m for m in module.modules() if isinstance(m, _Loss)]
    return found[0] if len(found) == 1 else None


def _dataloaders(trainer: Any) -> tuple[Any, dict[str, Any]]:
    """The fit's train DataLoader and val DataLoaders (named val, or val_0, val_1, ... / their keys)."""
    trainer.fit_loop.setup_data()  # what fit does next anyway; it then reuses these loaders
    train = _first(trainer.train_dataloader)
    splits: dict[str, Any] = {}
    val_loop = trainer.fit_loop.epoch_loop.val_loop
    if trainer.limit_val_batches != 0:
        val_loop.setup_data()
        val = trainer.val_dataloaders
        if isinstance(val, Mapping):
            splits.update({str(k): v for k, v in val.items()})
        elif isinstance(val, (list, tuple)):
            splits.update({"val" if len(val) == 1 else f"val_{i}": v for i, v in enumerate(val)})
        elif val is not None:
            splits["val"] = val
    return train, splits


def _first(loaders: Any) -> Any:
    if isinstance(loaders, Mapping):
        return next(iter(loaders.values()), None)
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    return loaders
