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

from auditor import CodeInfo, ReportFormat, hookimpl
from auditor.report.numbers import format_duration, format_number
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


def _anchors(findings: list[Mapping[str, Any]]) -> dict[int, str]:
    """A unique, stable page anchor per finding: from its ``id`` when it has one, else its rank."""
    anchors: dict[int, str] = {}
    used: set[str] = set()
    for number, finding in enumerate(findings, 1):
        raw = finding.get("id")
        base = (
            f"finding-{_slug(str(raw))}" if isinstance(raw, (str, int)) and str(raw) else f"finding-{number}"
        )
        anchor, n = base, 2
        while anchor in used:
            anchor, n = f"{base}-{n}", n + 1
        used.add(anchor)
        anchors[id(finding)] = anchor
    return anchors


def _cause_link(
    finding: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]], anchors: Mapping[int, str]
) -> dict[str, str] | None:
    """Where a consequence points: the finding its ``caused_by`` names, when the report has it."""
    cause = finding.get("caused_by")
    parent = by_id.get(str(cause)) if isinstance(cause, (str, int)) else None
    if parent is None or parent is finding:
        return None
    return {
        "anchor": anchors[id(parent)],
        "code": str(parent.get("code", "")),
        "title": str(parent.get("title", "")),
    }


def _finding(
    report: Mapping[str, Any],
    finding: Mapping[str, Any],
    anchor: str,
    base: Path,
    budget: list[int],
    cause: dict[str, str] | None,
) -> dict[str, Any]:
    from auditor_plugins.reports import _thumbs

    evidence = finding.get("evidence") if isinstance(finding.get("evidence"), Mapping) else {}
    pairs = (
        _thumbs.pair_views(evidence, base, limit=min(_thumbs.MAX_PAIRS, budget[0])) if budget[0] > 0 else []
    )
    budget[0] -= len(pairs)
    count = (
        evidence.get("count") if isinstance(evidence.get("count"), int) else len(evidence.get("pairs") or [])
    )
    code = str(finding.get("code", ""))
    return {
        "id": anchor,
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
        "cause": cause,
    }


def _audits(
    report: Mapping[str, Any], catalog: Mapping[str, CodeInfo], anchors: Mapping[int, str]
) -> list[dict[str, Any]]:
    from auditor_plugins.reports import _charts

    base = _common.manifest_dir(report)
    findings = _common.sorted_findings(report.get("findings") or [])
    by_id = {str(f["id"]): f for f in findings if isinstance(f.get("id"), (str, int))}
    codes = _common.audit_codes(report)
    entries = [a for a in report.get("audits") or [] if isinstance(a, Mapping)]
    known = {str(a.get("name")) for a in entries}
    # Findings of an audit the report does not list (hand-edited or partial reports) still show.
    for orphan in sorted({str(f.get("audit", "?")) for f in findings} - known):
        entries.append({"name": orphan, "status": "failed", "version": "", "duration_s": None})
    audits = []
    budget = [MAX_PAIRS_PER_PAGE]  # thumbnails left for the page: bounds its size on badly leaking data
    for audit in entries:
        name = str(audit.get("name", "?"))
        own = [
            _finding(
                report, finding, anchors[id(finding)], base, budget, _cause_link(finding, by_id, anchors)
            )
            for finding in findings
            if str(finding.get("audit", "?")) == name
        ]
        error = audit.get("error") if isinstance(audit.get("error"), Mapping) else None
        evidence = audit.get("evidence") if isinstance(audit.get("evidence"), Mapping) else {}
        audits.append(
            {
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
                "side_by_side": evidence["side_by_side"]
                if isinstance(evidence.get("side_by_side"), str)
                else "",
                "findings": own,
                "counts": {s: sum(1 for f in own if f["severity"] == s) for s in _common.SEVERITY_ORDER},
                "codes": [
                    {
                        "code": c,
                        "title": catalog[c].title if c in catalog else "",
                        "found": any(f["code"] == c for f in own),
                    }
                    for c in codes.get(name, [])
                ],
            }
        )
    return audits


def _one_line(text: str) -> str:
    """The first line of a hint: the fix itself, without the explanation that may follow."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _fix_entry(
    report: Mapping[str, Any], cause: _common.Cause, anchors: Mapping[int, str], depth: int = 0
) -> dict[str, Any]:
    f = cause.finding
    nested = cause.consequences if depth < MAX_CAUSE_DEPTH else []
    return {
        "anchor": anchors[id(f)],
        "code": str(f.get("code", "")),
        "title": str(f.get("title", "")),
        "severity": str(f.get("severity", "info")),
        "audit": str(f.get("audit", "")),
        "location": str(f.get("location") or ""),
        "message": str(f.get("message", "")),
        "fix": _one_line(str(f.get("hint") or "")),
        "fails": _common.reaches(f.get("severity"), report.get("fail_on")),
        "consequences": [_fix_entry(report, c, anchors, depth + 1) for c in nested],
        "hidden": sum(c.size() for c in cause.consequences) if not nested else 0,
    }


def _problems(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """Problems of the manifest found while running (a split that cannot be opened): the first fixes."""
    out = []
    for problem in report.get("problems") or []:
        if isinstance(problem, Mapping):
            line = problem.get("line")
            key, message = str(problem.get("key") or ""), str(problem.get("message") or "")
            out.append(
                {
                    "key": key,
                    "message": message.removeprefix(f"{key}: ") if key else message,
                    "hint": _one_line(str(problem.get("hint") or "")),
                    "line": str(line) if isinstance(line, int) else "",
                }
            )
    return out


def _fix_first(report: Mapping[str, Any], anchors: Mapping[int, str]) -> dict[str, Any]:
    """Root causes worth acting on (errors and warnings), most severe and most wasteful first."""
    roots = [
        c
        for c in _common.root_causes(report.get("findings") or [])
        if _common.severity_rank(c.finding.get("severity")) >= _common.severity_rank("warning")
    ]
    shown = roots[:MAX_FIX_FIRST]
    return {
        "entries": [_fix_entry(report, cause, anchors) for cause in shown],
        "more": len(roots) - len(shown),
        "consequences": sum(c.size() - 1 for c in roots),
    }


def _explanations(report: Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> list[dict[str, Any]]:
    """The catalog text of every code the report found, so the page explains itself offline."""
    found = sorted({str(f.get("code")) for f in report.get("findings") or [] if isinstance(f, Mapping)})
    out = []
    for code in found:
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


def _environment_rows(report: Mapping[str, Any]) -> dict[str, Any]:
    env = report.get("environment") if isinstance(report.get("environment"), Mapping) else {}
    rows = [
        (key, env.get(key)) for key in ("python", "platform", "torch", "torchvision", "device", "auditor")
    ]
    listed = {"python", "platform", "torch", "torchvision", "device", "auditor", "plugins", "broken_plugins"}
    rows += [
        (str(k), v) for k, v in sorted(env.items()) if k not in listed and isinstance(v, (str, int, float))
    ]
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
    anchors = _anchors(_common.sorted_findings(report.get("findings") or []))
    audits = _audits(report, catalog, anchors)
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
        "fix_first": _fix_first(report, anchors),
        "problems": _problems(report),
        "has_findings": bool(anchors) or bool(report.get("problems")),
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
    return [
        ReportFormat(
            "html",
            "report.html",
            render,
            "one self-contained HTML page: summary, charts, findings, explanations",
        )
    ]
