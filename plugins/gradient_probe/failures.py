"""A training step that raises: which layer, with which input shapes, and what to change (GP019).

The probe's own steps run without hooks; only when a forward pass raises is it
replayed once with a hook on every module, so the innermost module that was entered
but never returned names the failing layer. Only imported from inside the audit's ``run``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["CapturedWarning", "StepFailure", "backward_failure", "capture_warnings", "forward_failure"]


@dataclass
class CapturedWarning:
    """A warning torch or user code emitted during the probe's forward, loss or backward (GP017/GP018)."""

    category: str
    message: str
    where: str
    source: str
    count: int = 1
    deprecation: bool = False


@contextlib.contextmanager
def capture_warnings(store: dict[tuple[str, str], CapturedWarning], where: str) -> Iterator[None]:
    """Record every warning raised inside, once per (category, message), instead of losing it on stderr.

    ``always`` so that a warning Python already showed once in this process (torch warns once per
    call site) is still seen here.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for item in caught:
                category = item.category.__name__
                message = str(item.message).strip()
                key = (category, message)
                if key in store:
                    store[key].count += 1
                    continue
                store[key] = CapturedWarning(
                    category,
                    message,
                    where,
                    f"{item.filename}:{item.lineno}",
                    deprecation=issubclass(
                        item.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
                    ),
                )


@dataclass
class StepFailure:
    """A forward or backward pass that raised on a real batch."""

    phase: str  # forward | backward
    step: int
    error: str
    message: str
    hint: str
    evidence: dict[str, Any] = field(default_factory=dict)


def _shapes(values: Any) -> list[Any]:
    if isinstance(values, torch.Tensor):
        return [list(values.shape)]
    if isinstance(values, (list, tuple)):
        return [s for v in values for s in _shapes(v)]
    if isinstance(values, dict):
        return [s for v in values.values() for s in _shapes(v)]
    return []


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}".rstrip(".")


def _failing_module(model: torch.nn.Module, run: Any) -> tuple[str, torch.nn.Module, list[Any]] | None:
    """Replay ``run()``; the innermost module entered and not left when it raised, and its input shapes."""
    stack: list[tuple[str, torch.nn.Module, list[Any]]] = []
    failed: list[tuple[str, torch.nn.Module, list[Any]]] = []
    handles = []

    def enter(name: str) -> Any:
        def hook(module: torch.nn.Module, args: Any) -> None:
            stack.append((name, module, _shapes(args)))

        return hook

    def leave(_module: torch.nn.Module, _args: Any, _output: Any) -> None:
        if stack:
            stack.pop()

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(name or type(model).__name__)))
        handles.append(module.register_forward_hook(leave))
    try:
        with torch.no_grad():
            run()
    except Exception:
        if stack:
            failed.append(stack[-1])
    finally:
        for handle in handles:
            handle.remove()
    return failed[0] if failed else None


def _first_conv(model: torch.nn.Module) -> str | None:
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            return name
    return None


def forward_failure(
    model: torch.nn.Module,
    run: Any,
    inputs: Any,
    step: int,
    exc: BaseException,
    action: str = "the model's forward pass",
) -> StepFailure:
    """GP019 for a forward pass (or ``action``) that raised: the layer, its input shapes, the usual fix."""
    error = _error(exc)
    located = _failing_module(model, run)
    batch = _shapes(inputs)
    evidence: dict[str, Any] = {"phase": "forward", "step": step + 1, "error": error, "input_shapes": batch}
    if located is None:
        return StepFailure(
            "forward",
            step,
            error,
            f"{action} raises on training batch {step + 1} (inputs {batch}): {error}",
            "run the model on one batch of the train split outside auditor to see the traceback; fix the "
            "transform or the model so the shapes agree",
            evidence,
        )
    name, module, shapes = located
    evidence.update(module=name, module_type=type(module).__name__, module_input_shapes=shapes)
    kind = type(module).__name__
    hint = "change the transform or the layer so the shapes agree"
    what = f"the layer `{name}` ({kind}) raises on its input {shapes[0] if shapes else '?'}"
    if isinstance(module, torch.nn.modules.conv._ConvNd) and shapes and len(shapes[0]) >= 2:
        expected, found = module.in_channels, shapes[0][1]
        if expected != found:
            first = " first" if name == _first_conv(model) else ""
            what = f"the{first} conv `{name}` expects {expected} input channels, the batch has {found}"
            hint = (
                "drop `Grayscale(1)` or use `Grayscale(num_output_channels=3)` (or `.convert('RGB')`) in the "
                "transform"
                if found == 1 and expected == 3
                else f"make the transform produce {expected}-channel images, or rebuild `{name}` with "
                f"in_channels={found} (the pretrained weights are then lost for that layer)"
            )
            evidence.update(expected_channels=expected, found_channels=found)
    elif isinstance(module, torch.nn.Linear) and shapes and shapes[0]:
        expected, found = module.in_features, shapes[0][-1]
        if expected != found:
            what = (
                f"the linear layer `{name}` expects {expected} input features, it gets {found} ({shapes[0]})"
            )
            hint = (
                "resize the inputs to the size the model was built for (a Resize/CenterCrop in the transform), or "
                "put an `nn.AdaptiveAvgPool2d` before the flatten so the head takes any input size"
            )
            evidence.update(expected_features=expected, found_features=found)
    return StepFailure(
        "forward",
        step,
        error,
        f"{what}: {action} raises on training batch {step + 1} (inputs {batch}): {error}",
        hint,
        evidence,
    )


def backward_failure(step: int, exc: BaseException, trainable: int) -> StepFailure:
    """GP019 for ``loss.backward()`` that raised."""
    error = _error(exc)
    if "does not require grad" in error:
        hint = "the loss does not depend on any trainable parameter: " + (
            "every parameter is frozen; unfreeze the head (requires_grad=True)"
            if not trainable
            else "something detaches the graph (`.detach()`, `.data`, `torch.no_grad()`, `.item()`, NumPy) "
            "between the model and the loss"
        )
    elif "inplace" in error:
        hint = "an in-place operation overwrote a tensor backward needs: replace `x += ...`/`relu_(...)` with out-of-place versions"
    else:
        hint = "run one training step outside auditor with `torch.autograd.set_detect_anomaly(True)` to see the operation"
    return StepFailure(
        "backward",
        step,
        error,
        f"loss.backward() raises on training batch {step + 1}: {error}",
        hint,
        {"phase": "backward", "step": step + 1, "error": error},
    )
