"""The geometric stage: evaluation samples that are crops, small rotations or quarter turns.

Runs after the hash stage, across each pair of splits ``a`` (earlier) and ``b``, for
the samples of ``b`` the hash stage did not already pair:

1. **Quarter turns** (90/180/270 degrees, with or without a mirror; also pixels turned
   under an EXIF orientation tag that turns them back): the six dihedral variants of
   each ``b`` sample's 32x32 grid are hashed like the sample itself and searched among
   ``a``'s perceptual hashes, confirmed by thumbnail correlation as SL002 pairs are.
2. **Crops and rotations**: ``b``'s query windows (windows.py) are matched against
   ``a``'s stored anchor codes by exact 16-bit chunks of their sign hashes, ranked by
   coefficient cosine, and the best few candidates per sample are checked pixel by
   pixel (verify.py); only verified pairs are reported.

Everything here is sub-quadratic: the chunk join costs about (query windows) x
(anchors) / 2**16 comparisons per chunk. ``b``'s samples are decoded once more (the
64x64 grids are not cached: 4 KB each), and ``a``'s candidates once each for the
check. The verified pairs are memoised in the hash cache under the content digests
of both sides, so a warm run on unchanged data decodes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditor_plugins.split_leakage import verify, windows
from auditor_plugins.split_leakage.collect import Samples

__all__ = ["GeoPair", "GeometricResult", "find_geometric"]

#: Bump when the search, the verification or what a memoised result holds changes.
_MEMO_VERSION = 1
#: Largest sign-hash distance between a query window and an anchor that is a candidate.
_MAX_BITS = 14
#: Smallest coefficient cosine of a candidate window pair.
_MIN_COSINE = 0.95
#: Candidates per evaluation sample checked pixel by pixel (best cosine first).
_CHECKED = 2
#: Evaluation samples whose query windows are computed and joined at once (bounded memory).
_BLOCK = 128
_TURNS = ("rotate 90", "rotate 180", "rotate 270", "flip vertical", "transpose", "transverse")


@dataclass(frozen=True)
class GeoPair:
    """An evaluation sample ``b`` that shows training sample ``a`` cropped, rotated or turned."""

    a: int
    b: int
    kind: str  # crop | rotation | turn
    score: float  # gradient correlation (crop, rotation) or thumbnail correlation (turn)
    region: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 of a (fractions)
    angle: float = 0.0  # degrees counter-clockwise that turn a's region into b
    area: float = 1.0
    turn: str | None = None  # the quarter turn that makes a from b


@dataclass
class GeometricResult:
    pairs: dict[tuple[int, int], list[GeoPair]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: The model stage of each split pair searched (model_features.ModelStage), when it was asked.
    model: list[Any] = field(default_factory=list)


def find_geometric(
    samples: Samples,
    arrays: Any,
    analysis: Any,
    options: dict[str, Any],
    *,
    memo: Any,
    workers: int,
    progress: Callable[[str, int | None], Any],
    suggest: Callable[[Any, list[int]], Any] | None = None,
) -> GeometricResult:
    """Geometric pairs for every ``(a, b)`` split pair of ``analysis.cross``.

    ``suggest(a_ids, b_ids)`` is another candidate source (the model stage): it returns a
    ``model_features.ModelStage`` whose suggestions are checked like the window search's.

    Results are memoised per split pair (and options) by content digest: a new or changed
    evaluation file is searched against every training sample, and a new or changed
    training file only against the evaluation samples searched before (their 64x64 grids
    come from the cache); pairs of a training file that is gone are dropped.
    """
    import numpy as np

    started = time.perf_counter()
    result = GeometricResult()
    from auditor_plugins.split_leakage.cache import IN_CACHE

    size = len(windows.ANCHORS) * 64
    has_anchor = np.fromiter(
        (b is IN_CACHE or (b is not None and len(b) == size) for b in samples.anchors), bool, len(samples)
    )
    anchors: windows.Anchors | None = None  # built when a sample is searched (a warm run needs none)
    totals = {"searched": 0, "decoded": 0, "files_read": 0, "candidates": 0, "checked": 0, "too_small": 0}
    timing: dict[str, float] = {}
    for cross in analysis.cross:
        paired = {p.b for p in (*cross.same_path, *cross.exact, *cross.near)}
        a_ids = np.nonzero((arrays.split == cross.split_a) & has_anchor)[0]
        b_ids = [
            i for i in np.nonzero((arrays.split == cross.split_b) & arrays.has)[0].tolist() if i not in paired
        ]
        if not len(a_ids) or not b_ids:
            result.pairs[(cross.split_a, cross.split_b)] = []
            continue
        model_tag = "" if suggest is None else "+model"
        names = f"{samples.split_names[cross.split_a]}|{samples.split_names[cross.split_b]}"
        key = memo.key(f"geometric{_MEMO_VERSION}{model_tag}|{names}") if memo is not None else None
        known = _Known.load(memo.get(key) if memo is not None else None)
        added = set(known.align([samples.digest[i] for i in a_ids.tolist()]))
        new_a = np.asarray([i for i in a_ids.tolist() if samples.digest[i] in added], dtype=np.int64)
        # New evaluation samples against every training sample; the others against new training ones.
        jobs = [(a_ids, [i for i in b_ids if samples.digest[i] not in known.rows])]
        if len(new_a) and len(new_a) < len(a_ids):
            jobs.append((new_a, [i for i in b_ids if samples.digest[i] in known.rows]))
        complete, changed = True, bool(added)
        for job_a, todo in jobs:
            if not todo:
                continue
            changed = True
            if anchors is None:
                _read_cached_anchors(samples, memo)
                anchors = windows.Anchors(samples.anchors)
            stage = _Stage(samples, arrays, options, job_a, anchors, workers, progress)
            stage.cache = memo.cache if memo is not None else None
            if suggest is not None:
                model = suggest(job_a, todo)
                result.model.append(model)
                if model.skipped is None:
                    stage.suggestions = model.suggestions()
                    # A model stage cut short by its budget leaves samples to search next time.
                    complete = complete and model.stopped is None
            found = stage.run(np.asarray(todo, dtype=np.int64))
            for name in totals:
                totals[name] += getattr(stage, name)
            for name, seconds in stage.timing.items():
                timing[name] = timing.get(name, 0.0) + seconds
            result.notes.extend(stage.notes)
            known.add(samples, stage.searched_ids, found)
        if memo is not None and complete and changed:
            memo.put(key, known.arrays())
        result.pairs[(cross.split_a, cross.split_b)] = known.pairs_for(samples, b_ids, a_ids)
    if totals["too_small"]:
        result.notes.append(
            f"{totals['too_small']} crop or rotation match(es) involved a picture smaller than "
            f"{verify.MIN_SIDE} px on a side and were not reported: too few pixels to tell a copy "
            "from a look-alike"
        )
    ran = [m for m in result.model if m.skipped is None]
    result.stats = {
        **totals,
        "seconds": round(time.perf_counter() - started, 3),
        **{f"{name}_seconds": round(value, 3) for name, value in timing.items()},
        "features": "weight-free (window codes)" + (f" + {ran[0].source}" if ran else ""),
    }
    if result.model:
        result.stats["model"] = _model_summary(result.model)
    return result


def _read_cached_anchors(samples: Samples, memo: Any) -> None:
    """Replace the stand-ins of anchor codes that are only in the cache by the codes themselves."""
    from auditor_plugins.split_leakage.cache import IN_CACHE

    lazy = [i for i, blob in enumerate(samples.anchors) if blob is IN_CACHE]
    if not lazy:
        return
    stored = memo.cache.anchors([samples.resolved[i] for i in lazy]) if memo is not None else {}
    for i in lazy:
        samples.anchors[i] = stored.get(samples.resolved[i] or "")


def _model_summary(stages: Sequence[Any]) -> dict[str, Any]:
    """What the model stage did over every split pair: ran (with counts) or why not."""
    ran = [m for m in stages if m.skipped is None]
    if not ran:
        return {"skipped": stages[0].skipped}
    return {
        "source": ran[0].source,
        "embedded": sum(m.embedded for m in ran),
        "cached": sum(m.cached for m in ran),
        "candidates": sum(len(m.candidates) for m in ran),
        "unread": sum(len(m.unread) for m in ran),
        "index": ran[0].index_backend,
        "stopped": next((m.stopped for m in ran if m.stopped), None),
        "seconds": round(sum(m.seconds for m in ran), 3),
    }


_KINDS = ("crop", "rotation", "turn")
_FIELDS = ("kind", "score", "region", "angle", "area", "turn")


class _Known:
    """What was searched for one ``(a, b)`` split pair: training and evaluation digests, and pairs.

    Pairs name their training sample by digest, so the record stays valid as the training
    side changes: pairs of a training sample that is gone are dropped, and only the new
    training samples need searching for the evaluation samples already searched.
    """

    def __init__(self) -> None:
        self.rows: dict[bytes, int] = {}  # evaluation digest -> row
        self.a_rows: dict[bytes, int] = {}  # training digest -> row
        self.pairs: list[tuple[int, int, GeoPair]] = []  # (training row, evaluation row, pair)

    @classmethod
    def load(cls, stored: dict[str, Any] | None) -> _Known:
        known = cls()
        if stored is None:
            return known
        try:
            for row, digest in enumerate(stored["searched"]):
                known.rows[bytes(digest)] = row
            for row, digest in enumerate(stored["a_digests"]):
                known.a_rows[bytes(digest)] = row
            for i in range(len(stored["a_row"])):
                kind = _KINDS[int(stored["kind"][i])]
                turn = int(stored["turn"][i])
                pair = GeoPair(
                    -1,
                    -1,
                    kind,
                    round(float(stored["score"][i]), 4),
                    None if kind == "turn" else tuple(round(float(v), 4) for v in stored["region"][i]),  # type: ignore[arg-type]
                    round(float(stored["angle"][i]), 2),
                    round(float(stored["area"][i]), 4),
                    None if turn < 0 else _TURNS[turn],
                )
                known.pairs.append((int(stored["a_row"][i]), int(stored["b_row"][i]), pair))
        except (KeyError, IndexError, ValueError, TypeError):
            return cls()  # an entry of another layout is a miss
        return known

    def align(self, current: Sequence[bytes]) -> list[bytes]:
        """Make the training side ``current`` (digests); return the digests not searched before."""
        old = self.a_rows
        present = set(current)
        keep = {row for digest, row in old.items() if digest in present}
        self.pairs = [entry for entry in self.pairs if entry[0] in keep]
        added = [digest for digest in dict.fromkeys(current) if digest not in old]
        # Renumber: rows of the current training digests only.
        renumber = {}
        self.a_rows = {}
        for digest in dict.fromkeys(current):
            self.a_rows[digest] = len(self.a_rows)
            if digest in old:
                renumber[old[digest]] = self.a_rows[digest]
        self.pairs = [(renumber[a], b, pair) for a, b, pair in self.pairs]
        return added

    def add(self, samples: Samples, searched: Sequence[int], found: Sequence[GeoPair]) -> None:
        for sample in searched:
            self.rows.setdefault(samples.digest[sample], len(self.rows))
        for pair in found:
            self.pairs.append((self.a_rows[samples.digest[pair.a]], self.rows[samples.digest[pair.b]], pair))

    def arrays(self) -> dict[str, Any]:
        import numpy as np

        def digests(rows: dict[bytes, int]) -> Any:
            ordered = sorted(rows, key=rows.__getitem__)
            if not ordered:
                return np.zeros((0, 16), dtype=np.uint8)
            return np.frombuffer(b"".join(ordered), dtype=np.uint8).reshape(len(ordered), -1)

        pairs = [pair for _, _, pair in self.pairs]
        return {
            "searched": digests(self.rows),
            "a_digests": digests(self.a_rows),
            "a_row": np.asarray([a for a, _, _ in self.pairs], dtype=np.int64),
            "b_row": np.asarray([b for _, b, _ in self.pairs], dtype=np.int64),
            "kind": np.asarray([_KINDS.index(p.kind) for p in pairs], dtype=np.int8),
            "score": np.asarray([p.score for p in pairs], dtype=np.float32),
            "region": np.asarray([p.region or (0.0, 0.0, 1.0, 1.0) for p in pairs], dtype=np.float32).reshape(
                -1, 4
            ),
            "angle": np.asarray([p.angle for p in pairs], dtype=np.float32),
            "area": np.asarray([p.area for p in pairs], dtype=np.float32),
            "turn": np.asarray(
                [-1 if p.turn is None else _TURNS.index(p.turn) for p in pairs], dtype=np.int8
            ),
        }

    def pairs_for(self, samples: Samples, b_ids: Sequence[int], a_ids: Any) -> list[GeoPair]:
        """The pairs of the current samples (several may share a digest), the best one per evaluation sample."""
        by_row: dict[int, list[int]] = {}
        for sample in b_ids:
            row = self.rows.get(samples.digest[sample])
            if row is not None:
                by_row.setdefault(row, []).append(sample)
        first_a: dict[int, int] = {}
        for sample in a_ids.tolist():
            row = self.a_rows.get(samples.digest[sample])
            if row is not None:
                first_a.setdefault(row, int(sample))
        best: dict[int, GeoPair] = {}
        for a_row, row, pair in self.pairs:
            for sample in by_row.get(row, []):
                fields = {name: getattr(pair, name) for name in _FIELDS}
                candidate = GeoPair(first_a[a_row], sample, **fields)
                if sample not in best or candidate.score > best[sample].score:
                    best[sample] = candidate
        return sorted(best.values(), key=lambda p: p.b)


class _Stage:
    """One ``(a, b)`` split pair's search: decode ``b``, turns, windows, checks."""

    def __init__(
        self,
        samples: Samples,
        arrays: Any,
        options: dict[str, Any],
        a_ids: Any,
        anchors: windows.Anchors,
        workers: int,
        progress: Callable[[str, int | None], Any],
    ) -> None:
        self.samples = samples
        self.arrays = arrays
        self.options = options
        self.a_ids = a_ids
        self.anchors = anchors
        self.workers = workers
        self.progress = progress
        self.searched = self.decoded = self.files_read = self.candidates = self.checked = 0
        self.searched_ids: list[int] = []
        self.timing: dict[str, float] = {
            "decode": 0.0,
            "turns": 0.0,
            "windows": 0.0,
            "join": 0.0,
            "check": 0.0,
        }
        self.notes: list[str] = []
        self._a_images: dict[int, Any] = {}
        self.cache: Any = None  # the hash cache, where earlier runs stored evaluation grids
        self._coloured: set[tuple[int, int]] = set()  # pairs whose colours were compared (and agreed)
        self._sizes: dict[int, tuple[int, int] | None] = {}
        self.too_small = 0  # verified pairs left out: a picture under verify.MIN_SIDE pixels
        #: Training samples another source suggests per evaluation sample (sample ids).
        self.suggestions: dict[int, list[int]] = {}

    def run(self, b_ids: Any) -> list[GeoPair]:
        import numpy as np

        from auditor_plugins.split_leakage.sources import load_grids

        clock = time.perf_counter()
        grids, missing, read = load_grids(
            self.samples, b_ids.tolist(), self.workers, self.progress, self.cache
        )
        self.decoded = read
        self.files_read += read
        self.timing["decode"] += time.perf_counter() - clock
        if missing:
            self.notes.append(
                f"{missing} evaluation sample(s) could not be decoded again for the geometric "
                "stage: they were not searched for crops, rotations or quarter turns"
            )
        ids = np.asarray([i for i in b_ids.tolist() if i in grids], dtype=np.int64)
        self.searched_ids = ids.tolist()
        self.searched = len(ids)
        if not len(ids):
            return []
        stack = np.stack([np.frombuffer(grids[i], dtype=np.uint8).reshape(64, 64) for i in ids.tolist()])
        stack = stack.astype(np.float32)
        clock = time.perf_counter()
        turns = self._turns(ids, stack)
        self.timing["turns"] += time.perf_counter() - clock
        taken = {p.b for p in turns}
        rest = np.asarray([k for k, i in enumerate(ids.tolist()) if i not in taken], dtype=np.int64)
        crops = self._windows(ids[rest], stack[rest])
        return sorted([*turns, *crops], key=lambda p: p.b)

    # -- quarter turns -------------------------------------------------------------------

    def _turns(self, ids: Any, stack: Any) -> list[GeoPair]:
        import numpy as np

        from auditor_plugins.split_leakage.analysis import _expand, _groups
        from auditor_plugins.split_leakage.hashing import coarse, perceptual
        from auditor_plugins.split_leakage.search import search

        a_ids = self.a_ids[self.arrays.has[self.a_ids]]
        if not len(a_ids):
            return []
        coarse_grids = np.stack([coarse(g) for g in stack])
        variants = [
            np.rot90(coarse_grids, 1, axes=(1, 2)),
            np.rot90(coarse_grids, 2, axes=(1, 2)),
            np.rot90(coarse_grids, 3, axes=(1, 2)),
            coarse_grids[:, ::-1, :],
            coarse_grids.transpose(0, 2, 1),
            np.rot90(coarse_grids, 2, axes=(1, 2)).transpose(0, 2, 1),
        ]
        n = len(ids)
        hashes, thumbs = [], []
        for variant in variants:
            for phash, _mirror, thumb in perceptual(np.ascontiguousarray(variant)):
                hashes.append(phash)
                thumbs.append(thumb)
        queries = np.asarray(hashes, dtype=np.uint64)
        z = _z(thumbs)
        groups = _groups(self.arrays.phash[a_ids])
        best: dict[int, tuple[float, int, int]] = {}
        for q, r, _d in search(groups[0], queries, self.options["max_distance"]):
            members, owner = _expand(groups, r, 16)
            a = a_ids[members]
            qs = q[owner]
            sim = (self.arrays.z[a] * z[qs]).sum(axis=1)
            flat = self.arrays.flat[a] | ~np.any(z[qs], axis=1)
            ok = (sim >= self.options["min_similarity"]) & ~flat
            for ai, qi, si in zip(a[ok].tolist(), qs[ok].tolist(), sim[ok].tolist(), strict=False):
                slot = qi % n
                if slot not in best or si > best[slot][0]:
                    best[slot] = (si, ai, qi // n)
        return [
            GeoPair(a, int(ids[slot]), "turn", round(s, 4), turn=_TURNS[v])
            for slot, (s, a, v) in best.items()
        ]

    # -- crops and rotations -------------------------------------------------------------

    def _windows(self, ids: Any, stack: Any) -> list[GeoPair]:
        """Window search and checks, block by block; blocks run in forked workers where it pays."""
        import numpy as np

        table_hashes = self.anchors.hashes[self.a_ids].reshape(-1)
        self._table_owner = np.repeat(np.arange(len(self.a_ids)), self.anchors.hashes.shape[1])
        self._join = _ChunkJoin(table_hashes)
        self._ids, self._stack = ids, stack
        starts = list(range(0, len(ids), _BLOCK))
        found: list[GeoPair] = []
        with self.progress("searching crops and rotations", len(ids)) as bar:
            if self.workers > 1 and len(starts) >= 2 * self.workers:
                for pairs, counters, timing, count in _run_blocks(self, starts):
                    found.extend(pairs)
                    self.candidates += counters[0]
                    self.checked += counters[1]
                    self.files_read += counters[2]
                    for name, seconds in timing.items():
                        self.timing[name] += seconds
                    bar.advance(count)
            else:
                for first in starts:
                    found.extend(self._block(first))
                    bar.advance(len(ids[first : first + _BLOCK]))
        return found

    def _block(self, first: int) -> list[GeoPair]:
        """One block of evaluation samples: query windows, chunk join, cosines, checks."""
        import numpy as np

        a_ids = self.a_ids
        block_ids = self._ids[first : first + _BLOCK]
        block = self._stack[first : first + _BLOCK]
        clock = time.perf_counter()
        hashes, units = windows.query_windows(block)
        per_image = hashes.shape[1]
        self.timing["windows"] += time.perf_counter() - clock
        clock = time.perf_counter()
        q, t = self._join.pairs(hashes.reshape(-1), _MAX_BITS)
        self.timing["join"] += time.perf_counter() - clock
        image, window = q // per_image, q % per_image
        owner, anchor = self._table_owner[t], t % self.anchors.hashes.shape[1]
        cosine = self.anchors.cosine(units[image, window], a_ids[owner], anchor)
        keep = cosine >= _MIN_COSINE
        image, owner, window, anchor, cosine = (x[keep] for x in (image, owner, window, anchor, cosine))
        joined = np.ones(len(image), dtype=bool)
        suggested = self._suggested(block_ids, units)
        if suggested is not None:
            image, owner, window, anchor, cosine = (
                np.concatenate([x, y])
                for x, y in zip((image, owner, window, anchor, cosine), suggested, strict=True)
            )
            joined = np.concatenate([joined, np.zeros(len(suggested[0]), dtype=bool)])
        if not len(image):
            return []
        clock = time.perf_counter()
        found = self._check(block_ids, block, image, owner, window, anchor, cosine, joined)
        self.timing["check"] += time.perf_counter() - clock
        return found

    def _suggested(self, block_ids: Any, units: Any) -> tuple[Any, ...] | None:
        """Candidates another source (the model's features) suggests for this block's samples.

        The window search did not necessarily propose them, so each gets the best of all its
        (query window, anchor) cosines as the view to check from.
        """
        import numpy as np

        if not self.suggestions:
            return None
        position = {int(a): k for k, a in enumerate(self.a_ids.tolist())}
        rows = [
            (slot, position[a])
            for slot, b in enumerate(block_ids.tolist())
            for a in self.suggestions.get(int(b), ())
            if a in position
        ]
        if not rows:
            return None
        count = len(windows.ANCHORS)
        image, owner, window, anchor, cosine = [], [], [], [], []
        for slot, a_position in rows:
            sample = np.full(units.shape[1] * count, self.a_ids[a_position])
            query = np.repeat(np.arange(units.shape[1]), count)
            anchors = np.tile(np.arange(count), units.shape[1])
            values = self.anchors.cosine(units[slot][query], sample, anchors)
            best = int(values.argmax())
            image.append(slot)
            owner.append(a_position)
            window.append(int(query[best]))
            anchor.append(int(anchors[best]))
            cosine.append(float(values[best]))
        return (
            np.asarray(image, dtype=np.int64),
            np.asarray(owner, dtype=np.int64),
            np.asarray(window, dtype=np.int64),
            np.asarray(anchor, dtype=np.int64),
            np.asarray(cosine, dtype=np.float32),
        )

    def _check(
        self,
        block_ids: Any,
        stack: Any,
        image: Any,
        owner: Any,
        window: Any,
        anchor: Any,
        cosine: Any,
        joined: Any,
    ) -> list[GeoPair]:
        import numpy as np

        # Best window pair per (b image, a sample) -- a suggested candidate first, so it keeps
        # its place -- then the best few joined a samples per b image, plus every suggested one.
        order = np.lexsort((-cosine, joined, owner, image))
        image, owner, window, anchor, cosine, joined = (
            x[order] for x in (image, owner, window, anchor, cosine, joined)
        )
        first = np.ones(len(image), dtype=bool)
        first[1:] = (image[1:] != image[:-1]) | (owner[1:] != owner[:-1])
        image, owner, window, anchor, cosine, joined = (
            x[first] for x in (image, owner, window, anchor, cosine, joined)
        )
        out = []
        for slot in np.unique(image).tolist():
            rows = np.nonzero(image == slot)[0]
            ranked = rows[np.argsort(-cosine[rows], kind="stable")]
            rows = np.concatenate([ranked[joined[ranked]][:_CHECKED], ranked[~joined[ranked]]])
            best: GeoPair | None = None
            for row in rows.tolist():
                self.candidates += 1
                a_sample = int(self.a_ids[owner[row]])
                a_image = self._a_image(a_sample)
                if a_image is None:
                    continue
                self.checked += 1
                b_sample = int(block_ids[slot])
                match = verify.check(
                    a_image,
                    stack[slot],
                    _start(int(window[row]), int(anchor[row])),
                    gate=lambda view, a=a_sample, b=b_sample: self._colours_agree(a, b, view),
                )
                if not match.verified or (best is not None and match.score <= best.score):
                    continue
                if self._too_small(a_sample) or self._too_small(b_sample):
                    self.too_small += 1
                    continue
                if (a_sample, b_sample) not in self._coloured and not self._detail_agrees(
                    a_sample, b_sample, match
                ):
                    continue
                best = GeoPair(
                    a_sample,
                    int(block_ids[slot]),
                    "rotation" if abs(match.angle) >= 1.0 else "crop",
                    round(match.score, 4),
                    tuple(round(v, 4) for v in match.region),  # type: ignore[arg-type]
                    round(-match.angle, 2),  # b is a's region turned the other way
                    round(match.area, 4),
                )
            if best is not None:
                out.append(best)
        return out

    def _colours_agree(self, a_sample: int, b_sample: int, match: verify.Match) -> bool:
        """False when both pictures have colour and the hues disagree (see verify.colour_agreement)."""
        import numpy as np

        from auditor_plugins.split_leakage.sources import load_image

        b_image = load_image(self.samples, b_sample, "RGB", 64)
        a_image = load_image(self.samples, a_sample, "RGB")
        self.files_read += sum(self.samples.path[i] is not None for i in (a_sample, b_sample))
        if b_image is None or a_image is None:
            return True  # in-memory samples keep no colour: the detail check decides
        b_rgb = np.asarray(b_image, dtype=np.float32)
        agreement = verify.colour_agreement(verify.prepare(a_image), b_rgb, match)
        if agreement is None:
            return True  # b is grayscale: no colour to compare, the detail check decides
        self._coloured.add((a_sample, b_sample))
        return agreement >= verify.MIN_COLOUR

    def _too_small(self, sample: int) -> bool:
        """True for a file whose smaller side is under verify.MIN_SIDE pixels (read from its header).

        Its 64 px grid was enlarged from fewer pixels: a disc or a square on a flat ground is all
        such a picture holds, and it fits other pictures of the same kind as well as a copy.
        """
        from auditor_plugins.split_leakage.sources import pixel_size

        if sample not in self._sizes:
            self._sizes[sample] = pixel_size(self.samples, sample)
        size = self._sizes[sample]
        return size is not None and min(size) < verify.MIN_SIDE

    def _detail_agrees(self, a_sample: int, b_sample: int, match: verify.Match) -> bool:
        """For a pair whose colours could not be compared: do the two agree at twice the detail?

        Without colour, simple pictures (a disc on a smooth ground, one dark bar) fit unrelated
        ones at 64 px; their finer structure and texture do not (verify.detail_agreement).
        """
        from auditor_plugins.split_leakage.sources import load_image

        if match.score < verify.MIN_GRAY_SCORE:
            return False
        a_image = load_image(self.samples, a_sample, "F", 2 * verify.DETAIL_SIDE)
        b_image = load_image(self.samples, b_sample, "F", verify.DETAIL_SIDE)
        self.files_read += sum(self.samples.path[i] is not None for i in (a_sample, b_sample))
        if a_image is None or b_image is None:
            return False  # nothing finer to look at (in-memory samples keep 64 px only)
        import numpy as np

        detail = verify.detail_agreement(
            verify.prepare(a_image), np.asarray(b_image, dtype=np.float32), match
        )
        return detail >= verify.MIN_DETAIL

    def _a_image(self, sample: int) -> Any:
        from auditor_plugins.split_leakage.sources import load_image

        if sample not in self._a_images:
            image = load_image(self.samples, sample)
            self.files_read += self.samples.path[sample] is not None
            self._a_images[sample] = None if image is None else verify.prepare(image)
        return self._a_images[sample]


#: The stage whose blocks forked workers run (set in the parent just before the fork).
_FORKED: _Stage | None = None


def _forked_block(first: int) -> tuple[list[GeoPair], tuple[int, int, int], dict[str, float], int]:
    stage = _FORKED
    assert stage is not None
    before = (stage.candidates, stage.checked, stage.files_read)
    stage.timing = dict.fromkeys(stage.timing, 0.0)
    pairs = stage._block(first)
    counters = (stage.candidates - before[0], stage.checked - before[1], stage.files_read - before[2])
    return pairs, counters, stage.timing, len(stage._ids[first : first + _BLOCK])


def _run_blocks(stage: _Stage, starts: list[int]) -> Any:
    """Yield each block's results as forked workers finish them.

    fork: the workers share the anchors, the join table and the grids with this process
    without copying them; they only read files and run numpy and PIL, like the hashing
    workers. Ctrl-C ends them at once (see _pool.py).
    """
    import multiprocessing
    import os
    import warnings
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from auditor_plugins.split_leakage._pool import init_worker, stop_pool

    global _FORKED
    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not on Linux
        for first in starts:
            yield stage._block(first), (0, 0, 0), {}, len(stage._ids[first : first + _BLOCK])
        return
    _FORKED = stage
    pool = ProcessPoolExecutor(
        max_workers=stage.workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=init_worker,
        initargs=(os.getpid(),),
    )
    try:
        with warnings.catch_warnings():  # Python >= 3.12 warns about fork with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            pending = {pool.submit(_forked_block, first) for first in starts}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    except BaseException:
        stop_pool(pool)
        raise
    finally:
        _FORKED = None
    pool.shutdown(wait=True)


def _start(window: int, anchor: int) -> verify.Match:
    """The view of ``a`` a query window/anchor pair implies (see windows.py)."""
    oy, ox, side, angle = (float(v) for v in windows.QUERY_GEOMETRY[window])
    dy, dx = windows.ANCHORS[anchor]
    scale = windows.ANCHOR_SIDE / side  # a's sides per b side
    # The window's centre in b (turned by `angle`) is the anchor's centre in a; b's centre
    # is where the turn leaves it, so it maps to a's point `scale` times as far away.
    cx = 0.5 + dx + scale * (0.5 - ox - side / 2)
    cy = 0.5 + dy + scale * (0.5 - oy - side / 2)
    return verify.Match(cx, cy, scale, angle)


def _z(thumbs: Sequence[bytes]) -> Any:
    import numpy as np

    values = np.frombuffer(b"".join(thumbs), dtype=np.uint8).reshape(len(thumbs), 64).astype(np.float32)
    centred = values - values.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return np.where(norms > 0, centred / np.where(norms > 0, norms, 1), 0).astype(np.float32)


class _ChunkJoin:
    """Pairs (query, table entry) sharing one of four 16-bit chunks and within a bit distance."""

    _SHIFTS = (48, 32, 16, 0)
    _PAIRS_PER_STEP = 1 << 21

    def __init__(self, table: Any) -> None:
        import numpy as np

        self.table = table
        self.sorted = []
        for shift in self._SHIFTS:
            chunk = ((table >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)
            order = np.argsort(chunk, kind="stable")
            self.sorted.append((chunk[order], order))

    def pairs(self, queries: Any, max_bits: int) -> tuple[Any, Any]:
        import numpy as np

        from auditor_plugins.split_leakage.search import popcount

        found_q, found_t = [], []
        for shift, (values, order) in zip(self._SHIFTS, self.sorted, strict=True):
            chunk = ((queries >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)
            low = np.searchsorted(values, chunk, side="left")
            high = np.searchsorted(values, chunk, side="right")
            counts = high - low
            hit = np.nonzero(counts)[0]
            if not len(hit):
                continue
            # Expand in steps so the candidate arrays stay bounded.
            cumulative = np.cumsum(counts[hit])
            start = 0
            while start < len(hit):
                base = cumulative[start - 1] if start else 0
                stop = int(np.searchsorted(cumulative, base + self._PAIRS_PER_STEP, side="right"))
                stop = max(stop, start + 1)
                part = hit[start:stop]
                lengths = counts[part]
                q = np.repeat(part, lengths)
                offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                t = order[np.repeat(low[part], lengths) + offsets]
                close = popcount(queries[q] ^ self.table[t]) <= max_bits
                found_q.append(q[close])
                found_t.append(t[close])
                start = stop
        if not found_q:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        q, t = np.concatenate(found_q), np.concatenate(found_t)
        # A pair sharing several chunks was found once per chunk.
        pair = np.unique(q * len(self.table) + t)
        return pair // len(self.table), pair % len(self.table)
