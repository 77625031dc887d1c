"""Writing a report in every requested format into the output folder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from auditor.registry import Registry

__all__ = ["write_reports"]


def write_reports(
    report: Mapping[str, Any], formats: Iterable[str], output_dir: Path, registry: Registry
) -> list[tuple[str, Path]]:
    """Render ``report`` in each format (json always) into ``output_dir``.

    Prints nothing: what a format wants on stdout (``ReportFormat.echo``) is the CLI's to print, so
    :func:`auditor.run_manifest` called from Python leaves the caller's stdout alone.
    """
    wanted = ["json", *[f for f in formats if f != "json"]]
    unknown = [f for f in wanted if f not in registry.report_formats]
    if unknown:
        raise UsageError(
            f"report format {unknown[0]!r}: expected one of the installed formats "
            f"{sorted(registry.report_formats)}, found {unknown[0]!r}"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    catalog = registry.catalog
    for name in wanted:
        fmt = registry.report_formats[name]
        content = fmt.render(dict(report), catalog)
        target = output_dir / fmt.filename
        tmp = target.with_name(target.name + ".tmp")
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
        tmp.replace(target)  # never leave a half-written report behind
        written.append((name, target))
    return written
