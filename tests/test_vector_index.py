"""VectorIndex: exact numpy and faiss backends against brute force, padding, bad input, streaming adds."""

from __future__ import annotations

import numpy as np
import pytest

from auditor_plugins.split_leakage.vector_index import VectorIndex


def _faiss_or_skip() -> None:
    pytest.importorskip("faiss", reason="faiss-cpu is the optional leakage-index extra")


def _data(n: int, q: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, dim)).astype(np.float32)
    # Half the queries are near copies of base rows (what leaked images look like), half fresh.
    near = base[rng.choice(n, q // 2, replace=False)] + 0.1 * rng.standard_normal((q // 2, dim))
    queries = np.concatenate([near, rng.standard_normal((q - q // 2, dim))]).astype(np.float32)
    return base, queries


def _brute(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q @ b.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def _index(backend: str, dim: int, **kwargs: object) -> VectorIndex:
    if backend.startswith("faiss"):
        _faiss_or_skip()
        # faiss: exact_below small, so the inverted lists are built even on test-sized data;
        # faiss-exact: faiss's exact search below exact_below.
        kwargs.setdefault("exact_below", 400 if backend == "faiss" else 10**9)
    return VectorIndex(dim, backend=backend.removesuffix("-exact"), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["numpy", "faiss-exact", "faiss"])
def test_agrees_with_brute_force_and_streams(backend):
    base, queries = _data(3000, 200)
    index = _index(backend, 32)
    for start in range(0, len(base), 350):  # uneven streaming chunks, crossing the build point
        index.add(base[start : start + 350])
    assert len(index) == 3000
    ids, sims = index.search(queries, 5)
    want_ids, want_sims = _brute(base, queries, 5)
    assert ids.dtype == np.int64 and sims.dtype == np.float32 and ids.shape == (200, 5)
    if backend != "faiss":
        assert "exact" in index.backend
        assert np.array_equal(ids, want_ids)
        assert np.allclose(sims, want_sims, atol=1e-5)
    else:
        assert index.backend.startswith("faiss ") and "IndexIVFScalarQuantizer" in index.backend
        # Approximate: every near copy's own base row is found, and overall recall@5 is high.
        assert all(want_ids[i, 0] in ids[i] for i in range(100))
        recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, want_ids, strict=True)])
        assert recall > 0.8, recall
        # The similarities are the vectors' cosines (fp16 storage: within 2e-3).
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        rows, cols = np.nonzero(ids >= 0)
        cosines = np.sum(q[rows] * b[ids[rows, cols]], axis=1)
        assert np.allclose(sims[rows, cols], cosines, atol=2e-3)
    # Deterministic: the same adds give the same answer.
    again = _index(backend, 32)
    for start in range(0, len(base), 350):
        again.add(base[start : start + 350])
    assert np.array_equal(again.search(queries, 5)[0], ids)


def test_auto_is_exact_below_the_crossover():
    base, queries = _data(500, 20)
    index = VectorIndex(32)
    index.add(base)
    assert "exact" in index.backend
    assert np.array_equal(index.search(queries, 3)[0], _brute(base, queries, 3)[0])


@pytest.mark.parametrize("backend", ["numpy", "faiss-exact", "faiss"])
def test_pads_with_minus_one_when_k_exceeds_n(backend):
    index = _index(backend, 4)
    index.add(np.eye(4, dtype=np.float32)[:3])
    ids, sims = index.search(np.array([[1, 0.1, 0, 0]], np.float32), 5)
    assert ids.tolist() == [[0, 1, 2, -1, -1]]
    assert np.isneginf(sims[0, 3:]).all() and sims[0, 0] == pytest.approx(1 / np.sqrt(1.01), abs=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "faiss-exact", "faiss"])
def test_empty_inputs(backend):
    index = _index(backend, 8)
    ids, sims = index.search(np.ones((2, 8), np.float32), 3)
    assert ids.tolist() == [[-1, -1, -1]] * 2 and np.isneginf(sims).all()
    index.add(np.zeros((0, 8), np.float32))
    index.add(np.ones((2, 8), np.float32))
    ids, sims = index.search(np.zeros((0, 8), np.float32), 3)
    assert ids.shape == (0, 3) and sims.shape == (0, 3)
    # Equal similarities are ordered by id: the answer does not depend on the backend's internals.
    assert index.search(np.ones((1, 8), np.float32), 2)[0].tolist() == [[0, 1]]


def test_bad_input_is_a_worded_error():
    index = VectorIndex(16)
    with pytest.raises(ValueError, match=r"expected vectors of shape \(n, 16\), got shape \(3, 8\).*dim=16"):
        index.add(np.ones((3, 8), np.float32))
    with pytest.raises(ValueError, match=r"expected vectors of shape \(n, 16\), got shape \(16,\)"):
        index.search(np.ones(16, np.float32), 1)
    with pytest.raises(ValueError, match="row 1 holds NaN"):
        index.add(np.array([[1.0] * 16, [np.nan] * 16], np.float32))
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        index.search(np.ones((1, 16), np.float32), 0)
    with pytest.raises(TypeError, match="expected a 2-D array of numbers, got str"):
        index.add("vectors")
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        VectorIndex(0)
    assert len(index) == 0  # nothing half-added


def test_faiss_backend_without_faiss_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss raises ImportError
    with pytest.raises(ImportError, match=r"auditor\[leakage-index\]"):
        VectorIndex(8, backend="faiss")
    index = VectorIndex(8, exact_below=1)  # auto falls back to exact search
    index.add(np.eye(8, dtype=np.float32))
    assert (
        index.backend == "numpy (exact, blocked)"
        and index.search(np.eye(8, dtype=np.float32)[:1], 1)[0][0, 0] == 0
    )


def test_exact_search_blocks_cover_every_base_vector(monkeypatch):
    from auditor_plugins.split_leakage import vector_index

    monkeypatch.setattr(vector_index, "_BASE_BLOCK", 7)  # many blocks, a ragged last one
    monkeypatch.setattr(vector_index, "_QUERY_BLOCK", 5)
    base, queries = _data(101, 23, dim=6)
    index = VectorIndex(6, backend="numpy")
    index.add(base[:50])
    index.add(base[50:])
    ids, sims = index.search(queries, 4)
    want_ids, want_sims = _brute(base, queries, 4)
    assert np.array_equal(ids, want_ids) and np.allclose(sims, want_sims, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "faiss-exact"])
def test_equal_similarities_are_ordered_by_id_across_blocks(backend, monkeypatch):
    from auditor_plugins.split_leakage import vector_index

    monkeypatch.setattr(vector_index, "_BASE_BLOCK", 7)
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 6)).astype(np.float32)
    # Six rows with the same direction, in several blocks; exactly representable, so every
    # kernel computes a similarity of exactly 1 for each (bit-equal ties).
    base[[0, 5, 12, 13, 30, 39]] = np.eye(6, dtype=np.float32)[0] * 2.0
    index = _index(backend, 6)
    index.add(base)
    ids, sims = index.search(np.eye(6, dtype=np.float32)[:1], 4)
    assert ids.tolist() == [[0, 5, 12, 13]] and np.allclose(sims, 1.0, atol=1e-5)


def test_a_search_with_many_queries_builds_the_inverted_lists_first(monkeypatch):
    _faiss_or_skip()
    from auditor_plugins.split_leakage import vector_index

    monkeypatch.setattr(vector_index, "EXACT_PAIRS", 1000)  # scaled down: 1,000 pairs, not 200M
    monkeypatch.setattr(vector_index, "_ALWAYS_EXACT_BELOW", 500)
    base, queries = _data(2000, 100)
    index = VectorIndex(32)  # exact_below 100k: adds alone would keep it exact
    index.add(base)
    assert "exact" in index.backend
    few = index.search(queries[:0], 5)  # no pairs: nothing built
    assert few[0].shape == (0, 5) and "exact" in index.backend
    ids, _ = index.search(queries, 5)
    assert "IndexIVFScalarQuantizer" in index.backend
    want = _brute(base, queries, 5)[0]
    assert all(want[i, 0] in ids[i] for i in range(50))  # every near copy found
    small = VectorIndex(32)
    small.add(base[:400])  # below the always-exact size: never built
    small.search(queries, 5)
    assert "exact" in small.backend
