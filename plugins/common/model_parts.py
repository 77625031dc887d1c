"""Finding the parts of a model that frozen_coverage talks about: the head, the backbone blocks,
and normalization layers that keep updating running statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Head", "backbone_blocks", "find_head", "numel", "output_layer", "updating_norm_layers"]


@dataclass
class Head:
    name: str
    module: Any
    how: str  # "manifest" | "inferred"
    outputs: int | None
    layer: str  # the Linear/Conv whose output size counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "how": self.how,
            "outputs": self.outputs,
            "layer": self.layer,
            "type": type(self.module).__name__,
        }


def numel(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _is_linear(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear)


def _is_pointwise_conv(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Conv2d) and tuple(module.kernel_size) == (1, 1)


def _is_global_pool(module: Any) -> bool:
    import torch

    if isinstance(module, (torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool2d)):
        size = module.output_size
        return size in (1, (1, 1), [1, 1])
    return False


def output_layer(name: str, module: Any) -> tuple[str, int | None]:
    """The last Linear / 1x1 conv in ``module`` (itself included) and its output size."""
    found: tuple[str, int | None] = (name, None)
    for sub_name, sub in module.named_modules():
        full = f"{name}.{sub_name}" if sub_name else name
        if _is_linear(sub):
            found = (full, int(sub.out_features))
        elif _is_pointwise_conv(sub):
            found = (full, int(sub.out_channels))
    return found


def find_head(model: Any, declared: str | None) -> Head | None:
    """The manifest's ``model.head``, else the last classifier-like module; None if there is none.

    Raises ``LookupError`` when the declared name is not a submodule.
    """
    if declared:
        try:
            module = model.get_submodule(declared)
        except AttributeError:
            raise LookupError(declared) from None
        layer, outputs = output_layer(declared, module)
        return Head(declared, module, "manifest", outputs, layer)
    modules = list(model.named_modules())
    with_params = [
        (i, n, m) for i, (n, m) in enumerate(modules) if n and any(True for _ in m.parameters(recurse=False))
    ]
    if with_params:
        index, name, module = with_params[-1]
        if _is_linear(module):
            return Head(name, module, "inferred", int(module.out_features), name)
        if _is_pointwise_conv(module) and any(_is_global_pool(m) for _, m in modules[index + 1 :]):
            # SqueezeNet-style: a 1x1 conv classifier followed by global pooling.
            return Head(name, module, "inferred", int(module.out_channels), name)
    linears = [(n, m) for n, m in modules if n and _is_linear(m)]
    if linears:
        name, module = linears[-1]
        return Head(name, module, "inferred", int(module.out_features), name)
    return None


def backbone_blocks(model: Any, head: str | None) -> list[tuple[str, int]]:
    """The backbone's blocks in order, at the depth where people unfreeze (``layer4``, ``features.7``).

    Descends while one child holds nearly all backbone parameters (``features``,
    ``encoder.layers``), then keeps children holding at least 2% of them.
    """
    node, prefix = model, ""
    while True:
        kids = _children_without_head(node, prefix, head)
        total = sum(size for _, _, size in kids)
        if not kids:
            return []
        big = max(kids, key=lambda k: k[2])
        if big[2] >= 0.9 * total and any(True for _ in big[1].children()):
            node, prefix = big[1], big[0] + "."
            continue
        return [(name, size) for name, _, size in kids if size >= 0.02 * total]


def _children_without_head(node: Any, prefix: str, head: str | None) -> list[tuple[str, Any, int]]:
    """Parameter-holding children of ``node``; a child containing the head is replaced by its other parts."""
    kids = []
    for name, child in node.named_children():
        full = f"{prefix}{name}"
        if full == head:
            continue
        if head is not None and head.startswith(full + "."):
            # e.g. MobileNet's classifier = [Linear, Hardswish, Dropout, Linear(head)]: keep classifier.0
            kids.extend(_children_without_head(child, full + ".", head))
            continue
        size = numel(child)
        if size > 0:
            kids.append((full, child, size))
    return kids


def updating_norm_layers(model: Any) -> list[dict[str, Any]]:
    """Norm layers in training mode that update running statistics although their parameters are frozen.

    ``model`` must already be in the mode training puts it in (``model.train()``
    called, custom overrides included). Layers without affine parameters count as
    frozen when the module holding them is entirely frozen.
    """
    names = dict(model.named_modules())
    found = []
    for name, module in names.items():
        if getattr(module, "running_mean", None) is None or not module.training:
            continue
        if not getattr(module, "track_running_stats", True):
            continue
        if getattr(module, "momentum", None) == 0:
            continue  # running = (1 - 0) * running: nothing changes
        own = list(module.parameters(recurse=False))
        if own:
            frozen = not any(p.requires_grad for p in own)
        else:
            parent = names.get(name.rsplit(".", 1)[0] if "." in name else "")
            inherited = list(parent.parameters()) if parent is not None else []
            frozen = bool(inherited) and not any(p.requires_grad for p in inherited)
        if frozen:
            found.append(
                {"name": name, "type": type(module).__name__, "momentum": getattr(module, "momentum", None)}
            )
    return found
