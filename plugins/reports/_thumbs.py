"""Small inline thumbnails of leaked pairs for the HTML report.

Evidence of the split_leakage findings lists ``pairs`` of samples
(``FindingView.pairs``) whose ``path`` is relative to the manifest's folder (absolute when outside it, None
for in-memory samples). Each is read with PIL, shrunk to at most ``size``
pixels and embedded as a ``data:`` URI, so the report stays one file. A file
that is gone, unreadable or not an image becomes a placeholder: re-rendering an
old report after the data moved must still work. Only files inside the
manifest's folder tree are read: a report is data, and a crafted one must not
turn ``auditor report --format html`` into a way to copy any image on the
machine into a file that gets published. A geometric copy's training image carries
the outline of the region the copy shows (drawn into the thumbnail itself).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from auditor.kit import open_regular
from auditor.report.evidence import LeakedPair, SampleRef

__all__ = ["MAX_PAIRS", "THUMB_PX", "PairView", "Thumb", "pair_views"]

MAX_PAIRS = 12
THUMB_PX = 64
#: Images above this many pixels are not decoded for a thumbnail (decompression bombs, huge scans).
_MAX_SOURCE_PIXELS = 64_000_000


class Thumb(NamedTuple):
    split: str
    label: str
    path: str
    uri: str  # data: URI, or "" for the placeholder
    problem: str  # why there is no image


class PairView(NamedTuple):
    a: Thumb
    b: Thumb
    distance: str
    note: str


def _inside(path: Path, base: Path) -> bool:
    """True when ``path``, links resolved, lies in ``base``'s folder tree, and that tree is a project's.

    The manifest's folder comes from the report, which may be crafted: a folder
    that is the file system's root, a top-level folder or the home folder itself
    would make the rule empty, so nothing under such a "manifest folder" is read.
    """
    try:
        root = Path(os.path.realpath(base))
        if len(root.parts) < 3 or root == Path(os.path.realpath(Path.home())):
            return False
        return Path(os.path.realpath(path)).is_relative_to(root)
    except (OSError, ValueError, RuntimeError):
        return False


def _data_uri(
    path: Path, size: int, base: Path, outline: Sequence[tuple[float, float]] = ()
) -> tuple[str, str]:
    try:
        from PIL import Image, ImageOps
    except ImportError:  # pragma: no cover - pillow is a dependency
        return "", "pillow is not installed"
    # A report is data: a crafted one must not make auditor embed, say, ~/private.jpg.
    if not _inside(path, base):
        return "", "outside the manifest's folder, not embedded"
    if not path.is_file():
        return "", "file not found"
    try:
        with open_regular(path) as handle, Image.open(handle) as image:
            if image.width * image.height > _MAX_SOURCE_PIXELS:
                return "", f"too large to preview ({image.width}x{image.height})"
            image.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale
            image.load()
            if outline:
                # Drawn on the stored pixels, before any EXIF turn: the region was found in the
                # pixels the training loader sees, so the turn then carries the outline along.
                image = image.convert("RGB")
                _draw_outline(image, outline)
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80, optimize=True)
    except Exception as exc:
        return "", f"not readable as an image ({type(exc).__name__})"
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), ""


def _draw_outline(image: object, outline: Sequence[tuple[float, float]]) -> None:
    from PIL import ImageDraw

    width, height = image.size  # type: ignore[attr-defined]
    corners = [(x * width, y * height) for x, y in outline]
    line = max(2, round(min(width, height) / 48))
    ImageDraw.Draw(image).line([*corners, corners[0]], fill=(255, 40, 40), width=line)  # type: ignore[arg-type]


def _thumb(
    sample: SampleRef | None, base: Path, size: int, outline: Sequence[tuple[float, float]] = ()
) -> Thumb:
    if sample is None:
        return Thumb("?", "", "?", "", "no sample in the evidence")
    if not sample.path:
        return Thumb(
            sample.split,
            sample.label,
            f"{sample.split}[{sample.index}]",
            "",
            "in-memory sample, no file to show",
        )
    path = Path(sample.path)
    uri, problem = _data_uri(path if path.is_absolute() else base / path, size, base, outline)
    return Thumb(sample.split, sample.label, sample.path, uri, problem)


def _note(pair: LeakedPair) -> str:
    notes = [pair.kind] if pair.kind else []
    if pair.relation:
        notes.append(pair.relation)
    if pair.mirrored:
        notes.append("mirrored")
    if pair.similarity is not None:
        notes.append(f"similarity {pair.similarity:.4f}")
    return ", ".join(notes)


def pair_views(
    pairs: Sequence[LeakedPair], base: Path, *, limit: int = MAX_PAIRS, size: int = THUMB_PX
) -> list[PairView]:
    """The pairs among the evidence's first ``limit`` entries as thumbnails (evidence lists closest first)."""
    return [
        PairView(
            _thumb(pair.a, base, size, pair.outline),
            _thumb(pair.b, base, size),
            "" if pair.distance is None else str(pair.distance),
            _note(pair),
        )
        for pair in pairs
        if pair.position < limit
    ]
