"""Are the model's weights pretrained? Read from the weights themselves, not only from the manifest.

``model.pretrained`` says what the backbone was trained with, but a factory that
builds ``resnet50(weights=None)`` (or forgets ``load_state_dict``) declares it all
the same. So the weights decide where they can:

- BatchNorm running statistics that are not their initial zeros and ones (or a
  ``num_batches_tracked`` above 0) were accumulated by training: pretrained. All
  of them at their initial values: random initialisation, whatever the manifest says.
- A model without BatchNorm is built a second time with another random seed:
  parameters identical in both builds were loaded by the factory, the others (a new
  head) are random. Identical weights also have to leave PyTorch's default
  initialisation range (``|w| <= 1/sqrt(fan_in)``), since a factory that seeds itself
  builds identical random weights too; otherwise the answer is "cannot tell".

feature_fit (skipped on random weights), gradient_probe (GP020 watches the
pretrained blocks) and frozen_coverage (FZ003 says when feature_fit cannot judge)
share one answer per run. Only imported when an audit runs.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WeightsOrigin", "weights_origin"]

#: Seed of the second model build (the run's own build uses ``MODEL_BUILD_SEED``, 0).
_SECOND_BUILD_SEED = 7919

_cache: weakref.WeakKeyDictionary[Any, WeightsOrigin] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class WeightsOrigin:
    """Whether the model's weights are pretrained, and the evidence for it."""

    pretrained: bool | None  # None: cannot tell
    #: One sentence: what the weights showed (used in messages and as a skip reason).
    reason: str
    declared: str = ""
    #: Parameter names identical across two builds (loaded by the factory); None when not compared.
    loaded: frozenset[str] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pretrained": self.pretrained,
            "reason": self.reason,
            "declared": self.declared or None,
            "loaded_parameters": None if self.loaded is None else len(self.loaded),
        }


def _declared(run: Any) -> str:
    value = run.pretrained if run.has("model") else None
    if value is None or value is False:
        return ""
    if isinstance(value, str):
        return value
    return "a mean/std mapping" if isinstance(value, dict) else type(value).__name__


def weights_origin(run: Any) -> WeightsOrigin:
    """The answer for ``run`` (a RunContext), computed once per run."""
    with contextlib.suppress(KeyError, TypeError):
        return _cache[run]
    origin = _judge(run)
    # An object that cannot be weakly referenced is judged again next time.
    with contextlib.suppress(TypeError):
        _cache[run] = origin
    return origin


def _batchnorm_layers(model: Any) -> list[tuple[str, Any]]:
    import torch

    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
        and module.track_running_stats
        and module.running_mean is not None
        and module.running_var is not None
    ]


def _at_initial_values(module: Any) -> bool:
    import torch

    tracked = getattr(module, "num_batches_tracked", None)
    if tracked is not None and int(tracked) > 0:
        return False
    return bool(torch.all(module.running_mean == 0)) and bool(torch.all(module.running_var == 1))


def _judge(run: Any) -> WeightsOrigin:
    model = run.model
    declared = _declared(run)
    said = f" although model.pretrained is {declared!r}" if declared else ""
    layers = _batchnorm_layers(model)
    if layers:
        trained = [name for name, module in layers if not _at_initial_values(module)]
        if trained:
            return WeightsOrigin(
                True,
                f"{len(trained)} of {len(layers)} BatchNorm layers hold running statistics accumulated by "
                "training (not their initial zeros and ones)",
                declared,
            )
        return WeightsOrigin(
            False,
            f"all {len(layers)} BatchNorm layers hold their initial running statistics (mean 0, variance 1)"
            f"{said}: the weights are a random initialisation, or the factory did not load the pretrained "
            "state dict",
            declared,
        )
    section = run.manifest.model
    if section is None or not section.factory:
        # auditor.check was given the model object: there is no factory to build it twice.
        if declared:
            return WeightsOrigin(True, f"the caller declared pretrained={declared!r}", declared)
        return WeightsOrigin(
            None,
            "the model has no BatchNorm statistics to read and no pretrained= was given, so whether its "
            "weights are pretrained cannot be told",
            declared,
        )
    return _compare_builds(run, model, declared, said)


def _compare_builds(run: Any, model: Any, declared: str, said: str) -> WeightsOrigin:
    import torch

    section = run.manifest.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SECOND_BUILD_SEED)
        other = run.resolver.call_factory(section.factory, "model.factory", **section.kwargs)
    theirs = dict(other.named_parameters()) if hasattr(other, "named_parameters") else {}
    same: set[str] = set()
    total = 0
    for name, param in model.named_parameters():
        total += 1
        twin = theirs.get(name)
        if twin is not None and twin.shape == param.shape and torch.equal(twin.detach(), param.detach()):
            same.add(name)
    loaded = frozenset(same)
    if not same:
        return WeightsOrigin(
            False,
            "two builds of model.factory with different random seeds give different weights everywhere"
            f"{said}: they are a random initialisation, nothing was loaded",
            declared,
            loaded,
        )
    if _default_init(model, same):
        return WeightsOrigin(
            None,
            "two builds with different random seeds give identical weights, but every layer is still within "
            "PyTorch's default initialisation range (a factory that seeds itself?)"
            + (f" although model.pretrained is {declared!r}" if declared else "")
            + ", so whether they are pretrained cannot be told",
            declared,
            loaded,
        )
    return WeightsOrigin(
        True,
        f"{len(same)} of {total} parameter tensors are identical in two builds with different random seeds "
        "and outside the default initialisation range: the factory loads them",
        declared,
        loaded,
    )


def _default_init(model: Any, names: set[str]) -> bool:
    """True when every loaded Linear/Conv weight lies within ``1/sqrt(fan_in)``, PyTorch's default bound."""
    import math

    import torch

    checked = 0
    for module_name, module in model.named_modules():
        if not isinstance(module, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
            continue
        weight = getattr(module, "weight", None)
        full = f"{module_name}.weight" if module_name else "weight"
        if weight is None or full not in names or weight.ndim < 2:
            continue
        fan_in = weight[0].numel()
        checked += 1
        if float(weight.detach().abs().max()) > 1.0 / math.sqrt(fan_in) * (1 + 1e-4):
            return False
    return checked > 0
