"""frozen_coverage: what trains, what the optimizer updates, what loaded, what the head predicts
(FZ001-FZ012, FZ015-FZ016).

Reads the model and the optimizer exactly as the manifest's factories build them;
nothing runs forward or backward. ``model.train()`` is called on a copy, so
custom ``train()`` overrides decide which layers are in training mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import Audit, AuditContext, Finding, ManifestError, hookimpl
from auditor_plugins.frozen_coverage.causes import CAUSES
from auditor_plugins.frozen_coverage.codes import CODES

VERSION = "1.0.0"


OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_names": {
            "type": "integer",
            "minimum": 1,
            "default": 10,
            "description": "parameter/module names listed in a message before '... and N more'",
        },
        "min_load_match": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
            "description": "share of a module's keys a load_state_dict call must fill; below it the load is "
            "reported as weights that never loaded",
        },
    },
}


def _head(ctx: AuditContext, model: Any) -> Any:
    from auditor_plugins.common.model_parts import find_head

    try:
        return find_head(model, ctx.run.head_name)
    except LookupError:
        from auditor.kit import did_you_mean

        names = [n for n, _ in model.named_modules() if n]
        hint = did_you_mean(ctx.run.head_name or "", names)
        manifest = ctx.manifest
        raise ManifestError(
            manifest.path,
            "model.head",
            f"the name of a submodule of {type(model).__name__}",
            repr(ctx.run.head_name),
            line=manifest.resolver.lines.line("model.head"),
            hint=(f"{hint} " if hint else "")
            + "top-level modules: "
            + ", ".join(n for n, _ in model.named_children()),
        ) from None


def run(ctx: AuditContext) -> Iterator[Finding]:
    from auditor_plugins.frozen_coverage.accounting import account, state_of
    from auditor_plugins.frozen_coverage.adapters import peft_parts

    model = ctx.run.model
    limit = int(ctx.options["max_names"])
    accounting = account(model)
    ctx.evidence.update(accounting)
    totals = accounting["totals"]
    peft = peft_parts(model)
    if peft is not None:
        ctx.evidence["peft"] = peft.to_dict()
        head = _peft_head(ctx, model)
    else:
        head = _head(ctx, model)
    head_counts = state_of(head.module.parameters()) if head is not None else None
    ctx.evidence["head"] = (
        {**head.to_dict(), **head_counts.to_dict(head.name)}
        if head is not None and head_counts is not None
        else None
    )
    if head is None:
        ctx.note(
            "no classifier head found (no Linear or 1x1-conv classifier): set model.head; "
            "FZ003, FZ004 and FZ007 were not checked"
        )

    if totals["trainable"] == 0 and totals["frozen"] > 0:
        yield ctx.finding(
            "FZ001",
            f"all {totals['frozen']:,} parameters of {type(model).__name__} are frozen (requires_grad=False)",
            hint="freeze the backbone before attaching the new head, or call "
            f"model.{head.name}.requires_grad_(True)"
            if head
            else "set requires_grad=True on the layers to train",
            location="model",
            evidence={"frozen": totals["frozen"]},
        )
    elif peft is not None:
        yield from _peft_state(ctx, peft, head, head_counts)
    elif head is not None and head_counts is not None:
        yield from _head_state(ctx, model, head, head_counts)
    if head is not None:
        yield from _head_size(ctx, head)
    yield from _reinitialised(ctx, model, limit)
    if ctx.run.has("optimizer"):
        yield from _optimizer(ctx, model, head, limit)
    else:
        ctx.note("the manifest has no optimizer: optimizer coverage (FZ002, FZ006, FZ008) was not checked")
    yield from _norm_layers(ctx, limit)
    from auditor_plugins.frozen_coverage.loads import check_loads
    from auditor_plugins.frozen_coverage.modes import check_modes

    yield from check_loads(ctx, float(ctx.options["min_load_match"]))
    yield from check_modes(ctx, limit)


def _reinitialised(ctx: AuditContext, model: Any, limit: int) -> Iterator[Finding]:
    """FZ016: tensors the Hugging Face checkpoint could not fill (ignore_mismatched_sizes, or new ones)."""
    from auditor_plugins.frozen_coverage.checkpoint import checkpoint_mismatch

    mismatch = checkpoint_mismatch(ctx, model)
    if mismatch is None or not (mismatch.resized or mismatch.missing):
        return
    resized = [f"{n} {old} -> {new}" for n, (old, new) in mismatch.resized.items()]
    parts = []
    if resized:
        parts.append(f"re-initialised because the checkpoint's shape differs: {', '.join(resized[:limit])}")
    if mismatch.missing:
        parts.append(f"not in the checkpoint, initialised at random: {', '.join(mismatch.missing[:limit])}")
    modules = sorted({n.rsplit(".", 1)[0] for n in [*mismatch.resized, *mismatch.missing]})
    yield ctx.finding(
        "FZ016",
        f"{len(mismatch.resized) + len(mismatch.missing)} tensors of '{modules[0]}'"
        + (f" and {len(modules) - 1} more modules" if len(modules) > 1 else "")
        + f" do not come from {mismatch.folder.name}: "
        + "; ".join(parts),
        hint="expected for a new head, which must then train (FZ004, FZ015); anywhere else, load a "
        "checkpoint whose architecture matches",
        location="model",
        evidence={
            "folder": str(mismatch.folder),
            "resized": {
                n: {"checkpoint": o, "model": m} for n, (o, m) in list(mismatch.resized.items())[:200]
            },
            "missing": mismatch.missing[:200],
            "modules": modules[:50],
        },
    )


def _peft_head(ctx: AuditContext, model: Any) -> Any:
    """The new head of a PeftModel: the module training updates as the head (a saved module's trainable copy)."""
    from auditor_plugins.common.model_parts import Head, output_layer
    from auditor_plugins.frozen_coverage.adapters import peft_head

    found = peft_head(model, ctx.run.head_name)
    if found is None:
        if ctx.run.head_name:
            return _head(ctx, model)  # names a submodule of the PeftModel itself, or is wrong: say so
        return None
    name, _wrapper, training = found
    layer, outputs = output_layer(name, training)
    return Head(name, training, "manifest" if ctx.run.head_name else "inferred", outputs, layer)


def _peft_state(ctx: AuditContext, peft: Any, head: Any, counts: Any) -> Iterator[Finding]:
    """A frozen base with trainable adapters is the intended setup; a frozen new head is not (FZ015)."""
    head_part = (
        f"; head '{head.name}' {counts.trainable:,} trainable, {counts.frozen:,} frozen"
        if head is not None and counts is not None
        else ""
    )
    ctx.note(
        f"{peft.peft_type or 'PEFT'} adapters ({', '.join(peft.adapters)}): base {peft.base['frozen']:,} frozen, "
        f"{peft.base['trainable']:,} trainable; adapters {peft.adapter['trainable']:,} trainable; modules_to_save "
        f"{peft.saved['trainable']:,} trainable{head_part}"
    )
    if peft.trainable_base:
        ctx.note(
            f"{len(peft.trainable_base)} base-model tensors of the PeftModel train in full besides the adapters "
            f"(first: {peft.trainable_base[0]})"
        )
    if head is None or counts is None or not counts.frozen:
        return
    short = head.name.rsplit(".", 1)[-1]
    listed = ", ".join(repr(m) for m in peft.modules_to_save) or "none"
    yield ctx.finding(
        "FZ015",
        f"the new head '{head.name}' of the {peft.peft_type or 'PEFT'} model is frozen ({counts.frozen:,} "
        f"parameters at their random initialisation): it is not in modules_to_save ({listed}), so only the "
        f"adapters ({peft.adapter['trainable']:,} parameters) train and the head never learns",
        hint=f'list it in the adapter config: LoraConfig(..., modules_to_save=["{short}"]) before '
        "get_peft_model(), so it trains in full and is saved with the adapters",
        location="model.head",
        evidence={
            "head": head.name,
            "frozen": counts.frozen,
            "modules_to_save": peft.modules_to_save,
            "adapter_trainable": peft.adapter["trainable"],
        },
    )


def _head_state(ctx: AuditContext, model: Any, head: Any, counts: Any) -> Iterator[Finding]:
    from auditor_plugins.common.model_parts import backbone_blocks

    inferred = " (inferred; set model.head if that is wrong)" if head.how == "inferred" else ""
    if counts.frozen:
        tensors = counts.frozen_tensors + counts.trainable_tensors
        whole = (
            "entirely frozen"
            if not counts.trainable
            else f"partly frozen ({counts.frozen_tensors} of {tensors} tensors)"
        )
        yield ctx.finding(
            "FZ004",
            f"the head '{head.name}'{inferred} is {whole}: {counts.frozen:,} parameters cannot learn",
            hint=f"model.{head.name}.requires_grad_(True) after freezing the backbone",
            location="model.head",
            evidence={"head": head.name, "frozen": counts.frozen, "trainable": counts.trainable},
        )
        return
    backbone = [
        (n, p) for n, p in model.named_parameters() if not (n == head.name or n.startswith(head.name + "."))
    ]
    if not backbone or any(p.requires_grad for _, p in backbone):
        return
    blocks = backbone_blocks(model, head.name)
    frozen = sum(p.numel() for _, p in backbone)
    source = ctx.run.pretrained if ctx.run.has("model") else None
    pretrained = f" (pretrained: {source})" if isinstance(source, str) else ""
    if blocks:
        last = blocks[-1]
        then = f", then '{blocks[-2][0]}'" if len(blocks) > 1 else ""
        hint = (
            f"unfreeze the last block '{last[0]}' ({last[1]:,} parameters){then}, and give it a lower lr "
            f"than the head (commonly 10x lower) in its own param group: "
            f"[{{'params': model.{last[0]}.parameters(), 'lr': lr / 10}}, "
            f"{{'params': model.{head.name}.parameters(), 'lr': lr}}]"
        )
    else:
        hint = "unfreeze the last backbone block with a lower lr (commonly 10x lower) than the head"
    yield ctx.finding(
        "FZ003",
        f"all {frozen:,} backbone parameters{pretrained} are frozen; only the head '{head.name}' "
        f"({counts.trainable:,} parameters) trains; {_feature_fit_verdict(ctx)}",
        hint=hint,
        location="model",
        evidence={
            "frozen": frozen,
            "head_trainable": counts.trainable,
            "blocks": [{"name": n, "parameters": s} for n, s in blocks],
        },
    )


#: Losses for which the head's width is not a class count (torch's names, matched on the class and its bases).
_ELEMENTWISE_LOSSES = frozenset({"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"})
_BINARY_LOSSES = frozenset({"BCEWithLogitsLoss", "BCELoss"})


def _loss_name(ctx: AuditContext) -> str:
    """The torch class the manifest's loss is (or derives from); '' without a loss or when it cannot be built."""
    if not ctx.run.has("loss"):
        return ""
    try:
        loss = ctx.run.loss
    except Exception:  # a broken loss factory is reported by the audits that need the loss
        return ""
    for cls in type(loss).__mro__:
        if cls.__module__.startswith("torch.nn") and cls.__name__ in _ELEMENTWISE_LOSSES | _BINARY_LOSSES:
            return cls.__name__
    return type(loss).__name__


def _feature_fit_verdict(ctx: AuditContext) -> str:
    """Who judges whether the frozen features fit: feature_fit, unless the weights are not pretrained."""
    from auditor_plugins.common.pretrained_weights import weights_origin

    try:
        origin = weights_origin(ctx.run)
    except Exception as exc:  # the second model build (user code) failed: say so, the finding stands
        return f"whether the weights are pretrained could not be read ({type(exc).__name__}: {exc})"
    if origin.pretrained is True and not ctx.refers("FF001"):
        return "feature_fit does not run here, so nothing judges whether these frozen features fit the data"
    if origin.pretrained is True:
        return "whether these frozen features fit the data is feature_fit's verdict (FF001 or FF004)"
    return f"feature_fit cannot judge whether frozen features fit the data: {origin.reason}"


def _head_size(ctx: AuditContext, head: Any) -> Iterator[Finding]:
    if head.outputs is None:
        return
    if not (ctx.run.has("data") or ctx.manifest.task.num_classes):
        ctx.note("no data and no task.num_classes: the head size (FZ007) was not checked")
        return
    task = ctx.task
    wanted = task.num_classes
    if not wanted:
        ctx.note("the number of classes is unknown: the head size (FZ007) was not checked")
        return
    outputs = head.outputs
    loss = _loss_name(ctx)
    if loss in _ELEMENTWISE_LOSSES:
        ctx.note(
            f"the loss is {loss}, which compares outputs with targets element by element (regression): "
            "the head size was not compared with the class count (FZ007)"
        )
        return
    binary_single = (task.type == "binary" or loss in _BINARY_LOSSES) and outputs == 1 and wanted == 2
    if outputs == wanted or binary_single:
        return
    where = "task.num_classes" if task.source == "manifest" and ctx.manifest.task.num_classes else "the data"
    extra = ""
    untrained: list[str] = []
    hint = f"replace it with one sized to the data: model.{head.layer} = nn.Linear(in_features, {wanted})"
    if outputs == 1 and wanted == 2:
        extra = (
            "; one logit needs BCEWithLogitsLoss and task.type: binary, with CrossEntropyLoss the loss "
            "of a single output is always 0"
        )
    elif ctx.train is not None and len(ctx.train.classes()) == outputs and where == "the data":
        trained = set(ctx.train.classes())
        others = sorted({c for c in task.class_names if c not in trained})
        untrained = list(others)
        extra = (
            f"; it fits the {outputs} classes of 'train', but evaluation labels include "
            f"{', '.join(repr(c) for c in others[:5])}, which no output can predict{ctx.see('LD002')}"
        )
        hint = (
            f"drop {', '.join(repr(c) for c in others[:5])} from the evaluation splits, or add training "
            f"samples for them and size the head to {wanted} "
            f"(model.{head.layer} = nn.Linear(in_features, {wanted}))"
        )
    elif head.how == "inferred":
        extra = f"; the head was inferred as '{head.layer}', set model.head if that is wrong"
    yield ctx.finding(
        "FZ007",
        f"the head '{head.layer}' has {outputs} outputs but {where} has {wanted} classes "
        f"({task.type}){extra}",
        hint=hint,
        location="model.head" if head.how == "manifest" else "model",
        evidence={
            "head": head.layer,
            "outputs": outputs,
            "num_classes": wanted,
            "task": task.type,
            "classes": list(task.class_names)[:50],
            "untrained_classes": untrained[:50],
        },
    )


def _optimizer(ctx: AuditContext, model: Any, head: Any, limit: int) -> Iterator[Finding]:
    from auditor_plugins.frozen_coverage.accounting import coverage, summarize_names

    optimizer = ctx.run.optimizer
    cover = coverage(optimizer, model)
    ctx.evidence["optimizer"] = cover.to_dict()
    if cover.foreign:
        ctx.note(
            f"the optimizer holds {cover.foreign} tensors that are not parameters of the model "
            "(a loss with learnable parameters, or an optimizer built over another model instance)"
        )
    if cover.missing:
        owned = sum(g.trainable + g.frozen for g in cover.groups)
        if owned == 0 and cover.foreign:
            why = "it holds none of this model's parameters: was it built over another model instance?"
        elif head is not None and any(n.startswith(head.name + ".") for n in cover.missing):
            why = "the head is among them: was the optimizer built before the head was replaced?"
        else:
            why = "no param group lists them"
        yield ctx.finding(
            "FZ002",
            f"{len(cover.missing)} trainable parameter tensors are in no param group of "
            f"{cover.optimizer.rsplit('.', 1)[-1]}: {summarize_names(cover.missing, model, limit)}",
            hint=f"{why}; build the optimizer last, from the final model's trainable parameters",
            location="optimizer",
            evidence={"parameters": cover.missing[:200], "count": len(cover.missing)},
        )
    for index, names in cover.zero_lr.items():
        yield ctx.finding(
            "FZ002",
            f"param group {index} has lr 0, so its {len(names)} trainable tensors never change: "
            f"{summarize_names(names, model, limit)}",
            hint="give the group a learning rate (a lower one is usual for backbone blocks), or freeze these "
            "parameters; ignore this if a warm-up scheduler raises the lr later",
            location="optimizer",
            evidence={"group": index, "parameters": names[:200], "count": len(names)},
        )
    if cover.duplicates:
        names = list(cover.duplicates)
        yield ctx.finding(
            "FZ008",
            f"{len(names)} parameter tensors are listed more than once across param groups: "
            f"{summarize_names(names, model, limit)}",
            hint="build param groups from disjoint modules so each parameter is updated once per step",
            location="optimizer",
            evidence={"parameters": {n: g for n, g in list(cover.duplicates.items())[:200]}},
        )
    if cover.frozen_inside:
        yield ctx.finding(
            "FZ006",
            f"the optimizer holds {len(cover.frozen_inside)} frozen parameter tensors: "
            f"{summarize_names(cover.frozen_inside, model, limit)}",
            hint="pass only trainable parameters, e.g. [p for p in model.parameters() if p.requires_grad], "
            "unless you unfreeze them later on purpose",
            location="optimizer",
            evidence={"parameters": cover.frozen_inside[:200], "count": len(cover.frozen_inside)},
        )


def _norm_layers(ctx: AuditContext, limit: int) -> Iterator[Finding]:
    from auditor_plugins.common.model_parts import updating_norm_layers

    try:
        model = ctx.run.model_copy()
        model.train()  # exactly what training calls; a custom train() override decides
    except Exception as exc:
        ctx.note(
            f"FZ005 not checked: copying the model and calling train() failed ({type(exc).__name__}: {exc})"
        )
        return
    layers = updating_norm_layers(model)
    ctx.evidence["updating_norm_layers"] = len(layers)
    if not layers:
        return
    names = [layer["name"] for layer in layers]
    kinds = sorted({layer["type"] for layer in layers})
    shown = ", ".join(names[:limit]) + (f", ... and {len(names) - limit} more" if len(names) > limit else "")
    yield ctx.finding(
        "FZ005",
        f"{len(layers)} frozen {'/'.join(kinds)} layers are in training mode after model.train() and "
        f"will overwrite their running statistics: {shown}",
        hint="override train() to call .eval() on frozen norm layers after super().train(mode), or unfreeze "
        "them if adapting their statistics to the new data is intended",
        location="model",
        evidence={"layers": layers[:200], "count": len(layers)},
    )


AUDIT = Audit(
    name="frozen_coverage",
    version=VERSION,
    prefix="FZ",
    codes=CODES,
    causes=CAUSES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"model"}),
    description="trainable vs frozen parameters, optimizer coverage, head state and size, frozen BatchNorm, "
    "weights that really loaded, modules left in eval(), PEFT heads",
    order=40,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
