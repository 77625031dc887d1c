"""Can these samples form a batch? Collate them as the run's DataLoader would, and say why not.

Shared by data_loading (DL001, before training) and gradient_probe (GP012, when the
probe's own batches fail). A sample's *signature* ("Tensor[3, 224, 224] float32",
"PIL.Image RGB 500x375", "int") groups samples, so a failure names the odd ones
out by index and path instead of repeating torch's stack error. torch is
imported only when a function here runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CollateProblem", "collate_name", "sample_paths", "signature", "try_collate"]


def sample_paths(split: Any) -> list[str] | None:
    """Path of every sample, to name samples in findings: the format's paths, else a dataset's ``samples``.

    torchvision's ImageFolder/DatasetFolder (and datasets modelled on them) list
    ``(path, class_index)`` pairs in ``samples`` (``imgs`` in older versions).
    """
    paths = split.path_strings()
    if paths is not None:
        return paths
    dataset = getattr(split, "dataset_object", None)
    for attr in ("samples", "imgs"):
        pairs = getattr(dataset, attr, None)
        try:
            if (
                pairs is not None
                and len(pairs) == len(split)
                and all(isinstance(p, (tuple, list)) and isinstance(p[0], str) for p in pairs[:1])
            ):
                return [str(p[0]) for p in pairs]
        except TypeError:
            continue
    return None


def signature(value: Any) -> str:
    """Type and, where it matters for stacking, shape and dtype of one sample's input."""
    kind = type(value)
    name = f"{(kind.__module__ or '').split('.')[0]}.{kind.__qualname__}".lstrip(".")
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        dtype = str(value.dtype).replace("torch.", "")
        short = "Tensor" if name.startswith("torch.") else name
        return f"{short}[{', '.join(str(int(s)) for s in shape)}] {dtype}"
    if hasattr(value, "mode") and hasattr(value, "size") and name.startswith("PIL."):
        width, height = value.size
        return f"PIL.Image {value.mode} {width}x{height}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(signature(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"{kind.__name__}({inner})"
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}: {signature(v)}" for k, v in list(value.items())[:4]) + ")"
    return kind.__name__ if kind.__module__ == "builtins" else name


def collate_name(collate_fn: Callable[..., Any] | None) -> str:
    if collate_fn is None or getattr(collate_fn, "__qualname__", "") == "default_collate":
        return "default_collate"
    return f"{getattr(collate_fn, '__module__', '')}:{getattr(collate_fn, '__qualname__', repr(collate_fn))}"


@dataclass
class CollateProblem:
    """Why ``collate_fn`` rejected a list of samples, with the groups of sample signatures."""

    error: str
    collate: str
    #: signature -> sample indices, most common first
    groups: dict[str, list[int]] = field(default_factory=dict)

    @property
    def odd(self) -> list[int]:
        """Indices of the samples outside the most common signature (all of them when uniform)."""
        items = list(self.groups.values())
        if len(items) <= 1:
            return items[0] if items else []
        return [i for group in items[1:] for i in group]

    def describe(self, paths: Sequence[str] | None = None, limit: int = 3) -> str:
        """'62 samples are Tensor[3, 32, 32] float32; 2 are Tensor[1, 32, 32] float32 (sample 4: b/0.png, ...)'."""
        parts = []
        for sig, indices in self.groups.items():
            shown = ", ".join(_where(i, paths) for i in indices[:limit])
            more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
            noun = "sample is" if len(indices) == 1 else "samples are"
            parts.append(f"{len(indices)} {noun} {sig} ({shown}{more})")
        return "; ".join(parts)

    def hint(self) -> str:
        """What to change, from what the signatures show."""
        sigs = list(self.groups)
        if any(s.startswith("PIL.") for s in sigs):
            return (
                "the pipeline ends with a PIL image: add transforms.ToTensor() (or v2.ToImage() + "
                "v2.ToDtype(torch.float32, scale=True)) as its last conversion step"
            )
        shapes = [_shape(s) for s in sigs]
        if len(sigs) > 1 and all(shapes):
            channels = {s[0] for s in shapes if s}
            if len(channels) > 1:
                return (
                    "images have different channel counts (grayscale, RGBA and RGB files mixed): convert every "
                    "image with .convert('RGB') when loading it, as torchvision's default loader does"
                )
            return (
                "samples have different sizes: end the pipeline with a fixed size, e.g. Resize((H, W)) or "
                "Resize(S) + CenterCrop(S), or pass a collate_fn that pads"
            )
        if len(sigs) > 1:
            return "make __getitem__ return the same type and structure for every sample"
        return "make the pipeline return tensors (or pass the collate_fn training uses as data.<split>.collate_fn)"

    def to_dict(self, paths: Sequence[str] | None = None) -> dict[str, Any]:
        return {
            "collate_fn": self.collate,
            "error": self.error,
            "groups": [
                {
                    "signature": sig,
                    "count": len(indices),
                    "indices": indices[:20],
                    "paths": [paths[i] for i in indices[:5]] if paths else [],
                }
                for sig, indices in self.groups.items()
            ],
        }


def try_collate(
    items: Sequence[tuple[int, Any, Any]], collate_fn: Callable[..., Any] | None
) -> tuple[Any, CollateProblem | None]:
    """Collate ``(index, input, item)`` triples; return ``(batch, None)`` or ``(None, problem)``.

    With no ``collate_fn`` the inputs alone go through torch's ``default_collate`` (the
    DataLoader default; targets always collate). A ``collate_fn`` gets the items, what
    the dataset returns (e.g. ``(input, target)``), exactly as a DataLoader hands them.
    The inputs' signatures describe a failure.
    """
    from torch.utils.data import default_collate

    try:
        if collate_fn is None:
            batch = default_collate([value for _, value, _ in items])
        else:
            batch = collate_fn([item for _, _, item in items])
        return batch, None
    except Exception as exc:
        groups: dict[str, list[int]] = {}
        for index, value, _ in items:
            groups.setdefault(signature(value), []).append(index)
        ordered = dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0])))
        message = f"{type(exc).__name__}: {exc}".strip()
        return None, CollateProblem(message[:400], collate_name(collate_fn), ordered)


def _where(index: int, paths: Sequence[str] | None) -> str:
    if paths is not None and 0 <= index < len(paths):
        return f"sample {index}: {paths[index]}"
    return f"sample {index}"


def _shape(sig: str) -> tuple[int, ...] | None:
    if "[" not in sig or "]" not in sig:
        return None
    inside = sig[sig.index("[") + 1 : sig.index("]")]
    try:
        return tuple(int(p) for p in inside.split(",") if p.strip())
    except ValueError:
        return None
