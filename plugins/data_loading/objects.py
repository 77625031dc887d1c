"""The user's own dataset objects behind the splits, and how to compare what they return.

The loop checks (shared datasets, samplers, the last batch, worker randomness) look at the
objects training really iterates: the dataset a ``callable`` split's factory returned or the
caller handed to ``auditor.check``, and the DataLoader around it when there is one. Splits a
format builds itself (an image folder, a table) are auditor's own objects: nothing is shared.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "View",
    "dataset_of",
    "describe_transform",
    "draw",
    "generator_attributes",
    "leaves",
    "random_steps",
    "same_output",
    "transform_of",
]

#: How deep wrappers are followed (a Subset of a ConcatDataset of Subsets ...); deeper is not a real loop.
_MAX_DEPTH = 8
#: Transform classes that draw randomly without "Random" in their name.
_RANDOM_NAMES = frozenset(
    {
        "ColorJitter",
        "RandAugment",
        "AutoAugment",
        "TrivialAugmentWide",
        "AugMix",
        "GaussianBlur",
        "ElasticTransform",
        "ScaleJitter",
    }
)


def dataset_of(split: Any) -> Any:
    """The user's dataset object training reads for ``split``, or None when auditor built the split itself."""
    loader = getattr(split, "loader", None)
    if loader is not None:
        return loader.dataset
    if split.spec.dataset is not None:
        return split.spec.dataset
    if split.spec.config.get("format") == "callable":
        return getattr(split, "dataset_object", None)
    return None


@dataclass(frozen=True)
class View:
    """One dataset object a split reads, and the wrappers on the way to it (``Subset of ImageFolder``)."""

    leaf: Any
    path: str


def leaves(dataset: Any, path: str = "", depth: int = 0) -> Iterator[View]:
    """The innermost dataset objects behind ``dataset``: through ``Subset`` (and ``random_split``),
    ``ConcatDataset`` and wrappers that keep the wrapped dataset in ``.dataset`` and have no transform of
    their own (a wrapper with its own transform is where a per-split pipeline lives: it is the leaf)."""
    from torch.utils.data import ConcatDataset, Subset

    name = type(dataset).__name__
    here = f"{path} of {name}" if path else name
    if depth < _MAX_DEPTH:
        if isinstance(dataset, ConcatDataset):
            for index, part in enumerate(dataset.datasets):
                yield from leaves(part, f"{here}[{index}]", depth + 1)
            return
        inner = _attr(dataset, "dataset")
        if isinstance(dataset, Subset) or (
            inner is not None and hasattr(inner, "__getitem__") and transform_of(dataset) is None
        ):
            yield from leaves(inner, here, depth + 1)
            return
    yield View(dataset, here)


def transform_of(dataset: Any) -> Any:
    """The per-sample transform a dataset object applies (``transform``, else ``transforms``), or None."""
    for attr in ("transform", "transforms"):
        value = _attr(dataset, attr)
        if value is not None and callable(value):
            return value
    return None


def _attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, also None when a property or ``__getattr__`` of the user's raises."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def random_steps(transform: Any) -> list[str]:
    """Names of the random steps in a pipeline (``RandomResizedCrop``, ``ColorJitter``, ...), by class name."""
    found: list[str] = []
    for step in _steps(transform, 0):
        name = type(step).__name__
        if name.startswith("Random") or name in _RANDOM_NAMES:
            found.append(name)
    return found


def _steps(transform: Any, depth: int) -> Iterator[Any]:
    yield transform
    if depth >= _MAX_DEPTH:
        return
    for attr in ("transforms", "transform"):  # Compose, RandomApply, StandardTransform
        inner = getattr(transform, attr, None)
        if isinstance(inner, (list, tuple)) or type(inner).__name__ == "ModuleList":
            for step in inner:
                yield from _steps(step, depth + 1)
        elif inner is not None and inner is not transform and callable(inner):
            yield from _steps(inner, depth + 1)


def describe_transform(transform: Any) -> str:
    """``Compose(Resize, CenterCrop, ToTensor)``: the pipeline by step names, short enough for a message."""
    steps = getattr(transform, "transforms", None)
    if isinstance(steps, (list, tuple)):
        names = [type(step).__name__ for step in steps]
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        return f"{type(transform).__name__}({shown})"
    return type(transform).__name__


def generator_attributes(dataset: Any) -> list[str]:
    """Attributes (``self.rng``, ``self.transform.rng``) holding a random generator object of their own:
    numpy ``Generator``/``RandomState``, ``random.Random`` or ``torch.Generator``. A forked DataLoader worker
    gets a copy of each in the state it had, so every worker draws the same numbers."""
    import numpy as np
    import torch

    kinds = (np.random.Generator, np.random.RandomState, random.Random, torch.Generator)
    found: list[str] = []
    seen: set[int] = set()

    def visit(obj: Any, where: str, depth: int) -> None:
        if id(obj) in seen or depth > 3 or len(found) >= 5:
            return
        seen.add(id(obj))
        attrs = getattr(obj, "__dict__", None)
        if not isinstance(attrs, dict):
            return
        for key, value in attrs.items():
            if isinstance(value, kinds):
                found.append(f"{where}.{key} ({type(value).__module__}.{type(value).__name__})")
            elif key in ("transform", "transforms", "dataset", "target_transform") or (
                callable(value) and hasattr(value, "__dict__") and not isinstance(value, type)
            ):
                visit(value, f"{where}.{key}", depth + 1)
            elif isinstance(value, (list, tuple)) and len(value) <= 32:
                for index, item in enumerate(value):
                    if hasattr(item, "__dict__") and not isinstance(item, type):
                        visit(item, f"{where}.{key}[{index}]", depth + 1)

    visit(dataset, type(dataset).__name__, 0)
    return found


def draw(split: Any, dataset: Any, index: int, what: str) -> Any:
    """``dataset[index]`` under the split's call deadline (user code)."""
    return split.call(dataset.__getitem__, index, what=what)


def private_copy(dataset: Any) -> Any:
    """A deep copy to draw from, so the draws do not advance generators the user's dataset holds;
    the dataset itself when it cannot be copied (an open file handle, a lock)."""
    try:
        return copy.deepcopy(dataset)
    except Exception:
        return dataset


def same_output(a: Any, b: Any) -> bool:
    """True when two items a dataset returned are equal value for value (tensors, arrays, images, tuples)."""
    import numpy as np
    import torch

    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_output(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_output(a[k], b[k]) for k in a)
    tobytes = getattr(a, "tobytes", None)
    if callable(tobytes) and hasattr(a, "size") and hasattr(a, "mode"):  # PIL images
        return a.size == b.size and a.mode == b.mode and tobytes() == b.tobytes()
    try:
        return bool(a == b)
    except Exception:
        return False
