"""Group leakage: the same subject (patient, video, product) in ``train`` and an evaluation split (SL008, SL009).

No hash sees two different scans of one patient; only the data's own group id can. A split
declares its ids (``group_pattern``, ``group_column``, ``auditor.check(groups=...)`` or a
dataset's ``auditor_groups``; see ``Split.groups``). Every split that is not ``train`` is an
evaluation split: a group id found in ``train`` and in it is a leak (SL008, one finding per
evaluation split). Samples without an id (the pattern did not match, a blank cell) could not
be checked (SL009, one finding per split).

:func:`analyse` and :func:`finding_data` are pure (ids and paths in, findings' words and
evidence out); :func:`group_findings` reads the splits and makes the findings. Independent of
the hashes: it runs with ``near_duplicates: false`` and under ``--static`` alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor import AuditContext, Finding
from auditor.kit import display_path, printable

__all__ = [
    "TRAIN",
    "FindingData",
    "GroupAnalysis",
    "GroupLeak",
    "analyse",
    "finding_data",
    "group_findings",
    "read_groups",
]

#: The split training reads; every other split is evaluated (as the report orders them).
TRAIN = "train"
#: Ids named in a message; the evidence lists up to ``max_pairs`` groups.
IDS_IN_MESSAGE = 5
#: Samples of each side listed per group in the evidence (the counts cover all of them).
SAMPLES_PER_GROUP = 5
#: Characters of one id shown in a message (an id is user data of any length).
ID_CHARS = 40


@dataclass(frozen=True)
class GroupLeak:
    """Groups of one evaluation split that are also in train: id -> sample indices on each side."""

    split: str
    #: (group id, train sample indices, eval sample indices), most eval samples first.
    groups: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]

    @property
    def eval_samples(self) -> int:
        return sum(len(e) for _, _, e in self.groups)

    @property
    def train_samples(self) -> int:
        return sum(len(t) for _, t, _ in self.groups)


@dataclass
class GroupAnalysis:
    """What the ids say: per split counts, leaks into each evaluation split, samples without an id."""

    #: split -> {"groups", "samples", "missing", "source"} for every split with ids.
    per_split: dict[str, dict[str, Any]] = field(default_factory=dict)
    leaks: list[GroupLeak] = field(default_factory=list)
    #: split -> indices of its samples without a group id.
    missing: dict[str, list[int]] = field(default_factory=dict)
    #: Why a comparison could not be made (no train split, train or an evaluation split without ids).
    notes: list[str] = field(default_factory=list)


def read_groups(ctx: AuditContext) -> dict[str, tuple[str, list[str | None]]]:
    """split -> (where its ids come from, one id per sample), for the splits that declare groups.

    Read before any hashing: a wrong group column or a ``groups=`` of the wrong length fails fast.
    """
    found: dict[str, tuple[str, list[str | None]]] = {}
    for name, split in ctx.splits.items():
        ids = split.groups()
        if ids is not None:
            found[name] = (split.grouping() or "groups", ids)
    return found


def analyse(
    split_names: Sequence[str], ids: Mapping[str, tuple[str, Sequence[str | None]]], train: str = TRAIN
) -> GroupAnalysis:
    """Leaks of train's groups into every other split, and the samples without an id."""
    result = GroupAnalysis()
    for name in split_names:
        if name not in ids:
            continue
        source, values = ids[name]
        missing = [i for i, v in enumerate(values) if v is None]
        result.missing[name] = missing
        result.per_split[name] = {
            "source": source,
            "samples": len(values),
            "groups": len({v for v in values if v is not None}),
            "missing": len(missing),
        }
    if not ids:
        return result
    evaluated = [n for n in split_names if n != train]
    if train not in split_names:
        result.notes.append(
            f"group ids are declared but there is no split named '{train}': group leakage (SL008) "
            "compares train with each evaluation split and was not checked"
        )
        return result
    if train not in ids:
        result.notes.append(
            f"'{train}' declares no group ids (group_pattern, group_column or groups=): group leakage "
            f"(SL008) into {', '.join(repr(n) for n in evaluated if n in ids)} was not checked"
        )
        return result
    unchecked = [n for n in evaluated if n not in ids]
    if unchecked:
        result.notes.append(
            f"{', '.join(repr(n) for n in unchecked)} {'declares' if len(unchecked) == 1 else 'declare'} "
            f"no group ids: group leakage (SL008) from '{train}' into "
            f"{'it' if len(unchecked) == 1 else 'them'} was not checked"
        )
    train_index = _index(ids[train][1])
    for name in evaluated:
        if name not in ids:
            continue
        shared = [
            (group, tuple(train_index[group]), tuple(members))
            for group, members in _index(ids[name][1]).items()
            if group in train_index
        ]
        if shared:
            shared.sort(key=lambda g: (-len(g[2]), -len(g[1]), g[0]))
            result.leaks.append(GroupLeak(name, tuple(shared)))
    return result


def _index(values: Sequence[str | None]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        if value is not None:
            index.setdefault(value, []).append(i)
    return index


@dataclass(frozen=True)
class FindingData:
    """One finding's words and evidence, before it is a :class:`Finding`."""

    code: str
    split: str
    message: str
    hint: str
    evidence: dict[str, Any]


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word if count == 1 else word + 's'}"


def _shown_id(value: str) -> str:
    text = printable(value, keep_lines=False)
    return repr(text if len(text) <= ID_CHARS else text[: ID_CHARS - 3] + "...")


#: What ``paths(split)`` gives: each sample's path as reports show it (``None`` for in-memory
#: samples) and its label's name (``None`` when unknown), or ``None`` for either list.
Listing = tuple[Sequence[str | None] | None, Sequence[str | None] | None]


def _sample(split: str, index: int, listing: Listing) -> dict[str, Any]:
    paths, labels = listing
    path = paths[index] if paths is not None and index < len(paths) else None
    label = labels[index] if labels is not None and index < len(labels) else None
    return {"split": split, "path": path, "index": index, "label": label}


def finding_data(
    analysis: GroupAnalysis,
    paths: Callable[[str], Listing],
    max_pairs: int,
    train: str = TRAIN,
) -> list[FindingData]:
    """SL008 per evaluation split with leaked groups, SL009 per split with samples lacking an id.

    ``paths(split)`` gives the split's :data:`Listing` (paths and label names, for the evidence).
    """
    out: list[FindingData] = []
    for leak in analysis.leaks:
        out.append(_leak_data(leak, paths(train), paths(leak.split), max_pairs, train, analysis))
    for name, missing in analysis.missing.items():
        if missing:
            out.append(_missing_data(name, missing, paths(name), max_pairs, analysis))
    return out


def _leak_data(
    leak: GroupLeak,
    train_paths: Listing,
    eval_paths: Listing,
    max_pairs: int,
    train: str,
    analysis: GroupAnalysis,
) -> FindingData:
    name = leak.split
    count = len(leak.groups)
    listed = leak.groups[:max_pairs]
    groups = [
        {
            "group": group,
            "train_count": len(t),
            "eval_count": len(e),
            "train_samples": [_sample(train, i, train_paths) for i in t[:SAMPLES_PER_GROUP]],
            "eval_samples": [_sample(name, i, eval_paths) for i in e[:SAMPLES_PER_GROUP]],
        }
        for group, t, e in listed
    ]
    # One pair per group (a train sample beside an eval sample), in the shape the reports draw.
    pairs = [
        {
            "a": entry["train_samples"][0],
            "b": entry["eval_samples"][0],
            "kind": f"same group {_shown_id(entry['group'])}",
        }
        for entry in groups
    ]
    first = ", ".join(_shown_id(g) for g, _, _ in leak.groups[:IDS_IN_MESSAGE])
    more = ", ..." if count > IDS_IN_MESSAGE else ""
    eval_total = analysis.per_split.get(name, {}).get("samples", 0)
    verb = "is" if count == 1 else "are"
    message = (
        f"{_plural(count, 'group')} of '{name}' ({_plural(leak.eval_samples, 'sample')} of {eval_total:,}) "
        f"{verb} also in '{train}' ({_plural(leak.train_samples, 'sample')}): the same subject is trained "
        f"on and evaluated; groups {first}{more}"
    )
    hint = (
        "split by group, not by sample, so each subject lies in one split only: e.g. scikit-learn's "
        "GroupShuffleSplit(n_splits=1, test_size=0.2).split(X, y, groups=ids) or GroupKFold"
    )
    evidence = {
        "count": count,
        "split_a": train,
        "split_b": name,
        "train_samples": leak.train_samples,
        "eval_samples": leak.eval_samples,
        "groups": groups,
        "groups_shown": len(groups),
        "pairs": pairs,
        "pairs_shown": len(pairs),
        "source": {train: analysis.per_split[train]["source"], name: analysis.per_split[name]["source"]},
    }
    return FindingData("SL008", name, message, hint, evidence)


def _missing_data(
    name: str,
    missing: list[int],
    paths: Listing,
    max_pairs: int,
    analysis: GroupAnalysis,
) -> FindingData:
    info = analysis.per_split[name]
    listed = [_sample(name, i, paths) for i in missing[: max(max_pairs, 1)]]
    shown = ", ".join(
        printable(s["path"], keep_lines=False) if s["path"] else f"{name}[{s['index']}]" for s in listed[:3]
    )
    source = str(info["source"])
    every = len(missing) == info["samples"]
    their = "its" if len(missing) == 1 else "their"
    how = (
        f"the pattern does not match {their} path relative to the split's root"
        if source.startswith("group_pattern")
        else f"{their} group id is blank or missing"
    )
    message = (
        f"{'all ' if every else ''}{_plural(len(missing), 'sample')} of '{name}' "
        f"{'has' if len(missing) == 1 else 'have'} no group id ({printable(source, keep_lines=False)}): "
        f"{how}, so {'it was' if len(missing) == 1 else 'they were'} not checked for group leakage; "
        f"first: {shown}"
    )
    hint = (
        "fix the pattern so its first group matches every sample's relative path (try it with "
        "re.search(pattern, path).group(1)), or give the missing ids"
        if source.startswith("group_pattern")
        else "fill in the missing ids, or leave those samples out of the split"
    )
    evidence = {
        "count": len(missing),
        "split": name,
        "samples": info["samples"],
        "source": source,
        "files": listed,
        "files_shown": len(listed),
    }
    return FindingData("SL009", name, message, hint, evidence)


def _listing(split: Any, base_dir: Path) -> Listing:
    """Paths relative to the manifest's folder when under it (the HTML finds the image), and label names."""
    classes, targets = split.classes(), split.targets()
    labels = [_label(classes, t) for t in targets] if len(targets) == len(split) else None
    strings = split.call(split.path_strings, what=f"listing the files of split {split.name!r}")
    if strings is None:
        return None, labels
    base = os.fspath(base_dir)
    shown: list[str | None] = []
    for path in strings:
        if "://" in path:
            shown.append(path)
            continue
        relative = display_path(path, base)
        shown.append(path if relative.startswith("..") else Path(relative).as_posix())
    return shown, labels


def _label(classes: Sequence[str], target: Any) -> str | None:
    def name(index: Any) -> str:
        return classes[index] if isinstance(index, int) and 0 <= index < len(classes) else str(index)

    if isinstance(target, (list, tuple)):
        return ", ".join(name(t) for t in target)
    return None if target is None else name(target)


def group_findings(
    ctx: AuditContext, ids: Mapping[str, tuple[str, list[str | None]]], base_dir: Path
) -> Iterator[Finding]:
    """SL008/SL009 from the ids :func:`read_groups` read; the audit's evidence gets ``groups``."""
    if not ids:
        return
    splits = ctx.splits
    analysis = analyse(list(splits), ids)
    for note in analysis.notes:
        ctx.note(note)
    cache: dict[str, Listing] = {}

    def paths(name: str) -> Listing:
        if name not in cache:
            cache[name] = _listing(splits[name], base_dir)
        return cache[name]

    data = finding_data(analysis, paths, ctx.options["max_pairs"])
    ctx.evidence["groups"] = {
        "train": TRAIN,
        "per_split": analysis.per_split,
        "shared": {
            f"{TRAIN}/{leak.split}": {"groups": len(leak.groups), "samples": leak.eval_samples}
            for leak in analysis.leaks
        },
    }
    for item in data:
        yield ctx.finding(
            item.code,
            item.message,
            hint=item.hint,
            location=splits[item.split].location,
            evidence=item.evidence,
        )
