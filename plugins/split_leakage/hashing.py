"""Content and perceptual hashes for split_leakage.

Per sample, three things are computed:

* ``digest``: xxh3-128 of the file bytes (or of dtype + shape + raw bytes for
  in-memory tensors, arrays and PIL images); equal digests are exact duplicates.
* ``phash`` / ``mirror``: a 64-bit DCT perceptual hash of a 32x32 grayscale
  thumbnail, and the same hash of the mirrored thumbnail, so a horizontally flipped
  copy is one Hamming-distance comparison away. Bit ``i`` says whether low-frequency
  DCT coefficient ``i`` (8x8 top-left block) lies above the median of the 64, so a
  hash always has 32 ones and distances are even.
* ``thumb``: the 8x8 block-mean thumbnail (64 bytes, min-max scaled). Candidate
  pairs found by Hamming distance are confirmed by the correlation of their thumbs,
  which removes most hash collisions between unrelated images.

Why DCT rather than dHash: on the benchmark (benchmarks/leakage.py) a 9x8 dHash put
8 unrelated val images at distance 0 from some train image (smooth gradients give the
same left/right ordering everywhere); the DCT hash put none closer than 6.

The thumbnail comes from a cheap decode: for JPEG, ``Image.draft`` asks libjpeg to
scale by up to 1/8 in the DCT domain, skipping most of the decode. This module runs
in worker processes: its import is light and every failure is returned as a message.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = [
    "HASH_VERSION",
    "FileHash",
    "SampleHash",
    "coarse",
    "grids_of_files",
    "grids_of_urls",
    "hash_file",
    "hash_files",
    "hash_sample",
    "hash_urls",
]

#: Bump whenever the bytes hashed or the thumbnail/hash recipe changes: cached rows
#: written by another version are then ignored (and replaced).
HASH_VERSION = 5

_GRID = 32  # thumbnail side the DCT runs on
_FINE = 64  # side of the grid decoded (the window codes of windows.py are cut from it)
_THUMB = 8  # side of the verification thumbnail (block means of the grid)
#: Files larger than this are not images a training loader would decode; hash the
#: bytes in streaming mode instead of holding them in memory.
_STREAM_ABOVE = 64 * 1024 * 1024


class FileHash(NamedTuple):
    """What hashing one file yields (``digest`` is empty when the file is unreadable)."""

    size: int
    mtime_ns: int
    digest: bytes
    phash: int | None
    mirror: int | None
    thumb: bytes | None
    error: str | None
    anchors: bytes | None = None  # windows.anchor_codes of the 64x64 grid
    grid: bytes | None = None  # the 64x64 uint8 grid, when asked for (evaluation splits)


class SampleHash(NamedTuple):
    """What hashing one in-memory sample yields."""

    digest: bytes
    phash: int | None
    mirror: int | None
    thumb: bytes | None
    error: str | None
    anchors: bytes | None = None
    grid: bytes | None = None  # the 64x64 uint8 grid, for the geometric stage's query windows


_DCT: Any = None


def _dct_matrix() -> Any:
    global _DCT
    if _DCT is None:
        import numpy as np

        x = np.arange(_GRID)
        u = np.arange(8)
        _DCT = np.cos(np.pi * (2 * x[None, :] + 1) * u[:, None] / (2 * _GRID)).astype(np.float32)
    return _DCT


def perceptual(grids: Any) -> list[tuple[int, int, bytes]]:
    """``(phash, mirrored phash, thumb)`` for a stack of 32x32 float grids."""
    import numpy as np

    if len(grids) == 0:
        return []
    dct = _dct_matrix()
    grids = np.asarray(grids, dtype=np.float32)
    n = len(grids)
    # Separable transform of the whole stack in two einsums (rows, then columns).
    # Plain einsum loops, not BLAS: per-image matmul calls cost more than the maths,
    # and BLAS threads in worker processes would compete with the other workers.
    rows = np.einsum("nyx,ux->nyu", grids, dct)  # [n, y, u]
    coefficients = np.einsum("vy,nyu->nvu", dct, rows)  # [n, v, u]
    # Mirroring x -> 31 - x multiplies horizontal frequency u by (-1)**u: the mirrored
    # thumbnail's coefficients without a second transform.
    mirrored = coefficients * np.where(np.arange(8) % 2, -1.0, 1.0).astype(np.float32)
    flat = np.ptp(grids.reshape(n, -1), axis=1) <= 1e-3 * (np.abs(grids).reshape(n, -1).max(axis=1) + 1e-12)
    hashes = []
    for values in (coefficients.reshape(n, 64), mirrored.reshape(n, 64)):
        # The median of 64 values is the mean of the 32nd and 33rd smallest.
        middle = np.partition(values, (31, 32), axis=1)[:, 31:33].mean(axis=1, keepdims=True)
        packed = np.packbits(values > middle, axis=1).view(">u8").ravel()
        # A flat image has no structure: its bits would be rounding noise, so every
        # flat image gets hash 0 (and an all-zero thumb): they match each other.
        hashes.append(np.where(flat, 0, packed).astype(np.uint64))
    blocks = grids.reshape(n, _THUMB, _GRID // _THUMB, _THUMB, _GRID // _THUMB).mean(axis=(2, 4))
    low = blocks.min(axis=(1, 2), keepdims=True)
    span = blocks.max(axis=(1, 2), keepdims=True) - low
    thumbs = np.rint((blocks - low) * (255.0 / np.where(span > 0, span, 1))).astype(np.uint8)
    direct, flipped = hashes[0].tolist(), hashes[1].tolist()
    return [(direct[i], flipped[i], thumbs[i].tobytes()) for i in range(n)]


def _grid_of_image(image: Any) -> Any:
    """The 64x64 float grayscale grid of a PIL image of any mode and size."""
    import numpy as np
    from PIL import Image

    if image.mode not in ("L", "F"):
        image = image.convert("L")
    if image.size == (_FINE, _FINE):  # e.g. a 256 px JPEG decoded at 1/4: nothing to resample
        return np.asarray(image, dtype=np.float32).reshape(_FINE, _FINE)
    # Float mode keeps the box filter's averages unrounded.
    grid = image.convert("F").resize((_FINE, _FINE), Image.Resampling.BOX)
    return np.asarray(grid, dtype=np.float32).reshape(_FINE, _FINE)


def coarse(fine: Any) -> Any:
    """The 32x32 grid the perceptual hash runs on: 2x2 block means of the 64x64 grid."""
    return fine.reshape(_GRID, 2, _GRID, 2).mean(axis=(1, 3))


_SIMPLEJPEG: Any = False  # not looked up yet


def _simplejpeg() -> Any:
    """libjpeg-turbo through simplejpeg, or None where it is not installed."""
    global _SIMPLEJPEG
    if _SIMPLEJPEG is False:
        try:
            import simplejpeg

            _SIMPLEJPEG = simplejpeg
        except ImportError:
            _SIMPLEJPEG = None
    return _SIMPLEJPEG


def _grid_of_pixels(pixels: Any) -> Any:
    """The 64x64 float grid of an 8-bit grayscale array (same recipe as for PIL images)."""
    import numpy as np
    from PIL import Image

    if pixels.shape == (_FINE, _FINE):
        return pixels.astype(np.float32)
    return _grid_of_image(Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)))


def _decode_grid(data: bytes) -> Any:
    # Most training images are JPEGs. simplejpeg scales in the DCT domain exactly as
    # PIL's draft mode does (same pixels) but skips PIL's Python-level marker parsing,
    # which was a third of the per-file cost. Anything it rejects (CMYK, truncated,
    # not a JPEG) takes the PIL path, which also decides what counts as corrupt.
    decoder = _simplejpeg()
    if decoder is not None and data[:3] == b"\xff\xd8\xff":
        try:
            pixels = decoder.decode_jpeg(data, colorspace="GRAY", min_height=_FINE, min_width=_FINE)
        except (ValueError, RuntimeError, MemoryError):
            pass
        else:
            return _grid_of_pixels(pixels[..., 0])
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.format == "JPEG":
            image.draft("L", (_FINE, _FINE))
        image.load()  # raises on truncated or corrupt data
        return _grid_of_image(image)


def _read_and_decode(path: str) -> tuple[int, int, bytes, Any, str | None]:
    import xxhash

    try:
        with open(path, "rb") as handle:
            # fstat of the open file: the size/mtime recorded belong to the bytes read.
            stat = os.fstat(handle.fileno())
            if stat.st_size > _STREAM_ABOVE:
                hasher = xxhash.xxh3_128()
                for block in iter(lambda: handle.read(1 << 20), b""):
                    hasher.update(block)
                return (
                    stat.st_size,
                    stat.st_mtime_ns,
                    hasher.digest(),
                    None,
                    f"not decoded: {stat.st_size} bytes is too large for an image",
                )
            data = handle.read()
    except OSError as exc:
        return -1, -1, b"", None, f"cannot read: {exc.strerror or exc}"
    return _digest_and_decode(data, stat.st_size, stat.st_mtime_ns)


def _digest_and_decode(data: bytes, size: int, version: int) -> tuple[int, int, bytes, Any, str | None]:
    import xxhash

    digest = xxhash.xxh3_128_digest(data)
    if not data:
        return size, version, digest, None, "empty file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. DecompressionBombWarning, EXIF warnings
            grid = _decode_grid(data)
    except Exception as exc:
        return size, version, digest, None, _describe(exc)
    return size, version, digest, grid, None


def hash_files(paths: Sequence[str], keep: Sequence[bool] = ()) -> list[FileHash]:
    """Worker entry point: hash a chunk of files (one task per chunk keeps IPC cheap).

    ``keep[i]`` asks for file ``i``'s 64x64 grid too (4 KB): the geometric stage searches
    the evaluation splits' samples and would otherwise read them a second time.
    """
    return _finish([_read_and_decode(path) for path in paths], keep)


def hash_urls(
    urls: Sequence[str],
    expected: Sequence[tuple[int, int | None]],
    storage_options: dict[str, Any],
    keep: Sequence[bool] = (),
) -> list[FileHash]:
    """Worker entry point for files behind fsspec URLs (all of one store and options).

    ``expected`` holds each file's ``(size, version token)`` from the listing. The
    bodies are fetched with one ``fs.cat`` call, which async stores (s3fs, gcsfs)
    serve concurrently. The listed token is returned only when the bytes read have
    the listed size: otherwise the object changed since it was listed, and a token
    of -1 keeps the result out of the cache.
    """
    decoded = []
    for body, (size, token) in zip(_fetch(urls, storage_options), expected, strict=False):
        if isinstance(body, BaseException):
            reason = (
                "no such file" if isinstance(body, FileNotFoundError) else f"{type(body).__name__}: {body}"
            )
            decoded.append((-1, -1, b"", None, f"cannot read: {reason}"))
            continue
        data = bytes(body)
        version = token if token is not None and len(data) == size else -1
        decoded.append(_digest_and_decode(data, len(data), version))
    return _finish(decoded, keep)


def _fetch(urls: Sequence[str], storage_options: dict[str, Any]) -> list[Any]:
    """The body of each URL (all of one store and options), or the exception reading it raised.

    One ``fs.cat`` call, which async stores (s3fs, gcsfs) serve concurrently.
    """
    from auditor.kit import filesystem

    if not urls:
        return []
    fs, _ = filesystem(urls[0], storage_options)
    try:
        bodies: dict[str, Any] = fs.cat(list(urls), on_error="return", **_whole_object_reads(fs))
    except Exception as exc:
        bodies = {url: exc for url in urls}
    out = []
    for url in urls:
        body = bodies.get(url)
        if body is None:  # stores key results by their stripped path
            body = bodies.get(fs._strip_protocol(url), FileNotFoundError(url))
        out.append(body)
    return out


def _whole_object_reads(fs: Any) -> dict[str, Any]:
    """``cat`` options that fetch each object with one GET.

    s3fs splits a read into concurrent ranges when ``max_concurrency > 1`` (its
    default is 10), which first costs a HEAD per object to learn its size: with
    images of tens of kilobytes that doubles the requests and gains nothing.
    """
    import inspect

    try:
        parameters = inspect.signature(fs._cat_file).parameters
    except (AttributeError, TypeError, ValueError):
        return {}
    return {"max_concurrency": 1} if "max_concurrency" in parameters else {}


def _finish(
    decoded: list[tuple[int, int, bytes, Any, str | None]], keep: Sequence[bool] = ()
) -> list[FileHash]:
    import numpy as np

    from auditor_plugins.split_leakage.windows import anchor_codes

    good = [i for i, item in enumerate(decoded) if item[3] is not None]
    fine = np.stack([decoded[i][3] for i in good]) if good else np.zeros((0, _FINE, _FINE), np.float32)
    coarse_grids = fine.reshape(len(good), _GRID, 2, _GRID, 2).mean(axis=(2, 4))
    perceptual_hashes = dict(zip(good, perceptual(coarse_grids), strict=False))
    anchors = dict(zip(good, anchor_codes(fine), strict=False))
    results = []
    for i, (size, mtime_ns, digest, grid, error) in enumerate(decoded):
        phash, mirror, thumb = perceptual_hashes.get(i, (None, None, None))
        kept = _grid_bytes(grid) if grid is not None and i < len(keep) and keep[i] else None
        results.append(FileHash(size, mtime_ns, digest, phash, mirror, thumb, error, anchors.get(i), kept))
    return results


def _grid_bytes(grid: Any) -> bytes:
    import numpy as np

    return np.clip(np.rint(grid), 0, 255).astype(np.uint8).tobytes()


def _read_grid(path: str) -> Any:
    """The 64x64 grid of a file, without hashing its bytes (None when unreadable)."""
    from auditor.kit import open_regular

    try:
        # Read again after hashing: a FIFO swapped in since must not block the worker.
        with open_regular(path) as handle:
            if os.fstat(handle.fileno()).st_size > _STREAM_ABOVE:
                return None
            data = handle.read()
    except OSError:
        return None
    return _grid_of_data(data)


def _grid_of_data(data: bytes) -> Any:
    """The 64x64 grid of an image's bytes, or None when they do not decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _decode_grid(data)
    except Exception:
        return None


def grids_of_files(paths: Sequence[str]) -> list[bytes | None]:
    """Worker entry point: the 64x64 uint8 grid of each file (None when unreadable)."""
    out: list[bytes | None] = []
    for path in paths:
        grid = _read_grid(path)
        out.append(None if grid is None else _grid_bytes(grid))
    return out


def grids_of_urls(urls: Sequence[str], storage_options: dict[str, Any]) -> list[bytes | None]:
    """Worker entry point: the 64x64 uint8 grids of files behind fsspec URLs."""
    out: list[bytes | None] = []
    for body in _fetch(urls, storage_options):
        grid = None if isinstance(body, BaseException) else _grid_of_data(bytes(body))
        out.append(None if grid is None else _grid_bytes(grid))
    return out


def hash_file(path: str) -> FileHash:
    return hash_files([path])[0]


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip()
    if name == "UnidentifiedImageError":
        return "not an image PIL can identify"
    return f"cannot decode: {name}: {text}" if text else f"cannot decode: {name}"


# -- in-memory samples (callable datasets) ---------------------------------------------


def hash_sample(value: Any) -> SampleHash:
    """Hashes of a decoded sample: tensor, numpy array, PIL image, bytes or str."""
    import xxhash

    try:
        from PIL import Image

        grid = None
        if isinstance(value, Image.Image):
            header = f"pil:{value.mode}:{value.size}".encode()
            digest = xxhash.xxh3_128_digest(header + value.tobytes())
            grid = _grid_of_image(value)
        elif (array := _as_array(value)) is not None:
            import numpy as np

            array = np.ascontiguousarray(array)
            header = f"array:{array.dtype.str}:{array.shape}".encode()
            digest = xxhash.xxh3_128_digest(header + array.tobytes())
            grid = _array_grid(array)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            digest = xxhash.xxh3_128_digest(b"bytes:" + bytes(value))
        elif isinstance(value, str):
            digest = xxhash.xxh3_128_digest(b"str:" + value.encode())
        else:
            return SampleHash(b"", None, None, None, f"cannot hash a sample of type {type(value).__name__}")
        if grid is None:
            return SampleHash(digest, None, None, None, None)
        import numpy as np

        from auditor_plugins.split_leakage.windows import anchor_codes

        phash, mirror, thumb = perceptual([coarse(grid)])[0]
        pixels = np.clip(np.rint(_byte_range(grid)), 0, 255).astype(np.uint8).tobytes()
        return SampleHash(digest, phash, mirror, thumb, None, anchor_codes([grid])[0], pixels)
    except Exception as exc:
        return SampleHash(b"", None, None, None, f"cannot hash sample: {type(exc).__name__}: {exc}")


def _byte_range(grid: Any) -> Any:
    """A grid of any value range (normalised tensors) stretched to 0..255 for storage."""
    low, high = float(grid.min()), float(grid.max())
    if low >= 0.0 and high <= 255.0 and high > 1.5:
        return grid
    return (grid - low) * (255.0 / (high - low)) if high > low else grid * 0


def _as_array(value: Any) -> Any:
    """A numpy view of a tensor or ndarray, without importing torch."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()  # a torch tensor
    return None


def _array_grid(array: Any) -> Any:
    """The 64x64 grayscale grid of an image-shaped array, or None for other shapes.

    Accepts HxW, CxHxW (C in 1, 3, 4: torch layout) and HxWxC (numpy/PIL layout) of
    any numeric dtype; normalised or 0..255 values give the same hash because only
    the ordering of DCT coefficients (and the correlation of thumbs) matters.
    """
    import numpy as np
    from PIL import Image

    if array.dtype.kind not in "biuf" or array.ndim not in (2, 3):
        return None
    data = array.astype(np.float32, copy=False)
    if data.ndim == 3:
        if data.shape[0] in (1, 3, 4) and data.shape[-1] not in (1, 3, 4):
            data = data[: min(3, data.shape[0])].mean(axis=0)
        elif data.shape[-1] in (1, 3, 4):
            data = data[..., : min(3, data.shape[-1])].mean(axis=-1)
        else:
            return None
    if data.shape[0] < 2 or data.shape[1] < 2 or not np.isfinite(data).all():
        return None
    return _grid_of_image(Image.fromarray(np.ascontiguousarray(data, dtype=np.float32)))
