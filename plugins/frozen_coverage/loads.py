"""Weights that really loaded (FZ010, FZ012): ``load_state_dict`` calls that filled few of a module's keys.

The host records every ``load_state_dict`` the model factory makes (and turns the caller's
``load_result=`` / ``checkpoint=`` into the same records, ``RunContext.weight_loads``). A load
with ``strict=False`` raises nothing when its keys do not fit: a ``DataParallel`` checkpoint
(``module.`` prefixes), the wrong file, a head-only file. Here a load that filled less than
``min_load_match`` of the module's keys is an error with the share and the first unmatched names.
``model.pretrained`` is not consulted: it is normalization metadata, and a model declared
pretrained that loads nothing is exactly what a load record shows, not what the manifest says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding

__all__ = ["check_loads"]

#: Unmatched names quoted in a message (the evidence keeps up to 20).
_SHOWN = 3


def check_loads(ctx: AuditContext, min_share: float) -> Iterator[Finding]:
    try:
        records = list(ctx.run.weight_loads)
    except Exception as exc:  # a checkpoint read that hung or a source without records: said, not hidden
        yield ctx.finding(
            "FZ012",
            f"the weight loads could not be checked: {type(exc).__name__}: {exc}",
            hint="pass the checkpoint as a readable state-dict file, or the load's result as load_result=",
            location="model",
        )
        return
    ctx.evidence["weight_loads"] = [record.to_dict() for record in records[:50]]
    for record in records:
        if record.problem:
            yield ctx.finding(
                "FZ012",
                f"{record.where}: {record.problem}",
                hint="save the weights with torch.save(model.state_dict(), path) (a mapping of names to "
                "tensors) and pass that file as checkpoint=",
                location="model",
                evidence=record.to_dict(),
            )
            continue
        share = record.share
        if share is None or share >= min_share:
            continue
        yield ctx.finding(
            "FZ010", _message(record, share), hint=_hint(record), location="model", evidence=record.to_dict()
        )


def _message(record: Any, share: float) -> str:
    into = f"'{record.target}' ({record.module})" if record.target else record.module
    strict = " with strict=False" if record.strict is False else ""
    given = f" from {record.given_keys} given keys" if record.given_keys is not None else ""
    text = (
        f"{record.where}: load_state_dict{strict} into {into} filled {record.matched} of its "
        f"{record.module_keys} keys ({share:.0%}){given}; those weights stay as initialised"
    )
    if record.missing:
        text += "; first unfilled: " + ", ".join(record.missing[:_SHOWN])
    if record.unexpected:
        text += "; first unused in the file: " + ", ".join(record.unexpected[:_SHOWN])
    if record.shape_mismatches:
        text += f"; {len(record.shape_mismatches)} keys with another shape, e.g. {record.shape_mismatches[0]}"
    return text


def _hint(record: Any) -> str:
    fix = record.prefix_fix
    if fix is not None:
        action, prefix, count = fix
        if action == "strip":
            why = " (saved from DataParallel/DistributedDataParallel)" if prefix == "module." else ""
            return (
                f"the file's keys carry the prefix {prefix!r}{why}: {count} of them fit once it is removed; "
                f"load {{k.removeprefix({prefix!r}): v for k, v in state_dict.items()}}, with strict=True"
            )
        return (
            f"the module's keys carry the prefix {prefix!r} the file lacks: {count} fit once it is added; "
            f"load into model.{prefix.rstrip('.')} instead, or prefix the keys, with strict=True"
        )
    if record.matched == 0:
        return (
            "no key of the file names a weight of this module: is it the checkpoint of another architecture, "
            "or of another part (a head-only file)? Load with strict=True to see the mismatch"
        )
    return (
        "load with strict=True to see every mismatch; strict=False is meant for a few keys (a replaced "
        "head), not for most of the module"
    )
