"""Cosine k-NN indexes for split_leakage's embedding stage: faiss-cpu, usearch, hnswlib and exact numpy.

Every configuration runs in its own subprocess (so its peak RSS is its own) on the same
data: ``--base`` vectors of dimension 512, L2-normalised, drawn from a low-rank mixture
(like CNN features: a few hundred effective dimensions, clustered), and ``--queries``
queries of which half are near copies of base vectors (cosine about 0.9: what a leaked
crop looks like in feature space) and half are fresh draws. Printed per configuration:
build time, query time, recall@5 against exact brute force (all queries, and the near
copies' own base vector found in the top 5), and peak RSS above the data itself.

    .venv/bin/python benchmarks/vector_index.py --base 20000 200000 --queries 2000
    .venv/bin/python benchmarks/vector_index.py --base 1000000 --only numpy faiss-ivf-sq8

Threads are held to 2 (the machine these numbers are quoted for has 2 cores). Libraries
that are not installed are left out with a line saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

DIM = 512
K = 5
THREADS = 2
_KEEP: list[Any] = []

CONFIGS = [
    "numpy",  # auditor's exact blocked fallback (VectorIndex without a library)
    "auditor",  # VectorIndex as shipped (exact below its crossover, faiss IVF above)
    "auditor-ivf",  # VectorIndex's faiss inverted lists at any N (to find the crossover)
    "faiss-flat",
    "faiss-hnsw",
    "faiss-hnsw-sq8",
    "faiss-ivf",
    "faiss-ivf-fp16",
    "faiss-ivf-sq8",
    "hnswlib",
    "usearch-f32",
    "usearch-f16",
    "usearch-i8",
]


def make_data(n: int, q: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base vectors, queries, and for each query the base row it copies (-1: a fresh draw)."""
    rng = np.random.default_rng(seed)
    latent, clusters = 96, 200
    mix = rng.standard_normal((latent, DIM)).astype(np.float32) / np.sqrt(latent)
    centres = rng.standard_normal((clusters, latent)).astype(np.float32) * 1.5
    base = np.empty((n, DIM), np.float32)
    for start in range(0, n, 100_000):  # bounded temporaries at 1M
        stop = min(n, start + 100_000)
        z = centres[rng.integers(0, clusters, stop - start)] + rng.standard_normal((stop - start, latent))
        x = z.astype(np.float32) @ mix + 0.05 * rng.standard_normal((stop - start, DIM)).astype(np.float32)
        base[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
    copies = q // 2
    source = np.full(q, -1, np.int64)
    source[:copies] = rng.choice(n, copies, replace=False)
    z = centres[rng.integers(0, clusters, q - copies)] + rng.standard_normal((q - copies, latent))
    fresh = z.astype(np.float32) @ mix + 0.05 * rng.standard_normal((q - copies, DIM)).astype(np.float32)
    near = base[source[:copies]] + 0.33 * rng.standard_normal((copies, DIM)).astype(np.float32) / np.sqrt(DIM)
    queries = np.concatenate([near, fresh]).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return base, queries, source


def _rss_mib(field: str = "VmRSS") -> float:
    # VmHWM, not getrusage: ru_maxrss survives exec and would report the parent's peak.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _build(name: str, base: np.ndarray) -> tuple[Any, Any]:
    """(index, search function queries -> ids) for one configuration."""
    n = len(base)
    if name in ("numpy", "auditor", "auditor-ivf"):
        from auditor_plugins.split_leakage.vector_index import VectorIndex

        backend = {"numpy": "numpy", "auditor": "auto", "auditor-ivf": "faiss"}[name]
        options = {"exact_below": 1} if name == "auditor-ivf" else {}
        index = VectorIndex(DIM, backend=backend, **options)
        for start in range(0, n, 50_000):  # streaming adds, as the audit does
            index.add(base[start : start + 50_000])
        return index, lambda qs: index.search(qs, K)[0]
    if name.startswith("faiss"):
        import faiss

        faiss.omp_set_num_threads(THREADS)
        nlist = int(4 * np.sqrt(n))
        metric = faiss.METRIC_INNER_PRODUCT
        if name == "faiss-flat":
            index = faiss.IndexFlatIP(DIM)
        elif name == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(DIM, 32, metric)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 64
        elif name == "faiss-hnsw-sq8":
            index = faiss.IndexHNSWSQ(DIM, faiss.ScalarQuantizer.QT_8bit, 32, metric)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 64
        else:
            quantizer = faiss.IndexFlatIP(DIM)
            if name == "faiss-ivf":
                index = faiss.IndexIVFFlat(quantizer, DIM, nlist, metric)
            else:
                kind = (
                    faiss.ScalarQuantizer.QT_fp16 if name.endswith("fp16") else faiss.ScalarQuantizer.QT_8bit
                )
                index = faiss.IndexIVFScalarQuantizer(quantizer, DIM, nlist, kind, metric)
            _KEEP.append(quantizer)  # faiss does not own it: keep it alive
            rng = np.random.default_rng(1)
            sample = base[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))]
            index.train(sample)
            index.nprobe = 16
        if not index.is_trained:
            index.train(base)
        for start in range(0, n, 50_000):
            index.add(base[start : start + 50_000])
        return index, lambda qs: index.search(qs, K)[1]
    if name == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="ip", dim=DIM)
        index.init_index(max_elements=n, ef_construction=100, M=16, random_seed=0)
        index.set_num_threads(THREADS)
        for start in range(0, n, 50_000):
            stop = min(n, start + 50_000)
            index.add_items(base[start:stop], np.arange(start, stop))
        index.set_ef(64)
        return index, lambda qs: index.knn_query(qs, k=K)[0].astype(np.int64)
    if name.startswith("usearch"):
        from usearch.index import Index

        index = Index(ndim=DIM, metric="cos", dtype=name.split("-")[1], connectivity=16)
        for start in range(0, n, 50_000):
            stop = min(n, start + 50_000)
            index.add(np.arange(start, stop), base[start:stop], threads=THREADS)
        return index, lambda qs: index.search(qs, K, threads=THREADS).keys.astype(np.int64)
    raise ValueError(name)


def child(name: str, folder: Path) -> dict[str, Any]:
    base = np.load(folder / "base.npy")
    queries = np.load(folder / "queries.npy")
    source = np.load(folder / "source.npy")
    truth = np.load(folder / "truth.npy")
    floor = _rss_mib()
    started = time.perf_counter()
    try:
        index, search = _build(name, base)
    except ImportError as exc:
        return {"name": name, "missing": str(exc)}
    built = time.perf_counter() - started
    started = time.perf_counter()
    ids = search(queries)
    queried = time.perf_counter() - started
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(ids, truth, strict=True))
    copies = source >= 0
    found = int(np.sum([source[i] in ids[i] for i in np.flatnonzero(copies)]))
    peak = _rss_mib("VmHWM")
    return {
        "name": name,
        "backend": getattr(index, "backend", type(index).__name__),
        "build_s": built,
        "query_s": queried,
        "recall": hits / truth.size,
        "copies_found": found / max(1, int(copies.sum())),
        "peak_mib": peak - floor,
    }


def exact_truth(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    out = np.empty((len(queries), K), np.int64)
    for start in range(0, len(queries), 64):  # 64 x 1M similarities: 256 MiB
        sims = queries[start : start + 64] @ base.T
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[start : start + 64] = np.take_along_axis(top, order, axis=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--only", nargs="+", choices=CONFIGS, default=CONFIGS)
    parser.add_argument("--child", nargs=2, metavar=("NAME", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "OPENBLAS_NUM_THREADS": str(THREADS)}
    print(f"dim {DIM}, k {K}, {args.queries} queries (half near copies), {THREADS} threads")
    header = f"{'N':>9} {'config':<16} {'build s':>8} {'query s':>8} {'q/s':>8} {'recall@5':>9} {'copies@5':>9} {'peak MiB':>9}"
    print(header)
    for n in args.base:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            base, queries, source = make_data(n, args.queries)
            np.save(folder / "base.npy", base)
            np.save(folder / "queries.npy", queries)
            np.save(folder / "source.npy", source)
            np.save(folder / "truth.npy", exact_truth(base, queries))
            del base, queries
            for name in args.only:
                done = subprocess.run(
                    [sys.executable, __file__, "--child", name, tmp],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                if done.returncode != 0:
                    print(f"{n:>9} {name:<16} failed: {done.stderr.strip().splitlines()[-1:]}")
                    continue
                row = json.loads(done.stdout.strip().splitlines()[-1])
                if "missing" in row:
                    print(f"{n:>9} {name:<16} not installed ({row['missing']})")
                    continue
                print(
                    f"{n:>9} {name:<16} {row['build_s']:8.2f} {row['query_s']:8.2f} "
                    f"{args.queries / max(row['query_s'], 1e-9):8.0f} {row['recall']:9.3f} "
                    f"{row['copies_found']:9.3f} {row['peak_mib']:9.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
