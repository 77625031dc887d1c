"""Group ids of a split's samples: the subject (patient, video, product) each sample belongs to.

A split declares where its ids come from with ``group_pattern`` (a regular expression
searched in each sample's path relative to the split's root; its first capturing group
is the id) or, for formats that hold a table, ``group_column``; ``auditor.check`` takes
them as ``groups=`` or from the dataset. Here are the checks ``auditor validate`` runs on
those keys (no sample is read, torch is not imported) and the one way ids are made plain:
text, with blank cells, NaN and unmatched paths as ``None`` (no id: the sample cannot be
checked). Whole floats become integers, so that a column read as ``3.0`` (pandas turns an
integer column with a blank cell into floats) and one read as ``3`` name the same group.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from auditor._util.printable import printable

if TYPE_CHECKING:  # pragma: no cover
    from auditor.data.splits import DataFormat, SplitSpec
    from auditor.errors import ManifestError

__all__ = ["GROUP_PROPERTIES", "check_group_keys", "ids_from_pattern", "plain_id", "plain_ids"]

#: The split keys that declare groups, common to every format (the schema's part of it).
GROUP_PROPERTIES: dict[str, Any] = {
    "group_pattern": {
        "type": "string",
        "minLength": 1,
        "description": (
            "regular expression searched in each sample's path relative to the split's root ('/' "
            "separators); its first capturing group is the sample's group id (patient, video, "
            "product), e.g. 'patient_(\\d+)/'. split_leakage reports groups in train and an evaluation "
            "split, and samples the pattern does not match"
        ),
    },
    "group_column": {
        "type": "string",
        "minLength": 1,
        "description": (
            "table formats only: the column holding each sample's group id (patient, video, product); "
            "split_leakage reports groups in train and an evaluation split, and blank cells"
        ),
    },
}

_EXAMPLE = "e.g. 'patient_(\\d+)/' (the id is what the parentheses match)"


def check_group_keys(spec: SplitSpec, fmt: DataFormat) -> Iterable[ManifestError]:
    """``group_pattern`` compiles and captures; ``group_column`` only where the format reads a table."""
    config = spec.config
    pattern = config.get("group_pattern")
    column = config.get("group_column")
    if isinstance(pattern, str):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            yield spec.error(
                "group_pattern",
                "a regular expression (Python's re syntax) with a capturing group",
                f"'{printable(pattern)}', which does not compile: {exc}",
                hint=f"escape literal brackets and dots with a backslash; {_EXAMPLE}",
            )
        else:
            if compiled.groups < 1:
                yield spec.error(
                    "group_pattern",
                    "a regular expression with at least one capturing group (its first group is the id)",
                    f"'{printable(pattern)}', which has no capturing group",
                    hint=f"put parentheses around the part of the path that names the group; {_EXAMPLE}",
                )
    if isinstance(column, str):
        if "group_column" not in fmt.properties:
            yield spec.error(
                "group_column",
                "group_column only in a split read from a table (format 'csv')",
                f"group_column in a split of format {fmt.name!r}, which has no columns",
                hint="use group_pattern: a regular expression whose first group picks the id out of each "
                f"sample's path relative to the split's root, {_EXAMPLE}",
            )
        elif isinstance(pattern, str):
            yield spec.error(
                "group_column",
                "one source of group ids: group_column or group_pattern",
                "both",
                hint="keep the one that names the subject; the other would be ignored",
            )


def plain_id(value: Any) -> str | None:
    """A group id as text; ``None`` for a missing one (None, NaN, a blank string)."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        with contextlib.suppress(TypeError, ValueError):
            value = item()  # a numpy or torch scalar
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    text = str(value)
    return text if text.strip() else None


def plain_ids(values: Iterable[Any]) -> list[str | None]:
    """:func:`plain_id` of each value."""
    return [plain_id(v) for v in values]


def ids_from_pattern(pattern: re.Pattern[str], relative_paths: Sequence[str]) -> list[str | None]:
    """The first group of ``pattern`` searched in each path; ``None`` where it does not match."""
    search = pattern.search
    ids: list[str | None] = []
    for path in relative_paths:
        match = search(path)
        value = match.group(1) if match is not None else None
        ids.append(value if value else None)
    return ids
