"""Turning split_leakage's duplicate pairs into findings with report-ready evidence.

Every finding's evidence has ``count`` and ``pairs``: a list (capped at the
``max_pairs`` option, closest pairs first) of ``{"a": sample, "b": sample,
"distance": int, ...}`` where a sample is ``{"split", "path", "index", "label"}``.
Paths are relative to the manifest's folder when the file lies under it (so the
HTML report can show both images side by side), absolute otherwise, and ``None``
for in-memory samples (then ``index`` identifies the sample).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor import AuditContext, Finding
from auditor_plugins.split_leakage.analysis import Analysis, Cross, Pair, Within
from auditor_plugins.split_leakage.collect import Samples

__all__ = [
    "cross_findings",
    "geometric_findings",
    "relation",
    "sample_ref",
    "unreadable_findings",
    "within_findings",
]


def _display_path(path: str | None, base_dir: Path) -> str | None:
    if path is None or "://" in path:
        return path  # a URL (s3://...) is shown as written
    try:
        relative = os.path.relpath(path, base_dir)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else Path(relative).as_posix()


def sample_ref(samples: Samples, i: int, base_dir: Path) -> dict[str, Any]:
    return {
        "split": samples.split_names[samples.split[i]],
        "path": _display_path(samples.path[i], base_dir),
        "index": samples.index[i],
        "label": samples.label[i],
    }


def _name(ref: dict[str, Any]) -> str:
    return ref["path"] or f"{ref['split']}[{ref['index']}]"


def _pair_evidence(samples: Samples, pair: Pair, base_dir: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "a": sample_ref(samples, pair.a, base_dir),
        "b": sample_ref(samples, pair.b, base_dir),
        "distance": pair.distance,
        "kind": pair.kind,
    }
    if pair.kind == "near":
        entry["mirrored"] = pair.mirrored
        entry["similarity"] = pair.similarity
    return entry


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def cross_findings(
    ctx: AuditContext, samples: Samples, analysis: Analysis, base_dir: Path
) -> Iterator[Finding]:
    for cross in analysis.cross:
        yield from _cross(ctx, samples, cross, base_dir)


def _cross(ctx: AuditContext, samples: Samples, cross: Cross, base_dir: Path) -> Iterator[Finding]:
    limit = ctx.options["max_pairs"]
    a_name, b_name = samples.split_names[cross.split_a], samples.split_names[cross.split_b]
    location = ctx.splits[b_name].location
    checks = (("SL005", cross.same_path), ("SL001", cross.exact), ("SL002", cross.near))
    for code, pairs in checks:
        if not pairs:
            continue
        ordered = sorted(pairs, key=lambda p: (p.distance, -(p.similarity or 1.0), p.b))
        shown = [_pair_evidence(samples, p, base_dir) for p in ordered[:limit]]
        first = _pair_evidence(samples, ordered[0], base_dir)
        first_text = f"{_name(first['b'])} = {_name(first['a'])}"
        evidence: dict[str, Any] = {
            "count": len(pairs),
            "split_a": a_name,
            "split_b": b_name,
            "pairs": shown,
            "pairs_shown": len(shown),
        }
        if code == "SL005":
            verb = "is" if len(pairs) == 1 else "are"
            message = f"{_plural(len(pairs), 'file')} listed in '{b_name}' {verb} also listed in '{a_name}'"
            hint = f"remove them from one of the two splits' listings; first: {first['b']['path']}"
        elif code == "SL001":
            files = sum(1 for p in pairs if samples.path[p.b] is not None)
            kind = "byte-identical" if files == len(pairs) else "identical"
            message = (
                f"{_plural(len(pairs), 'sample')} in '{b_name}' {'is' if len(pairs) == 1 else 'are'} "
                f"{kind} to samples in '{a_name}'"
            )
            hint = f"remove them from one split; first pair: {first_text}"
        else:
            mirrored = sum(1 for p in pairs if p.mirrored)
            evidence["mirrored"] = mirrored
            evidence["max_distance"] = ctx.options["max_distance"]
            verb = "is a near duplicate" if len(pairs) == 1 else "are near duplicates"
            message = (
                f"{_plural(len(pairs), 'sample')} in '{b_name}' {verb} "
                f"of samples in '{a_name}' (perceptual hash distance <= {ctx.options['max_distance']}"
                + (f", {mirrored} mirrored)" if mirrored else ")")
            )
            hint = (
                f"remove or re-split them (group near duplicates before splitting); closest pair: "
                f"{first_text} (distance {ordered[0].distance}"
                + (", mirrored)" if ordered[0].mirrored else ")")
            )
        yield ctx.finding(code, message, hint=hint, location=location, evidence=evidence)


def within_findings(
    ctx: AuditContext, samples: Samples, analysis: Analysis, base_dir: Path
) -> Iterator[Finding]:
    for within in analysis.within:
        yield from _within(ctx, samples, analysis, within, base_dir)


def _cluster_pairs(
    samples: Samples, analysis: Analysis, within: Within, cluster: list[int], conflicting: bool
) -> list[Pair]:
    """Pairs that show a cluster: conflicting -> one pair per other label; else edges."""
    if conflicting:
        leader = cluster[0]
        seen = {samples.label[leader]}
        pairs = []
        for other in cluster[1:]:
            if samples.label[other] in seen:
                continue
            seen.add(samples.label[other])
            pairs.append(_describe_pair(samples, analysis, within, leader, other))
        return pairs
    return [_describe_pair(samples, analysis, within, cluster[0], other) for other in cluster[1:]]


def _describe_pair(samples: Samples, analysis: Analysis, within: Within, a: int, b: int) -> Pair:
    edge = within.edges.get((min(a, b), max(a, b)))
    if edge is not None:
        return Pair(a, b, edge.distance, edge.kind, edge.mirrored, edge.similarity)
    if samples.digest[a] and samples.digest[a] == samples.digest[b]:
        return Pair(a, b, 0, "exact")
    if samples.phash[a] is not None and samples.phash[b] is not None:
        distance, mirrored = analysis.arrays.distance(a, b)
        return Pair(a, b, distance, "near", mirrored)  # linked through other members
    return Pair(a, b, 0, "path")


def _within(
    ctx: AuditContext, samples: Samples, analysis: Analysis, within: Within, base_dir: Path
) -> Iterator[Finding]:
    name = samples.split_names[within.split]
    location = ctx.splits[name].location
    limit = ctx.options["max_pairs"]
    if within.near_skipped:
        ctx.note(
            f"'{name}' is too large for the within-split near-duplicate search; exact duplicates only "
            "(set within_split: exact to say so explicitly)"
        )
    if within.near_truncated:
        ctx.note(
            f"the within-split near-duplicate search of '{name}' stopped at its pair limit: "
            "SL003/SL004 counts are lower bounds"
        )
    if within.conflicting:
        pairs = [
            p
            for cluster in within.conflicting
            for p in _cluster_pairs(samples, analysis, within, cluster, True)
        ]
        members = sum(len(c) for c in within.conflicting)
        shown = [_pair_evidence(samples, p, base_dir) for p in pairs[:limit]]
        first = _pair_evidence(samples, pairs[0], base_dir)
        yield ctx.finding(
            "SL003",
            f"{_plural(len(within.conflicting), 'group')} of duplicates in '{name}' "
            f"({members} samples) carry different labels",
            hint=f"decide the right label and keep one copy; first: {_name(first['a'])} is "
            f"'{first['a']['label']}' but {_name(first['b'])} is '{first['b']['label']}'",
            location=location,
            evidence={
                "count": len(within.conflicting),
                "samples": members,
                "split": name,
                "pairs": shown,
                "pairs_shown": len(shown),
            },
        )
    if within.redundant:
        extra = sum(len(c) - 1 for c in within.redundant)
        pairs = [
            p
            for cluster in within.redundant
            for p in _cluster_pairs(samples, analysis, within, cluster, False)
        ]
        pairs.sort(key=lambda p: (p.distance, p.a, p.b))
        shown = [_pair_evidence(samples, p, base_dir) for p in pairs[:limit]]
        first = _pair_evidence(samples, pairs[0], base_dir)
        yield ctx.finding(
            "SL004",
            f"{_plural(extra, 'sample')} in '{name}' {'duplicates' if extra == 1 else 'duplicate'} "
            f"another sample with the same label ({_plural(len(within.redundant), 'group')})",
            hint=f"duplicates weigh those images more in training; keep one copy of each; first: "
            f"{_name(first['b'])} = {_name(first['a'])}",
            location=location,
            evidence={
                "count": extra,
                "groups": len(within.redundant),
                "split": name,
                "pairs": shown,
                "pairs_shown": len(shown),
            },
        )


def unreadable_findings(ctx: AuditContext, samples: Samples, base_dir: Path) -> Iterator[Finding]:
    limit = max(ctx.options["max_pairs"], 1)
    by_split: dict[int, list[int]] = {}
    for i, error in enumerate(samples.error):
        if error:
            by_split.setdefault(samples.split[i], []).append(i)
    for split, ids in by_split.items():
        name = samples.split_names[split]
        files = [
            {
                "path": _display_path(samples.path[i], base_dir),
                "index": samples.index[i],
                "error": samples.error[i],
            }
            for i in ids[:limit]
        ]
        first = files[0]
        first_name = first["path"] or f"{name}[{first['index']}]"
        what = "file" if samples.path[ids[0]] is not None else "sample"
        yield ctx.finding(
            "SL006",
            f"{_plural(len(ids), what)} in '{name}' could not be read or decoded and "
            f"{'was' if len(ids) == 1 else 'were'} not checked for near duplicates",
            hint=f"the training loader will fail on them too; first: {first_name} ({first['error']})",
            location=ctx.splits[name].location,
            evidence={"count": len(ids), "split": name, "files": files, "files_shown": len(files)},
        )


#: EXIF orientation -> the turn (in geometric._TURNS words) a viewer applies to stored pixels.
_EXIF_TURN = {
    3: "rotate 180",
    6: "rotate 270",
    8: "rotate 90",
    4: "flip vertical",
    5: "transpose",
    7: "transverse",
}
#: What a quarter turn found on the evaluation sample means for how it was made.
_TURN_WORDS = {
    "rotate 90": "turned 90 degrees clockwise",
    "rotate 180": "turned 180 degrees",
    "rotate 270": "turned 90 degrees counter-clockwise",
    "flip vertical": "flipped upside down",
    "transpose": "turned 90 degrees and mirrored (transposed)",
    "transverse": "turned 90 degrees and mirrored (anti-transposed)",
}


def _exif_orientation(path: str | None) -> int | None:
    """The EXIF orientation tag of a local image file (1-8), or None; reads the header only."""
    if path is None or "://" in path:
        return None
    try:
        from PIL import Image

        from auditor.kit import open_regular

        with open_regular(path) as handle, Image.open(handle) as image:
            value = image.getexif().get(0x0112)
    except Exception:
        return None
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else None


def relation(pair: Any, exif: int | None = None) -> str:
    """How evaluation sample ``b`` was made from training sample ``a``, in words."""
    if pair.kind == "turn":
        words = _TURN_WORDS.get(pair.turn or "", "turned")
        if exif is not None and _EXIF_TURN.get(exif) == pair.turn:
            return (
                f"{words}; its EXIF orientation tag ({exif}) turns it back, so a viewer shows the "
                "training picture while the training loader (no EXIF turn) sees turned pixels"
            )
        return words
    parts = []
    x0, y0, _x1, _y1 = pair.region or (0.0, 0.0, 1.0, 1.0)
    if pair.area < 0.97:
        parts.append(f"cropped to {pair.area:.0%} of the area at x={max(0.0, x0):.0%}, y={max(0.0, y0):.0%}")
    if abs(pair.angle) >= 1.0:
        direction = "counter-clockwise" if pair.angle > 0 else "clockwise"
        parts.append(f"rotated by about {abs(pair.angle):.0f} degrees {direction}")
    return ", ".join(parts) or "shifted or rescaled"


def geometric_findings(ctx: AuditContext, samples: Samples, result: Any, base_dir: Path) -> Iterator[Finding]:
    """SL007: evaluation samples that are crops, rotations or quarter turns of training samples."""
    limit = ctx.options["max_pairs"]
    for (split_a, split_b), pairs in result.pairs.items():
        if not pairs:
            continue
        a_name, b_name = samples.split_names[split_a], samples.split_names[split_b]
        ordered = sorted(pairs, key=lambda p: (-p.score, p.b))
        shown = []
        for pair in ordered[:limit]:
            exif = _exif_orientation(samples.path[pair.b]) if pair.kind == "turn" else None
            entry: dict[str, Any] = {
                "a": sample_ref(samples, pair.a, base_dir),
                "b": sample_ref(samples, pair.b, base_dir),
                "distance": 0,
                "kind": pair.kind,
                "similarity": pair.score,
                "relation": relation(pair, exif),
            }
            if pair.region is not None:
                entry["region"] = list(pair.region)
                entry["area"] = pair.area
                entry["angle"] = pair.angle
            if pair.turn is not None:
                entry["turn"] = pair.turn
            if exif is not None:
                entry["exif_orientation"] = exif
            shown.append(entry)
        counts = {kind: sum(1 for p in pairs if p.kind == kind) for kind in ("crop", "rotation", "turn")}
        summary = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items() if n)
        first = shown[0]
        verb = (
            "is a cropped, rotated or turned copy"
            if len(pairs) == 1
            else "are cropped, rotated or turned copies"
        )
        yield ctx.finding(
            "SL007",
            f"{_plural(len(pairs), 'sample')} in '{b_name}' {verb} of samples in '{a_name}' ({summary})",
            hint=(
                "remove them from the evaluation split, or group each picture with its edits before "
                f"splitting; first: {_name(first['b'])} is {_name(first['a'])} {first['relation']}"
            ),
            location=ctx.splits[b_name].location,
            evidence={
                "count": len(pairs),
                "split_a": a_name,
                "split_b": b_name,
                "kinds": counts,
                "features": result.stats.get("features"),
                "pairs": shown,
                "pairs_shown": len(shown),
            },
        )
