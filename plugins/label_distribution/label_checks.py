"""label_distribution's checks of how labels are read: class index maps across splits (LD007), unusable label cells (LD008).

Kept apart from the count statistics in ``label_distribution``: these look at the
mapping from label to class index that training will use, not at how many samples
each class has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding

__all__ = ["index_mismatches", "label_problems"]


def label_problems(ctx: AuditContext) -> Iterator[Finding]:
    """LD008: rows whose label is blank, NaN, unparsable or negative (left out of the split)."""
    for name, split in ctx.splits.items():
        counts, rows = split.label_problems()
        total = sum(counts.values())
        if not total:
            continue
        kinds = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        shown = "; ".join(_row(r) for r in rows[:5])
        column = split.spec.config.get("label_column", "label")
        yield ctx.finding(
            "LD008",
            f"'{name}': {total} row{'s' if total != 1 else ''} of column '{column}' hold{'' if total != 1 else 's'} no usable class label "
            f"({kinds}): {shown}{' ...' if total > 5 else ''}; they are left out of every check",
            hint="fill in or drop these rows; keep integer labels as whole numbers 0..C-1 (a blank cell makes "
            "pandas read the whole column as floats), and never let training turn a missing label into a class",
            location=split.location,
            evidence={
                "split": name,
                "label_column": column,
                "counts": counts,
                "rows": rows[:20],
                "kept": len(split),
            },
        )


def _row(row: dict[str, Any]) -> str:
    where = f"line {row['line']}" if row.get("line") else f"row {row['row']}"
    value = "blank" if row["problem"] == "blank" else f"{row['problem']} {row['value']!r}"
    return f"{where} ({value})"


def index_mismatches(ctx: AuditContext, causes: dict[str, Finding]) -> Iterator[Finding]:
    """LD007: a class that maps to one index in 'train' and another in an evaluation split.

    ``causes``: LD002 findings by split name; a class missing from train shifts the
    indices of every class sorted after it, so LD002 is the root of such an LD007.
    """
    train = ctx.train
    if train is None:
        return
    reference = train.class_index()
    for split in ctx.eval_splits:
        if not len(split):
            continue
        mapping = split.class_index()
        differ = sorted(
            (name, reference[name], index)
            for name, index in mapping.items()
            if name in reference and reference[name] != index
        )
        if not differ:
            continue
        shown = "; ".join(f"'{c}' is {i} in '{split.name}' but {t} in 'train'" for c, t, i in differ[:5])
        more = f" (and {len(differ) - 5} more)" if len(differ) > 5 else ""
        yield ctx.finding(
            "LD007",
            f"'{split.name}' maps {len(differ)} class{'es' if len(differ) != 1 else ''} to different indices than "
            f"'train': {shown}{more}",
            hint="use train's class-to-index map for every split: give each split the same class folders, or build "
            "the map once from train and pass it to the others (override DatasetFolder.find_classes); for "
            "tables, map names with one dictionary built from train",
            location=split.location,
            evidence={
                "split": split.name,
                "mismatches": [{"class": c, "train": t, split.name: i} for c, t, i in differ[:50]],
                "count": len(differ),
            },
            cause=causes.get(split.name),
        )
