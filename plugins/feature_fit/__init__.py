"""feature_fit: will the pretrained features transfer to this data? (FF001-FF005)

Runs the model as built, with its own (pretrained) weights, in ``eval()`` mode on a
bounded sample of each split (``per_class`` per class, ``max_samples`` in train,
``max_eval_samples`` per evaluation split) on the probe's device, and judges:

- the domain gap from BatchNorm statistics (FF002): the data's per-channel moments at
  each BatchNorm input against the running statistics stored in the weights;
- whether the frozen features separate the classes (leave-one-out k-NN accuracy with
  its confidence interval, and LogME), combined with what trains (FF001, FF004);
- train vs evaluation shift in feature space (FF003);
- whether a full fine-tune fits the data size (FF005).

A model whose weights are not pretrained (see ``auditor_plugins.common.pretrained_weights``)
is skipped with the reason. docs/feature_fit.md gives the methods and thresholds.
torch is imported only when the audit runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import Audit, AuditContext, Finding, SkipAudit, hookimpl
from auditor_plugins.feature_fit.causes import CAUSES
from auditor_plugins.feature_fit.codes import CODES

VERSION = "1.0.0"

#: Defaults of the ``thresholds`` option; docs/feature_fit.md gives the reasoning.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "separable_lift": 0.5,  # FF001/FF004: k-NN accuracy this far from chance towards 1 (0.5: halfway)
    "bn_divergence": 0.25,  # FF002: mean per-channel KL at a BatchNorm input
    "shift_accuracy": 0.6,  # FF003: lower 95% bound of the train-vs-split domain classifier's accuracy
    "few_samples_per_class": 50,  # FF005: median training samples per class below this
    "many_parameters": 1_000_000,  # FF005: trainable parameters at or above this
}

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "per_class": {"type": "integer", "minimum": 2, "default": 25, "description": "samples per class"},
        "max_samples": {
            "type": "integer",
            "minimum": 4,
            "default": 200,
            "description": "train samples in all",
        },
        "max_eval_samples": {
            "type": "integer",
            "minimum": 0,
            "default": 100,
            "description": "samples of each evaluation split (0: no FF003)",
        },
        "batch_size": {"type": "integer", "minimum": 1, "default": 25},
        "k": {
            "type": "integer",
            "minimum": 1,
            "default": 5,
            "description": "neighbours of the k-NN estimates",
        },
        "device": {"enum": ["auto", "cpu", "cuda"], "default": "auto"},
        "time_budget_s": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 60,
            "description": "the sample stops growing when this is reached (with a note)",
        },
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1, "default": 0},
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
    import time

    train = ctx.train
    if train is None:
        raise SkipAudit("the manifest has no 'train' split to measure the features on")
    if len(train) == 0:
        raise SkipAudit("the 'train' split is empty")
    if train.multilabel:
        raise SkipAudit("multilabel targets: feature_fit judges single-label classification only")
    # Every split it will sample, opened first: a split that cannot be opened skips the audit pointing at it.
    ctx.eval_splits  # noqa: B018
    from auditor_plugins.common.pretrained_weights import weights_origin

    origin = weights_origin(ctx.run)
    # time_budget_s runs from here: the model build is shared by every audit (the first to ask pays it).
    started = time.perf_counter()
    ctx.evidence["weights"] = origin.to_dict()
    if origin.pretrained is not True:
        raise SkipAudit(f"{origin.reason}; feature_fit judges pretrained features only")
    from auditor.report.document import strict_json
    from auditor_plugins.feature_fit import verdicts
    from auditor_plugins.feature_fit.setup import augmentation, extract_within_budget, plan_of, weight_decay

    options = dict(ctx.options)
    options["thresholds"] = {**DEFAULT_THRESHOLDS, **dict(options.get("thresholds") or {})}
    plan = plan_of(ctx)
    ext, class_names = extract_within_budget(ctx, options, plan, started)
    if ext.stopped:
        ctx.note(ext.stopped)
    sizes = {name: split.size for name, split in ext.splits.items()}
    ctx.evidence["sample"] = {"sizes": sizes, "seconds": round(ext.seconds, 2), "device": ext.device}
    failures = [(name, f) for name, split in ext.splits.items() for f in split.failures]
    if failures:
        name, (index, message) = failures[0]
        ctx.note(
            f"{len(failures)} sampled items could not be loaded and were left out (first: {name} {index}: {message})"
        )
    findings: list[Finding] = []
    gap_blocks, gap = verdicts.bn_gap(ctx, ext, plan, float(options["thresholds"]["bn_divergence"]))
    if gap is not None:
        findings.append(gap)
    if plan.head is None:
        ctx.note(
            "no classifier head found (set model.head): separability (FF001/FF004) and FF003 were not judged"
        )
    else:
        findings.extend(verdicts.separability(ctx, ext, plan, options, gap_blocks))
        findings.extend(verdicts.shift(ctx, ext, class_names, options))
    findings.extend(verdicts.strategy(ctx, plan, augmentation(ctx), weight_decay(ctx), options))
    for finding in findings:
        finding.evidence = strict_json(finding.evidence)
        yield finding
    ctx.evidence.update(strict_json(dict(ctx.evidence)))


AUDIT = Audit(
    name="feature_fit",
    version=VERSION,
    prefix="FF",
    codes=CODES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data", "model", "device"}),
    description="do the pretrained features fit this data: BatchNorm domain gap, frozen-feature "
    "separability, train/eval shift, strategy vs data size",
    order=55,
    causes=CAUSES,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
