"""Parameter-efficient fine-tuning (``peft``): adapters, the frozen base, and the head in ``modules_to_save``.

A ``PeftModel`` freezes the whole base model and trains small adapters (LoRA's
``lora_A``/``lora_B``, IA3 vectors, ...): a frozen backbone is the intended setup
there, not a finding. The new classification head is the exception: it starts
from random weights, so it must train in full, which ``peft`` does only for the
modules listed in ``modules_to_save`` (it wraps each in a ``ModulesToSaveWrapper``
holding a frozen ``original_module`` and a trainable copy per adapter). A head
left out of that list stays frozen at its random initialisation: accuracy at chance.

Parameters are told apart by their names, as ``peft`` builds them: a name segment
equal to an adapter's name (``default``) right after ``modules_to_save`` is a saved
module's trainable copy; any other segment equal to an adapter's name is an adapter
parameter; everything else (``base_layer``, ``original_module`` included) is base.
``peft`` is never imported: the model is read through its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PeftParts", "peft_head", "peft_parts"]

#: Where Hugging Face classification models keep their new head, in the order looked for.
_HEAD_NAMES = ("classifier", "score", "head", "fc", "classification_head")


@dataclass
class PeftParts:
    """How a ``PeftModel``'s parameters split into base, adapters and saved modules."""

    adapters: list[str]
    peft_type: str
    #: module names (as written in each adapter's config) that train in full.
    modules_to_save: list[str]
    base: dict[str, int] = field(default_factory=lambda: {"trainable": 0, "frozen": 0})
    adapter: dict[str, int] = field(default_factory=lambda: {"trainable": 0, "frozen": 0})
    saved: dict[str, int] = field(default_factory=lambda: {"trainable": 0, "frozen": 0})
    trainable_base: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "adapters": self.adapters,
            "peft_type": self.peft_type,
            "modules_to_save": self.modules_to_save,
            "base_parameters": self.base,
            "adapter_parameters": self.adapter,
            "saved_module_parameters": self.saved,
            "trainable_base_tensors": self.trainable_base[:50],
        }


def _configs(model: Any) -> dict[str, Any]:
    config = getattr(model, "peft_config", None)
    return dict(config) if isinstance(config, dict) else {}


def peft_parts(model: Any) -> PeftParts | None:
    """The split of a ``PeftModel``'s parameters, or None for a model without adapters."""
    configs = _configs(model)
    if not configs or not hasattr(model, "get_base_model"):
        return None
    names = {str(n) for n in configs}
    saved_names: list[str] = []
    for config in configs.values():
        for name in getattr(config, "modules_to_save", None) or []:
            if str(name) not in saved_names:
                saved_names.append(str(name))
    kinds = sorted(
        {
            str(getattr(getattr(c, "peft_type", None), "value", getattr(c, "peft_type", "")))
            for c in configs.values()
        }
    )
    parts = PeftParts(
        adapters=sorted(names), peft_type="/".join(k for k in kinds if k), modules_to_save=saved_names
    )
    for name, param in model.named_parameters():
        segments = name.split(".")
        kind = "base"
        for i, segment in enumerate(segments[:-1]):
            if segment in names:
                kind = "saved" if i and segments[i - 1] == "modules_to_save" else "adapter"
                break
        bucket = {"base": parts.base, "adapter": parts.adapter, "saved": parts.saved}[kind]
        bucket["trainable" if param.requires_grad else "frozen"] += param.numel()
        if kind == "base" and param.requires_grad:
            parts.trainable_base.append(name)
    return parts


def _prefix(model: Any) -> str:
    """The name prefix of the wrapped model's modules inside the PeftModel (``base_model.model.``)."""
    base = model.get_base_model()
    for name, module in model.named_modules():
        if module is base:
            return f"{name}." if name else ""
    return ""


def peft_head(model: Any, declared: str | None) -> tuple[str, Any, Any] | None:
    """``(full name, head module, module whose parameters train as the head)`` in a PeftModel, or None.

    ``declared`` is ``model.head`` as the user wrote it for the plain model (``classifier``);
    the PeftModel's own dotted name works too. For a head in ``modules_to_save`` the
    training module is the active adapter's trainable copy.
    """
    prefix = _prefix(model)
    modules = dict(model.named_modules())
    candidates = [declared] if declared else list(_HEAD_NAMES)
    found = None
    for candidate in candidates:
        for full in (candidate, prefix + candidate):
            if full and full in modules:
                found = full
                break
        if found:
            break
    if found is None:
        return None
    head = modules[found]
    copies = getattr(head, "modules_to_save", None)
    if copies is not None and hasattr(head, "original_module"):
        active = getattr(head, "active_adapter", None)
        active = active[0] if isinstance(active, (list, tuple)) and active else active
        training = (
            copies[active]
            if isinstance(active, str) and active in copies
            else next(iter(copies.values()), head)
        )
        return found, head, training
    return found, head, head
