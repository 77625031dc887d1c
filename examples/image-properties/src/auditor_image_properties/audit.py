"""image_properties: corrupt, grayscale, tiny and extremely elongated images (IP001-IP004).

Every sample of every split is opened with PIL, the way the training loader
will open it, so a file that would crash epoch 3 is found now. Nothing is
written next to the data.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor import Audit, AuditContext, CodeInfo, Finding, Severity, SkipAudit, Split, hookimpl
from auditor_image_properties._inspect import ImageInfo, inspect_file, inspect_sample

VERSION = "0.1.0"

#: How many offending files a finding lists in its evidence.
MAX_LISTED = 20

CODES = [
    CodeInfo(
        "IP001",
        Severity.ERROR,
        "images that cannot be decoded",
        """
**What it means.** PIL could not open or fully decode one or more files of a split:
truncated downloads, zero-byte files, HTML error pages saved as `.jpg`, or files in a
format the installed Pillow cannot read.

**Why it breaks training.** The default loader raises on the first such file, so the
run crashes mid-epoch, hours in. Worse, with `ImageFile.LOAD_TRUNCATED_IMAGES = True`
(a common "fix" copied from forums) the missing part of the image is filled with
gray and the model trains on it without a word.

**How to fix it.** Re-download or delete the files listed in the finding's evidence;
`python -c "from PIL import Image; Image.open(p).load()"` reproduces the error for one
file.

**Example.** `data/train/cat/0193.jpg: OSError: image file is truncated (18 bytes not
processed)`.
""",
    ),
    CodeInfo(
        "IP002",
        Severity.WARNING,
        "grayscale images mixed with colour images",
        """
**What it means.** A split holds both colour images and grayscale ones (a
single-channel mode such as `L`, or RGB whose three channels are equal).

**Why it breaks training.** The loader's `convert("RGB")` turns grayscale into three
equal channels, whose statistics differ from colour photos: after ImageNet
normalization they sit in a different part of input space. When grayscale images
are concentrated in some classes (scanned documents, night-vision shots) the model
learns "gray means class X", a shortcut that fails on new data.

**How to fix it.** Check which classes the grayscale images belong to (the evidence
lists them); either collect colour versions, convert every image to grayscale (and
train on 3 equal channels consistently), or add `RandomGrayscale` to the training
transform so colour is not a cue.

**Example.** 212 of 4,000 `train` images are mode `L`; 190 of them are `dog`.
""",
    ),
    CodeInfo(
        "IP003",
        Severity.WARNING,
        "tiny images",
        """
**What it means.** Images whose shorter side is below `min_side` pixels (default 32).

**Why it breaks training.** The transform upsamples them to the model's input size
(e.g. 224 px), so the network sees a few blurry blobs: thumbnails, icons or
placeholder images scraped by mistake. They add label noise and teach nothing the
pretrained features can use.

**How to fix it.** Drop them, or replace them with the full-size originals; if tiny
images are what the model will see in production, fine-tune at a matching input
size instead.

**Example.** `data/train/cat/0042.png` is 16x16.
""",
    ),
    CodeInfo(
        "IP004",
        Severity.WARNING,
        "extreme aspect ratios",
        """
**What it means.** Images whose longer side is more than `max_aspect_ratio` (default 4)
times their shorter side: panoramas, banners, strips of several photos.

**Why it breaks training.** `Resize(256) + CenterCrop(224)` keeps only the middle of
such an image, often without the object, while `Resize((224, 224))` squashes it
beyond recognition; either way the label no longer matches what the model sees.

**How to fix it.** Inspect the listed files; crop them to the object, pad them to a
square (letterbox) before resizing, or remove them.

**Example.** `data/val/dog/0007.jpg` is 1600x200 (ratio 8.0).
""",
    ),
]

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "min_side": {
            "type": "integer",
            "minimum": 1,
            "default": 32,
            "description": "shorter side in pixels below which an image is tiny (IP003)",
        },
        "max_aspect_ratio": {
            "type": "number",
            "exclusiveMinimum": 1,
            "default": 4.0,
            "description": "longer/shorter side above which an image is extreme (IP004)",
        },
        "full_decode": {
            "type": "boolean",
            "default": True,
            "description": "decode every pixel (finds truncated files); false reads headers only",
        },
        "max_images_per_split": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "inspect at most this many samples per split (null: all)",
        },
    },
}


def run(ctx: AuditContext) -> Iterator[Finding]:
    splits = ctx.splits
    if not splits:
        raise SkipAudit("the manifest declares no data splits")
    base = ctx.manifest.base_dir
    evidence: dict[str, Any] = {}
    for split in splits.values():
        infos = _inspect_split(ctx, split)
        names = _sample_names(split, base, len(infos))
        evidence[split.name] = _summary(infos)
        yield from _findings(ctx, split, infos, names)
    ctx.evidence["splits"] = evidence


def _inspect_split(ctx: AuditContext, split: Split) -> list[ImageInfo]:
    limit = ctx.options["max_images_per_split"]
    count = len(split) if limit is None else min(len(split), limit)
    paths = split.paths()
    infos: list[ImageInfo] = []
    with ctx.progress(f"images of '{split.name}'", count) as task:
        for index in range(count):
            if paths is not None:
                infos.append(inspect_file(paths[index], full_decode=ctx.options["full_decode"]))
            else:
                try:
                    infos.append(inspect_sample(split.load(index)))
                except Exception as exc:
                    infos.append(ImageInfo(error=f"{type(exc).__name__}: {exc}"))
            task.advance()
    return infos


def _sample_names(split: Split, base: Path, count: int) -> list[str]:
    paths = split.paths()
    if paths is None:
        return [f"{split.name}[{i}]" for i in range(count)]
    return [_relative(path, base) for path in paths[:count]]


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)


def _summary(infos: list[ImageInfo]) -> dict[str, Any]:
    decoded = [i for i in infos if i.ok]
    summary: dict[str, Any] = {
        "inspected": len(infos),
        "corrupt": len(infos) - len(decoded),
        "grayscale": sum(i.grayscale for i in decoded),
        "modes": dict(sorted(Counter(i.mode for i in decoded).items())),
    }
    for side in ("width", "height"):
        values = [getattr(i, side) for i in decoded]
        if values:
            summary[side] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    return summary


def _findings(ctx: AuditContext, split: Split, infos: list[ImageInfo], names: list[str]) -> Iterator[Finding]:
    where = split.location
    corrupt = [(n, i.error) for n, i in zip(names, infos, strict=False) if not i.ok]
    if corrupt:
        first, error = corrupt[0]
        yield ctx.finding(
            "IP001",
            f"{len(corrupt)} image{_s(corrupt)} in '{split.name}' cannot be decoded; first: {first} "
            f"({error})",
            hint="re-download or delete them; the evidence lists the files and errors",
            location=where,
            evidence={
                "split": split.name,
                "count": len(corrupt),
                "files": [{"file": n, "error": e} for n, e in corrupt[:MAX_LISTED]],
            },
        )
    decoded = [(n, i) for n, i in zip(names, infos, strict=False) if i.ok]
    gray = [n for n, i in decoded if i.grayscale]
    if gray and len(gray) < len(decoded):
        by_class = _by_class(split, names, set(gray))
        yield ctx.finding(
            "IP002",
            f"{len(gray)} of {len(decoded)} images in '{split.name}' are grayscale among colour images",
            hint="add RandomGrayscale to the training transform, or make every image the same kind; "
            f"grayscale images per class: {by_class}",
            location=where,
            evidence={
                "split": split.name,
                "count": len(gray),
                "total": len(decoded),
                "per_class": by_class,
                "files": gray[:MAX_LISTED],
            },
        )
    min_side = ctx.options["min_side"]
    tiny = [(n, i) for n, i in decoded if i.short_side < min_side]
    if tiny:
        first, info = tiny[0]
        yield ctx.finding(
            "IP003",
            f"{len(tiny)} image{_s(tiny)} in '{split.name}' {'is' if len(tiny) == 1 else 'are'} smaller "
            f"than {min_side} px on the shorter side; first: {first} ({info.width}x{info.height})",
            hint="drop them or replace them with full-size originals",
            location=where,
            evidence={
                "split": split.name,
                "count": len(tiny),
                "min_side": min_side,
                "files": [{"file": n, "size": [i.width, i.height]} for n, i in tiny[:MAX_LISTED]],
            },
        )
    limit = ctx.options["max_aspect_ratio"]
    elongated = sorted(
        ((n, i) for n, i in decoded if i.aspect_ratio > limit), key=lambda item: -item[1].aspect_ratio
    )
    if elongated:
        first, info = elongated[0]
        yield ctx.finding(
            "IP004",
            f"{len(elongated)} image{_s(elongated)} in '{split.name}' with aspect ratio above {limit:g}; "
            f"most extreme: {first} ({info.width}x{info.height}, ratio {info.aspect_ratio:.1f})",
            hint="a center crop loses the object and a square resize distorts it: crop, letterbox or remove them",
            location=where,
            evidence={
                "split": split.name,
                "count": len(elongated),
                "max_aspect_ratio": limit,
                "files": [
                    {"file": n, "size": [i.width, i.height], "ratio": round(i.aspect_ratio, 2)}
                    for n, i in elongated[:MAX_LISTED]
                ],
            },
        )


def _by_class(split: Split, names: list[str], chosen: set[str]) -> dict[str, int]:
    """How many of the ``chosen`` samples each class holds (a concentration hints at a shortcut)."""
    classes = split.classes()
    counts: Counter[str] = Counter()
    for name, target in zip(names, split.targets(), strict=False):
        if name in chosen and isinstance(target, int) and 0 <= target < len(classes):
            counts[classes[target]] += 1
    return dict(counts.most_common())


def _s(items: list[Any]) -> str:
    return "" if len(items) == 1 else "s"


AUDIT = Audit(
    name="image_properties",
    version=VERSION,
    prefix="IP",
    codes=CODES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data"}),
    description="corrupt, grayscale, tiny and extremely elongated images",
    order=20,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
