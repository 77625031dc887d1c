"""Explanation texts of finding codes: what ``auditor explain`` prints and docs/codes.md holds.

One source for both, so the docs never drift from the tool: ``python -m
auditor.cli.explain > docs/codes.md`` regenerates the page, and a test fails when
the committed page differs.
"""

from __future__ import annotations

import sys

from auditor.findings import CodeInfo
from auditor.run.registry import Registry, load_registry

__all__ = ["catalog_markdown", "explanation_markdown"]


def explanation_markdown(info: CodeInfo, audit_name: str) -> str:
    return (
        f"## {info.code}: {info.title}\n\n"
        f"Audit `{audit_name}`, default severity **{info.severity.value}**.\n\n"
        f"{info.explanation.strip()}\n"
    )


def catalog_markdown(registry: Registry) -> str:
    """Every code of auditor's own audits, grouped by audit, in code order."""
    parts = [
        "# Finding codes\n",
        (
            "Codes are a public interface: a code keeps its meaning forever and is never reused. "
            "`auditor explain CODE` prints the same text as this page, which is generated from the "
            "audits' declarations (`python -m auditor.cli.explain > docs/codes.md`).\n"
        ),
    ]
    for audit in registry.ordered_audits():
        if registry.audit_plugin[audit.name].distribution.lower() != "auditor":
            continue
        parts.append(f"# {audit.name} ({audit.prefix})\n\n{audit.description}\n")
        for info in sorted(audit.codes, key=lambda c: c.code):
            parts.append(explanation_markdown(info, audit.name))
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(catalog_markdown(load_registry(autoload=False)))
