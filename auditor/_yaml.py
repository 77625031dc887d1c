"""Safe YAML loading that remembers the line of every key, for error messages."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["LineMap", "load_with_lines"]

KeyPath = tuple[str | int, ...]


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
    """Parse ``text`` with ``yaml.SafeLoader`` and record where each key stands."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, LineMap()
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    lines = LineMap()
    _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, path: KeyPath, lines: LineMap) -> None:
    lines.set(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            # The key's own line is the useful one: a nested mapping starts below it.
            lines.set(child, key_node.start_mark.line + 1)
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)
