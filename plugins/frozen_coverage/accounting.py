"""Who trains what: trainable/frozen parameter counts per module, and optimizer coverage by identity.

Parameters are matched to optimizer param groups with ``id()`` (the optimizer
holds the very tensor objects), never by value: two tensors with equal values are
still two parameters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Counts", "Coverage", "account", "coverage", "state_of", "summarize_names"]

#: Module-tree entries deeper than this are not kept as evidence (the chart would be unreadable).
TREE_DEPTH = 3
TREE_LIMIT = 400


@dataclass
class Counts:
    trainable: int = 0
    frozen: int = 0
    trainable_tensors: int = 0
    frozen_tensors: int = 0

    def add(self, numel: int, trainable: bool) -> None:
        if trainable:
            self.trainable += numel
            self.trainable_tensors += 1
        else:
            self.frozen += numel
            self.frozen_tensors += 1

    @property
    def state(self) -> str:
        if not self.trainable and not self.frozen:
            return "empty"
        if not self.frozen:
            return "trainable"
        return "frozen" if not self.trainable else "partial"

    def to_dict(self, name: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "trainable": self.trainable,
            "frozen": self.frozen,
            "state": self.state,
            "trainable_tensors": self.trainable_tensors,
            "frozen_tensors": self.frozen_tensors,
            **extra,
        }


def state_of(params: Iterable[Any]) -> Counts:
    counts = Counts()
    for p in params:
        counts.add(p.numel(), bool(p.requires_grad))
    return counts


def account(model: Any) -> dict[str, Any]:
    """Counts for the whole model, per top-level module (in order) and per module tree."""
    totals = Counts()
    top: dict[str, Counts] = {}
    tree: dict[str, Counts] = {}
    for name, _ in model.named_children():
        top[name] = Counts()
    for name, param in model.named_parameters():
        numel, trainable = param.numel(), bool(param.requires_grad)
        totals.add(numel, trainable)
        parts = name.split(".")[:-1]
        top.setdefault(parts[0] if parts else "(root)", Counts()).add(numel, trainable)
        for depth in range(1, min(len(parts), TREE_DEPTH) + 1):
            prefix = ".".join(parts[:depth])
            tree.setdefault(prefix, Counts()).add(numel, trainable)
    total = totals.trainable + totals.frozen
    return {
        "totals": {
            **totals.to_dict("(model)"),
            "trainable_fraction": round(totals.trainable / total, 6) if total else 0.0,
        },
        "modules": [c.to_dict(n) for n, c in top.items() if c.state != "empty"],
        "tree": [c.to_dict(n, depth=n.count(".") + 1) for n, c in list(tree.items())[:TREE_LIMIT]],
        "tree_truncated": len(tree) > TREE_LIMIT,
    }


@dataclass
class Group:
    index: int
    lr: float | None
    weight_decay: float | None
    params: int = 0
    trainable: int = 0
    frozen: int = 0
    foreign: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "tensors": self.params,
            "trainable_tensors": self.trainable,
            "frozen_tensors": self.frozen,
            "foreign_tensors": self.foreign,
        }


@dataclass
class Coverage:
    """How an optimizer's param groups relate to a model's parameters."""

    optimizer: str
    groups: list[Group] = field(default_factory=list)
    #: trainable parameters in no group.
    missing: list[str] = field(default_factory=list)
    #: trainable parameters whose every group has lr 0: {group index: names}.
    zero_lr: dict[int, list[str]] = field(default_factory=dict)
    frozen_inside: list[str] = field(default_factory=list)
    #: parameter name -> the groups that list it (more than one).
    duplicates: dict[str, list[int]] = field(default_factory=dict)
    #: tensors the optimizer updates that are not parameters of the model.
    foreign: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "groups": [g.to_dict() for g in self.groups],
            "missing": len(self.missing),
            "frozen_inside": len(self.frozen_inside),
            "duplicates": len(self.duplicates),
            "foreign": self.foreign,
            "zero_lr": {str(k): len(v) for k, v in self.zero_lr.items()},
        }


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def coverage(optimizer: Any, model: Any) -> Coverage:
    """Match ``optimizer.param_groups`` to ``model``'s parameters by object identity."""
    names: dict[int, str] = {}
    params: dict[int, Any] = {}
    for name, param in model.named_parameters():
        names[id(param)] = name
        params[id(param)] = param
    result = Coverage(optimizer=f"{type(optimizer).__module__}.{type(optimizer).__qualname__}")
    groups_of: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(getattr(optimizer, "param_groups", [])):
        entry = Group(index, _float(group.get("lr")), _float(group.get("weight_decay")))
        for param in group.get("params", []):
            entry.params += 1
            key = id(param)
            if key not in names:
                entry.foreign += 1
                result.foreign += 1
                continue
            # Listed twice, even inside one group, means two updates per step.
            groups_of[key].append(index)
            if param.requires_grad:
                entry.trainable += 1
            else:
                entry.frozen += 1
        result.groups.append(entry)
    lrs = {g.index: g.lr for g in result.groups}
    for key, name in names.items():
        param = params[key]
        listed = groups_of.get(key, [])
        if len(listed) > 1:
            result.duplicates[name] = listed
        if not listed:
            if param.requires_grad:
                result.missing.append(name)
            continue
        if not param.requires_grad:
            result.frozen_inside.append(name)
        elif all(lrs.get(i) == 0 for i in listed):
            result.zero_lr.setdefault(listed[0], []).append(name)
    return result


def summarize_names(names: list[str], model: Any, limit: int) -> str:
    """Parameter names, folded to a module name where a whole module is listed: ``fc (2 tensors)``."""
    listed = set(names)
    covered: dict[str, int] = {}  # whole modules listed -> their tensor count
    for module_name, module in model.named_modules():
        if not module_name or any(module_name.startswith(c + ".") for c in covered):
            continue
        own = [f"{module_name}.{n}" for n, _ in module.named_parameters()]
        if len(own) > 1 and all(n in listed for n in own):
            covered[module_name] = len(own)
    folded: list[str] = []
    emitted: set[str] = set()
    for name in names:  # in the caller's (parameter) order
        owner = next((c for c in covered if name.startswith(c + ".")), None)
        if owner is None:
            folded.append(name)
        elif owner not in emitted:
            emitted.add(owner)
            folded.append(f"{owner} ({covered[owner]} tensors)")
    shown = folded[:limit]
    more = len(folded) - len(shown)
    return ", ".join(shown) + (f", ... and {more} more" if more > 0 else "")
