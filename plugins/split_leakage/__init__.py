"""split_leakage: samples shared between splits, exactly or nearly (SL001-SL006), and shared groups (SL008, SL009).

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

from auditor import Audit, AuditContext, Finding, SkipAudit, hookimpl
from auditor_plugins.split_leakage.codes import CODES

VERSION = "1.0.0"


OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "near_duplicates": {
            "type": "boolean",
            "default": True,
            "description": "also look for near duplicates (SL002), not only identical samples",
        },
        "max_distance": {
            "type": "integer",
            "minimum": 0,
            "maximum": 32,
            "default": 8,
            "description": "largest Hamming distance between the 64-bit perceptual hashes of near duplicates",
        },
        "min_similarity": {
            "type": "number",
            "minimum": -1,
            "maximum": 1,
            "default": 0.97,
            "description": "smallest 8x8 thumbnail correlation that confirms a hash match",
        },
        "mirrored": {
            "type": "boolean",
            "default": True,
            "description": "match horizontally flipped copies as near duplicates",
        },
        "geometric": {
            "type": "boolean",
            "default": True,
            "description": "also look for evaluation samples that are crops (keeping >= 70% of each side), "
            "rotations up to 10 degrees, or quarter turns of training samples (SL007); every pair is "
            "checked pixel by pixel before it is reported",
        },
        "model_features": {
            "enum": ["auto", True, False],
            "default": "auto",
            "description": "also search with the model's own penultimate features (a pretrained model "
            "only; never under --static): auto = on a GPU, true = also on CPU (slow: ResNet-50 embeds about "
            "50 images/s at 112 px on 2 cores), false = never; its candidates are checked like the others",
        },
        "model_budget_s": {
            "type": "number",
            "minimum": 0,
            "default": 60,
            "description": "seconds the model stage may embed for; what it did not reach is noted",
        },
        "within_split": {
            "enum": ["near", "exact", "off"],
            "default": "near",
            "description": "duplicates inside one split (SL003/SL004): near and identical, "
            "identical only, or not checked",
        },
        "max_pairs": {
            "type": "integer",
            "minimum": 0,
            "default": 50,
            "description": "pairs (and unreadable files) listed in each finding's evidence",
        },
        "workers": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "processes hashing files (default: every available core); with "
            "--scheduler local, the LocalCluster's worker processes",
        },
        "batch_files": {
            "type": "integer",
            "minimum": 1,
            "default": 256,
            "description": "files read and hashed by one Dask task (with --scheduler)",
        },
    },
}


def run(ctx: AuditContext) -> Iterator[Finding]:
    from auditor_plugins.common.cache_folder import cache_folder
    from auditor_plugins.split_leakage import analysis as leak_analysis
    from auditor_plugins.split_leakage import findings as leak_findings
    from auditor_plugins.split_leakage import groups as leak_groups
    from auditor_plugins.split_leakage.cache import HashCache
    from auditor_plugins.split_leakage.collect import collect, default_workers
    from auditor_plugins.split_leakage.hashing import HASH_VERSION

    started = time.perf_counter()
    options = ctx.options
    splits = ctx.splits
    if not splits or not any(len(split) for split in splits.values()):
        raise SkipAudit("no samples in any split: nothing to compare")
    # Group ids (SL008/SL009) are read before hashing, so a bad one fails fast.
    group_ids = leak_groups.read_groups(ctx)
    folder, cache_state = cache_folder(ctx)
    cache = None
    if folder is not None:
        cache, problem = HashCache.open(folder, HASH_VERSION)
        if problem:
            ctx.note(problem)
            cache_state = problem
    workers = options["workers"] or default_workers()
    scheduler = getattr(ctx.run, "scheduler", None)
    try:
        samples = collect(
            splits,
            cache=cache,
            workers=workers,
            progress=ctx.progress,
            scheduler=scheduler,
            batch_files=options["batch_files"],
        )
        analysis = leak_analysis.analyse(samples, options, cache)
        geometric = None
        if options["geometric"] and options["near_duplicates"]:
            from auditor_plugins.split_leakage.geometric import find_geometric

            memo = leak_analysis.memo_for(cache, samples, options)
            geometric = find_geometric(
                samples,
                analysis.arrays,
                analysis,
                options,
                memo=memo,
                workers=workers,
                progress=ctx.progress,
                suggest=_model_suggestions(ctx, samples, options),
            )
            for note in geometric.notes:
                ctx.note(note)
            for note in dict.fromkeys(_model_notes(geometric.model)):
                ctx.note(note)
    finally:
        if cache is not None:
            cache.close()
    if cache is not None and cache.problem:
        ctx.note(cache.problem)
        cache_state = cache.problem
    base_dir = ctx.manifest.base_dir
    findings = [
        *leak_findings.cross_findings(ctx, samples, analysis, base_dir),
        *(leak_findings.geometric_findings(ctx, samples, geometric, base_dir) if geometric else ()),
        *leak_findings.within_findings(ctx, samples, analysis, base_dir),
        *leak_findings.unreadable_findings(ctx, samples, base_dir),
    ]
    findings.extend(leak_groups.group_findings(ctx, group_ids, base_dir))
    ctx.evidence.update(_summary(samples, analysis, options, cache_state, workers, started))
    ctx.evidence["geometric"] = (
        {**geometric.stats, "pairs": sum(len(p) for p in geometric.pairs.values())}
        if geometric is not None
        else {"skipped": "geometric: false" if not options["geometric"] else "near_duplicates: false"}
    )
    ctx.evidence["scheduler"] = scheduler or "local processes"
    yield from findings


def _model_suggestions(ctx: AuditContext, samples: Any, options: dict[str, Any]) -> Any:
    """The model stage as the geometric stage's candidate source, or None when it may not run."""
    mode = options["model_features"]
    if mode is False:
        return None

    def suggest(train_ids: Any, eval_ids: list[int]) -> Any:
        from auditor_plugins.split_leakage.model_features import ModelStage, model_candidates

        if not ctx.run.has("model"):
            # Decided before anything imports torch: a data-only run stays as light as it was.
            return ModelStage(source="model features", skipped="the run has no model to take features from")
        static = bool(getattr(ctx.run, "static", False))
        if mode == "auto" and not static:  # under --static model_candidates says why it did not run
            import torch

            if not torch.cuda.is_available():
                return ModelStage(
                    source="model features",
                    skipped="no GPU here; model_features: auto runs the model stage on a GPU only "
                    "(model_features: true runs it on CPU too, within model_budget_s)",
                )
        return model_candidates(
            ctx,
            samples,
            [int(i) for i in train_ids],
            eval_ids,
            budget_s=float(options["model_budget_s"]),
            static=static,
            use_cache=bool(getattr(ctx.run, "use_cache", True)),
        )

    return suggest


def _model_notes(stages: list[Any]) -> list[str]:
    """What the model stage did not do, in words: skipped (why) or stopped by its budget."""
    notes = []
    for stage in stages:
        if stage.skipped:
            notes.append(f"model stage of the geometric search skipped: {stage.skipped}")
        elif stage.stopped:
            notes.append(f"model stage of the geometric search stopped: {stage.stopped}")
        if stage.unread:
            notes.append(f"model stage: {len(stage.unread)} image(s) could not be read for features")
    return notes


def _summary(
    samples: Any, analysis: Any, options: dict[str, Any], cache_state: str, workers: int, started: float
) -> dict[str, Any]:
    per_split: dict[str, dict[str, int]] = {}
    for number, name in enumerate(samples.split_names):
        ids = [i for i, s in enumerate(samples.split) if s == number]
        within = analysis.within[number]
        per_split[name] = {
            "samples": len(ids),
            "unreadable": sum(1 for i in ids if samples.error[i]),
            "leaked": sum(
                len(c.same_path) + len(c.exact) + len(c.near) for c in analysis.cross if c.split_b == number
            ),
            "duplicate_groups": len(within.conflicting) + len(within.redundant),
        }
    cross = {
        f"{samples.split_names[c.split_a]}/{samples.split_names[c.split_b]}": {
            "same_path": len(c.same_path),
            "exact": len(c.exact),
            "near": len(c.near),
        }
        for c in analysis.cross
    }
    return {
        "samples": len(samples),
        **samples.stats,
        "hashed": samples.stats["files_hashed"] + samples.stats["in_memory_samples"],
        "cache": cache_state,
        "workers": workers,
        "max_distance": options["max_distance"],
        "min_similarity": options["min_similarity"],
        "per_split": per_split,
        "cross": cross,
        "seconds": round(time.perf_counter() - started, 3),
    }


AUDIT = Audit(
    name="split_leakage",
    version=VERSION,
    prefix="SL",
    codes=CODES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data"}),
    description="identical, near-duplicate, cropped, rotated and turned samples across splits, "
    "duplicates within a split, subjects (group ids) in train and an evaluation split",
    order=20,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
