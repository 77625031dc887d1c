"""Training mode at the first step (FZ011): dropout, BatchNorm or drop-path left in ``eval()`` where they train.

``from_pretrained`` (Hugging Face) returns a model in ``eval()`` mode, and Lightning 2.2+ keeps each
submodule's mode instead of calling ``train()`` on the whole module, so a LightningModule wrapping
such a model trains with dropout off and BatchNorm statistics frozen. Only modules whose mode
changes what they compute count, and only where something trains: a frozen backbone kept in
``eval()`` on purpose is fine. The manifest's model is read after ``model.train()``, as a training
script leaves it (a custom ``train()`` override then decides); a live model as it is handed over.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding

__all__ = ["check_modes", "eval_mode_modules"]

#: Class names of drop-path / stochastic-depth layers (timm, torchvision, common copies).
_DROP_PATH = ("DropPath", "StochasticDepth", "DropBlock")


def _kind(module: Any) -> str | None:
    """What the module's mode changes, or None where it changes nothing."""
    import torch

    if isinstance(module, torch.nn.modules.dropout._DropoutNd):
        return "dropout" if float(getattr(module, "p", 0.0)) > 0 else None
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
        # Without running statistics, eval() still normalizes with the batch's: nothing changes.
        return "batchnorm" if module.track_running_stats else None
    name = type(module).__name__
    if any(name.startswith(prefix) for prefix in _DROP_PATH):
        rate = next(
            (
                getattr(module, a)
                for a in ("drop_prob", "p", "drop_rate")
                if isinstance(getattr(module, a, None), float)
            ),
            None,
        )
        return "drop-path" if rate is None or rate > 0 else None
    return None


def eval_mode_modules(model: Any) -> list[dict[str, Any]]:
    """Mode-sensitive modules in eval() whose own or parent's parameters train."""
    parents: dict[str, Any] = {}
    for name, module in model.named_modules():
        for child_name, _ in module.named_children():
            parents[f"{name}.{child_name}" if name else child_name] = module
    found = []
    for name, module in model.named_modules():
        if module.training:
            continue
        kind = _kind(module)
        if kind is None:
            continue
        parent = parents.get(name)
        if kind == "batchnorm" and getattr(module, "affine", False):
            # Frozen affine BatchNorm kept in eval() is the deliberate "frozen BN" pattern; trainable is not.
            trains = any(p.requires_grad for p in module.parameters())
        else:
            trains = parent is not None and any(p.requires_grad for p in parent.parameters())
        if trains:
            found.append({"name": name or "(root)", "type": type(module).__name__, "kind": kind})
    return found


def check_modes(ctx: AuditContext, limit: int) -> Iterator[Finding]:
    model = ctx.run.model
    found = eval_mode_modules(model)
    ctx.evidence["eval_mode_modules"] = found[:200]
    if not found:
        return
    kinds = sorted({f["kind"] for f in found})
    names = [f["name"] for f in found]
    shown = ", ".join(names[:limit]) + (f", ... and {len(names) - limit} more" if len(names) > limit else "")
    whole = not any(m.training for m in model.modules())
    state = "the whole model is in eval() mode" if whole else "some submodules are in eval() mode"
    yield ctx.finding(
        "FZ011",
        f"{state} for training: {len(found)} {'/'.join(kinds)} modules that train stay in eval(), "
        f"so {_effect(kinds)}: {shown}",
        hint="call model.train() before the first step (from_pretrained returns the model in eval(); "
        "Lightning 2.2+ keeps each submodule's mode: call self.model.train() in on_fit_start or "
        "__init__); keep eval() only on frozen parts",
        location="model",
        evidence={"modules": found[:200], "count": len(found), "whole_model": whole},
    )


def _effect(kinds: list[str]) -> str:
    parts = {
        "dropout": "dropout is off",
        "drop-path": "drop-path is off",
        "batchnorm": "BatchNorm normalizes with stale running statistics and never updates them",
    }
    return " and ".join(parts[k] for k in kinds)
