"""``html``: one self-contained page a person reads first.

No network, no JavaScript, no external CSS or fonts: the stylesheet is inlined,
charts are SVG drawn in Python, leaked-pair thumbnails are ``data:`` URIs, and a
Content-Security-Policy forbids the page from loading anything else. Jinja2
autoescaping covers every string from the report (file names, class names,
messages); the only markup inserted unescaped is what this package builds
itself (SVG from :mod:`._svg`, whose text is escaped there, and explanation
Markdown rendered with raw HTML disabled).

Deterministic: the same report gives the same bytes. Findings, codes, plugins
and evidence keys are sorted; only the run's timestamp and durations vary
between two runs of the same manifest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from auditor import CodeInfo, ReportFormat, ReportView, hookimpl
from auditor.report.numbers import format_duration, format_number
from auditor.report.view import AuditView, FindingView
from auditor_plugins.reports import _common

__all__ = ["MAX_EVIDENCE_CHARS", "breakable", "render"]

TEMPLATES = Path(__file__).parent / "templates"
#: Evidence JSON longer than this is cut in the page (the JSON report has all of it).
MAX_EVIDENCE_CHARS = 4000
#: Leaked pairs shown as thumbnails in the whole page (each finding shows at most _thumbs.MAX_PAIRS).
MAX_PAIRS_PER_PAGE = 60
#: Root causes listed in "Fix these first"; the rest are in the audit sections below.
MAX_FIX_FIRST = 12
#: Consequences nest this deep in "Fix these first"; deeper ones are counted, not listed.
MAX_CAUSE_DEPTH = 3
_STATUS_ORDER = {"errored": 0, "failed": 1, "passed": 2, "skipped": 3, "disabled": 4}


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["breakable"] = breakable
    env.filters["number"] = format_number
    env.filters["duration"] = format_duration
    return env


#: Tokens at least this long get break opportunities; shorter ones fit any screen.
LONG_TOKEN = 16
_SEPARATOR = re.compile(r"([/\\._:,=-])")


def breakable(text: Any, min_length: int = LONG_TOKEN) -> Any:
    """``text`` escaped, with a line-break opportunity (``<wbr>``) after each separator in long tokens.

    A path, layer or weights name has no spaces; on a phone it would push the page
    sideways or break mid-word. After '/', '.', '_' and friends it breaks where a
    person would.
    """
    from markupsafe import Markup, escape

    def split(match: re.Match[str]) -> str:
        return "".join(
            str(escape(part)) + ("<wbr>" if _SEPARATOR.fullmatch(part) else "")
            for part in _SEPARATOR.split(match.group(0))
            if part
        )

    out, last = [], 0
    value = "" if text is None else str(text)
    for match in re.finditer(rf"\S{{{max(1, min_length)},}}", value):
        out.append(str(escape(value[last : match.start()])))
        out.append(split(match))
        last = match.end()
    out.append(str(escape(value[last:])))
    return Markup("".join(out))


def _markdown(text: str) -> Any:
    """Explanation Markdown as HTML; raw HTML in it is escaped, never passed through."""
    from markupsafe import Markup, escape

    try:
        from markdown_it import MarkdownIt
    except ImportError:  # markdown-it-py comes with rich; without it show the text as is
        return Markup('<pre class="plain">') + escape(text) + Markup("</pre>")
    return Markup(MarkdownIt("commonmark", {"html": False}).render(text))


def _json(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) > MAX_EVIDENCE_CHARS:
        more = len(text) - MAX_EVIDENCE_CHARS
        text = text[:MAX_EVIDENCE_CHARS] + f"\n... ({more} more characters in report.json)"
    return text


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def _anchors(findings: list[FindingView]) -> dict[int, str]:
    """A unique, stable page anchor per finding: from its ``id`` when it has one, else its rank."""
    anchors: dict[int, str] = {}
    used: set[str] = set()
    for number, finding in enumerate(findings, 1):
        base = f"finding-{_slug(finding.id)}" if finding.id else f"finding-{number}"
        anchor, n = base, 2
        while anchor in used:
            anchor, n = f"{base}-{n}", n + 1
        used.add(anchor)
        anchors[id(finding)] = anchor
    return anchors


def _cause_link(
    finding: FindingView, by_id: Mapping[str, FindingView], anchors: Mapping[int, str]
) -> dict[str, str] | None:
    """Where a consequence points: the finding its ``caused_by`` names, when the report has it."""
    parent = _common.cause_of(finding, by_id)
    if parent is None:
        return None
    return {"anchor": anchors[id(parent)], "code": parent.code, "title": parent.title}


def _finding(
    report: ReportView,
    finding: FindingView,
    anchor: str,
    budget: list[int],
    cause: dict[str, str] | None,
) -> dict[str, Any]:
    from auditor_plugins.reports import _thumbs

    limit = min(_thumbs.MAX_PAIRS, budget[0])
    pairs = _thumbs.pair_views(finding.pairs, report.manifest.folder, limit=limit) if budget[0] > 0 else []
    budget[0] -= len(pairs)
    return {
        "id": anchor,
        "code": finding.code,
        "severity": finding.severity or "info",
        "title": finding.title,
        "message": finding.message,
        "hint": finding.hint,
        "location": finding.location,
        "line": report.line_of(finding),
        "evidence": _json(finding.evidence) if finding.evidence else "",
        "pairs": pairs,
        "pair_count": finding.pair_count,
        "fails": _common.reaches(finding.severity, report.fail_on),
        "cause": cause,
    }


def _audits(
    report: ReportView, catalog: Mapping[str, CodeInfo], anchors: Mapping[int, str]
) -> tuple[list[AuditView], list[dict[str, Any]]]:
    """The audits the page shows, and each one's template context."""
    findings = _common.sorted_findings(report.findings)
    by_id = _common.by_ids(findings)
    codes = _common.audit_codes(report)
    entries = list(report.audits)
    known = {a.name for a in entries}
    # Findings of an audit the report does not list (hand-edited or partial reports) still show.
    entries += [AuditView(orphan, "failed") for orphan in sorted({f.audit for f in findings} - known)]
    budget = [MAX_PAIRS_PER_PAGE]  # thumbnails left for the page: bounds its size on badly leaking data
    audits = []
    for audit in entries:
        own = [f for f in findings if f.audit == audit.name]
        shown = [_finding(report, f, anchors[id(f)], budget, _cause_link(f, by_id, anchors)) for f in own]
        audits.append(_audit(audit, own, shown, codes.get(audit.name, []), catalog))
    return entries, audits


def _audit(
    audit: AuditView,
    own: list[FindingView],
    shown: list[dict[str, Any]],
    codes: list[str],
    catalog: Mapping[str, CodeInfo],
) -> dict[str, Any]:
    from markupsafe import Markup

    from auditor_plugins.reports import _charts

    charts = _charts.charts_for(audit.measurements)
    return {
        "name": audit.name,
        "anchor": "audit-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in audit.name),
        "version": audit.version,
        "status": audit.status or "?",
        "duration": audit.duration_s,
        "reason": audit.reason,
        "error": audit.error,
        "notes": list(audit.notes),
        "options": _json(audit.options) if audit.options else "",
        "evidence": _json(audit.evidence) if audit.evidence else "",
        # Built by _svg with every label escaped there; Markup keeps autoescape from escaping the tags.
        "charts": [chart._replace(svg=Markup(chart.svg)) for chart in charts],
        # transform_parity's pipelines as text columns, one per split
        "side_by_side": audit.measurements.side_by_side,
        "findings": shown,
        "counts": {s: sum(1 for f in own if (f.severity or "info") == s) for s in _common.SEVERITY_ORDER},
        "codes": [
            {
                "code": c,
                "title": catalog[c].title if c in catalog else "",
                "found": any(f.code == c for f in own),
            }
            for c in codes
        ],
    }


def _one_line(text: str) -> str:
    """The first line of a hint: the fix itself, without the explanation that may follow."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _fix_entry(
    report: ReportView, cause: _common.Cause, anchors: Mapping[int, str], depth: int = 0
) -> dict[str, Any]:
    f = cause.finding
    nested = cause.consequences if depth < MAX_CAUSE_DEPTH else []
    return {
        "anchor": anchors[id(f)],
        "code": f.code,
        "title": f.title,
        "severity": f.severity or "info",
        "audit": f.audit,
        "location": f.location,
        "message": f.message,
        "fix": _one_line(f.hint),
        "fails": _common.reaches(f.severity, report.fail_on),
        "consequences": [_fix_entry(report, c, anchors, depth + 1) for c in nested],
        "hidden": sum(c.size() for c in cause.consequences) if not nested else 0,
    }


def _problems(report: ReportView) -> list[dict[str, str]]:
    """Problems of the manifest found while running (a split that cannot be opened): the first fixes."""
    return [
        {
            "key": p.key,
            "message": p.message.removeprefix(f"{p.key}: ") if p.key else p.message,
            "hint": _one_line(p.hint),
            "line": str(p.line) if p.line is not None else "",
        }
        for p in report.problems
    ]


def _fix_first(report: ReportView, anchors: Mapping[int, str]) -> dict[str, Any]:
    """Root causes worth acting on (errors and warnings), most severe and most wasteful first."""
    roots = [
        c
        for c in _common.root_causes(report.findings)
        if _common.severity_rank(c.finding.severity) >= _common.severity_rank("warning")
    ]
    shown = roots[:MAX_FIX_FIRST]
    return {
        "entries": [_fix_entry(report, cause, anchors) for cause in shown],
        "more": len(roots) - len(shown),
        "consequences": sum(c.size() - 1 for c in roots),
    }


def _explanations(report: ReportView, catalog: Mapping[str, CodeInfo]) -> list[dict[str, Any]]:
    """The catalog text of every code the report found, so the page explains itself offline."""
    out = []
    for code in sorted({f.code for f in report.findings}):
        info = catalog.get(code)
        out.append(
            {
                "code": code,
                "title": info.title if info else "",
                "severity": info.severity.value if info else "",
                "html": _markdown(info.explanation.strip()) if info else None,
            }
        )
    return out


def _environment_rows(report: ReportView) -> dict[str, Any]:
    env = report.environment
    rows: list[tuple[str, Any]] = [
        ("python", env.python),
        ("platform", env.platform),
        ("torch", env.torch),
        ("torchvision", env.torchvision),
        ("device", env.device),
        ("auditor", env.auditor),
    ]
    rows += [(k, v) for k, v in sorted(env.extra.items()) if isinstance(v, (str, int, float))]
    return {
        "rows": [(k, "not imported by this run" if v is None else str(v)) for k, v in rows],
        "plugins": sorted(env.plugins, key=lambda p: (p.name, p.distribution)),
        "broken": sorted(env.broken_plugins, key=lambda p: (p.name, p.distribution)),
    }


def context(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> dict[str, Any]:
    from markupsafe import Markup

    report = ReportView.of(report)
    word, sentence = _common.verdict(report)
    anchors = _anchors(_common.sorted_findings(report.findings))
    entries, audits = _audits(report, catalog, anchors)
    statuses: dict[str, int] = {}
    for audit in entries:
        statuses[audit.status or "?"] = statuses.get(audit.status or "?", 0) + 1
    return {
        "title": report.manifest.name or "auditor report",
        "manifest_path": report.manifest.path,
        "verdict": word,
        "verdict_sentence": sentence,
        "exit_code": report.exit_code,
        "fail_on": report.fail_on,
        "summary": {s: report.summary.count(s) for s in (*_common.SEVERITY_ORDER, "total")},
        "severities": _common.SEVERITY_ORDER,
        "statuses": sorted(statuses.items(), key=lambda kv: _STATUS_ORDER.get(kv[0], 9)),
        "started_at": report.started_at,
        "duration": report.duration_s,
        "tool": report.tool,
        "task": report.task,
        "audits": audits,
        "fix_first": _fix_first(report, anchors),
        "problems": _problems(report),
        "accepted": [
            {
                "code": f.code,
                "severity": f.severity,
                "location": f.location,
                "message": f.message,
                "by": f.accepted_by,
                "reason": f.accepted_reason,
            }
            for f in _common.sorted_findings(report.accepted)
        ],
        "has_findings": bool(anchors) or bool(report.problems),
        "explanations": _explanations(report, catalog),
        "environment": _environment_rows(report),
        "css": Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
    }


def render(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    return _environment().get_template("report.html.j2").render(**context(report, catalog))


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "html",
            "report.html",
            render,
            "one self-contained HTML page: summary, charts, findings, explanations",
            takes_view=True,
        )
    ]
