"""From per-sample hashes to duplicate pairs: across splits (leakage) and within one.

Across two splits ``a`` (earlier in the manifest) and ``b``, every sample of ``b``
gets at most one partner in ``a``, by priority: the same resolved file (SL005), the
same content digest (SL001), else its closest perceptual match (SL002) whose
Hamming distance is within ``max_distance`` *and* whose 8x8 thumbnail correlates
with the partner's at ``min_similarity`` or more (the check that removes hash
collisions between unrelated images). Mirrored matches compare the mirrored hash
and the mirrored thumbnail.

Within one split, duplicates (same file listed twice, same digest, or verified
perceptual matches) are joined into clusters with a union-find; a cluster whose
members carry different labels is SL003, one with a single label SL004.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor_plugins.split_leakage.collect import Samples
from auditor_plugins.split_leakage.search import pairs_within, popcount, search

__all__ = ["Analysis", "Cross", "Pair", "Within", "analyse", "memo_for"]

#: Members of one perceptual-hash value compared per match: identical hashes of many
#: different images (e.g. blank frames) must not make the comparison quadratic.
_MEMBERS_PER_HASH = 16
#: Above this many hashed samples in one split, the within-split perceptual search
#: (a self-join) is skipped; exact duplicates are still found.
WITHIN_NEAR_LIMIT = 250_000
#: Bump when the search or verification changes what a memoised result holds.
_MEMO_VERSION = 1


@dataclass(frozen=True)
class Pair:
    a: int
    b: int
    distance: int
    kind: str  # path | exact | near
    mirrored: bool = False
    similarity: float | None = None


@dataclass
class Cross:
    split_a: int
    split_b: int
    same_path: list[Pair] = field(default_factory=list)
    exact: list[Pair] = field(default_factory=list)
    near: list[Pair] = field(default_factory=list)


@dataclass
class Within:
    split: int
    conflicting: list[list[int]] = field(default_factory=list)  # clusters with several labels
    redundant: list[list[int]] = field(default_factory=list)  # clusters with one label
    edges: dict[tuple[int, int], Pair] = field(default_factory=dict)
    near_skipped: bool = False  # split too large for the self-join
    near_truncated: bool = False  # the self-join stopped at its pair limit


@dataclass
class Analysis:
    cross: list[Cross]
    within: list[Within]
    arrays: Any  # _Arrays, for distances shown in evidence


class _Arrays:
    """numpy views of the hashes, plus z-normalised thumbnails for the similarity check."""

    def __init__(self, samples: Samples) -> None:
        import numpy as np

        n = len(samples)
        self.split = np.asarray(samples.split, dtype=np.int64)
        self.has = np.asarray([p is not None for p in samples.phash], dtype=bool)
        self.phash = np.asarray([p or 0 for p in samples.phash], dtype=np.uint64)
        self.mirror = np.asarray([p or 0 for p in samples.mirror], dtype=np.uint64)
        blank = bytes(64)
        joined = b"".join(thumb if thumb else blank for thumb in samples.thumb)
        thumbs = np.frombuffer(joined, dtype=np.uint8).reshape(n, 64).astype(np.float32)
        centred = thumbs - thumbs.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        self.flat = norms[:, 0] == 0
        self.z = np.where(norms > 0, centred / np.where(norms > 0, norms, 1), 0).astype(np.float32)
        self.z_mirror = self.z.reshape(n, 8, 8)[:, :, ::-1].reshape(n, 64)

    def similarity(self, a: Any, b: Any, mirrored: Any) -> Any:
        """Correlation of thumbnails (b mirrored where asked); flat with flat counts as 1."""
        import numpy as np

        zb = np.where(mirrored[:, None], self.z_mirror[b], self.z[b])
        value = (self.z[a] * zb).sum(axis=1)
        flat_a, flat_b = self.flat[a], self.flat[b]
        return np.where(flat_a & flat_b, 1.0, np.where(flat_a | flat_b, 0.0, value))

    def distance(self, a: int, b: int) -> tuple[int, bool]:
        direct = int(popcount(self.phash[a] ^ self.phash[b]))
        flipped = int(popcount(self.mirror[b] ^ self.phash[a]))
        return (flipped, True) if flipped < direct else (direct, False)


class _Memo:
    """Search results stored in the hash cache, keyed by everything they depend on.

    The key is xxh3-128 of the options that shape the result and the ordered content
    digests of the samples searched (a digest fixes a sample's hashes and thumb), so
    a warm run on unchanged data skips the search and a changed file or option
    misses. Results are stored as numpy arrays (``np.load`` without pickle).
    """

    def __init__(self, cache: Any, samples: Samples, options: dict[str, Any]) -> None:
        self.cache = cache
        self.samples = samples
        self.options = ",".join(f"{k}={options[k]}" for k in ("max_distance", "min_similarity", "mirrored"))

    def key(self, kind: str, *id_arrays: Any) -> str | None:
        if self.cache is None:
            return None
        import xxhash

        hasher = xxhash.xxh3_128(f"{kind};{_MEMO_VERSION};{self.options}".encode())
        for ids in id_arrays:
            hasher.update(b"|" + b"".join(self.samples.digest[i] for i in ids.tolist()))
        return hasher.hexdigest()

    def get(self, key: str | None) -> dict[str, Any] | None:
        import io

        import numpy as np

        payload = self.cache.memo_get(key) if key else None
        if payload is None:
            return None
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError):  # an unreadable entry is a miss
            return None

    def put(self, key: str | None, arrays: dict[str, Any]) -> None:
        import io

        import numpy as np

        if key:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            self.cache.memo_put(key, buffer.getvalue())


def _groups(values: Any) -> tuple[Any, Any, Any, Any]:
    """``(unique, order, starts, counts)``: members of ``unique[g]`` are ``order[starts[g]:][:counts[g]]``."""
    import numpy as np

    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.cumsum(counts) - counts
    return unique, order, starts, counts


def _expand(groups: Any, which: Any, cap: int) -> tuple[Any, Any]:
    """Member positions of groups ``which`` (at most ``cap`` each) and the index into ``which``."""
    import numpy as np

    _, order, starts, counts = groups
    lengths = np.minimum(counts[which], cap)
    owner = np.repeat(np.arange(len(which)), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return order[starts[which][owner] + offsets], owner


def _cross_near(arrays: _Arrays, memo: _Memo, a_ids: Any, b_ids: Any, options: dict[str, Any]) -> list[Pair]:
    import numpy as np

    if not len(a_ids) or not len(b_ids):
        return []
    key = memo.key("cross", a_ids, b_ids)
    best = memo.get(key)
    if best is None:
        best = _best_matches(arrays, a_ids, b_ids, options)
        memo.put(key, best)
    found = np.nonzero(best["a"] >= 0)[0]
    return [
        Pair(
            int(a_ids[best["a"][i]]),
            int(b_ids[i]),
            int(best["d"][i]),
            "near",
            bool(best["m"][i]),
            round(float(best["s"][i]), 4),
        )
        for i in found
    ]


def _best_matches(arrays: _Arrays, a_ids: Any, b_ids: Any, options: dict[str, Any]) -> dict[str, Any]:
    """For each ``b`` sample, its closest verified match in ``a`` (a position, or -1)."""
    import numpy as np

    groups = _groups(arrays.phash[a_ids])
    queries = arrays.phash[b_ids]
    if options["mirrored"]:
        queries = np.concatenate([queries, arrays.mirror[b_ids]])
    n_b = len(b_ids)
    best_d = np.full(n_b, 1 << 30, dtype=np.int64)
    best_a = np.full(n_b, -1, dtype=np.int64)
    best_m = np.zeros(n_b, dtype=bool)
    best_s = np.full(n_b, -2.0)
    for q, r, d in search(groups[0], queries, options["max_distance"]):
        members, owner = _expand(groups, r, _MEMBERS_PER_HASH)
        slot = q[owner] % n_b
        mirrored = q[owner] >= n_b
        dist = d[owner]
        sim = arrays.similarity(a_ids[members], b_ids[slot], mirrored)
        ok = sim >= options["min_similarity"]
        a, slot, mirrored, dist, sim = members[ok], slot[ok], mirrored[ok], dist[ok], sim[ok]
        if not len(a):
            continue
        order = np.lexsort((-sim, dist, slot))  # per b sample: closest, then most similar
        a, slot, mirrored, dist, sim = a[order], slot[order], mirrored[order], dist[order], sim[order]
        first = np.ones(len(slot), dtype=bool)
        first[1:] = slot[1:] != slot[:-1]
        a, slot, mirrored, dist, sim = a[first], slot[first], mirrored[first], dist[first], sim[first]
        better = (dist < best_d[slot]) | ((dist == best_d[slot]) & (sim > best_s[slot]))
        s = slot[better]
        best_d[s], best_a[s], best_m[s], best_s[s] = dist[better], a[better], mirrored[better], sim[better]
    return {"a": best_a, "d": best_d, "m": best_m, "s": best_s}


def _cross(samples: Samples, arrays: _Arrays, memo: _Memo, a: int, b: int, options: dict[str, Any]) -> Cross:
    import numpy as np

    result = Cross(a, b)
    a_ids = np.nonzero(arrays.split == a)[0]
    b_ids = np.nonzero(arrays.split == b)[0]
    by_path: dict[str, int] = {}
    by_digest: dict[bytes, int] = {}
    for i in a_ids.tolist():
        if samples.resolved[i]:
            by_path.setdefault(samples.resolved[i], i)
        if samples.digest[i]:
            by_digest.setdefault(samples.digest[i], i)
    leaked = np.zeros(len(arrays.split), dtype=bool)
    for i in b_ids.tolist():
        partner = by_path.get(samples.resolved[i]) if samples.resolved[i] else None
        if partner is not None:
            result.same_path.append(Pair(partner, i, 0, "path"))
            leaked[i] = True
            continue
        partner = by_digest.get(samples.digest[i]) if samples.digest[i] else None
        if partner is not None:
            result.exact.append(Pair(partner, i, 0, "exact"))
            leaked[i] = True
    if options["near_duplicates"]:
        a_hashed = a_ids[arrays.has[a_ids]]
        b_hashed = b_ids[arrays.has[b_ids] & ~leaked[b_ids]]
        result.near = _cross_near(arrays, memo, a_hashed, b_hashed, options)
    return result


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)


def _within_edges(
    samples: Samples, arrays: _Arrays, memo: _Memo, ids: Any, options: dict[str, Any], result: Within
) -> Iterator[Pair]:
    import numpy as np

    for key_list in (samples.resolved, samples.digest):
        first: dict[Any, int] = {}
        for i in ids.tolist():
            key = key_list[i]
            if key:
                if key in first:
                    yield Pair(first[key], i, 0, "path" if key_list is samples.resolved else "exact")
                else:
                    first[key] = i
    if options["within_split"] != "near" or not options["near_duplicates"]:
        return
    hashed = ids[arrays.has[ids]]
    if len(hashed) > WITHIN_NEAR_LIMIT:
        result.near_skipped = True
        return
    groups = _groups(arrays.phash[hashed])
    unique, order, starts, counts = groups
    reps = hashed[order[starts]]
    # Same hash value: each member against the value's first member.
    multi = np.nonzero(counts > 1)[0]
    members, owner = _expand(groups, multi, int(counts.max()) if len(counts) else 0)
    others = hashed[members]
    leaders = reps[multi][owner]
    keep = others != leaders
    others, leaders = others[keep], leaders[keep]
    sim = arrays.similarity(leaders, others, np.zeros(len(others), dtype=bool))
    for x, y, s in zip(leaders.tolist(), others.tolist(), sim.tolist(), strict=False):
        if s >= options["min_similarity"]:
            yield Pair(x, y, 0, "near", False, round(s, 4))
    key = memo.key("within", hashed)
    stored = memo.get(key)
    if stored is None:
        stored = _verified_within(arrays, reps, unique, options)
        memo.put(key, stored)
    if not bool(stored["complete"]):
        result.near_truncated = True
    x, y = reps[stored["x"]], reps[stored["y"]]
    for xi, yi, di, mi, si in zip(
        x.tolist(), y.tolist(), stored["d"].tolist(), stored["m"].tolist(), stored["s"].tolist(), strict=False
    ):
        yield Pair(xi, yi, di, "near", mi, round(si, 4))


def _verified_within(arrays: _Arrays, reps: Any, unique: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Pairs of distinct hash values (positions into ``reps``) that pass verification."""
    import numpy as np

    mirrors = arrays.mirror[reps] if options["mirrored"] else None
    i, j, d, m, complete = pairs_within(unique, mirrors, options["max_distance"])
    # pairs_within's mirrored flag means mirror(i) ~ j: compare j's thumb with i mirrored.
    sim = arrays.similarity(reps[j], reps[i], m)
    ok = sim >= options["min_similarity"]
    return {"x": i[ok], "y": j[ok], "d": d[ok], "m": m[ok], "s": sim[ok], "complete": np.asarray(complete)}


def _within(samples: Samples, arrays: _Arrays, memo: _Memo, split: int, options: dict[str, Any]) -> Within:
    import numpy as np

    result = Within(split)
    if options["within_split"] == "off":
        return result
    ids = np.nonzero(arrays.split == split)[0]
    union = _UnionFind()
    for pair in _within_edges(samples, arrays, memo, ids, options, result):
        key = (min(pair.a, pair.b), max(pair.a, pair.b))
        if key not in result.edges or result.edges[key].distance > pair.distance:
            result.edges[key] = pair
        union.union(pair.a, pair.b)
    clusters: dict[int, list[int]] = {}
    for member in list(union.parent):
        clusters.setdefault(union.find(member), []).append(member)
    for cluster in sorted(clusters.values(), key=min):
        cluster.sort()
        if len({samples.label[i] for i in cluster}) > 1:
            result.conflicting.append(cluster)
        else:
            result.redundant.append(cluster)
    return result


def memo_for(cache: Any, samples: Samples, options: dict[str, Any]) -> _Memo | None:
    """The search memo of ``cache`` (None without a cache), for later stages to share."""
    return _Memo(cache, samples, options) if cache is not None else None


def analyse(samples: Samples, options: dict[str, Any], cache: Any = None) -> Analysis:
    """Duplicates across and within splits; ``cache`` (a HashCache) memoises searches."""
    arrays = _Arrays(samples)
    memo = _Memo(cache, samples, options)
    count = len(samples.split_names)
    cross = [_cross(samples, arrays, memo, a, b, options) for a in range(count) for b in range(a + 1, count)]
    within = [_within(samples, arrays, memo, s, options) for s in range(count)]
    return Analysis(cross, within, arrays)
