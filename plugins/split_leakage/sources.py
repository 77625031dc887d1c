"""Pixels for the geometric stage: samples decoded again, in worker processes where many.

The hash stage keeps only hashes and codes (the cache stores no pixels), so the
geometric stage decodes the evaluation samples it searches (64x64 grids, in the same
worker pool as hashing) and the training samples it checks a candidate against (one
at a time, at 128 px). In-memory samples kept their grid from the hash stage.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from auditor_plugins.split_leakage import hashing
from auditor_plugins.split_leakage.collect import Samples, _Job, _run_pool

__all__ = ["load_grids", "load_image", "pixel_size"]

_CHUNK = 64
_IN_PROCESS_BELOW = 200
_CHECK_SIDE = 128


def load_grids(
    samples: Samples,
    ids: Sequence[int],
    workers: int,
    progress: Callable[[str, int | None], Any],
    cache: Any = None,
) -> tuple[dict[int, bytes], int, int]:
    """64x64 uint8 grids of ``ids`` (by sample id), how many could not be decoded, how many were read.

    Grids the hash stage kept cost nothing, then grids an earlier run stored in ``cache``
    (a HashCache); the others are read and decoded again.
    """
    grids: dict[int, bytes] = {}
    wanted = [i for i in ids if i not in samples.grid and samples.resolved[i]]
    stored = cache.grids([samples.resolved[i] for i in wanted]) if cache is not None and wanted else {}
    local: list[int] = []
    remote: dict[str, list[int]] = {}
    options: dict[str, Any] = {}
    for sample in ids:
        path = samples.path[sample]
        if sample in samples.grid:  # kept by the hash stage (in-memory samples, evaluation files)
            grids[sample] = samples.grid[sample]
            continue
        cached = stored.get(samples.resolved[sample] or "")
        if cached is not None and len(cached) == 64 * 64:
            grids[sample] = cached
            continue
        if path is None:
            continue
        listing = samples.remote.get(path)
        if listing is None:
            local.append(sample)
        else:
            group = repr(sorted(listing.storage_options.items()))
            remote.setdefault(group, []).append(sample)
            options[group] = listing.storage_options
    jobs = [
        _Job(chunk, hashing.grids_of_files, ([samples.path[i] for i in chunk],)) for chunk in _chunks(local)
    ]
    for group, members in remote.items():
        jobs.extend(
            _Job(chunk, hashing.grids_of_urls, ([samples.path[i] for i in chunk], options[group]))
            for chunk in _chunks(members)
        )

    def record(job: _Job, results: Sequence[bytes | None]) -> None:
        for sample, grid in zip(job.positions, results, strict=False):
            if grid is not None:
                grids[sample] = grid

    total = sum(len(job.positions) for job in jobs)
    if jobs:
        with progress("decoding evaluation samples", total) as bar:
            if workers <= 1 or total < _IN_PROCESS_BELOW:
                for job in jobs:
                    record(job, job())
                    bar.advance(len(job.positions))
            else:
                _run_pool(jobs, workers, record, bar)  # type: ignore[arg-type]
    return grids, len(ids) - len(grids), total


def _chunks(items: list[int]) -> list[list[int]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def load_image(samples: Samples, sample: int, mode: str = "F", side: int = _CHECK_SIDE) -> Any:
    """A sample as a ``side`` px square PIL image (no EXIF turn): grayscale "F" or "RGB"; or None.

    In-memory samples kept only their grayscale grid, so they have no "RGB" image.
    """
    import numpy as np
    from PIL import Image

    path = samples.path[sample]
    try:
        if path is None:
            grid = samples.grid.get(sample)
            if grid is None or mode != "F":
                return None
            image = Image.fromarray(np.frombuffer(grid, dtype=np.uint8).reshape(64, 64))
            return image.convert("F").resize((side, side), Image.Resampling.BILINEAR)
        data = _read(samples, path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format == "JPEG":
                    opened.draft("L" if mode == "F" else "RGB", (side, side))
                converted = opened.convert("L" if mode == "F" else "RGB")
        if mode == "F":
            converted = converted.convert("F")
        return converted.resize((side, side), Image.Resampling.BOX)
    except Exception:
        return None


def pixel_size(samples: Samples, sample: int) -> tuple[int, int] | None:
    """A file's width and height from its header (None for in-memory samples or an unreadable file)."""
    from PIL import Image

    path = samples.path[sample]
    if path is None:
        return None
    try:
        if samples.remote.get(path) is None:
            from auditor.kit import open_regular

            with open_regular(path) as handle, Image.open(handle) as image:
                return image.size
        with Image.open(io.BytesIO(_read(samples, path))) as image:
            return image.size
    except Exception:
        return None


def _read(samples: Samples, path: str) -> bytes:
    listing = samples.remote.get(path)
    if listing is None:
        from auditor.kit import open_regular

        # The file was a regular file when hashed; a FIFO swapped in since must not block.
        with open_regular(path) as handle:
            return handle.read()
    from auditor.kit import filesystem

    fs, target = filesystem(path, listing.storage_options)
    return bytes(fs.cat_file(target))
