"""The README's tables of audits and report formats, generated from the plugin registry.

Hand-kept tables go stale (the code column once stopped one code short of its audit's last), so
the README holds them between markers and this module writes them:

    .venv/bin/python -m auditor.cli._readme            # rewrite README.md in place
    .venv/bin/python -m auditor.cli._readme --check    # exit 1 when README.md is stale

``tests/test_readme_tables.py`` runs the check.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from auditor.run.registry import Registry

__all__ = ["audits_table", "code_ranges", "formats_table", "render_readme"]

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[a-z-]+) .*?-->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL
)


def code_ranges(codes: Iterable[str]) -> str:
    """``AB001\u2013AB008, AB020``: runs of consecutive codes of one prefix, joined with an en dash."""
    parsed = sorted({(c[:-3], int(c[-3:])) for c in codes})
    parts: list[str] = []
    run: list[tuple[str, int]] = []
    for item in parsed:
        if run and (item[0] != run[-1][0] or item[1] != run[-1][1] + 1):
            parts.append(_span(run))
            run = []
        run.append(item)
    if run:
        parts.append(_span(run))
    return ", ".join(parts)


def _span(run: list[tuple[str, int]]) -> str:
    first, last = run[0], run[-1]
    start = f"{first[0]}{first[1]:03d}"
    return start if first == last else f"{start}\u2013{last[0]}{last[1]:03d}"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def audits_table(registry: Registry) -> str:
    lines = ["| audit | checks | runs the model | codes |", "| --- | --- | --- | --- |"]
    for audit in registry.ordered_audits():
        lines.append(
            f"| `{audit.name}` | {_cell(audit.description)} | {'yes' if audit.runs_model else 'no'} | "
            f"{code_ranges(c.code for c in audit.codes)} |"
        )
    return "\n".join(lines) + "\n"


def formats_table(registry: Registry) -> str:
    lines = ["| format | file | for |", "| --- | --- | --- |"]
    for name in sorted(registry.report_formats):
        fmt = registry.report_formats[name]
        lines.append(f"| `{name}` | `{fmt.filename}` | {_cell(fmt.description)} |")
    return "\n".join(lines) + "\n"


def render_readme(text: str, registry: Registry) -> str:
    """``text`` with every generated block rewritten from ``registry``."""
    tables = {"audits": audits_table, "report-formats": formats_table}

    def replace(match: re.Match[str]) -> str:
        make = tables.get(match.group("name"))
        return match.group(0) if make is None else match.group(1) + make(registry) + match.group(4)

    return _BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    from auditor.run.registry import load_registry

    args = sys.argv[1:] if argv is None else argv
    current = README.read_text(encoding="utf-8")
    fresh = render_readme(current, load_registry())
    if "--check" in args:
        if fresh != current:
            print(
                "README.md: the generated tables are stale; run: python -m auditor.cli._readme",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
