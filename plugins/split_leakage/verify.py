"""Pixel-level check of a geometric candidate pair before it is reported.

A candidate says "evaluation image ``b`` shows the region of training image ``a``
centred at ``(cx, cy)``, ``side`` wide, turned by ``angle``" (fractions of ``a``'s
sides). The window search that proposed it is accurate to a few percent of scale and
position and a couple of degrees, so the check searches around it:

* for each angle in ``angle + (-2, 0, 2)`` and each side in ``side x (0.88 .. 1.12)``, it
  renders that view of ``a`` with a margin of a quarter of the side on every edge;
* it finds the best position by normalised cross-correlation of band-passed images
  (a difference of Gaussians: it keeps edges, drops the smooth gradients and blobs
  that unrelated pictures share) over every shift at once, with FFTs;
* the best view is scored once more at 64 px.

A pair is reported when that score reaches ``MIN_SCORE``; a view with too little
texture to judge scores nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = ["MIN_SCORE", "Match", "check", "colour_agreement", "prepare"]

#: Smallest band-pass correlation of a verified pair (benchmarks/geometric_leakage.py).
MIN_SCORE = 0.8
#: Smallest brightness correlation of a verified pair.
MIN_INTENSITY = 0.8
_COARSE = 32  # side of the template in the position search
_TRIM = 6  # border pixels (of _FINE) left out of the final score
#: Bands of the two polishing passes (coarse pixels): the search's, then edges only
#: (half a pixel and one of the 64 px view), which the final score uses.
_MID_SIGMAS = (0.8, 2.5)
_EDGE_SIGMAS = (0.25, 0.6)
_FINE = 64  # side of the final score
_MARGIN = 0.2  # of the side, searched on every edge
_SCALES = (0.9, 1.0, 1.1)
_ANGLES = (-2.0, 0.0, 2.0)
#: A first look (the proposed angle, three sides) below this is no match: most candidates
#: are unrelated pictures, and they are rejected here at a third of the cost.
_HOPELESS = 0.35
#: Band-pass energy (0..255 scale) below which a view is too flat to judge.
_MIN_TEXTURE = 0.8
#: Views scoring this much at 64 px are polished (the others cannot reach MIN_SCORE).
_POLISHED_FROM = 0.6


@dataclass(frozen=True)
class Match:
    """Where ``b`` sits in ``a`` (fractions of ``a``): centre, side, angle; and the score."""

    cx: float
    cy: float
    side: float
    angle: float  # degrees: a's region turned by this (counter-clockwise) looks like b
    score: float = 0.0
    #: Correlation of the two views' brightness (blurred): edges alone can line up between
    #: unrelated simple pictures (a few discs on a flat ground), their light and dark areas cannot.
    intensity: float = 0.0
    energy: float = 0.0  # b's band energy (0..255 scale): how much structure the score rests on
    rejected: bool = False  # the caller's gate (colour) turned it down

    @property
    def verified(self) -> bool:
        return not self.rejected and self.score >= MIN_SCORE and self.intensity >= MIN_INTENSITY

    @property
    def region(self) -> tuple[float, float, float, float]:
        half = self.side / 2
        return (self.cx - half, self.cy - half, self.cx + half, self.cy + half)

    @property
    def area(self) -> float:
        """Part of ``a``'s area that ``b`` shows (clipped to the image)."""
        x0, y0, x1, y1 = self.region
        return max(0.0, min(1.0, x1) - max(0.0, x0)) * max(0.0, min(1.0, y1) - max(0.0, y0))


#: Pixels of mirrored border around a training image: views that reach past its edge
#: (a wide search margin, a turned view) see mirrored content, not a black border whose
#: band-pass edges would swamp the picture's own.
_PAD = 48


def prepare(a_image: Any) -> Any:
    """A training image with its mirrored border, as :func:`check` takes it.

    A PIL "F" image (128 px) gives one "F" image; an RGB image gives a list of three
    (one per channel, for :func:`colour_agreement`).
    """
    import numpy as np
    from PIL import Image

    if a_image.mode == "RGB":
        return [prepare(channel.convert("F")) for channel in a_image.split()]
    pixels = np.asarray(a_image, dtype=np.float32)
    return Image.fromarray(np.pad(pixels, _PAD, mode="symmetric"), mode="F")


@cache
def _blur_matrix(n: int, sigma: float) -> Any:
    import numpy as np

    x = np.arange(n)
    weights = np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * sigma * sigma))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


@cache
def _plane_basis(n: int) -> tuple[Any, Any]:
    """Least-squares fit of ``a + b*x + c*y`` on an n x n grid: (design matrix, its pseudo-inverse)."""
    import numpy as np

    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / max(n - 1, 1)
    design = np.stack([np.ones(n * n, dtype=np.float32), x.ravel(), y.ravel()], axis=1)
    return design, np.linalg.pinv(design).astype(np.float32)


def _band(pixels: Any, unit: float, sigmas: tuple[float, float] = (0.8, 2.5)) -> Any:
    """Difference of Gaussians (sigma 0.8 and 2.5 px of a ``_COARSE`` px view, ``unit`` px each).

    The best-fitting plane is removed first: the blurs are renormalised at the borders,
    which turns a brightness ramp -- the commonest content of unrelated pictures -- into
    band-pass ridges along the edges that correlate between any two ramps.
    """
    n = pixels.shape[0]
    design, inverse = _plane_basis(n)
    flat = pixels.reshape(-1)
    pixels = (flat - design @ (inverse @ flat)).reshape(n, n)
    fine, wide = _blur_matrix(n, sigmas[0] * unit), _blur_matrix(n, sigmas[1] * unit)
    return fine @ pixels @ fine.T - wide @ pixels @ wide.T


def _view(a_image: Any, cx: float, cy: float, side: float, angle: float, size: int, extent: float) -> Any:
    """``a`` around ``(cx, cy)``: ``extent`` x ``side`` wide, turned by ``angle``, at ``size`` px."""
    import numpy as np
    from PIL import Image

    width, height = a_image.size[0] - 2 * _PAD, a_image.size[1] - 2 * _PAD
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    step = side * extent / size  # a-fractions per output pixel
    # Output pixel (x, y) -> a pixel: centre + rotation of the offset from the view's centre.
    # PIL's rotate(angle) turns counter-clockwise on screen (y down), which is this matrix.
    ax, ay = step * width, step * height
    half = size / 2
    coefficients = (
        ax * cos,
        ax * sin,
        _PAD + cx * width - ax * (cos * half + sin * half),
        -ay * sin,
        ay * cos,
        _PAD + cy * height - ay * (-sin * half + cos * half),
    )
    view = a_image.transform((size, size), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
    return np.asarray(view, dtype=np.float32)


def _ncc_map(canvas: Any, template: Any) -> Any:
    """Normalised cross-correlation of a zero-mean unit template at every valid shift in ``canvas``."""
    import numpy as np

    k = template.shape[0]
    # Every k x k patch as a row: a few hundred shifts of a 32 px template is one small
    # matrix product, cheaper than FFTs at this size.
    patches = np.lib.stride_tricks.sliding_window_view(canvas, (k, k))
    shape = patches.shape[:2]
    numerator = patches.reshape(-1, k * k) @ template.reshape(-1)
    # Each patch's sum and sum of squares from integral images (a zero row and column first).
    n = canvas.shape[0]
    integral = np.zeros((n + 1, n + 1), dtype=np.float64)
    squares = np.zeros((n + 1, n + 1), dtype=np.float64)
    integral[1:, 1:] = canvas.cumsum(0).cumsum(1)
    squares[1:, 1:] = (canvas * canvas).cumsum(0).cumsum(1)

    def window_sum(table: Any) -> Any:
        return (table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]).reshape(-1)

    total = window_sum(integral)
    variance = np.maximum(window_sum(squares) - total * total / (k * k), 1e-6)
    return (numerator / np.sqrt(variance)).reshape(shape)


def _normalised(pixels: Any) -> tuple[Any, float]:
    import numpy as np

    centred = pixels - pixels.mean()
    energy = float(np.sqrt((centred * centred).mean()))
    return centred / (energy * math.sqrt(centred.size) if energy > 0 else 1.0), energy


def _score(
    a_image: Any, b_grid: Any, match: Match, sigmas: tuple[float, float] = (0.25, 0.6)
) -> tuple[float, float]:
    """(score, b's edge energy) of a view: correlation of the two pictures' edges.

    The band is narrow (edges, not the curvature of soft blobs: any two blobs of similar
    size line up once position, size and angle are free). ``a`` is rendered with context
    around the view and band-passed before that border is cut, so its band is the
    picture's own; ``b`` has no context, so a border of its band is left out.
    """
    import numpy as np

    size = _FINE + 2 * _TRIM
    view = _view(a_image, match.cx, match.cy, match.side * size / _FINE, match.angle, size, 1.0)
    inner = slice(2 * _TRIM, -2 * _TRIM)  # the view's own border, then the trimmed one
    a_band = _band(view, _FINE / _COARSE, sigmas)[inner, inner]
    b_band = _band(b_grid, _FINE / _COARSE, sigmas)[_TRIM:-_TRIM, _TRIM:-_TRIM]
    a_unit, a_energy = _normalised(a_band)
    b_unit, b_energy = _normalised(b_band)
    if a_energy < _MIN_TEXTURE or b_energy < _MIN_TEXTURE:
        return -1.0, b_energy
    return float(np.sum(a_unit * b_unit)), b_energy


def _intensity(a_image: Any, b_grid: Any, match: Match) -> float:
    import numpy as np

    blur = _blur_matrix(_FINE, 2.0)
    view = _view(a_image, match.cx, match.cy, match.side, match.angle, _FINE, 1.0)
    a_unit, a_energy = _normalised(blur @ view @ blur.T)
    b_unit, b_energy = _normalised(blur @ b_grid @ blur.T)
    if a_energy <= 0 or b_energy <= 0:
        return -1.0
    return float(np.sum(a_unit * b_unit))


def _coarse(b_grid: Any) -> Any:
    n = b_grid.shape[0]
    step = n // _COARSE
    return b_grid.reshape(_COARSE, step, _COARSE, step).mean(axis=(1, 3))


def check(a_image: Any, b_grid: Any, start: Match, gate: Callable[[Match], bool] | None = None) -> Match:
    """The best view of ``a_image`` (from :func:`prepare`) near ``start`` for ``b_grid`` (64x64 float)."""
    template, energy = _normalised(_band(_coarse(b_grid), 1.0))
    if energy < _MIN_TEXTURE:
        return Match(start.cx, start.cy, start.side, start.angle, -1.0)
    extent = 1 + 2 * _MARGIN
    canvas_size = round(_COARSE * extent)
    best = (-2.0, start)

    def look(angle: float, side: float) -> None:
        nonlocal best
        canvas = _band(_view(a_image, start.cx, start.cy, side, angle, canvas_size, extent), 1.0)
        scores = _ncc_map(canvas, template)
        row, column = divmod(int(scores.argmax()), scores.shape[1])
        value = float(scores[row, column])
        if value > best[0]:
            # The template's top-left sits at (column, row) of the canvas; convert to a's centre.
            shift_x = (column + _COARSE / 2 - canvas_size / 2) * side * extent / canvas_size
            shift_y = (row + _COARSE / 2 - canvas_size / 2) * side * extent / canvas_size
            theta = math.radians(angle)
            cx = start.cx + shift_x * math.cos(theta) + shift_y * math.sin(theta)
            cy = start.cy - shift_x * math.sin(theta) + shift_y * math.cos(theta)
            best = (value, Match(cx, cy, side, angle))

    look(start.angle, start.side)
    if best[0] < _HOPELESS / 2:
        # Nothing of b anywhere in the margin: unrelated (most candidates end here).
        return Match(start.cx, start.cy, start.side, start.angle, best[0])
    for factor in _SCALES:
        if factor != 1.0:
            look(start.angle, start.side * factor)
    if best[0] < _HOPELESS:
        return Match(start.cx, start.cy, start.side, start.angle, best[0])
    # Around the best side: the other angles, then finer sides.
    side = best[1].side
    for d_angle in _ANGLES:
        if d_angle:
            look(start.angle + d_angle, side)
    angle = best[1].angle
    for factor in (0.95, 1.05):
        look(angle, side * factor)
    # The proposed view itself competes with the search's: on pictures with little
    # structure the coarse correlation can peak elsewhere in the margin.
    found, score = max(
        ((view, _score(a_image, b_grid, view, _MID_SIGMAS)[0]) for view in (best[1], start)),
        key=lambda item: item[1],
    )
    if score < _POLISHED_FROM:
        return Match(found.cx, found.cy, found.side, found.angle, score)
    if gate is not None and not gate(found):
        # A cheap test the caller has (colour) says no: polishing would be wasted.
        return Match(found.cx, found.cy, found.side, found.angle, score, rejected=True)
    best = _polish(a_image, b_grid, found, _MID_SIGMAS, (0.01, 0.01, 0.02, 1.0))
    score, energy = _score(a_image, b_grid, best, _MID_SIGMAS)
    return Match(best.cx, best.cy, best.side, best.angle, score, _intensity(a_image, b_grid, best), energy)


def _polish(
    a_image: Any, b_grid: Any, match: Match, sigmas: tuple[float, float], steps: tuple[float, ...]
) -> Match:
    """Coordinate ascent of the 64 px score in one band: centre, side (relative) and angle."""
    params = [match.cx, match.cy, match.side, match.angle]
    best = _score(a_image, b_grid, match, sigmas)[0]
    # A few sweeps at the search's resolution, then one at half of it: the coarse search is
    # within a step, and every evaluation renders and filters a view (most of a check's cost).
    for scale in (1.0, 1.0, 0.5):
        for k in range(len(params)):
            for sign in (1.0, -1.0):
                trial = list(params)
                step = steps[k] * scale
                trial[k] += sign * (step * trial[2] if k == 2 else step)
                value = _score(a_image, b_grid, Match(*trial), sigmas)[0]
                if value > best + 1e-4:
                    best, params = value, trial
                    break  # the opposite direction cannot also improve
    return Match(params[0], params[1], params[2], params[3], best)


#: Chroma energy (0..255 scale) below which a picture counts as grayscale.
_GRAY_CHROMA = 3.0
#: Smallest agreement of the two views' colours (see colour_agreement).
MIN_COLOUR = 0.8


def _chroma(rgb: Any) -> tuple[Any, float]:
    """Blurred opponent colours (B - Y, R - Y) of an RGB array, and their energy."""
    import numpy as np

    luma = rgb @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    blur = _blur_matrix(rgb.shape[0], 2.0)
    planes = [blur @ (rgb[..., channel] - luma) @ blur.T for channel in (2, 0)]
    chroma = np.stack(planes, axis=-1)
    return chroma, float(np.sqrt((chroma * chroma).sum(axis=-1).mean()))


def colour_agreement(a_rgb: Any, b_rgb: Any, match: Match) -> float | None:
    """How well the colours of ``a``'s view and of ``b`` agree (cosine of their chroma), or None.

    In grayscale a picture with one bright disc on a flat ground matches many others;
    its hues rarely do. The cosine is taken without removing the mean, so a copy whose
    saturation was raised or lowered (colour jitter) still agrees. None when ``b`` is
    grayscale (a grayscale copy has no colour to compare). ``a_rgb`` comes from
    :func:`prepare` (an RGB image), ``b_rgb`` is a 64x64x3 float array.
    """
    import numpy as np

    b_chroma, b_energy = _chroma(b_rgb)
    if b_energy < _GRAY_CHROMA:
        return None
    view = np.stack(
        [
            _view(a_rgb[channel], match.cx, match.cy, match.side, match.angle, _FINE, 1.0)
            for channel in range(3)
        ],
        axis=-1,
    )
    a_chroma, a_energy = _chroma(view)
    if a_energy < _GRAY_CHROMA:
        return 0.0  # a colour picture is no copy of a grayscale one
    return float((a_chroma * b_chroma).sum() / (np.linalg.norm(a_chroma) * np.linalg.norm(b_chroma)))


#: Pictures with a smaller side below this many pixels are not reported as crops or rotations.
MIN_SIDE = 64
#: Without colour, a pair must score this much at 64 px...
MIN_GRAY_SCORE = 0.9
#: ...and its finer band (at DETAIL_SIDE px) must correlate this much.
MIN_DETAIL = 0.9
DETAIL_SIDE = 128


def detail_agreement(a_image: Any, b_pixels: Any, match: Match) -> float:
    """Band-pass correlation at ``DETAIL_SIDE`` px (sigma 0.5 and 1.5 px), polished a little.

    ``a_image`` comes from :func:`prepare` (a 256 px training picture), ``b_pixels`` is
    the evaluation picture at ``DETAIL_SIDE`` px. Measured on the benchmark converted to
    grayscale: copies scored 0.68-1.0 (median 0.98), unrelated pairs that passed every
    64 px test 0.02-0.95 (median 0.63).
    """
    import numpy as np

    size, trim, sigmas = DETAIL_SIDE, 8, (0.5, 1.5)
    unit = size / _COARSE
    b_band = _band(b_pixels, unit, sigmas)[trim:-trim, trim:-trim]
    b_unit, b_energy = _normalised(b_band)

    def score(params: list[float]) -> float:
        view = _view(a_image, params[0], params[1], params[2], params[3], size, 1.0)
        a_unit, a_energy = _normalised(_band(view, unit, sigmas)[trim:-trim, trim:-trim])
        if a_energy < _MIN_TEXTURE or b_energy < _MIN_TEXTURE:
            return -1.0
        return float(np.sum(a_unit * b_unit))

    params = [match.cx, match.cy, match.side, match.angle]
    best = score(params)
    for step in (0.004, 0.002):
        for k, scale in enumerate((step, step, step * params[2], step * 100)):
            for sign in (1.0, -1.0):
                trial = list(params)
                trial[k] += sign * scale
                value = score(trial)
                if value > best:
                    best, params = value, trial
                    break
    return best
