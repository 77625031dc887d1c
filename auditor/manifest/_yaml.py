"""Safe YAML loading that remembers the line of every key, for error messages.

Two things PyYAML accepts are refused here, because a manifest is read by
people and by auditor's own walks: an alias structure that expands to more
than :data:`MAX_EXPANDED` values (the "billion laughs" file: a few lines that
expand to 10**9 values once anything iterates them), and a key that appears
twice in one mapping (YAML keeps the last one silently). The line-map walk
visits every node once, however often aliases reuse it, so it stays linear in
the size of the file.

Nesting is bounded too: PyYAML composes nodes recursively, so a file nested a few
thousand levels deep (``[[[[...``) would end in a ``RecursionError``; the composer here
stops at :data:`MAX_DEPTH` levels (as written, and again once aliases are expanded)
with a worded refusal instead. Both walks below are iterative for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["MAX_DEPTH", "MAX_EXPANDED", "DuplicateKey", "LineMap", "YamlRefused", "load_with_lines"]

KeyPath = tuple[str | int, ...]

#: Values a manifest may expand to through aliases; real manifests hold a few hundred.
MAX_EXPANDED = 100_000
#: Levels of nesting a manifest may have (as written and with aliases expanded); real ones use < 10.
MAX_DEPTH = 64


@dataclass(frozen=True)
class DuplicateKey:
    """A key written twice in one mapping: where both stand."""

    path: KeyPath
    first_line: int
    second_line: int


class YamlRefused(ValueError):
    """Parsed YAML that auditor will not use: duplicate keys, or aliases expanding too far."""

    def __init__(
        self,
        duplicates: list[DuplicateKey],
        expanded: int | None = None,
        *,
        depth_line: int | None = None,
        through_aliases: bool = False,
    ) -> None:
        self.duplicates = duplicates
        self.expanded = expanded
        #: Line where nesting passed MAX_DEPTH (None: not too deep).
        self.depth_line = depth_line
        self.through_aliases = through_aliases
        parts = [
            f"key {'.'.join(map(str, d.path))!r} on lines {d.first_line} and {d.second_line}"
            for d in duplicates
        ]
        if expanded is not None:
            parts.append(f"aliases expanding to more than {MAX_EXPANDED} values")
        if depth_line is not None:
            parts.append(f"nesting deeper than {MAX_DEPTH} levels (line {depth_line})")
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


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose (recursive) composer refuses to nest deeper than MAX_DEPTH."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_with_lines(text: str) -> tuple[Any, LineMap]:
    """Parse ``text`` with ``yaml.SafeLoader`` and record where each key stands.

    Raises :class:`YamlRefused` for duplicate keys, an alias bomb or nesting deeper than
    :data:`MAX_DEPTH`, before anything is constructed from the nodes.
    """
    loader = _BoundedLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except _TooDeep as exc:
            raise YamlRefused([], depth_line=exc.line) from None
        if node is None:
            return None, LineMap()
        # Walk the composed nodes before construction: merge keys ('<<') are then
        # still separate, so an explicit key overriding a merged one is no duplicate.
        lines = LineMap()
        duplicates: list[DuplicateKey] = []
        _walk(node, lines, duplicates)
        expanded, depth, distinct = _expanded_size(node)
        # Only what aliases add counts: a long list written out is big, not a bomb.
        too_big = expanded - distinct > MAX_EXPANDED
        if duplicates or too_big or depth > MAX_DEPTH:
            raise YamlRefused(
                duplicates,
                expanded if too_big else None,
                depth_line=node.start_mark.line + 1 if depth > MAX_DEPTH else None,
                through_aliases=depth > MAX_DEPTH,
            )
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return data, lines


def _walk(root: yaml.Node, lines: LineMap, duplicates: list[DuplicateKey]) -> None:
    """Record each key's line and every duplicate key; an explicit stack, so depth costs no recursion."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.set(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue  # an alias: its node was walked where the anchor stands
        seen.add(id(node))
        children: list[tuple[yaml.Node, KeyPath]] = []
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
                children.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*path, index)) for index, item in enumerate(node.value)]
        stack.extend(reversed(children))  # document order: the first line of a key wins


def _expanded_size(root: yaml.Node) -> tuple[int, int, int]:
    """Values ``root`` stands for once every alias is expanded, how deep that nests, and its distinct nodes.

    Linear in the number of nodes (each is summed once, however often aliases reuse it);
    a recursive alias counts once and ends the recursion. Iterative: post-order on a stack.
    """
    done: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in done:
            continue
        kids = _children(node)
        if not children_done:
            if key in open_nodes:
                continue  # reached again through itself (a recursive alias)
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((kid, False) for kid in kids if id(kid) not in done and id(kid) not in open_nodes)
            continue
        total, depth = 1, 1
        for kid in kids:
            size, kid_depth = done.get(id(kid), (1, 1))
            total += size
            depth = max(depth, kid_depth + 1)
        done[key] = (total, depth)
        open_nodes.discard(key)
    return (*done[id(root)], len(done))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
