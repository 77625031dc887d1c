"""Errors that end a run with exit code 2, worded for the person who must fix them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["AuditorError", "ManifestError", "ManifestInvalid", "PluginError", "UsageError"]


class AuditorError(Exception):
    """Base class: the command cannot run as asked (exit code 2)."""

    exit_code = 2


class UsageError(AuditorError):
    """The command line is wrong."""


class PluginError(AuditorError):
    """Plugins conflict or declare something invalid."""


class ManifestError(AuditorError):
    """One problem in a manifest: where it is, what was expected, what was found."""

    def __init__(
        self,
        file: Path | str,
        key: str,
        expected: str,
        found: str,
        *,
        line: int | None = None,
        hint: str = "",
    ) -> None:
        self.file = str(file)
        self.key = key or "(top level)"
        self.expected = expected
        self.found = found
        self.line = line
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.key}: expected {self.expected}, found {self.found}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ManifestInvalid(AuditorError):
    """Every problem found in one manifest, reported together."""

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(error.render() for error in self.errors))
