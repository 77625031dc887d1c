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
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from auditor import CodeInfo, ReportFormat, hookimpl
from auditor.numbers import format_duration, format_number
from auditor_plugins.reports import _common

__all__ = ["MAX_EVIDENCE_CHARS", "render"]

TEMPLATES = Path(__file__).parent / "templates"
#: Evidence JSON longer than this is cut in the page (the JSON report has all of it).
MAX_EVIDENCE_CHARS = 4000
#: Leaked pairs shown as thumbnails in the whole page (each finding shows at most _thumbs.MAX_PAIRS).
MAX_PAIRS_PER_PAGE = 60
_STATUS_ORDER = {"errored": 0, "failed": 1, "passed": 2, "skipped": 3}


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["number"] = format_number
    env.filters["duration"] = format_duration
    return env


def _markdown(text: str) -> Any:
    """Explanation Markdown as HTML; raw HTML in it is escaped, never passed through."""
    from markupsafe import Markup, escape

    try:
        from markdown_it import MarkdownIt
    except ImportError:  # markdown-it-py comes with rich; without it show the text as is
        return Markup("<pre class=\"plain\">") + escape(text) + Markup("</pre>")
    return Markup(MarkdownIt("commonmark", {"html": False}).render(text))


def _json(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) > MAX_EVIDENCE_CHARS:
        more = len(text) - MAX_EVIDENCE_CHARS
        text = text[:MAX_EVIDENCE_CHARS] + f"\n... ({more} more characters in report.json)"
    return text


def _finding(report: Mapping[str, Any], finding: Mapping[str, Any], number: int, base: Path,
             budget: list[int]) -> dict[str, Any]:
    from auditor_plugins.reports import _thumbs

    evidence = finding.get("evidence") if isinstance(finding.get("evidence"), Mapping) else {}
    pairs = _thumbs.pair_views(evidence, base, limit=min(_thumbs.MAX_PAIRS, budget[0])) if budget[0] > 0 else []
    budget[0] -= len(pairs)
    count = evidence.get("count") if isinstance(evidence.get("count"), int) else len(evidence.get("pairs") or [])
    code = str(finding.get("code", ""))
    return {
        "id": f"finding-{number}",
        "code": code,
        "severity": str(finding.get("severity", "info")),
        "title": str(finding.get("title", "")),
        "message": str(finding.get("message", "")),
        "hint": str(finding.get("hint") or ""),
        "location": str(finding.get("location") or ""),
        "line": _common.finding_line(report, finding),
        "evidence": _json(evidence) if evidence else "",
        "pairs": pairs,
        "pair_count": count,
        "fails": _common.reaches(finding.get("severity"), report.get("fail_on")),
    }


def _audits(report: Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> list[dict[str, Any]]:
    from auditor_plugins.reports import _charts

    base = _common.manifest_dir(report)
    findings = _common.sorted_findings(report.get("findings") or [])
    codes = _common.audit_codes(report)
    entries = [a for a in report.get("audits") or [] if isinstance(a, Mapping)]
    known = {str(a.get("name")) for a in entries}
    # Findings of an audit the report does not list (hand-edited or partial reports) still show.
    for orphan in sorted({str(f.get("audit", "?")) for f in findings} - known):
        entries.append({"name": orphan, "status": "failed", "version": "", "duration_s": None})
    audits, number = [], 0
    budget = [MAX_PAIRS_PER_PAGE]  # thumbnails left for the page: bounds its size on badly leaking data
    for audit in entries:
        name = str(audit.get("name", "?"))
        own = []
        for finding in findings:
            if str(finding.get("audit", "?")) == name:
                number += 1
                own.append(_finding(report, finding, number, base, budget))
        error = audit.get("error") if isinstance(audit.get("error"), Mapping) else None
        evidence = audit.get("evidence") if isinstance(audit.get("evidence"), Mapping) else {}
        audits.append({
            "name": name,
            "anchor": "audit-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in name),
            "version": str(audit.get("version") or ""),
            "status": str(audit.get("status", "?")),
            "duration": audit.get("duration_s"),
            "reason": str(audit.get("reason") or ""),
            "error": error,
            "notes": [str(n) for n in audit.get("notes") or []],
            "options": _json(audit["options"]) if audit.get("options") else "",
            "evidence": _json(evidence) if evidence else "",
            "charts": _charts.charts_for(evidence),
            # transform_parity's pipelines as text columns, one per split
            "side_by_side": evidence["side_by_side"] if isinstance(evidence.get("side_by_side"), str) else "",
            "findings": own,
            "counts": {s: sum(1 for f in own if f["severity"] == s) for s in _common.SEVERITY_ORDER},
            "codes": [{"code": c, "title": catalog[c].title if c in catalog else "",
                       "found": any(f["code"] == c for f in own)} for c in codes.get(name, [])],
        })
    return audits


def _explanations(report: Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> list[dict[str, Any]]:
    """The catalog text of every code the report found, so the page explains itself offline."""
    found = sorted({str(f.get("code")) for f in report.get("findings") or [] if isinstance(f, Mapping)})
    out = []
    for code in found:
        info = catalog.get(code)
        out.append({
            "code": code,
            "title": info.title if info else "",
            "severity": info.severity.value if info else "",
            "html": _markdown(info.explanation.strip()) if info else None,
        })
    return out


def _environment_rows(report: Mapping[str, Any]) -> dict[str, Any]:
    env = report.get("environment") if isinstance(report.get("environment"), Mapping) else {}
    rows = [(key, env.get(key)) for key in ("python", "platform", "torch", "torchvision", "device", "auditor")]
    listed = {"python", "platform", "torch", "torchvision", "device", "auditor", "plugins", "broken_plugins"}
    rows += [(str(k), v) for k, v in sorted(env.items()) if k not in listed and isinstance(v, (str, int, float))]
    plugins = [p for p in env.get("plugins") or [] if isinstance(p, Mapping)]
    broken = [p for p in env.get("broken_plugins") or [] if isinstance(p, Mapping)]
    return {
        "rows": [(k, "not imported by this run" if v is None else str(v)) for k, v in rows],
        "plugins": sorted(plugins, key=lambda p: (str(p.get("name")), str(p.get("distribution")))),
        "broken": sorted(broken, key=lambda p: (str(p.get("name")), str(p.get("distribution")))),
    }


def context(report: Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> dict[str, Any]:
    from markupsafe import Markup

    word, sentence = _common.verdict(report)
    manifest = report.get("manifest") if isinstance(report.get("manifest"), Mapping) else {}
    summary = report.get("summary") if isinstance(report.get("summary"), Mapping) else {}
    audits = _audits(report, catalog)
    statuses: dict[str, int] = {}
    for audit in audits:
        statuses[audit["status"]] = statuses.get(audit["status"], 0) + 1
    task = report.get("task") if isinstance(report.get("task"), Mapping) else None
    return {
        "title": str(manifest.get("name") or "auditor report"),
        "manifest_path": str(manifest.get("path") or ""),
        "verdict": word,
        "verdict_sentence": sentence,
        "exit_code": report.get("exit_code"),
        "fail_on": str(report.get("fail_on") or "error"),
        "summary": {s: int(summary.get(s, 0) or 0) for s in (*_common.SEVERITY_ORDER, "total")},
        "severities": _common.SEVERITY_ORDER,
        "statuses": sorted(statuses.items(), key=lambda kv: _STATUS_ORDER.get(kv[0], 9)),
        "started_at": str(report.get("started_at") or ""),
        "duration": report.get("duration_s"),
        "tool": report.get("tool") if isinstance(report.get("tool"), Mapping) else {},
        "task": task,
        "audits": audits,
        "explanations": _explanations(report, catalog),
        "environment": _environment_rows(report),
        "css": Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
    }


def render(report: dict[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    from markupsafe import Markup

    template = _environment().get_template("report.html.j2")
    ctx = context(report, catalog)
    for audit in ctx["audits"]:
        # Built by _svg with every label escaped there; Markup keeps autoescape from escaping the tags.
        audit["charts"] = [chart._replace(svg=Markup(chart.svg)) for chart in audit["charts"]]
    return template.render(**ctx)


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [ReportFormat("html", "report.html", render,
                         "one self-contained HTML page: summary, charts, findings, explanations")]
