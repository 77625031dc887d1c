"""What feature_fit reads from the run before judging: what trains, the sample, the feature pass
under the run's deadline, random augmentation and weight decay.

Every call into user code (model copy and forward, transforms, the optimizer factory)
runs under a deadline. Only imported from inside the audit's ``run``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from auditor import AuditContext
from auditor_plugins.feature_fit.extract import Extraction, extract, pick_indices
from auditor_plugins.feature_fit.verdicts import Plan

__all__ = ["augmentation", "extract_within_budget", "plan_of", "weight_decay"]


def plan_of(ctx: AuditContext) -> Plan:
    from auditor_plugins.common.model_parts import backbone_blocks, find_head

    model = ctx.run.model
    try:
        head = find_head(model, ctx.run.head_name)
    except LookupError:
        head = None  # frozen_coverage reports the wrong model.head
    head_name = head.name if head is not None else None

    def in_head(name: str) -> bool:
        return head_name is not None and (name == head_name or name.startswith(head_name + "."))

    backbone = [(n, p) for n, p in model.named_parameters() if not in_head(n)]
    head_params = [p for n, p in model.named_parameters() if in_head(n)]
    counts = list(ctx.train.label_counts().values()) if ctx.train is not None else []
    return Plan(
        head=head_name,
        blocks=backbone_blocks(model, head_name) if head_name else [],
        backbone_params=sum(p.numel() for _, p in backbone),
        backbone_trainable=sum(p.numel() for _, p in backbone if p.requires_grad),
        head_trainable=sum(p.numel() for p in head_params if p.requires_grad),
        samples_per_class=float(statistics.median(counts)) if counts else 0.0,
        classes=list(ctx.train.classes()) if ctx.train is not None else [],
    )


def _plan_samples(ctx: AuditContext, options: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """(split, indices, train class index per index) for train and each evaluation split."""
    train = ctx.train
    assert train is not None
    names = list(train.classes())
    lookup = {name: i for i, name in enumerate(names)}
    seed = int(options["seed"])
    plan = []
    targets = [int(t) for t in train.targets()]
    indices = pick_indices(targets, int(options["per_class"]), int(options["max_samples"]), seed)
    plan.append((train, indices, [targets[i] for i in indices]))
    if int(options["max_eval_samples"]) > 0:
        for split in ctx.eval_splits:
            if split.multilabel or not len(split):
                continue
            own = split.classes()
            mapped = [lookup.get(own[int(t)]) if 0 <= int(t) < len(own) else None for t in split.targets()]
            usable = [t if t is not None else -1 for t in mapped]
            picked = pick_indices(usable, int(options["per_class"]), int(options["max_eval_samples"]), seed)
            picked = [i for i in picked if usable[i] >= 0]
            plan.append((split, picked, [usable[i] for i in picked]))
    return plan, names


def extract_within_budget(
    ctx: AuditContext, options: dict[str, Any], plan: Plan, started: float
) -> tuple[Extraction, list[str]]:
    """The feature pass, stopped hard at ``time_budget_s`` plus a grace even when user code never returns."""
    from auditor.kit import CallDeadline, DeadlineExceeded
    from auditor_plugins.common.torch_env import isolated_rng, pick_device

    device, device_note = pick_device(options["device"])
    if device_note:
        ctx.note(device_note)
    budget = float(options["time_budget_s"])
    samples, names = _plan_samples(ctx, options)
    activity = {"doing": "copying the model"}

    def work() -> Extraction:
        with isolated_rng(int(options["seed"]), device), torch.no_grad():
            model = ctx.run.model_copy().to(device)
            model.eval()
            head = model.get_submodule(plan.head) if plan.head else None
            # Copying the model counts against the budget (it runs from when the model was built);
            # a tenth of it is kept for the scores after the pass.
            left = 0.9 * budget - (time.perf_counter() - started)
            return extract(model, head, samples, device, int(options["batch_size"]), left, activity)

    # The hard stop is for a call that never returns, not for a slow first batch: a full budget plus grace.
    grace = 5.0 + 0.1 * budget
    seconds = budget + grace
    try:
        return CallDeadline(seconds).call(work, what="feature_fit"), names
    except DeadlineExceeded as exc:
        if exc.what != "feature_fit":
            raise  # a sample read under its own deadline, already named
        raise DeadlineExceeded(
            f"feature_fit: {activity['doing']}",
            seconds,
            hint=f"feature_fit's time_budget_s is {budget:g} s; make that call return, or raise "
            "time_budget_s if it is merely slow",
        ) from exc


def augmentation(ctx: AuditContext, tries: int = 3) -> bool | None:
    """True when the training transform gives different tensors for one raw sample: random augmentation.

    None when it cannot be told (no transform is not that: it is False).
    """
    from auditor_plugins.common.torch_env import isolated_rng

    train = ctx.train
    if train is None or not len(train):
        return None
    transform = train.transform
    if transform is None:
        return False
    try:
        with isolated_rng(1, torch.device("cpu")):
            for index in range(min(tries, len(train))):
                raw = train.raw(index)
                a = ctx.call(transform, raw, what=f"the train transform on sample {index}")
                b = ctx.call(transform, raw, what=f"the train transform on sample {index}")
                if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
                    return None
                if a.shape != b.shape or not torch.equal(a, b):
                    return True
    except Exception as exc:
        ctx.note(f"the train transform could not be run twice on one sample ({type(exc).__name__}: {exc})")
        return None
    return False


def weight_decay(ctx: AuditContext) -> bool | None:
    """True when some param group of the optimizer decays its weights; None without an optimizer."""
    if not ctx.run.has("optimizer"):
        return None
    try:
        optimizer = ctx.run.optimizer
    except Exception as exc:
        ctx.note(f"the optimizer could not be built to read its weight decay ({type(exc).__name__}: {exc})")
        return None
    return any(float(group.get("weight_decay", 0) or 0) > 0 for group in optimizer.param_groups)
