"""Cosine k-nearest-neighbour search over feature vectors, in bounded memory.

split_leakage's embedding stage asks, for each evaluation sample's feature vector,
which training vectors are closest. Two backends give the same answer shape:

- **exact** (numpy; faiss's exact ``knn`` when faiss is installed, about twice as fast):
  queries in blocks against the base in blocks, keeping each query's
  running top k, so memory is the vectors plus one ``query block x base block`` matrix
  and its top-k work (about 100 MiB), never ``queries x base``. Always used below
  ``exact_below`` vectors, where it is about as fast as building an approximate index
  (benchmarks/vector_index.py measures the crossover), and everywhere when faiss is not
  installed (the default install).
- **faiss inverted lists** (``pip install 'auditor[leakage-index]'``): once ``exact_below``
  vectors have been added (or a search of more than ``EXACT_PAIRS`` query x base pairs
  comes first, from 20k vectors on), an ``IndexIVFScalarQuantizer`` (fp16 storage: half of
  float32's memory, the same neighbours) is trained on a fixed-seed sample of them; they and every later
  ``add`` go into it and the buffer is freed: 1 KiB per vector of dimension 512 (1M vectors:
  30 s to build, 1.5 GiB peak, about 400 queries/s on 2 cores, every planted near copy found).
  Each query scans the ``nprobe`` closest of ``2 sqrt(N)`` lists.

Results are deterministic: vectors are L2-normalised here; bit-equal similarities are
ordered by the smaller id; the exact path has no randomness; the faiss path trains with
fixed seeds (its k-means and our training sample) on the vectors in the order they were
added (the build point depends only on the counts added and searched), and its assignment
and search are per-vector arg-max computations that do not depend on thread scheduling.
BLAS may round differently on another CPU or thread count, which can move a vector lying
exactly between two lists; within one machine the same input gives the same ids.

Imported only when the audit runs; numpy always, faiss only when present.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["EXACT_BELOW", "VectorIndex", "faiss_version"]

#: Below this many base vectors exact search is used even with faiss installed: it needs no
#: build, and benchmarks/vector_index.py measured it faster than building the inverted lists
#: for a few thousand queries up to about here (2 cores, dimension 512).
EXACT_BELOW = 100_000
#: ...unless one search compares more (query, base) pairs than this: then the inverted lists are
#: built from the buffered vectors first. Measured at 50k base vectors: 2,000 queries take 1.5 s
#: exact and 2.5 s with the build; 20,000 queries 21 s exact and 3 s with the build.
EXACT_PAIRS = 200_000_000
#: Below this many base vectors the exact search is always used (the build's fixed cost).
_ALWAYS_EXACT_BELOW = 20_000
#: Queries and base vectors per block of the exact search: 1024 x 8192 float32 similarities
#: (32 MiB) and their argpartition (64 MiB of int64) at a time.
_QUERY_BLOCK = 1024
_BASE_BLOCK = 8192
#: Inverted lists scanned per query (of ``2 sqrt(N)``): near copies sit in the query's own
#: list or a neighbouring one; the benchmark finds every planted one at 16.
_NPROBE = 16
#: faiss warns below 39 training points per list; 40 per list and 8 k-means rounds train in
#: seconds and place near copies in the same or a probed list as well as more do.
_MIN_PER_LIST, _TRAIN_PER_LIST, _KMEANS_ITERATIONS = 39, 40, 8
_SEED = 1234
#: Neighbours beyond k taken from each block by faiss's exact search, for the id tie rule.
_TIE_MARGIN = 8


def faiss_version() -> str | None:
    """faiss's version when it can be imported, else None."""
    try:
        import faiss
    except ImportError:
        return None
    return str(getattr(faiss, "__version__", "?"))


class VectorIndex:
    """Cosine similarity k-NN over float32 vectors of dimension ``dim``.

    ``backend``: ``"auto"`` (faiss above ``exact_below`` vectors when installed, else exact numpy),
    ``"numpy"`` (always exact) or ``"faiss"`` (raises ImportError when not installed).
    ``expected``: how many vectors will be added in all, when known: it sizes the inverted lists.
    """

    def __init__(
        self,
        dim: int,
        *,
        backend: str = "auto",
        exact_below: int = EXACT_BELOW,
        expected: int | None = None,
    ) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"VectorIndex: dim must be a positive integer, got {dim!r}")
        if backend not in ("auto", "numpy", "faiss"):
            raise ValueError(f"VectorIndex: backend must be 'auto', 'numpy' or 'faiss', got {backend!r}")
        self.dim = dim
        self._faiss_module: Any = None
        if backend != "numpy":
            try:
                import faiss
            except ImportError:
                if backend == "faiss":
                    raise ImportError(
                        "VectorIndex(backend='faiss'): faiss is not installed; "
                        "pip install 'auditor[leakage-index]' (or use backend='auto')"
                    ) from None
            else:
                self._faiss_module = faiss
        self.exact_below = max(1, int(exact_below))
        self.expected = expected
        self._chunks: list[np.ndarray] = []
        self._count = 0
        self._ivf: Any = None
        self._quantizer: Any = None  # faiss does not own it: kept alive here
        self.backend = (
            "numpy (exact, blocked)"
            if self._faiss_module is None
            else f"faiss {faiss_version()} exact knn (blocked), inverted lists from {self.exact_below} vectors"
        )

    def __len__(self) -> int:
        return self._count

    def add(self, vectors: Any) -> None:
        """Add vectors; their ids continue from the previous ones (0, 1, ...)."""
        x = self._prepare(vectors, "add")
        if not len(x):
            return
        if self._ivf is not None:
            self._ivf.add(x)
        else:
            self._chunks.append(x)
        self._count += len(x)
        if self._ivf is None and self._faiss_module is not None and self._count >= self.exact_below:
            self._build_ivf()

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids ``[q, k]`` int64, similarities ``[q, k]`` float32), best first.

        Where fewer than ``k`` neighbours exist the row is padded with id -1 and similarity -inf.
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"VectorIndex.search: k must be a positive integer, got {k!r}")
        q = self._prepare(queries, "search")
        ids = np.full((len(q), k), -1, np.int64)
        sims = np.full((len(q), k), -np.inf, np.float32)
        if not len(q) or not self._count:
            return ids, sims
        if (
            self._ivf is None
            and self._faiss_module is not None
            and self._count >= min(self.exact_below, _ALWAYS_EXACT_BELOW)
            and len(q) * self._count > EXACT_PAIRS
        ):
            self._build_ivf()  # many queries: the build pays for itself (the same vectors, same seeds)
        if self._ivf is not None:
            found_sims, found_ids = self._ivf.search(q, k)
            ids[:] = found_ids
            sims[:] = np.where(found_ids >= 0, found_sims, -np.inf)
            _tie_order(ids, sims)
            return ids, sims
        for start in range(0, len(q), _QUERY_BLOCK):
            block_ids, block_sims = self._exact(q[start : start + _QUERY_BLOCK], k)
            ids[start : start + len(block_ids)] = block_ids
            sims[start : start + len(block_ids)] = block_sims
        return ids, sims

    def _prepare(self, vectors: Any, what: str) -> np.ndarray:
        try:
            x = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"VectorIndex.{what}: expected a 2-D array of numbers, got {type(vectors).__name__} ({exc})"
            ) from None
        if x.ndim == 2 and x.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"VectorIndex.{what}: expected vectors of shape (n, {self.dim}), got shape {x.shape}; "
                f"the index was created with dim={self.dim}"
            )
        if not np.isfinite(x).all():
            bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise ValueError(f"VectorIndex.{what}: row {bad} holds NaN or infinity; features must be finite")
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        # A zero vector stays zero: similarity 0 to everything rather than NaN.
        return np.ascontiguousarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float32)

    def _exact(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss_module
        best_ids = np.full((len(q), 0), -1, np.int64)
        best_sims = np.full((len(q), 0), -np.inf, np.float32)
        offset = 0
        for chunk in self._chunks:
            for start in range(0, len(chunk), _BASE_BLOCK):
                block = chunk[start : start + _BASE_BLOCK]
                if faiss is not None:
                    # faiss's exact k-NN: twice numpy's speed (no block-sized argpartition). A few
                    # extra neighbours so equal similarities at the cut are still ordered by id.
                    take = min(k + _TIE_MARGIN, len(block))
                    sims, top = faiss.knn(q, block, take, metric=faiss.METRIC_INNER_PRODUCT)
                else:
                    # Negated in place: argpartition then needs no second block-sized copy.
                    neg = q @ block.T
                    np.negative(neg, out=neg)
                    take = min(k, len(block))
                    if take < len(block):
                        top = np.argpartition(neg, take - 1, axis=1)[:, :take]
                    else:
                        top = np.broadcast_to(np.arange(len(block)), neg.shape)
                    sims = -np.take_along_axis(neg, top, axis=1)
                cand_ids = np.concatenate([best_ids, top + (offset + start)], axis=1)
                cand_sims = np.concatenate([best_sims, sims], axis=1)
                best_ids, best_sims = _top(cand_ids, cand_sims, k)
            offset += len(chunk)
        if best_ids.shape[1] < k:  # fewer base vectors than k
            pad = k - best_ids.shape[1]
            best_ids = np.concatenate([best_ids, np.full((len(q), pad), -1, np.int64)], axis=1)
            best_sims = np.concatenate([best_sims, np.full((len(q), pad), -np.inf, np.float32)], axis=1)
        return best_ids, best_sims

    def _build_ivf(self) -> None:
        faiss = self._faiss_module
        buffered = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        total = max(self._count, self.expected or 0)
        # 2 sqrt(N) lists, not faiss's usual 4 sqrt(N): training and assigning N vectors cost
        # N x lists, a query scans nprobe x N / lists; this balances the two for tens of thousands
        # of queries, and a near copy is found all the same (benchmarks/vector_index.py).
        nlist = max(1, min(int(2 * math.sqrt(total)), len(buffered) // _MIN_PER_LIST))
        rng = np.random.default_rng(_SEED)
        size = min(len(buffered), nlist * _TRAIN_PER_LIST)
        sample = buffered[np.sort(rng.choice(len(buffered), size, replace=False))]
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = _SEED
        index.cp.niter = _KMEANS_ITERATIONS
        index.train(sample)
        index.nprobe = min(nlist, _NPROBE)
        for start in range(0, len(buffered), 65_536):
            index.add(buffered[start : start + 65_536])
        self._quantizer, self._ivf = quantizer, index
        self._chunks = []
        self.backend = (
            f"faiss {faiss_version()} IndexIVFScalarQuantizer (fp16, {nlist} lists, nprobe {index.nprobe})"
        )


def _top(ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row, by similarity then smaller id (deterministic ties)."""
    if ids.shape[1] > k:
        # Keep a margin beyond k so equal similarities at the cut are ordered by id below.
        cut = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(sims, cut, axis=1).min(axis=1, keepdims=True)
        if np.any(np.sum(sims >= kth, axis=1) > k):  # ties at the cut: order the whole row
            cut = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        ids, sims = np.take_along_axis(ids, cut, axis=1), np.take_along_axis(sims, cut, axis=1)
    _tie_order(ids, sims)
    return np.ascontiguousarray(ids[:, :k]), np.ascontiguousarray(sims[:, :k])


def _tie_order(ids: np.ndarray, sims: np.ndarray) -> None:
    """Sort each row in place by similarity (descending), then id (ascending; -1 padding last)."""
    unsigned = np.where(ids < 0, np.iinfo(np.int64).max, ids)
    order = np.lexsort((unsigned, -sims.astype(np.float64)), axis=1)
    ids[:] = np.take_along_axis(ids, order, axis=1)
    sims[:] = np.take_along_axis(sims, order, axis=1)
