"""Static reading of a transform pipeline: what it normalizes with, what size it makes, what is random.

Works on torchvision transforms v1 and v2 (they share class names and
attributes), ``torch.nn.Sequential`` and anything with a ``transforms`` list.
Steps it cannot read (``Lambda``, plain functions, foreign classes) are kept as
*opaque*: the empirical pass, not this module, says what they do. Nothing here
calls a transform.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Normalization", "Pipeline", "Step", "analyze"]

#: Augmentations that are random whatever their arguments (besides ``Random*`` and ``p=0``).
_RANDOM_NAMES = frozenset(
    {
        "AutoAugment",
        "RandAugment",
        "TrivialAugmentWide",
        "AugMix",
        "ElasticTransform",
        "ScaleJitter",
        "MixUp",
        "CutMix",
        "GaussianNoise",
        "SanitizeBoundingBoxes_",
    }
)
#: Steps that turn a PIL image / uint8 tensor into floats in [0, 1].
_TO_UNIT = frozenset({"ToTensor"})
#: Steps that give a uint8 tensor (values 0..255) from a PIL image.
_TO_BYTE_TENSOR = frozenset({"PILToTensor", "ToImage", "ToImageTensor"})
_RESIZES = frozenset({"Resize"})
_FIXED_CROPS = frozenset(
    {"CenterCrop", "RandomCrop", "RandomResizedCrop", "FiveCrop", "TenCrop", "RandomSizedCrop"}
)


@dataclass(frozen=True)
class Normalization:
    """``(x - mean) / std`` as seen by a [0, 1]-scaled image (byte-scale steps converted)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: "unit" when applied to [0, 1] values, "byte" to 0..255, "unknown" after an opaque step.
    scale: str = "unit"
    count: int = 1

    def then(self, other: Normalization) -> Normalization:
        """The normalization equal to applying ``self`` and then ``other``."""
        n = max(len(self.mean), len(other.mean))
        m1, s1, m2, s2 = (_broadcast(v, n) for v in (self.mean, self.std, other.mean, other.std))
        mean = tuple(a + b * s for a, b, s in zip(m1, m2, s1, strict=False))
        std = tuple(a * b for a, b in zip(s1, s2, strict=False))
        scale = self.scale if self.scale == other.scale else "unknown"
        return Normalization(mean, std, scale, self.count + other.count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": [round(v, 6) for v in self.mean],
            "std": [round(v, 6) for v in self.std],
            "scale": self.scale,
            "count": self.count,
        }


def _broadcast(values: tuple[float, ...], n: int) -> tuple[float, ...]:
    return values * n if len(values) == 1 else values


@dataclass
class Step:
    """One leaf (or container) of a pipeline, in application order."""

    name: str
    text: str
    kind: str  # container | normalize | resize | crop | to_tensor | to_dtype | augment | opaque | other
    depth: int = 0
    random: bool = False
    opaque: bool = False
    #: inside RandomApply/RandomChoice: applied to some samples only.
    conditional: bool = False
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pipeline:
    """What :func:`analyze` learned about one transform."""

    steps: list[Step]
    present: bool
    #: the normalization every sample gets (non-conditional steps), or None.
    normalize: Normalization | None = None
    conditional_normalize: bool = False
    #: an opaque step runs after the last Normalize: the result may differ from it.
    opaque_after_normalize: bool = False
    #: predicted (height, width) when every sample gets it, else None; see size_note.
    size: tuple[int, int] | None = None
    size_note: str = ""
    #: value scale of the output: unit | byte | normalized | unknown | input
    scale: str = "input"
    outputs_tensor: bool | None = None
    #: "v2" when any step comes from torchvision.transforms.v2 (hints then use the v2 spelling).
    flavor: str = "v1"

    @property
    def random_steps(self) -> list[Step]:
        return [s for s in self.steps if s.random]

    @property
    def opaque_steps(self) -> list[Step]:
        return [s for s in self.steps if s.opaque]

    def lines(self) -> list[str]:
        if not self.present:
            return ["(no transform)"]
        return [
            "  " * s.depth + s.text + ("  [random]" if s.random else "") + ("  [opaque]" if s.opaque else "")
            for s in self.steps
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.lines(),
            "normalize": self.normalize.to_dict() if self.normalize else None,
            "conditional_normalize": self.conditional_normalize,
            "size": list(self.size) if self.size else None,
            "size_note": self.size_note,
            "random": [s.text for s in self.random_steps],
            "opaque": [s.text for s in self.opaque_steps],
        }


class _State:
    """The value state while walking: scale of the values and the size so far."""

    def __init__(self) -> None:
        self.scale = "input"
        self.size: tuple[int, int] | None = None
        self.size_note = "input size"
        self.size_certain = True
        self.normalize: Normalization | None = None
        self.normalize_conditional = False
        self.opaque_after_normalize = False
        self.tensor: bool | None = None
        self.v2 = False


def analyze(transform: Any) -> Pipeline:
    """Read ``transform`` without calling it. Never raises for odd objects."""
    if transform is None:
        return Pipeline(steps=[], present=False)
    state = _State()
    steps: list[Step] = list(_walk(transform, 0, False, state))
    size = state.size if state.size_certain else None
    note = state.size_note if state.size_certain else f"{state.size_note}; an opaque step may change it"
    return Pipeline(
        steps=steps,
        present=True,
        normalize=state.normalize,
        conditional_normalize=state.normalize_conditional,
        opaque_after_normalize=state.opaque_after_normalize,
        size=size,
        size_note=note,
        scale=state.scale,
        outputs_tensor=state.tensor,
        flavor="v2" if state.v2 else "v1",
    )


def _children(obj: Any) -> list[Any] | None:
    """Sub-transforms of a container, in order; None for a leaf."""
    try:
        import torch

        if isinstance(obj, torch.nn.Sequential):
            return list(obj.children())
    except ImportError:  # pragma: no cover - torch is always there when transforms are
        pass
    inner = getattr(obj, "transforms", None)
    if isinstance(inner, (list, tuple)) and all(callable(t) for t in inner):
        return list(inner)
    return None


def _walk(obj: Any, depth: int, conditional: bool, state: _State) -> Iterator[Step]:
    name = type(obj).__name__
    children = _children(obj)
    if children is not None:
        p = getattr(obj, "p", None)
        partial = name == "RandomApply" and isinstance(p, (int, float)) and p < 1
        choice = name in ("RandomChoice", "RandomOrder")
        random = (partial and p > 0) or (choice and len(children) > 1)
        label = name + (f"(p={p})" if partial else "")
        yield Step(name, label, "container", depth, random=random, conditional=conditional)
        if partial and p <= 0:
            return  # never applied
        inner_conditional = conditional or partial or name == "RandomChoice"
        for child in children:
            yield from _walk(child, depth + 1, inner_conditional, state)
        return
    yield _leaf(obj, depth, conditional, state)


def _leaf(obj: Any, depth: int, conditional: bool, state: _State) -> Step:
    name = type(obj).__name__
    module = type(obj).__module__ or ""
    from_torchvision = module.startswith("torchvision.")
    state.v2 = state.v2 or module.startswith("torchvision.transforms.v2")
    if (
        inspect.isfunction(obj)
        or inspect.ismethod(obj)
        or name in ("Lambda", "partial")
        or not (from_torchvision or _duck_normalize(obj))
    ):
        return _opaque(obj, depth, conditional, state)
    text = _text(obj)
    if name == "Normalize" or _duck_normalize(obj):
        return _normalize(obj, text, depth, conditional, state)
    step = Step(name, text, "other", depth, conditional=conditional)
    step.random = _is_random(obj)
    if step.random:
        step.kind = "augment"
    if name in _TO_UNIT:
        state.scale, state.tensor, step.kind = "unit", True, "to_tensor"
    elif name in _TO_BYTE_TENSOR:
        if state.scale in ("input", "byte"):
            state.scale = "byte"
        state.tensor, step.kind = True, "to_tensor"
    elif name in ("ToDtype", "ConvertImageDtype", "ConvertDtype"):
        step.kind = "to_dtype"
        scale = getattr(obj, "scale", name != "ToDtype")  # ConvertImageDtype always rescales
        if _float_dtype(getattr(obj, "dtype", None)) and scale and state.scale in ("byte", "input"):
            state.scale = "unit"
    elif name in ("ToPILImage",):
        state.tensor = False
    elif name in _RESIZES:
        step.kind = "resize"
        _resize(obj, state, conditional)
    elif name in _FIXED_CROPS:
        step.kind = "crop"
        size = _pair(getattr(obj, "size", None))
        if size and not conditional:
            state.size, state.size_note, state.size_certain = size, f"{name} to {size[0]}x{size[1]}", True
        elif conditional:
            state.size_certain = False
    elif name == "Pad":
        state.size_note += " (then padded)"
        state.size = None
    return step


def _duck_normalize(obj: Any) -> bool:
    """A foreign class that calls itself a normalization and carries mean and std."""
    name = type(obj).__name__.lower()
    return "normaliz" in name and hasattr(obj, "mean") and hasattr(obj, "std")


def _normalize(obj: Any, text: str, depth: int, conditional: bool, state: _State) -> Step:
    step = Step(type(obj).__name__, text, "normalize", depth, conditional=conditional)
    try:
        mean = tuple(float(v) for v in _as_list(obj.mean))
        std = tuple(float(v) for v in _as_list(obj.std))
    except (TypeError, ValueError):
        step.opaque, step.kind = True, "opaque"
        return step
    step.params = {"mean": list(mean), "std": list(std)}
    scale = state.scale if state.scale in ("unit", "byte") else "unknown"
    again = state.scale == "normalized" and state.normalize is not None
    if again:
        # Normalizing normalized values: no byte rescale; composed with the first one below.
        this = Normalization(mean, std, state.normalize.scale)  # type: ignore[union-attr]
    elif scale == "byte":
        this = Normalization(tuple(m / 255 for m in mean), tuple(s / 255 for s in std), "byte")
    else:
        this = Normalization(mean, std, scale)
    if conditional:
        state.normalize_conditional = True
        return step
    state.normalize = state.normalize.then(this) if state.normalize else this
    state.opaque_after_normalize = False
    state.scale = "normalized"
    return step


def _opaque(obj: Any, depth: int, conditional: bool, state: _State) -> Step:
    state.scale = "unknown" if state.scale != "normalized" else "normalized"
    state.size_certain = False
    if state.normalize is not None:
        state.opaque_after_normalize = True
    return Step(
        type(obj).__name__, _describe_callable(obj), "opaque", depth, opaque=True, conditional=conditional
    )


def _describe_callable(obj: Any) -> str:
    """``Lambda(<lambda> at data.py:12)`` style: where to look for an opaque step."""
    target = getattr(obj, "lambd", None) or getattr(obj, "func", None) or obj
    code = getattr(target, "__code__", None)
    where = ""
    if code is not None:
        where = f" at {code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno}"
    label = getattr(target, "__qualname__", None) or type(target).__name__
    if target is obj and not inspect.isfunction(obj) and not inspect.ismethod(obj):
        return f"{type(obj).__module__}.{type(obj).__qualname__}(...)"
    return f"{type(obj).__name__}({label}{where})" if target is not obj else f"function {label}{where}"


def _is_random(obj: Any) -> bool:
    name = type(obj).__name__
    p = getattr(obj, "p", None)
    if isinstance(p, (int, float)) and not isinstance(p, bool) and p <= 0:
        return False
    if name.startswith("Random"):
        # p >= 1 on a flip: always flips, so deterministic.
        return not (name.endswith("Flip") and isinstance(p, (int, float)) and p >= 1)
    if name == "ColorJitter":
        return any(
            getattr(obj, a, None) not in (None, 0) for a in ("brightness", "contrast", "saturation", "hue")
        )
    if name == "GaussianBlur":
        sigma = _as_list(getattr(obj, "sigma", None) or [])
        return len(sigma) == 2 and float(sigma[0]) != float(sigma[1])
    return name in _RANDOM_NAMES


def _resize(obj: Any, state: _State, conditional: bool) -> None:
    size = getattr(obj, "size", None)
    values = _as_list(size) if size is not None else []
    if conditional:
        state.size_certain = False
        return
    if len(values) == 2:
        state.size, state.size_note = (int(values[0]), int(values[1])), f"Resize to {values[0]}x{values[1]}"
    elif len(values) == 1:
        # Only the shorter side is fixed: non-square images give non-square outputs.
        state.size, state.size_note = None, f"Resize of the shorter side to {values[0]} (aspect kept)"
    else:
        state.size, state.size_note = None, "Resize by max_size"
    state.size_certain = True


def _pair(size: Any) -> tuple[int, int] | None:
    values = _as_list(size) if size is not None else []
    if len(values) == 1:
        return int(values[0]), int(values[0])
    if len(values) == 2:
        return int(values[0]), int(values[1])
    return None


def _as_list(value: Any) -> list[Any]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _float_dtype(dtype: Any) -> bool:
    if isinstance(dtype, dict):  # v2: {tv_tensors.Image: torch.float32, "others": None}
        return any(_float_dtype(v) for v in dtype.values())
    return bool(getattr(dtype, "is_floating_point", False))


_SPACES = re.compile(r"\s+")


def _text(obj: Any) -> str:
    """One line per step: the transform's own repr, whitespace collapsed."""
    try:
        text = repr(obj)
    except Exception:
        text = type(obj).__name__
    text = _SPACES.sub(" ", text).replace("( ", "(").replace(" )", ")")
    return text if len(text) <= 160 else text[:157] + "..."
