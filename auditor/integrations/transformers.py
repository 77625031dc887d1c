"""Hugging Face Trainer: audit a fine-tune before its first step (``pip install 'auditor[transformers]'``).

    from auditor.integrations.transformers import AuditCallback
    trainer = Trainer(model, args, train_dataset=ds["train"], eval_dataset=ds["validation"],
                      data_collator=collate_fn, callbacks=[AuditCallback()])
    trainer.train()   # raises AuditStoppedTraining before the first optimizer step when the audits fail

At ``on_train_begin`` the Trainer has built everything training will use, and the
callback audits exactly that, as :func:`auditor.check` would:

* the model the Trainer trains (a ``PeftModel`` included),
* the optimizer the Trainer created (unwrapped from accelerate's wrapper),
* the train DataLoader the Trainer built (its dataset: a ``datasets.Dataset`` opens
  as an ``hf_dataset`` split; its batch size and its data collator) and the eval
  DataLoader(s) built from ``eval_dataset``,
* the loss: the gradient probe trains a deep copy of the model with the Trainer's own
  ``compute_loss(model, batch)`` on batches its collator made, so the model's own
  ``.loss`` (labels in the batch), a ``compute_loss_func`` or an overridden
  ``compute_loss`` is the loss probed.

* the training modes as the Trainer's steps set them: its ``training_step`` calls
  ``model.train()`` before every step, so the callback does the same before auditing (a
  ``from_pretrained`` model still in ``eval()`` is not reported as left in eval); an overridden
  ``training_step`` keeps the modes it is given,
* the learning-rate scheduler the Trainer built (or was given), dry-run by gradient_probe
  as it steps: once per optimizer step over ``state.max_steps``.

It prints one line when the audit passes and the top findings with their fixes when it
fails (as the Lightning callback does).

Stopping: the Trainer reads ``control.should_training_stop`` only after a step, so
setting it here would still take one optimizer step on the planted mistake. The
callback raises :class:`AuditStoppedTraining` (an :class:`auditor.AuditFailed`) from
``on_train_begin`` instead: ``trainer.train()`` ends before the first forward pass,
and the exception names the findings and the report files. The model, optimizer and
data are left as they were.

The summary goes to the ``transformers`` logger (``logging.set_verbosity_info()``
shows it), as the Trainer's own messages do; on several processes only the main one audits.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback
    from transformers.utils import logging as hf_logging
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "auditor.integrations.transformers needs transformers, which is not installed; "
        "hint: pip install 'auditor[transformers]'"
    ) from exc

from auditor.errors import AuditFailed
from auditor.live.check import check
from auditor.manifest.sections import DEFAULTS
from auditor.run.result import CheckResult

__all__ = ["AuditCallback", "AuditStoppedTraining", "trainer_loss_step"]

#: A child of the transformers logger: logging.set_verbosity_info() shows it next to the Trainer's messages.
logger = hf_logging.get_logger("transformers.auditor")


class AuditStoppedTraining(AuditFailed):
    """Raised from ``on_train_begin``: the audits found problems at ``fail_on``; no step was taken.

    ``report_paths`` lists the report files written (json first).
    """

    def __init__(self, report: Mapping[str, Any], report_paths: Sequence[Path]) -> None:
        super().__init__(report)
        self.report_paths = list(report_paths)
        where = f"\n  report: {self.report_paths[0]}" if self.report_paths else ""
        self.args = ("training stopped before the first optimizer step: " + str(self.args[0]) + where,)

    def __str__(self) -> str:
        return str(self.args[0])


def trainer_loss_step(trainer: Any) -> Any:
    """``(model, batch, step) -> loss``: the Trainer's own ``compute_loss`` on a collated batch."""

    def step(model: Any, batch: Any, _step: int) -> Any:
        if not isinstance(batch, Mapping):
            raise TypeError(
                f"the data collator returned a {type(batch).__name__}; the Trainer calls model(**batch), "
                "so it needs a dict such as {'pixel_values': ..., 'labels': ...}"
            )
        return trainer.compute_loss(model, dict(batch))

    return step


def _model_loss_step(model: Any, batch: Any, _step: int) -> Any:
    """Without the Trainer at hand: the model's own loss, ``model(**batch).loss`` (labels in the batch)."""
    output = model(**batch)
    return output["loss"] if isinstance(output, Mapping) else output[0]


class AuditCallback(TrainerCallback):  # type: ignore[misc]
    """Runs auditor on what ``Trainer.train()`` is about to train, before its first step.

    ``fail_on`` (error | warning | info | never): findings at or above it stop training by
    raising :class:`AuditStoppedTraining`. ``audits``: as in :func:`auditor.check` (a list
    selects, a mapping configures, ``name: False`` disables). ``report_dir``: where the reports
    go (default ``<args.output_dir>/auditor``), in ``formats``. ``image_column`` and
    ``label_column`` name the columns of a ``datasets.Dataset`` (default ``image`` and
    ``label``). ``trainer``: the Trainer, when it is not the one calling (a subclass that
    overrides ``compute_loss`` is found on its own). Other keywords go to
    :func:`auditor.check` (``pretrained=`` a model folder or the image processor, ``head=``,
    ``ignore=``, ``gradient_probe={"steps": 5}``, ...). The result is kept in ``self.result``.
    """

    def __init__(
        self,
        fail_on: str = DEFAULTS.fail_on,
        audits: Sequence[str] | Mapping[str, Any] | None = None,
        report_dir: str | Path | None = None,
        formats: Sequence[str] = DEFAULTS.report.formats,
        image_column: str | None = None,
        label_column: str | None = None,
        trainer: Any = None,
        **check_options: Any,
    ) -> None:
        self.fail_on = fail_on
        self.audits = audits
        self.report_dir = report_dir
        self.formats = list(formats)
        self.columns = {
            key: value
            for key, value in (("image_column", image_column), ("label_column", label_column))
            if value is not None
        }
        self.trainer = trainer
        self.check_options = check_options
        self.result: CheckResult | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if not getattr(state, "is_world_process_zero", True):
            return control  # one audit per run, not one per process
        model = kwargs.get("model")
        trainer = self.trainer or _calling_trainer(model)
        optimizer = kwargs.get("optimizer") or getattr(trainer, "optimizer", None)
        optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps it
        train = kwargs.get("train_dataloader")
        if train is None and trainer is not None:
            train = trainer.get_train_dataloader()
        splits = _eval_loaders(trainer, kwargs.get("eval_dataloader"))

        options = {"name": type(_base(model)).__name__, **self.check_options}
        schedule = _planned_schedule(kwargs.get("lr_scheduler"), state)
        if schedule is not None and "lr_scheduler" not in options:
            options["lr_scheduler"] = schedule
        if model is not None and _steps_in_train_mode(trainer):
            # Trainer.training_step calls model.train() before every step, so the modes that train
            # are train modes: a from_pretrained model still in eval() here is not what trains (a mode finding
            # would be a false alarm). An overridden training_step keeps the modes it is given.
            model.train()
        target = Path(self.report_dir) if self.report_dir is not None else Path(args.output_dir) / "auditor"
        self.result = check(
            model,
            optimizer,
            options.pop("loss", None),
            train=self._split(train),
            splits={name: self._split(loader) for name, loader in splits.items()},
            audits=self.audits,
            fail_on=self.fail_on,
            report_dir=target,
            formats=self.formats,
            loss_step=trainer_loss_step(trainer) if trainer is not None else _model_loss_step,
            **options,
        )
        written = [path for _, path in self.result.written]
        codes = sorted(self.result.codes())
        logger.info(
            f"auditor: exit code {self.result.exit_code}, findings {', '.join(codes) or 'none'}; "
            f"report: {written[0] if written else 'not written'}"
        )
        from auditor.integrations._callback_output import print_outcome

        print_outcome(self.result)  # one line on pass; the top findings with their fixes on failure
        if self.result.exit_code != 0:
            raise AuditStoppedTraining(self.result.report, written)
        return control

    def _split(self, loader: Any) -> Any:
        # accelerate's DataLoaderShard wraps (not subclasses) the torch DataLoader the Trainer built
        loader = getattr(loader, "base_dataloader", loader)
        if loader is None or not self.columns:
            return loader
        return {"dataset": loader, **self.columns}


def _base(model: Any) -> Any:
    getter = getattr(model, "get_base_model", None)
    return getter() if callable(getter) else model


def _calling_trainer(model: Any) -> Any:
    """The Trainer whose ``train()`` is running: callbacks are not handed it, so it is found on the stack.

    A subclass that overrides ``compute_loss`` is what the probe must call; the model's own
    loss would probe something else.
    """
    try:
        from transformers import Trainer
    except ImportError:  # pragma: no cover
        return None
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, Trainer) and (model is None or candidate.model is model):
            return candidate
        frame = frame.f_back
    return None


def _eval_loaders(trainer: Any, given: Any) -> dict[str, Any]:
    """The evaluation DataLoaders the Trainer builds from ``eval_dataset`` (a dict gives one per key)."""
    if trainer is None:
        return {"val": given} if given is not None else {}
    evaluation = getattr(trainer, "eval_dataset", None)
    if evaluation is None:
        return {}
    if isinstance(evaluation, Mapping):
        return {str(name): trainer.get_eval_dataloader(str(name)) for name in evaluation}
    return {"val": trainer.get_eval_dataloader()}


def _steps_in_train_mode(trainer: Any) -> bool:
    """Whether the Trainer's own ``training_step`` (which calls ``model.train()``) is the one that runs."""
    if trainer is None:
        return True  # the callback runs inside some Trainer; its default step sets train mode
    from transformers import Trainer

    step = getattr(type(trainer), "training_step", None)
    return step is Trainer.training_step


def _planned_schedule(scheduler: Any, state: Any) -> dict[str, Any] | None:
    """The Trainer's scheduler as gradient_probe dry-runs it: stepped once per optimizer step over the plan.

    The Trainer has sized it (``max_steps``, warm-up) before ``on_train_begin``, so the dry run over
    ``state.max_steps`` sees what training will see.
    """
    total = int(getattr(state, "max_steps", 0) or 0)
    scheduler = getattr(scheduler, "scheduler", scheduler)  # accelerate's AcceleratedScheduler wraps it
    if scheduler is None or total <= 0:
        return None
    epochs = max(1, round(float(getattr(state, "num_train_epochs", 1) or 1)))
    return {
        "scheduler": scheduler,
        "interval": "step",
        "epochs": epochs,
        "steps_per_epoch": -(-total // epochs),
    }
