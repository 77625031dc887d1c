"""``auditor new-plugin NAME``: a ready-to-install third-party plugin package from a shipped template.

The template lives in ``auditor/templates/plugin``. File names ending in
``.tmpl`` are rendered with :class:`string.Template` (``${package}`` and
friends), a path part ``__package__`` becomes the import package, and a
leading ``dot-`` becomes ``.`` (wheels drop hidden files, so the template
cannot hold them). The generated package passes its own tests as generated.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from auditor._version import __version__
from auditor.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from importlib.abc import Traversable

__all__ = ["PluginNames", "plugin_names", "scaffold"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PREFIX = re.compile(r"^[A-Z]{2,4}$")


@dataclass(frozen=True)
class PluginNames:
    """Every spelling of one plugin name the template needs."""

    name: str  # as typed, normalised: image-stats
    dist: str  # distribution: auditor-image-stats
    package: str  # import package: auditor_image_stats
    audit: str  # audit name in manifests: image_stats
    prefix: str  # finding-code prefix: IS

    def mapping(self) -> dict[str, str]:
        major_minor = ".".join(__version__.split(".")[:2])
        return {
            "name": self.name,
            "dist": self.dist,
            "package": self.package,
            "audit": self.audit,
            "prefix": self.prefix,
            "auditor_requirement": f"auditor>={major_minor}",
        }


def plugin_names(name: str, prefix: str | None = None) -> PluginNames:
    """Derive the names from NAME (``image-stats`` or ``auditor-image-stats``); check them."""
    normalised = name.strip().lower()
    normalised = normalised.removeprefix("auditor-").removeprefix("auditor_")
    if not _NAME.match(normalised):
        raise UsageError(
            f"new-plugin {name}: expected a name of lowercase letters and digits separated by '-' or '_', "
            f"starting with a letter (e.g. 'image-stats'), found {name!r}"
        )
    words = re.split(r"[-_]", normalised)
    if prefix is None:
        prefix = "".join(w[0] for w in words)[:4] if len(words) > 1 else words[0][:2]
        prefix = prefix.upper().ljust(2, "X")
    prefix = prefix.strip()
    if not _PREFIX.match(prefix):
        raise UsageError(
            f"new-plugin --prefix {prefix}: expected 2-4 capital letters (finding codes are PREFIX + three "
            f"digits, e.g. 'IS001'), found {prefix!r}"
        )
    slug = "_".join(words)
    return PluginNames(
        normalised.replace("_", "-"), f"auditor-{'-'.join(words)}", f"auditor_{slug}", slug, prefix
    )


def _template_root() -> Traversable:
    return resources.files("auditor") / "templates" / "plugin"


def _walk(folder: Traversable, parts: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _walk(entry, (*parts, entry.name))
        else:
            yield (*parts, entry.name), entry


def _target_name(parts: tuple[str, ...], names: PluginNames) -> Path:
    renamed = []
    for part in parts:
        part = part.replace("__package__", names.package)
        if part.startswith("dot-"):
            part = "." + part[len("dot-") :]
        renamed.append(part.removesuffix(".tmpl"))
    return Path(*renamed)


def scaffold(
    name: str, output_dir: Path, *, prefix: str | None = None, taken_prefixes: Iterable[str] = ()
) -> tuple[PluginNames, Path, list[Path]]:
    """Write the package for NAME into ``output_dir/<distribution>``; return names, folder and files.

    Refuses a folder that already exists (nothing is overwritten) and a prefix
    an installed audit already uses (two plugins may not share codes).
    """
    names = plugin_names(name, prefix)
    taken = set(taken_prefixes)
    if names.prefix in taken:
        raise UsageError(
            f"new-plugin {name}: the finding-code prefix {names.prefix!r} is already used by an installed audit "
            f"(taken: {', '.join(sorted(taken))}); choose another with --prefix, e.g. --prefix "
            f"{_free_prefix(names, taken)}"
        )
    target = Path(output_dir) / names.dist
    if target.exists():
        raise UsageError(
            f"new-plugin {name}: expected a new folder for the package, found an existing {target}; "
            "remove it or pass another --output-dir"
        )
    mapping = names.mapping()
    written = []
    for parts, entry in _walk(_template_root()):
        destination = target / _target_name(parts, names)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if parts[-1].endswith(".tmpl"):
            text = string.Template(entry.read_text(encoding="utf-8")).substitute(mapping)
            destination.write_text(text, encoding="utf-8")
        else:
            destination.write_bytes(entry.read_bytes())
        written.append(destination)
    return names, target, written


def _free_prefix(names: PluginNames, taken: set[str]) -> str:
    letters = names.audit.replace("_", "").upper()
    for second in letters[1:] + "XYZ":
        candidate = letters[0] + second
        if candidate not in taken:
            return candidate
    return "ZZZ"
