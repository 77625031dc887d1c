"""split_leakage: samples shared between splits, exactly or nearly (SL001-SL006).

How it works (details in docs/split_leakage.md):

1. Every sample is hashed once: xxh3-128 of the file bytes (exact copies), a 64-bit
   DCT perceptual hash of a 32x32 grayscale thumbnail from a reduced JPEG decode,
   the same hash of the mirrored thumbnail (flipped copies), and an 8x8 thumbnail.
   Files are hashed in worker processes and cached in SQLite (keyed by resolved
   path, size, mtime_ns and hash version), so a second run reads no image bytes.
   Callable datasets are hashed from their decoded samples (tensors and arrays by
   dtype, shape and bytes; PIL images by pixels).
2. Pairs within ``max_distance`` bits are found with multi-index hashing (no
   all-pairs comparison) and confirmed by thumbnail correlation >= ``min_similarity``.
3. Pairs across splits are leakage (SL005 same file, SL001 identical, SL002 near);
   duplicates within a split are SL003 (labels differ) or SL004 (same label).

Defaults were chosen on benchmarks/leakage.py (22,000 JPEGs, 100 exact + 100 near
planted pairs): every near copy (re-encoded, resized, brightened, mirrored) was at
distance <= 4 with thumbnail correlation >= 0.995; no unrelated cross-split pair was
closer than distance 6, and no unrelated pair within distance 8 correlated above
0.955. ``max_distance: 8`` and ``min_similarity: 0.97`` gave 100 % recall on both
kinds and no false-positive pair (``benchmarks/leakage.py --sweep`` prints the grid).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from auditor import Audit, AuditContext, CodeInfo, Finding, Severity, SkipAudit, hookimpl

VERSION = "1.0.0"

CODES = [
    CodeInfo("SL001", Severity.ERROR, "identical samples in two splits", """
**What it means.** A sample of one split is byte-for-byte the same file as a sample
of another split (xxh3-128 of the file bytes), or, for datasets without files, the
same decoded tensor/array (dtype, shape and values) or the same PIL pixels.

**Why it breaks training.** Evaluation on data the model has trained on measures
memorisation, not generalisation: validation loss looks healthy while the model
overfits, early stopping and model selection follow a flattering signal, and the
test score overstates what the model will do on new data.

**How to fix it.** Deduplicate before splitting (hash the files, keep one copy per
hash), then split; or delete the copies from the evaluation split. The finding's
evidence lists the pairs (capped at `max_pairs`), its `count` gives the total.

**Example.** `val/cat/leak_01.jpg` is a copy of `train/cat/0981.jpg`, made when the
dataset was re-split by copying files instead of moving them.
"""),
    CodeInfo("SL002", Severity.WARNING, "near-duplicate samples in two splits", """
**What it means.** A sample of one split is a re-encoded, resized, lightly edited
(brightness, contrast) or horizontally flipped copy of a sample in another split:
their 64-bit perceptual hashes differ in at most `max_distance` bits (default 8) and
their 8x8 thumbnails correlate at `min_similarity` (default 0.97) or more. Mirrored
copies are matched through the hash of the mirrored thumbnail. On the benchmark
(benchmarks/leakage.py: 22,000 JPEGs, 100 planted near copies, 20 of them mirrored)
these defaults found every copy (recall 100 %) with no false-positive pair
(precision 100 %); crops and rotations are not detected.

**Why it breaks training.** The model sees the evaluation image during training up
to augmentation it was trained to ignore (resizing, flips, colour jitter), so the
evaluation score is inflated exactly as with identical copies (SL001), but no
byte comparison can see it.

**How to fix it.** Group near duplicates before splitting (e.g. put each group's
members in the same split), or remove the copies from the evaluation split. Lower
`max_distance` or raise `min_similarity` if a reported pair is not a copy; set
`near_duplicates: false` to check identical samples only.

**Example.** `val/dog/img_77.jpg` is `train/dog/img_12.jpg` mirrored and saved
again at JPEG quality 70: distance 2, mirrored, similarity 0.996.
"""),
    CodeInfo("SL003", Severity.WARNING, "duplicates in one split with different labels", """
**What it means.** Inside one split, copies of the same sample (same file listed
twice, identical bytes, or near duplicates as in SL002) carry different labels.

**Why it breaks training.** The same input is asked to produce two answers: the loss
cannot reach zero on those samples, gradients pull in opposite directions, and in
an evaluation split at least one of the copies is always counted wrong. It usually
means a labelling error or an image filed into two class folders.

**How to fix it.** Decide the correct label, keep one copy, and check how the copy
happened (a scraper saving the same image under two queries, a merge of two
datasets with different class names).

**Example.** `train/cat/123.jpg` and `train/dog/456.jpg` are the same photo.
"""),
    CodeInfo("SL004", Severity.INFO, "duplicates in one split with the same label", """
**What it means.** Inside one split, several copies of the same sample (identical,
or near duplicates as in SL002) carry the same label.

**Why it breaks training.** Not an error, but duplicates weigh those images more
than the others (an implicit over-sampling), and in an evaluation split they count
the same answer several times. Many duplicates shrink the effective data set.

**How to fix it.** Keep one copy of each group unless the repetition is deliberate
(e.g. oversampling a rare class, which a weighted sampler does more cleanly).

**Example.** `train/cat/0001.jpg` and `train/cat/0001 (1).jpg`, a download saved twice.
"""),
    CodeInfo("SL005", Severity.ERROR, "the same file listed in two splits", """
**What it means.** Two splits list the same file (after resolving `..`, symlinks and
relative roots), typically two CSV files that were not split disjointly.

**Why it breaks training.** Every such sample is trained on and evaluated on: the
evaluation score partly measures memorisation (see SL001).

**How to fix it.** Make the listings disjoint, e.g. split the table once with a
fixed seed and write each part out, or split by a group key (patient, video, user).

**Example.** `train.csv` and `val.csv` both contain `images/0042.jpg`.
"""),
    CodeInfo("SL006", Severity.INFO, "files that cannot be read or decoded", """
**What it means.** Some files of a split are missing, unreadable, empty, truncated,
corrupt or not images PIL can open (for datasets without files: samples that fail
to load or have no hashable type). They are still compared by content hash where
their bytes could be read, but not for near duplicates.

**Why it breaks training.** The training loader will raise on them in the middle of
an epoch (or a `try/except` in a dataset silently skips them, changing the data).

**How to fix it.** Delete or re-download the files, or fix the paths in the listing;
`PIL.Image.open(path).load()` reproduces the error. The evidence lists the files.

**Example.** `train/cat/0007.jpg` ends after 4 KB (an interrupted download):
"cannot decode: OSError: image file is truncated".
"""),
]

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "near_duplicates": {"type": "boolean", "default": True,
                            "description": "also look for near duplicates (SL002), not only identical "
                                           "samples"},
        "max_distance": {"type": "integer", "minimum": 0, "maximum": 32, "default": 8,
                         "description": "largest Hamming distance between the 64-bit perceptual hashes "
                                        "of near duplicates"},
        "min_similarity": {"type": "number", "minimum": -1, "maximum": 1, "default": 0.97,
                           "description": "smallest 8x8 thumbnail correlation that confirms a hash match"},
        "mirrored": {"type": "boolean", "default": True,
                     "description": "match horizontally flipped copies as near duplicates"},
        "within_split": {"enum": ["near", "exact", "off"], "default": "near",
                         "description": "duplicates inside one split (SL003/SL004): near and identical, "
                                        "identical only, or not checked"},
        "max_pairs": {"type": "integer", "minimum": 0, "default": 50,
                      "description": "pairs (and unreadable files) listed in each finding's evidence"},
        "workers": {"type": ["integer", "null"], "minimum": 1, "default": None,
                    "description": "processes hashing files (default: every available core)"},
    },
}


def run(ctx: AuditContext) -> Iterator[Finding]:
    from auditor_plugins import _leakage_analysis, _leakage_findings
    from auditor_plugins._cache_folder import cache_folder
    from auditor_plugins._leakage_cache import HashCache
    from auditor_plugins._leakage_collect import collect, default_workers
    from auditor_plugins._leakage_hashing import HASH_VERSION

    started = time.perf_counter()
    options = ctx.options
    splits = ctx.splits
    if not splits or not any(len(split) for split in splits.values()):
        raise SkipAudit("no samples in any split: nothing to compare")
    folder, cache_state = cache_folder(ctx)
    cache = None
    if folder is not None:
        cache, problem = HashCache.open(folder, HASH_VERSION)
        if problem:
            ctx.note(problem)
            cache_state = problem
    workers = options["workers"] or default_workers()
    try:
        samples = collect(splits, cache=cache, workers=workers, progress=ctx.progress)
        analysis = _leakage_analysis.analyse(samples, options, cache)
    finally:
        if cache is not None:
            cache.close()
    if cache is not None and cache.problem:
        ctx.note(cache.problem)
        cache_state = cache.problem
    base_dir = ctx.manifest.base_dir
    findings = [
        *_leakage_findings.cross_findings(ctx, samples, analysis, base_dir),
        *_leakage_findings.within_findings(ctx, samples, analysis, base_dir),
        *_leakage_findings.unreadable_findings(ctx, samples, base_dir),
    ]
    ctx.evidence.update(_summary(samples, analysis, options, cache_state, workers, started))
    yield from findings


def _summary(samples: Any, analysis: Any, options: dict[str, Any], cache_state: str, workers: int,
             started: float) -> dict[str, Any]:
    per_split: dict[str, dict[str, int]] = {}
    for number, name in enumerate(samples.split_names):
        ids = [i for i, s in enumerate(samples.split) if s == number]
        within = analysis.within[number]
        per_split[name] = {
            "samples": len(ids),
            "unreadable": sum(1 for i in ids if samples.error[i]),
            "leaked": sum(len(c.same_path) + len(c.exact) + len(c.near) for c in analysis.cross
                          if c.split_b == number),
            "duplicate_groups": len(within.conflicting) + len(within.redundant),
        }
    cross = {f"{samples.split_names[c.split_a]}/{samples.split_names[c.split_b]}":
             {"same_path": len(c.same_path), "exact": len(c.exact), "near": len(c.near)}
             for c in analysis.cross}
    return {
        "samples": len(samples), **samples.stats,
        "hashed": samples.stats["files_hashed"] + samples.stats["in_memory_samples"],
        "cache": cache_state, "workers": workers,
        "max_distance": options["max_distance"], "min_similarity": options["min_similarity"],
        "per_split": per_split, "cross": cross, "seconds": round(time.perf_counter() - started, 3),
    }


AUDIT = Audit(
    name="split_leakage",
    version=VERSION,
    prefix="SL",
    codes=CODES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data"}),
    description="identical and near-duplicate samples across splits, duplicates within a split",
    order=20,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
