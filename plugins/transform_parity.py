"""transform_parity: do the pipelines feed the backbone what it was pretrained on? (TP001-TP006)

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

from auditor import Audit, AuditContext, CodeInfo, Finding, ManifestError, Severity, hookimpl

VERSION = "1.0.0"

CODES = [
    CodeInfo(
        "TP001",
        Severity.ERROR,
        "normalization the pretrained weights expect is missing",
        """
**What it means.** `model.pretrained` says the backbone was trained on inputs
normalized with a mean and std (ImageNet: mean `[0.485, 0.456, 0.406]`, std
`[0.229, 0.224, 0.225]`), but a split's pipeline has no `Normalize` step, and the
measured samples confirm it: values lie in `[0, 1]`.

**Why it breaks training.** Every first-layer filter and every BatchNorm statistic
was learned for zero-centred inputs of unit scale. Unnormalized inputs shift all
activations, the pretrained features degrade to noise, and fine-tuning starts far
from a good solution: slow convergence, a plateau, or - when only evaluation lacks
it - a validation loss far above the training loss.

**How to fix it.** Add `Normalize(mean, std)` with the pretrained statistics right
after the `[0, 1]` scaling step (`ToTensor()`, or `v2.ToDtype(torch.float32,
scale=True)`) in every split. The finding's hint has the exact call.

**Example.** `eval_tf = Compose([Resize(256), CenterCrop(224), ToTensor()])` for
`ResNet50_Weights.IMAGENET1K_V2`: add
`Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])`.
""",
    ),
    CodeInfo(
        "TP002",
        Severity.ERROR,
        "normalization differs from the pretrained weights'",
        """
**What it means.** A pipeline normalizes, but with a mean or std other than the
pretrained weights' (difference above the `tolerance` option, default 0.01, per
channel), or normalizes twice, or with a channel count that does not fit.

**Why it breaks training.** The backbone sees inputs shifted and scaled differently
from everything it was trained on; the effect is the same as a missing
normalization, only smaller - or larger, for double normalization.

**How to fix it.** Use the exact statistics of the weights you load (torchvision:
`weights.transforms()`; timm: `timm.data.resolve_data_config(model=model)`), and
normalize once. A `Normalize` written in 0..255 units after `PILToTensor` is
recognised and is fine.

**Example.** `Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])` for a torchvision ResNet
(expects `[0.485, 0.456, 0.406]` / `[0.229, 0.224, 0.225]`): std off by 0.27.
""",
    ),
    CodeInfo(
        "TP003",
        Severity.ERROR,
        "train and evaluation pipelines normalize differently",
        """
**What it means.** The training split and an evaluation split normalize with
different statistics, or one normalizes and the other does not.

**Why it breaks training.** The model is evaluated on inputs distributed
differently from the ones it learned on: validation loss rises while training loss
falls, and model selection and early stopping follow a wrong signal.

**How to fix it.** Build both pipelines from the same constants (one `MEAN`/`STD`
pair used by both), ideally from one function that adds augmentation for training
only.

**Example.** `train_tf` ends with `Normalize(IMAGENET_MEAN, IMAGENET_STD)`;
`eval_tf` forgot it.
""",
    ),
    CodeInfo(
        "TP004",
        Severity.WARNING,
        "random augmentation in an evaluation pipeline",
        """
**What it means.** An evaluation split's pipeline contains random steps
(`RandomHorizontalFlip`, `RandomResizedCrop`, `ColorJitter`, `RandomApply`, ...),
or - for opaque steps - transforming the same image twice gave different outputs.

**Why it breaks training.** Validation metrics become noisy and pessimistic, so
they change between two evaluations of the same model; early stopping and
checkpoint selection then react to noise.

**How to fix it.** Keep evaluation deterministic: `Resize` + `CenterCrop`, scaling
and `Normalize` only. Test-time augmentation, if wanted, belongs in the evaluation
loop (averaging several fixed views), not in the dataset transform.

**Example.** `eval_tf = Compose([Resize(64), RandomHorizontalFlip(), ToTensor()])`.
""",
    ),
    CodeInfo(
        "TP005",
        Severity.WARNING,
        "input size differs from the pretrained size or between splits",
        """
**What it means.** The measured (or, where nothing could be measured, declared)
height x width of the transformed samples differs from the size the weights were
trained at, or between `train` and an evaluation split, or varies inside one split;
or the channel count does not fit the backbone's stem (grayscale into a 3-channel
network).

**Why it breaks training.** Convolutional features are scale-sensitive: small
inputs shrink objects below the receptive fields the backbone learned, and a
train/eval size gap shifts feature statistics at evaluation. Architectures with a
fixed input size (ViT) fail outright; varying sizes cannot be batched.

**How to fix it.** Train with `RandomResizedCrop(S)` and evaluate with
`Resize(round(S / crop_pct))` + `CenterCrop(S)`, where `S` is the pretrained input
size (224 for most ImageNet weights); convert images to RGB.

**Example.** `RandomResizedCrop(64)` for `ResNet18_Weights.IMAGENET1K_V1`
(224x224).
""",
    ),
    CodeInfo(
        "TP006",
        Severity.WARNING,
        "measured input statistics contradict the declared normalization",
        """
**What it means.** `samples` real samples were pushed through the pipeline and
their per-channel min/max/mean do not fit what the declared normalization can
produce from images scaled to `[0, 1]`: values up to 255, values far outside the
normalized range, or a declared `Normalize` whose output still lies in `[0, 1]`.

**Why it breaks training.** Static checks trust the pipeline's declaration; this is
what the model really receives. Inputs 255 times too large saturate activations and
BatchNorm statistics from the first step - the classic "loss is NaN / outputs are
identical for every input" failure.

**How to fix it.** Scale to `[0, 1]` exactly once, normalize exactly once, and look
at the opaque steps (`Lambda`, custom callables) the finding names: one of them
rescales.

**Example.** `Compose([ToTensor(), Lambda(lambda x: x * 255), Normalize(MEAN,
STD)])`: measured max around 1100.
""",
    ),
]

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
    from auditor_plugins._pretrained import PretrainedError, resolve_pretrained

    if not ctx.run.has("model"):
        return None
    value = ctx.run.pretrained
    try:
        return resolve_pretrained(value)
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
    from auditor_plugins._parity_checks import SplitView, check_all
    from auditor_plugins._pipeline import analyze

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
                measured, reuse[name] = _measured(cache, cache_state, split, transform, samples, determinism,
                                                  task.advance)
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


def _measure_cache(ctx: AuditContext) -> tuple[Any, str]:
    """The measurement cache (so an unchanged split is not decoded again), or None and why not."""
    from auditor_plugins._cache_folder import cache_folder
    from auditor_plugins._measure_cache import MeasureCache

    folder, state = cache_folder(ctx)
    if folder is None:
        return None, f"cache {state}"
    manifest = ctx.manifest
    project = [str(manifest.base_dir), *manifest.resolver.pythonpath]
    return MeasureCache(folder, Path(manifest.path).resolve(), project), state


def _measured(cache: Any, cache_state: str, split: Any, transform: Any, samples: int, determinism: int,
              advance: Any) -> tuple[Any, str]:
    """The split's measurement, reused when its cache key matches; and ``reused``, ``measured`` or why no cache."""
    from auditor_plugins._pipeline_stats import measure_split

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
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data"}),
    description="normalization, input size and randomness of each split's pipeline vs the pretrained weights",
    order=30,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
