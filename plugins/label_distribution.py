"""label_distribution: class balance, coverage and drift across splits, class index maps and label cells (LD001-LD008).

Counting labels decodes no image: formats read labels from folder names,
table columns or dataset attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from auditor import Audit, AuditContext, CodeInfo, Finding, Severity, hookimpl

VERSION = "1.0.0"

CODES = [
    CodeInfo("LD001", Severity.WARNING, "training classes are imbalanced", """
**What it means.** The largest training class has more than `max_imbalance_ratio`
(default 10) times as many samples as the smallest one.

**Why it breaks training.** With an unweighted loss the cheapest way to lower it is
to predict the majority class. A binary model then sits at the majority prior (or
near 0.5 for every minority sample), and accuracy looks fine while recall on the
rare class is close to zero.

**How to fix it.** Weight the loss by inverse class frequency
(`w_c = N / (C * n_c)`), or for a binary `BCEWithLogitsLoss` set
`pos_weight = n_negative / n_positive`; or draw batches with a
`WeightedRandomSampler`; or collect more minority samples. The finding's hint
gives the exact numbers for your data. Note that `BCELoss(weight=...)` rescales
each *element* of the batch, it is not a class weight.

**Example.** 900 `cat` and 60 `dog` images: ratio 15.0, weights
`[0.533, 8.0]`, so `CrossEntropyLoss(weight=torch.tensor([0.533, 8.0]))`.
"""),
    CodeInfo("LD002", Severity.ERROR, "evaluation class missing from train", """
**What it means.** A class has samples in an evaluation split but none in `train`.

**Why it breaks training.** The model can never predict a class it was not trained
on, so every such sample counts as an error. With one-folder-per-class datasets it is
worse: class indices are assigned per folder listing, so a missing class shifts the
index of every class after it, and the evaluation labels no longer mean what the
model's outputs mean.

**How to fix it.** Add training samples for the class, or remove it from the
evaluation split; make sure every split maps class names to the same indices
(for ImageFolder, the same set of sub-folders in every split).

**Example.** `val/zebra/` exists but `train/zebra/` does not: `val`'s `zebra` is
index 3 while the model's output 3 was trained as another class.
"""),
    CodeInfo("LD003", Severity.WARNING, "class proportions drift between splits", """
**What it means.** The class proportions of an evaluation split differ from those of
`train` by more than `max_label_drift` in total variation distance
(`TVD = 1/2 * sum_c |p_train(c) - p_eval(c)|`, between 0 and 1).

**Why it breaks training.** Validation loss and accuracy are then measured on a
different label prior than the one the model learns; they can rise or fall for
reasons that have nothing to do with the model, and early stopping or model
selection follows the wrong signal.

**How to fix it.** Split with stratification (e.g. scikit-learn's
`train_test_split(..., stratify=labels)`), or report per-class metrics and
re-weight the evaluation to the deployment prior.

**Example.** `train` is 50/50 cat/dog, `val` is 90/10: TVD 0.40.
"""),
    CodeInfo("LD004", Severity.WARNING, "imbalanced data with an unweighted loss", """
**What it means.** The training classes are imbalanced (see LD001), the loss has no
class weighting (`weight` for `CrossEntropyLoss`/`NLLLoss`, `pos_weight` for
`BCEWithLogitsLoss`) and the manifest declares no balancing sampler
(`data.train.sampler`).

**Why it breaks training.** Nothing counteracts the imbalance, so the optimum of
the loss leans to the majority class: the classic "outputs stuck at the prior /
0.5" symptom of fine-tuning on skewed data.

**How to fix it.** Pass the class weights from the hint to the loss, or declare
`sampler: weighted` when the training script uses a `WeightedRandomSampler`.
`BCELoss(weight=...)` does not count: that weight rescales batch elements.

**Example.** `loss: {factory: torch.nn:CrossEntropyLoss, kwargs: {weight: ...}}` is
built in code, e.g. `mypkg.train:make_loss` returning
`CrossEntropyLoss(weight=torch.tensor([0.53, 8.0]))`.
"""),
    CodeInfo("LD005", Severity.WARNING, "class with too few training samples", """
**What it means.** A training class has fewer than `min_samples_per_class`
(default 10) samples.

**Why it breaks training.** A handful of examples is too few for the head to learn
a decision boundary; the class is memorised or ignored, and its validation metrics
are noise.

**How to fix it.** Collect more samples, merge the class with a related one, or use
heavy augmentation and a balanced sampler for it.

**Example.** `train/otter/` holds 4 images.
"""),
    CodeInfo("LD006", Severity.ERROR, "empty split or single training class", """
**What it means.** A split has no samples at all, or `train` holds a single class.

**Why it breaks training.** An empty split crashes or silently skips evaluation; a
single training class gives a constant target, so the loss reaches zero by
predicting that class for every input and nothing is learned.

**How to fix it.** Check the split's path and format options (wrong `root`, wrong
column, image extensions the loader skips), and that the training data holds every
class.

**Example.** `data.val.root: data/valid` while the folder is `data/val`.
"""),    CodeInfo("LD007", Severity.ERROR, "a class maps to different indices in different splits", """
**What it means.** The same class name has one index in `train` and another in an
evaluation split. torchvision's `ImageFolder`/`DatasetFolder` index the sorted class
folders *of each split separately*, and tables whose label names are factorized per
split do the same: when one split lacks a class (or has an extra one), every class
sorted after it shifts. auditor reads the index map from `class_to_idx` when a dataset
has one, else from the split's class list.

**Why it breaks training.** Evaluation scores every shifted class against the wrong
output: accuracy collapses for those classes (or looks like noise), although the model
may be fine. Nothing crashes.

**How to fix it.** Use train's map for every split: give every split the same class
folders, or build the map once from train and pass it to the others (override
`find_classes` of a `DatasetFolder` subclass to return train's `classes` and
`class_to_idx`); for tables, map label names with one dictionary built from train.

**Example.** `train/` holds `cat/ dog/ fox/`, `val/` only `cat/ fox/`: `fox` is 2 in
train but 1 in val.
"""),
    CodeInfo("LD008", Severity.ERROR, "blank, NaN or unparsable class labels", """
**What it means.** Some rows of a table (CSV or Parquet) have a label cell that is blank,
NaN, not a whole number in an integer label column, or negative. auditor leaves these
rows out of its checks and lists how many there are and the first of them (with their
line in the CSV).

**Why it breaks training.** Training code turns them into something: `int(nan)` crashes,
`astype(str)` makes a class named `'nan'`, a factorize makes class `-1` (an index
`CrossEntropyLoss` rejects, or on CUDA a device-side assert), and one blank cell makes
pandas read an integer column as floats, so labels become `'0.0'`, `'1.0'` and are
mapped to the wrong indices when treated as names.

**How to fix it.** Fill in or drop the rows listed; keep integer labels as whole
numbers `0..C-1`; when reading with pandas, check `df[label].isna().sum() == 0` before
training.

**Example.** `img/0007.jpg,` (empty label) in a CSV whose other labels are `0`, `1`, `2`.
"""),
]

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_imbalance_ratio": {"type": "number", "exclusiveMinimum": 1, "default": 10,
                                "description": "largest/smallest training class count above which LD001 fires"},
        "min_samples_per_class": {"type": "integer", "minimum": 1, "default": 10},
        "max_label_drift": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.15,
                            "description": "total variation distance between train and an evaluation split"},
    },
}

#: Loss attributes that carry a class weighting when set.
_WEIGHT_ATTRIBUTES = ("pos_weight", "class_weight", "class_weights", "alpha")


def total_variation(p: Mapping[str, int], q: Mapping[str, int]) -> float:
    """Total variation distance between two count tables (0 = identical proportions)."""
    p_total, q_total = sum(p.values()), sum(q.values())
    if not p_total or not q_total:
        return 0.0
    return 0.5 * sum(abs(p.get(c, 0) / p_total - q.get(c, 0) / q_total) for c in set(p) | set(q))


def inverse_frequency_weights(counts: Mapping[str, int]) -> dict[str, float]:
    """``w_c = N / (C * n_c)``: weights average to 1 over samples; zero-count classes excluded."""
    present = {c: n for c, n in counts.items() if n > 0}
    total = sum(present.values())
    return {c: round(total / (len(present) * n), 4) for c, n in present.items()}


def run(ctx: AuditContext) -> Iterator[Finding]:
    splits = ctx.splits
    counts: dict[str, dict[str, int]] = {}
    sizes: dict[str, int] = {}
    for name, split in splits.items():
        sizes[name] = len(split)
        label_counts = split.label_counts()
        # Declared classes with no sample still count (as zero): they are the rare ones.
        counts[name] = {c: label_counts.get(c, 0) for c in split.classes()} | label_counts
    ctx.evidence["counts"] = counts
    ctx.evidence["sizes"] = sizes
    ctx.evidence["task"] = ctx.task.type
    from auditor_plugins._label_checks import index_mismatches, label_problems

    yield from label_problems(ctx)

    for name, size in sizes.items():
        if size == 0:
            yield ctx.finding(
                "LD006", f"split '{name}' is empty",
                hint=f"check {splits[name].location} (path, root, columns, file extensions)",
                location=splits[name].location, evidence={"split": name},
            )
    train = ctx.train
    if train is None or sizes.get("train", 0) == 0:
        return
    train_counts = counts["train"]
    present = {c: n for c, n in train_counts.items() if n > 0}
    multilabel = train.multilabel
    if len(present) == 1 and not multilabel:
        only = next(iter(present))
        yield ctx.finding(
            "LD006", f"'train' holds a single class ('{only}', {present[only]} samples)",
            hint="a constant target teaches nothing; check that every class folder or label is included",
            location=train.location, evidence={"split": "train", "classes": list(present)},
        )
        return

    yield from _imbalance(ctx, train_counts, present, sizes["train"], multilabel)
    coverage = list(_coverage_and_drift(ctx, counts))
    yield from coverage
    yield from index_mismatches(ctx, {f.evidence["split"]: f for f in coverage if f.code == "LD002"})


def _imbalance(ctx: AuditContext, train_counts: dict[str, int], present: dict[str, int],
               train_size: int, multilabel: bool) -> Iterator[Finding]:
    options = ctx.options
    location = ctx.train.location if ctx.train else "data.train"
    for name, count in sorted(train_counts.items()):
        if count < options["min_samples_per_class"]:
            yield ctx.finding(
                "LD005", f"class '{name}' has {count} training sample{'s' if count != 1 else ''} "
                f"(minimum {options['min_samples_per_class']})",
                hint="collect more samples, merge the class, or oversample it with a weighted sampler",
                location=location, evidence={"class": name, "count": count,
                                             "min_samples_per_class": options["min_samples_per_class"]},
            )
    largest = max(present, key=lambda c: present[c])
    smallest = min(present, key=lambda c: present[c])
    ratio = present[largest] / present[smallest]
    ctx.evidence["imbalance_ratio"] = round(ratio, 4)
    if ratio <= options["max_imbalance_ratio"]:
        return
    weights = inverse_frequency_weights(present)
    ordered = [weights[c] for c in sorted(present, key=lambda c: list(train_counts).index(c))]
    evidence: dict[str, Any] = {
        "counts": train_counts, "ratio": round(ratio, 4), "largest": largest, "smallest": smallest,
        "class_weights": weights,
    }
    task = ctx.task.type
    if multilabel:
        pos_weight = {c: round((train_size - n) / n, 4) for c, n in present.items()}
        evidence["pos_weight"] = pos_weight
        hint = ("per-label pos_weight for BCEWithLogitsLoss: "
                f"torch.tensor({[pos_weight[c] for c in present]}) (order {list(present)})")
    elif task == "binary" and len(present) == 2:
        negative, positive = present  # the two keys, in insertion order
        pos_weight = round(present[negative] / present[positive], 4)
        evidence["pos_weight"] = pos_weight
        hint = (f"BCEWithLogitsLoss(pos_weight=torch.tensor([{pos_weight}])) with '{positive}' as the "
                f"positive class; or CrossEntropyLoss(weight=torch.tensor({ordered}))")
    else:
        hint = (f"CrossEntropyLoss(weight=torch.tensor({ordered})) (inverse class frequency, in class-index "
                "order), or a WeightedRandomSampler")
    yield ctx.finding(
        "LD001", f"'{largest}' has {present[largest]} training samples, '{smallest}' {present[smallest]}: "
        f"ratio {ratio:.1f} > {options['max_imbalance_ratio']}",
        hint=hint, location=location, evidence=evidence,
    )
    weighted, how = _loss_is_weighted(ctx)
    if weighted is False:
        yield ctx.finding(
            "LD004", f"training data is imbalanced (ratio {ratio:.1f}) but {how}",
            hint=hint + "; or declare `sampler: weighted` on data.train if a balancing sampler is used",
            location="loss", evidence={"ratio": round(ratio, 4), "loss": how, **{k: evidence[k] for k in
                                       ("class_weights", "pos_weight") if k in evidence}},
        )
    elif weighted is None and how:
        ctx.note(how)


def _loss_is_weighted(ctx: AuditContext) -> tuple[bool | None, str]:
    """(True, _) weighted; (False, description) unweighted; (None, note) cannot tell."""
    train = ctx.train
    if train is not None and train.spec.config.get("sampler"):
        return True, ""
    if not ctx.run.has("loss"):
        return None, "LD004 not checked: the manifest declares no loss"
    loss = ctx.run.loss
    name = type(loss).__name__
    module = type(loss).__module__
    for attribute in _WEIGHT_ATTRIBUTES:
        if getattr(loss, attribute, None) is not None:
            return True, ""
    if name == "BCELoss":
        # BCELoss's `weight` rescales batch elements; it is never a class weight.
        return False, "the loss is BCELoss, whose `weight` rescales batch elements, not classes"
    if getattr(loss, "weight", None) is not None:
        return True, ""
    if module.startswith("torch.nn"):
        return False, f"the loss {name} has no class weighting and no weighted sampler is declared"
    return None, f"LD004 not checked: cannot tell whether the custom loss {name} weights classes"


def _coverage_and_drift(ctx: AuditContext, counts: dict[str, dict[str, int]]) -> Iterator[Finding]:
    train_counts = counts["train"]
    trained = {c for c, n in train_counts.items() if n > 0}
    drift: dict[str, float] = {}
    for split in ctx.eval_splits:
        eval_counts = counts[split.name]
        if not sum(eval_counts.values()):
            continue
        missing = sorted(c for c, n in eval_counts.items() if n > 0 and c not in trained)
        if missing:
            shown = ", ".join(f"'{c}'" for c in missing[:10])
            yield ctx.finding(
                "LD002", f"{len(missing)} class{'es' if len(missing) != 1 else ''} in '{split.name}' never "
                f"appear{'s' if len(missing) == 1 else ''} in 'train': {shown}",
                hint="add training samples for them or drop them from the evaluation split; check that every "
                "split maps class names to the same indices",
                location=split.location,
                evidence={"split": split.name, "classes": missing,
                          "samples": {c: eval_counts[c] for c in missing}},
            )
        distance = total_variation(train_counts, eval_counts)
        drift[split.name] = round(distance, 4)
        if distance > ctx.options["max_label_drift"]:
            proportions = {
                name: {c: round(n / max(1, sum(table.values())), 4) for c, n in table.items()}
                for name, table in (("train", train_counts), (split.name, eval_counts))
            }
            # sorted: on a tie the same class is named every run (set order varies per process)
            worst = max(sorted(set(train_counts) | set(eval_counts)),
                        key=lambda c: abs(proportions["train"].get(c, 0) - proportions[split.name].get(c, 0)))
            yield ctx.finding(
                "LD003", f"class proportions of '{split.name}' differ from 'train': total variation distance "
                f"{distance:.3f} > {ctx.options['max_label_drift']}",
                hint=f"split with stratification; the largest gap is '{worst}' "
                f"({proportions['train'].get(worst, 0):.1%} in train vs "
                f"{proportions[split.name].get(worst, 0):.1%} in {split.name})",
                location=split.location,
                evidence={"split": split.name, "distance": round(distance, 4), "proportions": proportions},
            )
    ctx.evidence["label_drift"] = drift


AUDIT = Audit(
    name="label_distribution",
    version=VERSION,
    prefix="LD",
    codes=CODES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data"}),
    description="class balance in train, classes missing from train, label drift between splits",
    order=10,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
