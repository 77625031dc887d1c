"""Safe YAML loading that remembers the line of every key, for error messages.

Two things PyYAML accepts are refused here, because a manifest is read by
people and by auditor's own walks: an alias structure that expands to more
than :data:`MAX_EXPANDED` values (the "billion laughs" file: a few lines that
expand to 10**9 values once anything iterates them), and a key that appears
twice in one mapping (YAML keeps the last one silently). The line-map walk
visits every node once, however often aliases reuse it, so it stays linear in
the size of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["MAX_EXPANDED", "DuplicateKey", "LineMap", "YamlRefused", "load_with_lines"]

KeyPath = tuple[str | int, ...]

#: Values a manifest may expand to through aliases; real manifests hold a few hundred.
MAX_EXPANDED = 100_000


@dataclass(frozen=True)
class DuplicateKey:
    """A key written twice in one mapping: where both stand."""

    path: KeyPath
    first_line: int
    second_line: int


class YamlRefused(ValueError):
    """Parsed YAML that auditor will not use: duplicate keys, or aliases expanding too far."""

    def __init__(self, duplicates: list[DuplicateKey], expanded: int | None = None) -> None:
        self.duplicates = duplicates
        self.expanded = expanded
        parts = [
            f"key {'.'.join(map(str, d.path))!r} on lines {d.first_line} and {d.second_line}"
            for d in duplicates
        ]
        if expanded is not None:
            parts.append(f"aliases expanding to more than {MAX_EXPANDED} values")
        super().__init__("; ".join(parts))


class LineMap:
    """Maps key paths (``("data", "val", "root")``) to 1-based manifest lines."""

    def __init__(self) -> None:
        self._lines: dict[KeyPath, int] = {}

    def set(self, path: KeyPath, line: int) -> None:
        self._lines.setdefault(path, line)

    def line(self, path: KeyPath | str) -> int | None:
        """Line of ``path`` or of its nearest ancestor that exists."""
        if isinstance(path, str):
            path = split_key(path)
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get((), None)


def split_key(dotted: str) -> KeyPath:
    parts: list[str | int] = []
    for part in dotted.split("."):
        if part == "":
            continue
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts)


def load_with_lines(text: str) -> tuple[Any, LineMap]:
    """Parse ``text`` with ``yaml.SafeLoader`` and record where each key stands.

    Raises :class:`YamlRefused` for duplicate keys or an alias bomb, before
    anything is constructed from the nodes.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, LineMap()
        # Walk the composed nodes before construction: merge keys ('<<') are then
        # still separate, so an explicit key overriding a merged one is no duplicate.
        lines = LineMap()
        duplicates: list[DuplicateKey] = []
        _walk(node, (), lines, duplicates, set())
        expanded = _expanded_size(node, {})
        if duplicates or expanded > MAX_EXPANDED:
            raise YamlRefused(duplicates, expanded if expanded > MAX_EXPANDED else None)
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return data, lines


def _walk(
    node: yaml.Node, path: KeyPath, lines: LineMap, duplicates: list[DuplicateKey], seen: set[int]
) -> None:
    lines.set(path, node.start_mark.line + 1)
    if id(node) in seen:
        return  # an alias: its node was walked where the anchor stands
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key != "<<":
                if key in first:
                    duplicates.append(DuplicateKey((*path, key), first[key], line))
                else:
                    first[key] = line
            child = (*path, key)
            # The key's own line is the useful one: a nested mapping starts below it.
            lines.set(child, line)
            _walk(value_node, child, lines, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, duplicates, seen)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values ``node`` stands for once every alias is expanded; linear in the number of nodes."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a recursive alias counts once, and ends the recursion
    total = 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            total += _expanded_size(key_node, sizes) + _expanded_size(value_node, sizes)
            if total > MAX_EXPANDED:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _expanded_size(item, sizes)
            if total > MAX_EXPANDED:
                break
    sizes[id(node)] = total
    return total
