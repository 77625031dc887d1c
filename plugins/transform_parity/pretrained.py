"""What a pretrained backbone expects as input, resolved offline from ``model.pretrained``.

Three spellings are accepted (see the manifest schema):

* ``torchvision:<WeightsEnum.member>`` (or ``torchvision:<model name>`` for its
  default weights): read from the weights' own ``transforms()`` preset and
  ``meta``. Building the preset downloads nothing.
* ``timm:<model name>[.<tag>]``: timm's pretrained config (timm is the optional
  ``auditor[timm]`` extra).
* a mapping ``{mean, std, input_size, interpolation, crop_pct}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from auditor.kit import (
    PROCESSOR_FILE,
    HFPretrainedProblem,
    closest,
    is_hf_pretrained,
    read_hf_pretrained,
)

__all__ = ["Expected", "PretrainedError", "resolve_pretrained"]


class PretrainedError(ValueError):
    """``model.pretrained`` names nothing that can be resolved; ``hint`` says what to write."""

    def __init__(self, found: str, hint: str = "") -> None:
        self.found = found
        self.hint = hint
        super().__init__(found + (f" ({hint})" if hint else ""))


@dataclass(frozen=True)
class Expected:
    """The input the backbone was pre-trained on. ``None`` means "not specified"."""

    source: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    #: (channels, height, width) the weights were evaluated at.
    input_size: tuple[int, int, int] | None = None
    #: eval-time resize of the shorter side before the center crop, when known.
    resize: int | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> int | None:
        if self.input_size:
            return self.input_size[0]
        return len(self.mean) if self.mean else None

    @property
    def byte_scale(self) -> bool:
        """True for weights that expect 0..255 inputs (e.g. Caffe-style means like 123.7)."""
        return bool(self.mean) and all(abs(m) > 1.5 for m in self.mean or ())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "mean": list(self.mean) if self.mean else None,
            "std": list(self.std) if self.std else None,
            "input_size": list(self.input_size) if self.input_size else None,
            "resize": self.resize,
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
            **self.extra,
        }


def resolve_pretrained(value: Any, base_dir: Path | None = None) -> Expected | None:
    """An :class:`Expected` for ``model.pretrained``, ``None`` when it is absent.

    ``base_dir`` is the manifest's folder, against which a Hugging Face model folder
    is resolved. Raises :class:`PretrainedError` for names that do not resolve and
    :class:`ImportError` (with an install hint) when timm is needed but absent.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _from_mapping(value)
    text = str(value)
    library, _, name = text.partition(":")
    if library == "torchvision" and name:
        return _from_torchvision(name)
    if library == "timm" and name:
        return _from_timm(name)
    if is_hf_pretrained(text):
        try:
            folder = read_hf_pretrained(text, base_dir or Path.cwd())
        except HFPretrainedProblem as exc:
            raise PretrainedError(exc.found, exc.hint) from None
        return from_hf_processor(folder.processor, f"{text} ({PROCESSOR_FILE})", folder.config)
    raise PretrainedError(
        repr(text),
        "write torchvision:<WeightsEnum.member>, timm:<model name>, a Hugging Face model folder or a "
        "mapping {mean, std, input_size}",
    )


#: PIL's resampling numbers, as image processors store ``resample``.
_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def _side(size: Any) -> tuple[int | None, int | None]:
    """(height, width) of an image processor's ``size``/``crop_size``; a shortest edge gives (edge, None)."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, Mapping):
        if "height" in size and "width" in size:
            return int(size["height"]), int(size["width"])
        if "shortest_edge" in size:
            return int(size["shortest_edge"]), None
    return None, None


def from_hf_processor(
    settings: Mapping[str, Any], source: str, config: Mapping[str, Any] | None = None
) -> Expected:
    """What an image processor's settings (``preprocessor_config.json`` or its attributes) expect.

    ``do_normalize`` off means the processor feeds the weights unnormalized values: the
    expected mean/std are then the identity, and a pipeline normalizing is what differs.
    The processor's own flags travel in ``extra`` for the double-rescaling check (TP010).
    """
    normalize = settings.get("do_normalize", True) is not False
    mean = _floats(settings.get("image_mean"))
    std = _floats(settings.get("image_std"))
    crop_h, crop_w = _side(settings.get("crop_size")) if settings.get("do_center_crop") else (None, None)
    size_h, size_w = _side(settings.get("size"))
    height, width = (crop_h, crop_w) if crop_h else (size_h, size_w)
    channels = len(mean) if mean else 3
    resample = settings.get("resample")
    extra: dict[str, Any] = {
        "image_processor": settings.get("image_processor_type") or settings.get("image_processor"),
        "do_rescale": settings.get("do_rescale", True) is not False,
        "rescale_factor": float(settings.get("rescale_factor") or 1 / 255),
        "do_normalize": normalize,
        "processor_mean": list(mean) if mean else None,
        "processor_std": list(std) if std else None,
    }
    if config:
        extra["num_labels"] = config.get("num_labels") or (
            len(config["id2label"]) if isinstance(config.get("id2label"), Mapping) else None
        )
    return Expected(
        source=source,
        mean=(mean if normalize else None),
        std=(std if normalize else None),
        input_size=(channels, height, width) if height and width else None,
        resize=size_h if crop_h and size_w is None else None,
        interpolation=_RESAMPLE.get(resample) if isinstance(resample, int) else None,
        extra=extra,
    )


def _floats(values: Sequence[Any] | None) -> tuple[float, ...] | None:
    return tuple(float(v) for v in values) if values is not None else None


def _from_mapping(value: Mapping[str, Any]) -> Expected:
    if "image_processor" in value or any(k in value for k in ("do_rescale", "do_normalize")):
        # an image processor's settings (auditor.check turns a processor object into these)
        settings = {
            "image_mean": value.get("mean"),
            "image_std": value.get("std"),
            "do_rescale": value.get("do_rescale", True),
            "rescale_factor": value.get("rescale_factor"),
            "do_normalize": value.get("do_normalize", True),
            "image_processor": value.get("image_processor"),
        }
        name = value.get("image_processor") or "manifest mapping"
        expected = from_hf_processor(
            settings, f"image processor {name}" if "image_processor" in value else name
        )
        size = value.get("input_size")
        if size:
            expected = replace(expected, input_size=tuple(int(v) for v in size))  # type: ignore[arg-type]
        return expected
    size = value.get("input_size")
    return Expected(
        source="manifest mapping",
        mean=_floats(value.get("mean")),
        std=_floats(value.get("std")),
        input_size=tuple(int(v) for v in size) if size else None,  # type: ignore[arg-type]
        interpolation=value.get("interpolation"),
        crop_pct=value.get("crop_pct"),
    )


def _first(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return int(value)


def _from_torchvision(name: str) -> Expected:
    from torchvision import models

    weights = _torchvision_weights(models, name)
    preset = weights.transforms()
    mean = getattr(preset, "mean", None)
    std = getattr(preset, "std", None)
    crop = _first(getattr(preset, "crop_size", None))
    resize = _first(getattr(preset, "resize_size", None))
    interpolation = getattr(preset, "interpolation", None)
    extra: dict[str, Any] = {"preset": type(preset).__name__}
    if "num_params" in weights.meta:
        extra["num_params"] = weights.meta["num_params"]
    if weights.meta.get("categories"):
        extra["num_classes"] = len(weights.meta["categories"])
    return Expected(
        source=f"torchvision:{type(weights).__name__}.{weights.name}",
        mean=_floats(mean),
        std=_floats(std),
        # Classification presets normalize 3-channel images; others (detection) normalize inside the model.
        input_size=(3, crop, crop) if crop else None,
        resize=resize,
        interpolation=getattr(interpolation, "value", None)
        or (str(interpolation) if interpolation else None),
        crop_pct=round(crop / resize, 4) if crop and resize else None,
        extra=extra,
    )


def _torchvision_weights(models: Any, name: str) -> Any:
    if "." in name:
        try:
            return models.get_weight(name)
        except (ValueError, KeyError, AttributeError) as exc:
            enum_name = name.split(".", 1)[0]
            raise PretrainedError(
                f"torchvision weights {name!r} ({type(exc).__name__}: {exc}), which do not exist",
                _torchvision_suggestion(models, enum_name),
            ) from None
    try:
        return models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        close = closest(name, models.list_models())
        hint = (
            f"did you mean torchvision:{close} (its default weights)?"
            if close
            else _torchvision_suggestion(models, name)
        )
        raise PretrainedError(f"torchvision weights or model {name!r}", hint) from None


def _torchvision_suggestion(models: Any, enum_name: str) -> str:
    """'did you mean' over the weight enums torchvision knows (only on error: it is slow-ish)."""
    candidates: list[str] = []
    for model_name in models.list_models():
        try:
            enum = models.get_model_weights(model_name)
        except Exception:
            enum = None
        if enum is not None:
            candidates.append(enum.__name__)
    close = closest(enum_name, candidates)
    example = "ResNet50_Weights.IMAGENET1K_V2"
    if close:
        try:
            members = [m.name for m in getattr(models, close)]
        except Exception:
            members = []
        member = members[-1] if members else "DEFAULT"
        return f"did you mean {close}.{member}? its members: {', '.join(members) or 'DEFAULT'}"
    return f"write the weights enum and member, e.g. torchvision:{example}"


def _from_timm(name: str) -> Expected:
    try:
        from timm.models import get_pretrained_cfg
    except ImportError as exc:
        raise ImportError(
            f"model.pretrained is 'timm:{name}' but timm is not installed ({exc}); "
            "install the extra with `pip install 'auditor[timm]'`, or write the normalization as a "
            "mapping {mean: [...], std: [...], input_size: [3, H, W]}"
        ) from exc
    cfg = get_pretrained_cfg(name)
    if cfg is None:
        import timm

        base = name.split(".", 1)[0]
        close = closest(base, timm.list_models())
        hint = f"did you mean timm:{close}?" if close else "see timm.list_models(pretrained=True)"
        raise PretrainedError(f"timm model {name!r} with no pretrained config", hint)
    size = tuple(int(v) for v in cfg.input_size) if cfg.input_size else None
    crop_pct = float(cfg.crop_pct) if cfg.crop_pct else None
    resize = (
        int(size[1] / crop_pct) if size and crop_pct else None
    )  # timm: scale_size = floor(size / crop_pct)
    return Expected(
        source=f"timm:{name}",
        mean=_floats(cfg.mean),
        std=_floats(cfg.std),
        input_size=size,  # type: ignore[arg-type]
        resize=resize,
        interpolation=cfg.interpolation or None,
        crop_pct=crop_pct,
        extra={"fixed_input_size": bool(getattr(cfg, "fixed_input_size", False))},
    )
