"""Benchmark: split_leakage against imagededup and cleanvision on planted duplicates.

    .venv/bin/python benchmarks/leakage.py            # everything (tools only when installed)
    .venv/bin/python benchmarks/leakage.py --skip-tools --skip-synthetic

Generates once (cached under benchmarks/.data/, gitignored) 20,000 train and 2,000 val
JPEGs of 256 px -- smooth gradients, blobs, shapes, stripes and sensor-like noise --
with 100 exact and 100 near-duplicate cross-split pairs planted in val (20 of the near
ones mirrored, the others re-encoded, resized or brightened). Then it times auditor's
split_leakage cold (fresh cache) and warm (same data again), and, when the `bench`
extra is installed, imagededup's PHash ``find_duplicates`` and cleanvision's
``Imagelab`` on the same files, printing wall seconds, images/s, recall on the exact
and on the near pairs, and false-positive cross-split pairs.

A second, synthetic benchmark times the pair search alone: 1,000,000 train x 50,000
val random 64-bit hashes (plus planted near pairs), printing time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / ".data" / "leakage-v1"
SIZE = 256
CLASSES = 10
N_TRAIN, N_VAL = 20_000, 2_000
N_EXACT, N_NEAR, N_MIRRORED = 100, 100, 20
DATA_SEED = 20_251_122


# -- data generation -----------------------------------------------------------------


def _render(seed: int) -> Any:
    """One natural-looking 256 px RGB image; deterministic in ``seed``."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    low = 32  # low-frequency content is drawn small and upscaled: cheap and smooth
    yy, xx = np.mgrid[0:low, 0:low].astype(np.float32) / (low - 1)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    ramp = (ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp)))
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    canvas = c0 + (c1 - c0) * ramp[..., None]
    for _ in range(rng.integers(1, 5)):  # soft blobs: lighting, out-of-focus objects
        cx, cy, sigma = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.35)
        weight = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
        canvas += (rng.uniform(-140, 140, 3)) * weight[..., None]
    base = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR)
    pen = ImageDraw.Draw(base)
    for _ in range(rng.integers(2, 14)):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = (int(v) for v in rng.integers(-40, SIZE, 2))
        w, h = (int(v) for v in rng.integers(12, 140, 2))
        kind = rng.integers(0, 5)
        if kind == 0:
            pen.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 1:
            pen.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 2:
            points = [
                tuple(int(v) for v in rng.integers(-20, SIZE + 20, 2)) for _ in range(rng.integers(3, 7))
            ]
            pen.polygon(points, fill=colour)
        elif kind == 3:
            pen.line((x0, y0, x0 + w, y0 + h), fill=colour, width=int(rng.integers(2, 12)))
        else:  # stripes: texture
            step = int(rng.integers(4, 16))
            for offset in range(0, w, step):
                pen.line((x0 + offset, y0, x0 + offset, y0 + h), fill=colour, width=max(1, step // 3))
    blur = float(rng.uniform(0, 2.5))
    if blur > 0.3:
        base = base.filter(ImageFilter.GaussianBlur(blur))
    noise_level = float(rng.uniform(0, 14))
    if noise_level > 1:
        pixels = np.asarray(base, dtype=np.int16)
        noise = rng.normal(0, noise_level, (SIZE // 2, SIZE // 2, 3)).astype(np.int16)
        pixels = pixels + np.repeat(np.repeat(noise, 2, axis=0), 2, axis=1)
        base = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return base


def _write_many(jobs: list[tuple[int, str, int]]) -> int:
    for seed, path, quality in jobs:
        _render(seed).save(path, quality=quality)
    return len(jobs)


def _near_copy(source: Path, target: Path, kind: str, rng: random.Random) -> None:
    from PIL import Image, ImageEnhance, ImageOps

    with Image.open(source) as opened:
        image = opened.convert("RGB")
    if kind == "mirrored":
        image = ImageOps.mirror(image)
        if rng.random() < 0.5:
            image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.9, 1.1))
    elif kind == "resized":
        side = rng.choice([128, 160, 192, 224, 320])
        image = image.resize((side, side), Image.BICUBIC)
    elif kind == "brightened":
        image = ImageEnhance.Brightness(image).enhance(rng.choice([0.85, 0.9, 1.1, 1.15]))
    quality = rng.randint(55, 85)  # every near copy is also re-encoded
    image.save(target, quality=quality)


def generate(root: Path = DATA) -> dict[str, Any]:
    """Write the benchmark data set once; return its ground truth."""
    truth_path = root / "truth.json"
    if truth_path.is_file():
        return json.loads(truth_path.read_text())
    if root.exists():
        shutil.rmtree(root)  # a half-written earlier attempt
    started = time.perf_counter()
    rng = random.Random(DATA_SEED)
    jobs: list[tuple[int, str, int]] = []
    train: list[str] = []
    n_val_own = N_VAL - N_EXACT - N_NEAR
    for split, count in (("train", N_TRAIN), ("val", n_val_own)):
        for c in range(CLASSES):
            (root / split / f"class_{c}").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rel = f"{split}/class_{i % CLASSES}/{split}_{i:05d}.jpg"
            jobs.append((DATA_SEED * 7 + len(jobs), str(root / rel), rng.randint(75, 95)))
            if split == "train":
                train.append(rel)
    chunks = [jobs[i : i + 250] for i in range(0, len(jobs), 250)]
    with ProcessPoolExecutor(max_workers=_cores()) as pool:
        for _done in pool.map(_write_many, chunks):
            pass
    sources = rng.sample(train, N_EXACT + N_NEAR)
    exact, near = [], []
    kinds = ["mirrored"] * N_MIRRORED + [
        ("reencoded", "resized", "brightened")[i % 3] for i in range(N_NEAR - N_MIRRORED)
    ]
    for i, source in enumerate(sources):
        cls = Path(source).parent.name
        if i < N_EXACT:
            rel = f"val/{cls}/leak_exact_{i:03d}.jpg"
            shutil.copyfile(root / source, root / rel)
            exact.append({"val": rel, "train": source})
        else:
            kind = kinds[i - N_EXACT]
            rel = f"val/{cls}/leak_near_{i - N_EXACT:03d}_{kind}.jpg"
            _near_copy(root / source, root / rel, kind, rng)
            near.append({"val": rel, "train": source, "kind": kind})
    truth = {
        "exact": exact,
        "near": near,
        "n_train": N_TRAIN,
        "n_val": N_VAL,
        "generated_in_s": round(time.perf_counter() - started, 1),
    }
    truth_path.write_text(json.dumps(truth, indent=1))
    print(f"generated {N_TRAIN + N_VAL} JPEGs under {root} in {truth['generated_in_s']} s")
    return truth


# -- scoring -------------------------------------------------------------------------


def score(found: Iterable[tuple[str, str]], truth: dict[str, Any]) -> dict[str, Any]:
    """Recall on planted exact/near pairs and false-positive cross-split pairs.

    ``found`` holds unordered pairs of paths relative to the data folder; pairs
    inside one split are ignored (the planted leakage is across splits).
    """
    cross = set()
    for x, y in found:
        if x.split("/")[0] != y.split("/")[0]:
            cross.add(tuple(sorted((x, y))))
    exact = {tuple(sorted((p["val"], p["train"]))) for p in truth["exact"]}
    near = {tuple(sorted((p["val"], p["train"]))) for p in truth["near"]}
    mirrored = {tuple(sorted((p["val"], p["train"]))) for p in truth["near"] if p["kind"] == "mirrored"}
    return {
        "exact_recall": len(cross & exact) / len(exact),
        "near_recall": len(cross & near) / len(near),
        "mirrored_recall": len(cross & mirrored) / max(1, len(mirrored)),
        "false_positive_pairs": len(cross - exact - near),
    }


def _row(name: str, seconds: float, n_images: int, scores: dict[str, Any] | None, note: str = "") -> None:
    if scores is None:
        print(f"{name:<28} {seconds:8.2f} s {n_images / seconds:9.0f} img/s   {note}")
        return
    print(
        f"{name:<28} {seconds:8.2f} s {n_images / seconds:9.0f} img/s   exact recall "
        f"{scores['exact_recall']:6.1%}   near recall {scores['near_recall']:6.1%} "
        f"(mirrored {scores['mirrored_recall']:6.1%})   false-positive pairs {scores['false_positive_pairs']}"
        + (f"   {note}" if note else "")
    )


# -- the contenders ------------------------------------------------------------------


def _write_manifest(root: Path, options: str = "max_pairs: 1000000") -> Path:
    manifest = root / "audit.yaml"
    manifest.write_text(
        "version: 1\nname: leakage-benchmark\ndata:\n"
        "  train: {format: image_folder, root: train}\n  val: {format: image_folder, root: val}\n"
        f"audits:\n  split_leakage: {{{options}}}\nreport: {{formats: [json]}}\n"
    )
    return manifest


def _pairs(outcome: Any, codes: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (p["a"]["path"], p["b"]["path"])
        for f in outcome.findings
        if f.code in codes
        for p in f.evidence["pairs"]
    ]


def run_auditor(root: Path, truth: dict[str, Any], label: str, *, clear_cache: bool) -> dict[str, Any]:
    from auditor.run.api import run_manifest

    manifest = _write_manifest(root)
    if clear_cache:
        shutil.rmtree(root / ".auditor-cache", ignore_errors=True)
    started = time.perf_counter()
    outcome = run_manifest(manifest, only=["split_leakage"], formats=["json"], output_dir=root / ".reports")
    seconds = time.perf_counter() - started
    scores = score(_pairs(outcome, ("SL001", "SL002", "SL005")), truth)
    evidence = next(a["evidence"] for a in outcome.report["audits"] if a["name"] == "split_leakage")
    within = sum(f.evidence["count"] for f in outcome.findings if f.code in ("SL003", "SL004"))
    _row(
        label,
        seconds,
        truth["n_train"] + truth["n_val"],
        scores,
        f"(hashed {evidence['files_hashed']}, cache hits {evidence['cache_hits']}, "
        f"hashing {evidence['hash_seconds']:.2f} s, within-split duplicates {within})",
    )
    return {"seconds": seconds, **scores}


def sweep(root: Path, truth: dict[str, Any]) -> None:
    """Recall and false positives over a grid of thresholds (uses the warm cache)."""
    from auditor.run.api import run_manifest

    print(
        "max_distance min_similarity  exact  near   mirrored  false-positive cross pairs  within-split pairs"
    )
    for distance in (4, 6, 8, 10, 12):
        for similarity in (-1.0, 0.9, 0.95, 0.97, 0.99):
            manifest = _write_manifest(
                root, f"max_pairs: 1000000, max_distance: {distance}, min_similarity: {similarity}"
            )
            outcome = run_manifest(
                manifest, only=["split_leakage"], formats=["json"], output_dir=root / ".reports"
            )
            scores = score(_pairs(outcome, ("SL001", "SL002", "SL005")), truth)
            within = len(_pairs(outcome, ("SL003", "SL004")))
            print(
                f"{distance:>12} {similarity:>14} {scores['exact_recall']:6.1%} {scores['near_recall']:6.1%} "
                f"{scores['mirrored_recall']:8.1%} {scores['false_positive_pairs']:>27} {within:>19}"
            )
    _write_manifest(root)


def _reference_chunk(paths: list[str]) -> list[tuple[bytes, int, int]]:
    """The plain pipeline peers timed: xxh3 of the bytes, dHash of a draft-mode decode."""
    import io

    import numpy as np
    import xxhash
    from PIL import Image

    out = []
    for path in paths:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (32, 32))
            grid = np.asarray(image.convert("L").resize((9, 8), Image.BOX), dtype=np.int16)
        bits = [(grid[:, 1:] > grid[:, :-1]), (grid[:, ::-1][:, 1:] > grid[:, ::-1][:, :-1])]
        direct, mirrored = (int.from_bytes(np.packbits(b).tobytes(), "big") for b in bits)
        out.append((xxhash.xxh3_128_digest(data), direct, mirrored))
    return out


def run_reference(root: Path, truth: dict[str, Any], max_distance: int = 10) -> None:
    """The reference pipeline on the same files and cores: a yardstick for this machine's speed today."""
    import numpy as np

    started = time.perf_counter()
    files = sorted(str(p) for p in root.glob("*/*/*.jpg"))
    chunks = [files[i : i + 256] for i in range(0, len(files), 256)]
    with ProcessPoolExecutor(max_workers=_cores()) as pool:
        hashes = [h for chunk in pool.map(_reference_chunk, chunks) for h in chunk]
    names = [_rel(root, f) for f in files]
    is_val = np.array([n.startswith("val/") for n in names])
    by_digest: dict[bytes, str] = {}
    pairs = []
    for name, (digest, _, _) in zip(names, hashes, strict=False):
        if not name.startswith("val/"):
            by_digest.setdefault(digest, name)
    for name, (digest, _, _) in zip(names, hashes, strict=False):
        if name.startswith("val/") and digest in by_digest:
            pairs.append((name, by_digest[digest]))
    direct = np.array([h[1] for h in hashes], dtype=np.uint64)
    mirrored = np.array([h[2] for h in hashes], dtype=np.uint64)
    train_index = np.flatnonzero(~is_val)
    for v in np.flatnonzero(is_val):  # brute force: 2,000 x 20,000 popcounts
        close = (
            np.minimum(
                np.bitwise_count(direct[train_index] ^ direct[v]),
                np.bitwise_count(direct[train_index] ^ mirrored[v]),
            )
            <= max_distance
        )
        pairs += [(names[v], names[t]) for t in train_index[close]]
    seconds = time.perf_counter() - started
    _row(f"reference (dHash, t={max_distance})", seconds, len(files), score(pairs, truth))


def run_imagededup(root: Path, truth: dict[str, Any]) -> None:
    try:
        from imagededup.methods import PHash
    except ImportError:
        print(f"{'imagededup PHash':<28} not installed (pip install 'auditor[bench]')")
        return
    import logging
    import warnings

    started = time.perf_counter()
    logging.disable(logging.WARNING)  # one line per non-image file (the manifest, the cache)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hasher = PHash(verbose=False)
            workers = _cores()
            encodings = hasher.encode_images(image_dir=str(root), recursive=True, num_enc_workers=workers)
            duplicates = hasher.find_duplicates(
                encoding_map=encodings, max_distance_threshold=10, num_dist_workers=workers
            )
    finally:
        logging.disable(logging.NOTSET)
    seconds = time.perf_counter() - started
    pairs = [(_rel(root, a), _rel(root, b)) for a, others in duplicates.items() for b in others]
    _row("imagededup PHash (t=10)", seconds, truth["n_train"] + truth["n_val"], score(pairs, truth))


def run_cleanvision(root: Path, truth: dict[str, Any]) -> None:
    try:
        from cleanvision import Imagelab
    except ImportError:
        print(f"{'cleanvision Imagelab':<28} not installed (pip install 'auditor[bench]')")
        return
    import contextlib
    import io

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        files = [str(p) for p in sorted(root.glob("*/*/*.jpg"))]
        lab = Imagelab(filepaths=files, verbose=False)
        lab.find_issues({"exact_duplicates": {}, "near_duplicates": {}}, verbose=False)
    seconds = time.perf_counter() - started
    pairs = []
    for issue in ("exact_duplicates", "near_duplicates"):
        for group in lab.info[issue]["sets"]:
            names = [_rel(root, p) for p in group]
            pairs += [(x, y) for i, x in enumerate(names) for y in names[i + 1 :]]
    _row("cleanvision Imagelab", seconds, truth["n_train"] + truth["n_val"], score(pairs, truth))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects taskset / container CPU sets
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _rel(root: Path, path: str) -> str:
    candidate = Path(path)
    return (candidate.relative_to(root) if candidate.is_absolute() else candidate).as_posix()


# -- synthetic search ----------------------------------------------------------------


def synthetic(
    n_train: int = 1_000_000, n_val: int = 50_000, planted: int = 1_000, max_distance: int = 8
) -> None:
    """Pair search alone on random hashes, as the audit runs it (direct + mirrored queries)."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from auditor_plugins.split_leakage.search import search

    rng = np.random.default_rng(7)
    train = rng.integers(0, 2**64 - 1, n_train, dtype=np.uint64, endpoint=True)
    val = rng.integers(0, 2**64 - 1, n_val, dtype=np.uint64, endpoint=True)
    val_mirror = rng.integers(0, 2**64 - 1, n_val, dtype=np.uint64, endpoint=True)
    sources = rng.choice(n_train, planted, replace=False)
    expected = {}
    for slot, source in enumerate(sources):
        flipped = train[source]
        for bit in rng.choice(64, int(rng.integers(0, max_distance + 1)), replace=False):
            flipped ^= np.uint64(1) << np.uint64(bit)
        target = val_mirror if slot % 5 == 0 else val  # every fifth planted pair is mirrored
        target[slot] = flipped
        expected[slot] = int(source)
    started = time.perf_counter()
    unique, inverse = np.unique(train, return_inverse=True)
    queries = np.concatenate([val, val_mirror])
    found: dict[int, set[int]] = {}
    pairs = 0
    for q, r, _ in search(unique, queries, max_distance):
        pairs += len(q)
        for a, b in zip((q % n_val).tolist(), r.tolist(), strict=False):
            found.setdefault(a, set()).add(b)
    seconds = time.perf_counter() - started
    hits = sum(1 for slot, source in expected.items() if int(inverse[source]) in found.get(slot, set()))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"synthetic search {n_train:,} train x {n_val:,} val (+ mirrored), max_distance {max_distance}: "
        f"{seconds:.2f} s, peak RSS {peak_mb:.0f} MB, pairs {pairs}, planted found {hits}/{planted}"
    )


# -- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="where the generated images live")
    parser.add_argument("--skip-tools", action="store_true", help="do not run imagededup / cleanvision")
    parser.add_argument("--skip-synthetic", action="store_true", help="do not run the 1M x 50k search")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="print recall / false positives over a grid of max_distance x min_similarity",
    )
    parser.add_argument("--synthetic-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.synthetic_only:
        synthetic()
        return 0
    if not args.skip_synthetic:
        # First, in a fresh process: Linux keeps the peak RSS across fork/exec, so a
        # child started after the tools loaded torch would report their memory.
        import subprocess

        subprocess.run([sys.executable, __file__, "--synthetic-only"], check=False)
    truth = generate(args.data)
    if args.sweep:
        sweep(args.data, truth)
        return 0
    n = truth["n_train"] + truth["n_val"]
    print(
        f"{n:,} JPEGs ({truth['n_train']:,} train + {truth['n_val']:,} val), {len(truth['exact'])} exact + "
        f"{len(truth['near'])} near planted pairs; {_cores()} cores, load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    cold = run_auditor(args.data, truth, "auditor split_leakage cold", clear_cache=True)
    warm = run_auditor(args.data, truth, "auditor split_leakage warm", clear_cache=False)
    print(f"{'':<28} warm / cold = {warm['seconds'] / cold['seconds']:.1%}")
    run_reference(args.data, truth)
    if not args.skip_tools:
        run_cleanvision(args.data, truth)
        run_imagededup(args.data, truth)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
