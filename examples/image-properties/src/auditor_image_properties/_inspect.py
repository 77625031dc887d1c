"""Reading what an image *is* (size, colour mode, decodability) without trusting any of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: PIL modes that hold one channel of intensity: a model pretrained on colour
#: photos sees these as R = G = B after the loader's ``convert("RGB")``.
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

#: Largest absolute difference between channels still counted as "the same"
#: (JPEG chroma rounding leaves 1-2 levels on grayscale photos saved as RGB).
CHANNEL_TOLERANCE = 2

#: Side of the thumbnail the channel comparison runs on: enough to tell colour
#: from gray, and independent of the image's own size.
_THUMBNAIL = 64


@dataclass(frozen=True)
class ImageInfo:
    """What one sample looks like; ``error`` is set (and nothing else) when it cannot be decoded."""

    width: int = 0
    height: int = 0
    mode: str = ""
    grayscale: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def aspect_ratio(self) -> float:
        return max(self.width, self.height) / max(1, min(self.width, self.height))


def inspect_file(path: Path, *, full_decode: bool = True) -> ImageInfo:
    """Open ``path`` with PIL; with ``full_decode`` every pixel is decoded, which is what catches truncation."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
            if not full_decode:
                return ImageInfo(width, height, mode, mode in GRAYSCALE_MODES)
            image.load()
            return ImageInfo(width, height, mode, _looks_gray(image))
    except Exception as exc:
        return ImageInfo(error=_describe_error(exc))


def inspect_sample(value: Any) -> ImageInfo:
    """The same for a sample a non-file format loaded: a PIL image, or an array/tensor shaped (C, H, W)."""
    if hasattr(value, "mode") and hasattr(value, "size"):
        width, height = value.size
        return ImageInfo(width, height, value.mode, _looks_gray(value))
    shape = tuple(getattr(value, "shape", ()))
    if len(shape) == 3:
        channels, height, width = shape
        return ImageInfo(int(width), int(height), f"{channels}-channel", grayscale=channels == 1)
    if len(shape) == 2:
        height, width = shape
        return ImageInfo(int(width), int(height), "1-channel", grayscale=True)
    return ImageInfo(error=f"not an image: {type(value).__name__}")


def _looks_gray(image: Any) -> bool:
    if image.mode in GRAYSCALE_MODES:
        return True
    if image.mode not in ("RGB", "RGBA", "RGBX"):
        return False  # palette, CMYK, YCbCr...: colour unless shown otherwise
    from PIL import ImageChops

    small = image.convert("RGB")
    small.thumbnail((_THUMBNAIL, _THUMBNAIL))
    red, green, blue = small.split()
    return all(
        ImageChops.difference(a, b).getextrema()[1] <= CHANNEL_TOLERANCE
        for a, b in ((red, green), (green, blue))
    )


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or "no message"
    return f"{type(exc).__name__}: {text}"
