"""Window codes for copies a whole-image hash cannot see: crops and small rotations.

Each sample stores *anchor codes*: 25 windows of 60% of its side, centred on a 5x5 grid
of offsets 0.1 apart, so that one anchor lies wholly inside any crop keeping 70% of
each side, wherever the crop sits. Each evaluation sample is searched through *query
windows*: its own windows of side ``0.6 / s`` for every crop scale ``s`` on a grid
(0.64-0.94), at positions at most 8% of the window apart, plus centred windows of the
sample turned back by 4 and 8 degrees either way (a rotated copy is cropped around its
centre to hide the corners). A crop of a training picture then has a query window
that shows the same content as one of its anchors, within a few percent.

A window's code is the 8x8 block of low DCT frequencies of the window resampled to
32x32 (the phash recipe), taken from a 64x64 grayscale grid. Both sides come from
separable matrices: resampling a window and taking its DCT is one ``8 x 64`` matrix
per axis, so all windows of one image cost two matrix products. The 63 AC
coefficients give two things: their signs (a 63-bit hash, searched by exact 16-bit
chunks: among the near-aligned query windows one keeps a chunk intact), and the
coefficients themselves, whose cosine ranks the candidates.

Measured on benchmarks/geometric_leakage.py's pictures: a window moved by 2% of its
side already flips ~8 of 64 phash bits, so the grids are dense. Anchors of 40% of the
side (which every 70% crop contains at the centre) were tried first: with 20,000
training pictures their codes were too alike (an unrelated window matched at cosine
0.98 as often as the true one); windows of 60% carry more of the picture and ranked
the true training picture first for 59 of 60 planted crops.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = [
    "ANCHORS",
    "GRID",
    "QUERY_GEOMETRY",
    "Anchors",
    "anchor_codes",
    "query_windows",
]

#: Side of the grayscale grid windows are cut from.
GRID = 64
#: Side of the anchor windows, as a fraction of the image side.
ANCHOR_SIDE = 0.6
#: Anchor positions (offsets of the window's centre from the image's): a step of 0.1
#: puts one anchor wholly inside any crop keeping 70% of each side.
_ANCHOR_OFFSETS = (-0.2, -0.1, 0.0, 0.1, 0.2)
#: Crop scales (kept fraction of each side) the query grid covers, and its angles (degrees).
CROP_SCALES = (0.64, 0.70, 0.76, 0.82, 0.88, 0.94)
ANGLES = (-8.0, -4.0, 4.0, 8.0)
_POSITION_STEP = 0.08  # of the window side
_CODE_BYTES = 64  # one int8 per DCT coefficient (the DC one is stored as 0)


def _box_matrix(offset: float, width: float, n: int = GRID, out: int = 32) -> Any:
    """``out x n`` matrix averaging the window ``[offset, offset + width)`` (fractions of ``n``)."""
    import numpy as np

    edges = (offset + width * np.arange(out + 1) / out) * n
    pixels = np.arange(n)
    low = np.maximum(edges[:-1, None], pixels[None, :])
    high = np.minimum(edges[1:, None], pixels[None, :] + 1)
    weights = np.clip(high - low, 0, None)
    return (weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)).astype(np.float32)


@cache
def _dct() -> Any:
    import numpy as np

    x, u = np.arange(32), np.arange(8)
    return np.cos(np.pi * (2 * x[None, :] + 1) * u[:, None] / 64).astype(np.float32)


def _window_rows(geometry: tuple[tuple[float, float], ...]) -> Any:
    """``[g, 8, GRID]``: DCT of the box-resampled window, per 1-D window ``(offset, width)``."""
    import numpy as np

    dct = _dct()
    return np.stack([dct @ _box_matrix(offset, width) for offset, width in geometry])


@cache
def _anchor_rows() -> Any:
    start = 0.5 - ANCHOR_SIDE / 2
    return _window_rows(tuple((start + d, ANCHOR_SIDE) for d in _ANCHOR_OFFSETS))


#: Anchor ``k`` is the middle window moved by ``ANCHORS[k]`` (dy, dx): 25 windows.
ANCHORS = tuple((dy, dx) for dy in _ANCHOR_OFFSETS for dx in _ANCHOR_OFFSETS)


def _coefficients(grids: Any, rows_y: Any, rows_x: Any) -> Any:
    """``[n, gy, gx, 64]`` DCT blocks of every (y-window, x-window) combination."""
    import numpy as np

    n = len(grids)
    gy, gx = len(rows_y), len(rows_x)
    # A stack of small products: numpy hands each to BLAS's small-matrix path, which
    # starts no threads (one large product did, and in hashing workers the threads of
    # two processes fought over two cores: three times slower).
    left = np.matmul(rows_y.reshape(1, gy * 8, GRID), grids)  # [n, gy*8, GRID]
    block = np.matmul(left, rows_x.reshape(gx * 8, GRID).T[None])  # [n, gy*8, gx*8]
    return block.reshape(n, gy, 8, gx, 8).transpose(0, 1, 3, 2, 4).reshape(n, gy, gx, 64)


def _quantise(coefficients: Any) -> Any:
    """int8 codes of the AC coefficients, each window scaled to its largest magnitude."""
    import numpy as np

    ac = coefficients.copy()
    ac[..., 0] = 0
    peak = np.abs(ac).max(axis=-1, keepdims=True)
    return np.rint(ac * (127.0 / np.where(peak > 0, peak, 1))).astype(np.int8)


def anchor_codes(grids: Any) -> list[bytes]:
    """Anchor codes of each 64x64 grid: 25 windows of 64 int8 coefficients (1,600 bytes)."""
    import numpy as np

    if len(grids) == 0:
        return []
    rows = _anchor_rows()
    codes = _quantise(_coefficients(np.asarray(grids, dtype=np.float32), rows, rows))
    flat = codes.reshape(len(grids), -1)
    return [flat[i].tobytes() for i in range(len(grids))]


def _sign_hashes(codes: Any) -> Any:
    """63-bit hashes (bit set where an AC coefficient is positive) of ``[..., 64]`` codes."""
    import numpy as np

    positive = codes > 0  # the DC slot is 0, so its bit is always clear
    return np.packbits(positive, axis=-1).view(">u8")[..., 0].astype(np.uint64)


def _unit(codes: Any) -> Any:
    """Rows scaled to unit length (float32); all-zero rows stay zero."""
    import numpy as np

    values = codes.astype(np.float32, copy=codes.dtype != np.float32)
    norms = np.sqrt(np.einsum("...i,...i->...", values, values))[..., None]
    values /= np.where(norms > 0, norms, 1)
    return values


class Anchors:
    """Every sample's stored anchor codes, as int8 (2 KB a sample: no float copy of them all).

    ``cosine`` turns the few codes a search touches into unit vectors on the fly.
    """

    def __init__(self, blobs: list[bytes | None]) -> None:
        import numpy as np

        n, count = len(blobs), len(ANCHORS)
        size = count * _CODE_BYTES
        self.has = np.asarray([blob is not None and len(blob) == size for blob in blobs], dtype=bool)
        codes = np.zeros((n, count, _CODE_BYTES), dtype=np.int8)
        for i in np.nonzero(self.has)[0].tolist():
            codes[i] = np.frombuffer(blobs[i], dtype=np.int8).reshape(count, _CODE_BYTES)  # type: ignore[arg-type]
        self.codes = codes
        self.hashes = _sign_hashes(codes)  # [n, count] uint64
        squares = np.einsum("nkc,nkc->nk", codes, codes, dtype=np.int32).astype(np.float32)
        self.norms = np.sqrt(squares)

    def cosine(self, units: Any, samples: Any, anchors: Any) -> Any:
        """Cosine of unit query vectors ``units`` [m, 64] with anchor ``anchors`` of ``samples``."""
        import numpy as np

        codes = self.codes[samples, anchors].astype(np.float32)
        dots = np.einsum("ij,ij->i", units, codes)
        norms = self.norms[samples, anchors]
        return np.where(norms > 0, dots / np.where(norms > 0, norms, 1), 0.0)


def _query_layout() -> tuple[tuple[tuple[float, float], ...], list[tuple[list[int], float]]]:
    """1-D windows of the query grid, grouped by window side: ``(geometry, [(indices, side)])``."""
    import numpy as np

    geometry: list[tuple[float, float]] = []
    groups: list[tuple[list[int], float]] = []
    for scale in CROP_SCALES:
        side = ANCHOR_SIDE / scale
        room = 1.0 - side
        # Evenly spaced positions from one edge to the other, at most a step apart.
        count = int(np.ceil(room / (_POSITION_STEP * side) - 1e-9)) + 1 if room > 1e-9 else 1
        offsets = np.linspace(0.0, room, count) if count > 1 else np.zeros(1)
        first = len(geometry)
        geometry.extend((float(o), side) for o in offsets)
        groups.append((list(range(first, len(geometry))), side))
    return tuple(geometry), groups


@cache
def _query_tables() -> tuple[Any, list[tuple[list[int], float]], Any]:
    geometry, groups = _query_layout()
    centred = tuple((0.5 - ANCHOR_SIDE / scale / 2, ANCHOR_SIDE / scale) for scale in CROP_SCALES)
    return _window_rows(geometry), groups, _window_rows(centred)


def _query_geometry() -> Any:
    """``[q, 4]`` float32 rows ``(y offset, x offset, side, angle)``, in query-window order."""
    import numpy as np

    geometry, groups = _query_layout()
    rows = []
    for indices, side in groups:
        for iy in indices:
            for ix in indices:
                rows.append((geometry[iy][0], geometry[ix][0], side, 0.0))
    for angle in ANGLES:
        for scale in CROP_SCALES:
            side = ANCHOR_SIDE / scale
            rows.append((0.5 - side / 2, 0.5 - side / 2, side, angle))
    return np.asarray(rows, dtype=np.float32)


QUERY_GEOMETRY = _query_geometry()


def _turned(grids: Any, angle: float) -> Any:
    """Each grid turned by ``angle`` degrees (counter-clockwise) about its centre, bilinear."""
    import numpy as np
    from PIL import Image

    out = np.empty_like(grids)
    for i, grid in enumerate(grids):
        image = Image.fromarray(grid, mode="F")
        out[i] = np.asarray(image.rotate(angle, resample=Image.Resampling.BILINEAR), dtype=np.float32)
    return out


def query_windows(grids: Any) -> tuple[Any, Any]:
    """``(hashes [n, q], unit coefficients [n, q, 64])`` of every query window of each grid.

    Window ``j`` of every grid has the geometry ``QUERY_GEOMETRY[j]``.
    """
    import numpy as np

    grids = np.asarray(grids, dtype=np.float32)
    rows, groups, centred = _query_tables()
    n = len(grids)
    parts = []
    for indices, _side in groups:
        block = rows[indices]
        parts.append(_coefficients(grids, block, block).reshape(n, -1, 64))
    for angle in ANGLES:
        turned = _turned(grids, angle)
        # Centred square windows only: the y and x windows of one scale pair up.
        every = _coefficients(turned, centred, centred)  # [n, s, s, 64]
        diagonal = np.arange(len(CROP_SCALES))
        parts.append(every[:, diagonal, diagonal])
    coefficients = np.concatenate(parts, axis=1)
    coefficients[..., 0] = 0  # the DC term is brightness, not structure
    return _sign_hashes(coefficients), _unit(coefficients)
