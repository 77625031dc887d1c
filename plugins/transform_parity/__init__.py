"""transform_parity: do the pipelines feed the backbone what it was pretrained on? (TP001-TP011)

Each split's transform is read statically (normalization, sizes, random steps,
opaque steps) and then measured on ``samples`` real samples, without running
the model. What the backbone expects comes from ``model.pretrained``, resolved
offline. A split's measurement is reused from the run's cache while nothing it
depends on changed (``_measure_cache``), so a pre-commit re-run decodes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor import Audit, AuditContext, Finding, ManifestError, hookimpl
from auditor_plugins.transform_parity.causes import CAUSES
from auditor_plugins.transform_parity.codes import CODES

VERSION = "1.1.0"


OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "samples": {
            "type": "integer",
            "minimum": 0,
            "default": 64,
            "description": "samples per split pushed through the pipeline (0 disables the measurement)",
        },
        "tolerance": {
            "type": "number",
            "minimum": 0,
            "default": 0.01,
            "description": "largest per-channel mean/std difference still counted as equal",
        },
    },
}

#: Evaluation splits transform this many samples twice to catch opaque random steps.
_DETERMINISM_SAMPLES = 4


def _expected(ctx: AuditContext) -> Any:
    from auditor_plugins.transform_parity.pretrained import PretrainedError, resolve_pretrained

    if not ctx.run.has("model"):
        return None
    value = ctx.run.pretrained
    try:
        return resolve_pretrained(value, ctx.manifest.base_dir)
    except PretrainedError as exc:
        manifest = ctx.manifest
        raise ManifestError(
            manifest.path,
            "model.pretrained",
            "weights that resolve offline",
            exc.found,
            line=manifest.resolver.lines.line("model.pretrained"),
            hint=exc.hint,
        ) from None
    except ImportError as exc:
        ctx.note(str(exc))
        ctx.evidence["expected_error"] = str(exc)
        return None


def run(ctx: AuditContext) -> Iterator[Finding]:
    from auditor_plugins.transform_parity.checks import SplitView, check_all
    from auditor_plugins.transform_parity.contracts import check_contracts
    from auditor_plugins.transform_parity.pipeline import analyze
    from auditor_plugins.transform_parity.processor import check_processor

    expected = _expected(ctx)
    ctx.evidence["expected"] = expected.to_dict() if expected is not None else None
    if expected is None and "expected_error" not in ctx.evidence:
        ctx.note(
            "model.pretrained is not declared: TP001, TP002 and the pretrained-size part of TP005 "
            "were not checked"
        )
    samples = int(ctx.options["samples"])
    splits = ctx.splits
    views: list[SplitView] = []
    total = sum(min(samples, len(s)) for s in splits.values())
    cache, cache_state = _measure_cache(ctx)
    reuse: dict[str, str] = {}
    with ctx.progress("transforming samples", total or None) as task:
        for name, split in splits.items():
            transform = split.transform
            pipe = analyze(transform)
            measured = None
            if samples and len(split):
                determinism = 0 if name == "train" else _DETERMINISM_SAMPLES
                measured, reuse[name] = _measured(
                    cache, cache_state, split, transform, samples, determinism, task.advance
                )
                _notes(ctx, name, measured)
            views.append(SplitView(name, split.location, name == "train", pipe, measured))
    if not samples:
        ctx.note("samples is 0: the empirical pass (TP006, measured sizes) was skipped")
    if reuse:
        ctx.evidence["measurement_cache"] = reuse
    if cache is not None and cache.problem:
        ctx.note(cache.problem)
    _evidence(ctx, views, expected)
    yield from check_all(ctx, views, expected)
    yield from check_processor(ctx, views, expected)
    yield from check_contracts(ctx, views, {name: split.transform for name, split in splits.items()})


def _measure_cache(ctx: AuditContext) -> tuple[Any, str]:
    """The measurement cache (so an unchanged split is not decoded again), or None and why not."""
    from auditor_plugins.common.cache_folder import cache_folder
    from auditor_plugins.transform_parity.measure_cache import MeasureCache

    folder, state = cache_folder(ctx)
    if folder is None:
        return None, f"cache {state}"
    manifest = ctx.manifest
    project = [str(manifest.base_dir), *manifest.resolver.pythonpath]
    return MeasureCache(folder, Path(manifest.path).resolve(), project), state


def _measured(
    cache: Any, cache_state: str, split: Any, transform: Any, samples: int, determinism: int, advance: Any
) -> tuple[Any, str]:
    """The split's measurement, reused when its cache key matches; and ``reused``, ``measured`` or why no cache."""
    from auditor_plugins.transform_parity.stats import measure_split

    def measure() -> Any:
        return measure_split(split, transform, samples, advance=advance, check_determinism=determinism)

    entry = cache.entry(split, transform, samples, determinism) if cache is not None else cache_state
    if isinstance(entry, str):
        return measure(), entry
    reused = cache.load(entry)
    if reused is not None:
        advance(min(samples, len(split)))
        return reused, "reused"
    measured = measure()
    cache.store(entry, measured)
    return measured, "measured"


def _notes(ctx: AuditContext, name: str, measured: Any) -> None:
    if measured.errors:
        first = measured.errors[0]
        ctx.note(
            f"'{name}': the pipeline failed on {len(measured.errors)} of {len(measured.indices)} samples "
            f"(first: sample {first['index']}: {first['error']}); training would crash there"
        )
    others = {t: n for t, n in measured.output_types.items() if not t.startswith(("torch.", "torchvision."))}
    if others and not measured.measured:
        kinds = ", ".join(others)
        ctx.note(
            f"'{name}': the pipeline returns {kinds}, not a tensor; add ToTensor() (or v2.ToImage() + "
            "v2.ToDtype(torch.float32, scale=True)) so batches can reach the model"
        )


def _evidence(ctx: AuditContext, views: list[Any], expected: Any) -> None:
    ctx.evidence["pipelines"] = {v.name: v.pipe.to_dict() for v in views}
    ctx.evidence["side_by_side"] = side_by_side({v.name: v.pipe.lines() for v in views})
    ctx.evidence["measured"] = {v.name: v.measured.to_dict() for v in views if v.measured is not None}
    rows = []
    target = expected is not None and expected.mean is not None
    for view in views:
        m = view.measured
        if m is None or not m.mean:
            continue
        for channel in range(len(m.mean)):
            rows.append(
                {
                    "split": view.name,
                    "channel": channel,
                    "mean": round(m.mean[channel], 4),
                    "std": round(m.std[channel], 4),
                    "min": round(m.min[channel], 4),
                    "max": round(m.max[channel], 4),
                    # Inputs normalized with the pretrained statistics are roughly zero-mean, unit-std.
                    "expected_mean": 0.0 if target else None,
                    "expected_std": 1.0 if target else None,
                }
            )
    ctx.evidence["stats"] = rows


def side_by_side(columns: dict[str, list[str]], width: int = 60) -> str:
    """The pipelines as text columns, one per split, for the report."""
    names = list(columns)
    cells = {
        n: [line if len(line) <= width else line[: width - 3] + "..." for line in columns[n]] for n in names
    }
    widths = {n: max([len(n), *map(len, cells[n])]) for n in names}
    height = max((len(c) for c in cells.values()), default=0)
    lines = [
        " | ".join(n.ljust(widths[n]) for n in names).rstrip(),
        "-+-".join("-" * widths[n] for n in names),
    ]
    for row in range(height):
        lines.append(
            " | ".join(
                (cells[n][row] if row < len(cells[n]) else "").ljust(widths[n]) for n in names
            ).rstrip()
        )
    return "\n".join(lines)


AUDIT = Audit(
    name="transform_parity",
    version=VERSION,
    prefix="TP",
    codes=CODES,
    causes=CAUSES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data"}),
    description="normalization, input size and randomness of each split's pipeline vs the pretrained weights "
    "or the Hugging Face image processor, double rescaling",
    order=30,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
