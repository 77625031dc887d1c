"""gradient_probe: a short real training run that catches silent failures (GP001-GP028).

The probe takes a deep copy of the model, a fresh optimizer and loss from the
manifest's factories, and runs ``steps`` real optimizer steps on shuffled batches
of ``train`` (through the train transform, on CUDA when present), then overfits
one batch for ``overfit_steps`` on a second fresh copy. Before that, a learning-rate schedule
(``lr_scheduler``) is dry-run on copies over the planned steps (schedule.py). The user's objects and
random streams are left as they were. Threshold defaults and their sources are in
docs/gradient_probe.md. torch is imported only when the audit runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import Audit, AuditContext, Finding, SkipAudit, hookimpl
from auditor_plugins.gradient_probe.causes import CAUSES
from auditor_plugins.gradient_probe.codes import CODES

VERSION = "1.1.0"

#: Defaults of the ``thresholds`` option; docs/gradient_probe.md gives the reasoning and sources.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "loss_explosion_factor": 10.0,  # GP001: loss above this multiple of its reference
    "vanishing_ratio": 1e-7,  # GP003: mean |grad| / |weight| below this (float32 epsilon)
    "exploding_ratio": 100.0,  # GP003: max |grad| / |weight| above this (1 / lr 0.01)
    "collapse_relative_spread": 1e-3,  # GP004: spread across the batch / output magnitude below this
    "stuck_margin": 0.1,  # GP005: median distance of probabilities from uniform below this
    "overfit_min_drop": 0.3,  # GP006: one-batch loss must fall by at least this fraction
    "initial_loss_tolerance": 0.5,  # GP007: relative distance from the uniform / prior loss
    "pretrained_update_ratio": 0.02,  # GP020: median per-step |update| / |weight| of a pretrained block
    "pretrained_min_cka": 0.8,  # GP020: linear CKA of backbone features before vs after the probe
}


OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "steps": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "default": 20,
            "description": "training steps on shuffled batches of train",
        },
        "batch_size": {"type": "integer", "minimum": 1, "default": 8},
        "num_workers": {"type": "integer", "minimum": 0, "default": 0, "description": "DataLoader workers"},
        "device": {
            "enum": ["auto", "cpu", "cuda"],
            "default": "auto",
            "description": "auto: CUDA when available, else CPU",
        },
        "time_budget_s": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 120,
            "description": "the probe stops early (with a note) when this is reached",
        },
        "overfit_steps": {
            "type": "integer",
            "minimum": 0,
            "maximum": 10000,
            "default": 20,
            "description": "steps of overfitting one batch (GP006); 0 skips it",
        },
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0},
        "thresholds": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                name: {"type": "number", "exclusiveMinimum": 0, "default": value}
                for name, value in DEFAULT_THRESHOLDS.items()
            },
        },
    },
}


def run(ctx: AuditContext) -> Iterator[Finding]:
    train = ctx.train
    if train is None:
        raise SkipAudit("the manifest has no 'train' split to probe with")
    if len(train) == 0:
        raise SkipAudit("the 'train' split is empty")
    if not any(p.requires_grad for p in ctx.run.model.parameters()):
        # Nothing can train, so there is nothing to probe. The reason names no other audit's code: that
        # audit may be disabled, and a skip must never point at a finding that was not reported.
        raise SkipAudit(
            "every parameter of the model is frozen (requires_grad=False) after the model and optimizer "
            "factories ran: nothing to train, and training's first loss.backward() would raise"
        )
    from auditor.report.document import strict_json  # NaN and infinity as null, as in report.json
    from auditor_plugins.gradient_probe.checks import evidence, judge

    options = dict(ctx.options)
    from auditor_plugins.gradient_probe.schedule import check_schedule

    # The learning-rate dry run needs no forward pass: it runs first, whatever the probe then meets.
    for finding in check_schedule(ctx, int(options["batch_size"])):
        finding.evidence = strict_json(finding.evidence)
        yield finding
    thresholds = {**DEFAULT_THRESHOLDS, **dict(options.get("thresholds") or {})}
    probe = _run_within_budget(ctx, options)
    ctx.evidence.update(evidence(probe))
    ctx.evidence["thresholds"] = thresholds
    for note in probe.notes:
        ctx.note(note)
    if probe.stopped:
        ctx.note(probe.stopped)
    if probe.overfit and probe.overfit.stopped:
        ctx.note(f"one-batch overfit {probe.overfit.stopped}")
    if probe.load_failures:
        index, message = probe.load_failures[0]
        count = len(probe.load_failures)
        ctx.note(
            f"{count} training sample{'s' if count != 1 else ''} could not be loaded and {'were' if count != 1 else 'was'} skipped "
            f"by the probe (first: sample {index}: {message}); a real DataLoader stops there{ctx.see('DL002')}"
        )
    for note in (probe.output_note, probe.target.note):
        if note:
            ctx.note(note)
    for finding in judge(ctx, probe, thresholds):
        finding.evidence = strict_json(finding.evidence)
        yield finding
    ctx.evidence.update(strict_json(dict(ctx.evidence)))


def _run_within_budget(ctx: AuditContext, options: dict[str, Any]) -> Any:
    """The probe, stopped at ``time_budget_s`` (plus a little grace) even when user code never returns.

    The probe stops stepping by itself when the next step would not fit the
    budget; this hard stop is for a factory, ``__getitem__`` or ``forward`` that
    hangs, and it names what was running.
    """
    from auditor.kit import CallDeadline, DeadlineExceeded
    from auditor_plugins.gradient_probe.runner import Activity, run_probe

    budget = float(options["time_budget_s"])
    grace = 5.0 + 0.1 * budget  # a step that started within the budget may finish a little after it
    activity = Activity()
    try:
        # The probe's own budget, not the run's call deadline: the probe makes many calls.
        return CallDeadline(budget + grace).call(run_probe, ctx, options, activity, what="gradient_probe")
    except DeadlineExceeded as exc:
        if exc.what != "gradient_probe":
            raise  # a factory or sample under its own call deadline, already named
        raise DeadlineExceeded(
            f"gradient_probe: {activity.doing}",
            budget + grace,
            hint=f"the probe's time_budget_s is {budget:g} s; make that call return, or raise time_budget_s "
            "if it is merely slow",
        ) from exc


AUDIT = Audit(
    name="gradient_probe",
    version=VERSION,
    prefix="GP",
    codes=CODES,
    causes=CAUSES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data", "model", "optimizer", "loss", "device"}),
    description="a few real training steps on a copy of the model: NaNs, dead gradients, collapse, frozen drift, "
    "a learning rate that erases the pretrained layers; the learning-rate schedule dry-run",
    order=50,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
