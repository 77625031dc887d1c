"""Empirical side of transform_parity: push N real samples through a split's pipeline and measure.

Only the N samples chosen (spread evenly over the split, deterministically) are
decoded. Random transforms run under a fixed seed inside a forked RNG, so the
numbers are reproducible and the caller's random state is left as it was.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor.kit import DeadlineExceeded
from auditor_plugins.common.sample_cache import spread_indices

__all__ = ["Measured", "classify_values", "measure_split"]

#: Absolute values above this cannot come from [0, 1] images under any usual normalization
#: (ImageNet statistics give at most about 2.7).
OUT_OF_RANGE = 10.0
#: Above this the values are 0..255 data (normalized or not); double normalization stays near 11.
BYTE_THRESHOLD = 25.0


@dataclass
class Measured:
    """What the transformed samples of one split look like."""

    split: str
    indices: list[int] = field(default_factory=list)
    measured: int = 0
    shapes: Counter[tuple[int, ...]] = field(default_factory=Counter)
    dtypes: Counter[str] = field(default_factory=Counter)
    output_types: Counter[str] = field(default_factory=Counter)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    min: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: eval splits: the same input transformed twice gave different outputs.
    nondeterministic: bool | None = None

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The most common (C, H, W) produced."""
        return self.shapes.most_common(1)[0][0] if self.shapes else None

    @property
    def channels(self) -> int | None:
        return self.shape[0] if self.shape else None

    @property
    def hw(self) -> tuple[int, int] | None:
        return (self.shape[1], self.shape[2]) if self.shape and len(self.shape) == 3 else None

    @property
    def kind(self) -> str | None:
        return classify_values(self.min, self.max) if self.mean else None

    def to_dict(self) -> dict[str, Any]:
        def rounded(values: list[float]) -> list[float]:
            return [round(v, 4) for v in values]

        return {
            "samples": self.measured,
            "requested": len(self.indices),
            "shape": list(self.shape) if self.shape else None,
            "shapes": {"x".join(map(str, s)): n for s, n in self.shapes.most_common()},
            "dtype": self.dtypes.most_common(1)[0][0] if self.dtypes else None,
            "output_types": dict(self.output_types),
            "mean": rounded(self.mean),
            "std": rounded(self.std),
            "min": rounded(self.min),
            "max": rounded(self.max),
            "kind": self.kind,
            "errors": self.errors[:5],
            "error_count": len(self.errors),
            "nondeterministic": self.nondeterministic,
        }


def classify_values(minimum: list[float], maximum: list[float]) -> str:
    """``byte`` (0..255), ``unit`` ([0, 1], not normalized) or ``normalized`` (has negatives)."""
    low, high = min(minimum), max(maximum)
    if max(abs(low), abs(high)) > BYTE_THRESHOLD:
        return "byte"
    if low >= -1e-3 and high <= 1 + 1e-3:
        return "unit"
    return "normalized"


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Fixed seeds for torch, random and numpy; everybody's state restored afterwards."""
    import torch

    python_state = random.getstate()
    numpy_state = None
    try:
        import numpy

        numpy_state = numpy.random.get_state()
        numpy.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy ships with torchvision
        numpy = None  # type: ignore[assignment]
    random.seed(seed)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        random.setstate(python_state)
        if numpy is not None and numpy_state is not None:
            numpy.random.set_state(numpy_state)


def _clone(value: Any) -> Any:
    # Tensors may be modified in place by a transform (Normalize(inplace=True)): give each call its own.
    return value.clone() if hasattr(value, "clone") else value


def measure_split(
    split: Any,
    transform: Callable[[Any], Any] | None,
    count: int,
    *,
    check_determinism: int = 0,
    advance: Callable[[int], None] | None = None,
) -> Measured:
    """Decode ``count`` spread samples of ``split``, transform them, and measure the outputs."""
    import torch

    result = Measured(split=split.name)
    result.indices = spread_indices(len(split), count)
    sums: Any = None
    squares: Any = None
    lows: Any = None
    highs: Any = None
    pixels = 0
    with _seeded(0):
        for position, index in enumerate(result.indices):
            try:
                # Reading and transforming is user code: under the call deadline, as one call.
                output, same = split.call(
                    _transform_one,
                    split,
                    transform,
                    index,
                    position < check_determinism,
                    what=split.describe_call(index, transform is not None),
                )
                if same is False:
                    result.nondeterministic = True
                elif result.nondeterministic is None and same:
                    result.nondeterministic = False
            except DeadlineExceeded as exc:
                # Every further sample would wait as long again: stop measuring this split.
                result.errors.append({"index": index, "error": str(exc)[:300]})
                break
            except Exception as exc:
                result.errors.append({"index": index, "error": f"{type(exc).__name__}: {exc}"[:300]})
                if advance:
                    advance(1)
                continue
            if advance:
                advance(1)
            tensor = _as_chw(output, result)
            if tensor is None:
                continue
            result.shapes[tuple(tensor.shape)] += 1
            result.dtypes[str(tensor.dtype).replace("torch.", "")] += 1
            values = tensor.detach().to(torch.float64).reshape(tensor.shape[0], -1)
            if sums is not None and values.shape[0] != sums.shape[0]:
                continue  # a different channel count: counted in shapes, not mixed into the statistics
            if sums is None:
                sums = torch.zeros(values.shape[0], dtype=torch.float64)
                squares = torch.zeros_like(sums)
                lows = torch.full_like(sums, float("inf"))
                highs = torch.full_like(sums, float("-inf"))
            sums += values.sum(dim=1)
            squares += (values * values).sum(dim=1)
            lows = torch.minimum(lows, values.amin(dim=1))  # amin/amax: no index pass (8 ms vs 6 us)
            highs = torch.maximum(highs, values.amax(dim=1))
            pixels += values.shape[1]
            result.measured += 1
    if sums is not None and pixels:
        mean = sums / pixels
        variance = (squares / pixels - mean * mean).clamp(min=0)
        result.mean, result.std = mean.tolist(), variance.sqrt().tolist()
        result.min, result.max = lows.tolist(), highs.tolist()
    return result


def _transform_one(
    split: Any, transform: Callable[[Any], Any] | None, index: int, twice: bool
) -> tuple[Any, bool | None]:
    """Sample ``index`` transformed, and whether a second run gave the same (None: not checked)."""
    raw = split.load(index)
    output = transform(_clone(raw)) if transform is not None else raw
    if not twice or transform is None:
        return output, None
    return output, _same(output, transform(_clone(raw)))


def _as_chw(output: Any, result: Measured) -> Any:
    """The (C, H, W) tensor training would batch, or None (the output type is recorded)."""
    import torch

    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        output = output[0]  # e.g. FiveCrop returns crops; the first stands for all
    kind = type(output)
    result.output_types[f"{(kind.__module__ or '').split('.')[0]}.{kind.__name__}"] += 1
    if not isinstance(output, torch.Tensor):
        return None
    if output.dim() == 2:
        return output.unsqueeze(0)
    if output.dim() == 4:
        return output[0]
    if output.dim() != 3:
        return None
    return output


def _same(first: Any, second: Any) -> bool | None:
    import torch

    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor):
        return first.shape == second.shape and bool(torch.equal(first, second))
    try:
        import numpy

        return bool(numpy.array_equal(numpy.asarray(first), numpy.asarray(second)))
    except Exception:
        return None
