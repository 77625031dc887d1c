"""html report format: self-contained, complete, deterministic, escaped, and robust to odd evidence."""

from __future__ import annotations

import copy
import html as html_lib
import json
import math
import random
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from _reports_quickstart import quickstart_run, run_cli

from auditor.report.evidence import measurements
from auditor.testing import make_image, write_manifest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EVIL_FILE = "<img src=x onerror=alert(1)>.jpg"
EVIL_CLASS = '<b class="pwn">boss</b>'


class Page(HTMLParser):
    """Every start tag with its attributes, and the text inside each element id."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _catalog() -> Any:
    from auditor.run.registry import load_registry

    return load_registry().catalog


def _render(report: dict[str, Any]) -> str:
    from auditor_plugins.reports import html

    return html.render(copy.deepcopy(report), _catalog())


@pytest.fixture(scope="module")
def qs(tmp_path_factory):
    return quickstart_run(tmp_path_factory.getbasetemp())


def _articles(text: str, code: str) -> list[str]:
    return re.findall(
        r'<article class="finding[^"]*" id="finding-[^"]+">(?:(?!</article>).)*?href="#explain-'
        + code
        + r'".*?</article>',
        text,
        flags=re.DOTALL,
    )


def assert_self_contained(page: Page, text: str) -> None:
    assert not page.named("script") and not page.named("link") and not page.named("iframe")
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler attribute {name!r} on <{tag}>"
            if name in ("src", "href", "xlink:href", "action", "srcset"):
                assert value and value.startswith(("data:", "#")), (tag, name, value)
    assert "@import" not in text and not re.search(r"url\(\s*['\"]?(?!data:)", text)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text.split("<main>")[0]), (
        "network URL in the head"
    )
    csp = [m for m in page.named("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in str(csp[0]["content"])


def test_quickstart_page_is_self_contained_and_complete(qs):
    text = qs.text("html")
    page = Page(text)
    report = qs.report
    assert_self_contained(page, text)

    # summary: verdict and counts as the JSON says
    word = {0: "passed", 1: "failed"}.get(report["exit_code"], "errored")
    assert re.search(rf'<header id="summary" class="summary verdict-{word}">', text)
    for severity in ("error", "warning", "info"):
        assert re.search(rf"<strong>{report['summary'][severity]}</strong> {severity}", text)

    # environment: versions of python, torch, auditor and every plugin
    env = report["environment"]
    assert "environment" in page.ids
    for value in (env["python"], env["auditor"], env["device"], env["torch"]):
        assert f"<td>{value or 'not imported by this run'}</td>" in text
    for plugin in env["plugins"]:
        assert f"<td>{plugin['name']}</td>" in text

    # each audit: section, status, findings sorted by severity, each linked to its explanation in the page
    catalog = _catalog()
    rank = {"error": 0, "warning": 1, "info": 2}
    for audit in report["audits"]:
        anchor = f"audit-{audit['name']}"
        assert anchor in page.ids
        section = text.split(f'<section class="audit" id="{anchor}">')[1].split("</section>")[0]
        assert f'status-{audit["status"]}">{audit["status"]}</span>' in section
        shown = re.findall(
            r'<span class="badge sev-(\w+)">\w+</span>\s*<a class="code" href="#explain-(\w+)"', section
        )
        own = [f for f in report["findings"] if f["audit"] == audit["name"]]
        assert sorted(code for _, code in shown) == sorted(f["code"] for f in own)
        assert [rank[s] for s, _ in shown] == sorted(rank[s] for s, _ in shown)
    for finding in report["findings"]:
        code = finding["code"]
        assert f"explain-{code}" in page.ids
        first_words = re.sub(r"[*`]", "", catalog[code].explanation.strip()).split(".")[1].split()[:4]
        explanation = text.split(f'id="explain-{code}"')[1].split("</article>")[0]
        assert " ".join(first_words) in " ".join(
            html_lib.unescape(re.sub(r"<[^>]+>", "", explanation)).split()
        )
    assert len(report["findings"]) >= 1
    rank = {"info": 1, "warning": 2, "error": 3, "never": 99}
    failing = [f for f in report["findings"] if rank[f["severity"]] >= rank[report["fail_on"]]]
    audit_sections = text.split('<section id="fix-first"')[0] + text.split('<section class="audit"', 1)[1]
    assert audit_sections.count(">fails the run</span>") == len(failing)


def test_quickstart_page_charts_each_documented_evidence_key(qs):
    text = qs.text("html")
    keys = {
        "counts": "counts",
        "modules": "modules",
        "grad_norms": "grad_norms",
        "loss_curve": "loss_curve",
        "stats": "channel_stats",
        "channel_stats": "channel_stats",
    }
    expected = 0
    for audit in qs.report["audits"]:
        section = text.split(f'id="audit-{audit["name"]}">')[1].split("</section>")[0]
        for key, chart in keys.items():
            if audit.get("evidence", {}).get(key):
                expected += 1
                figure = section.split(f'<figure class="chart-{chart}">')
                assert len(figure) == 2, f"{audit['name']}: evidence {key!r} but no chart"
                svg = figure[1].split("</figure>")[0]
                ET.fromstring(svg[svg.index("<svg") : svg.index("</svg>") + 6])  # well-formed SVG
    label = next(a for a in qs.report["audits"] if a["name"] == "label_distribution")
    counts = label["evidence"]["counts"]
    section = text.split('id="audit-label_distribution">')[1]
    for split, classes in counts.items():
        for name, count in classes.items():
            assert f"{name} in {split}: {count}</title>" in section
    assert expected >= 1


def test_quickstart_leaked_pairs_are_inline_thumbnails(qs):
    text = qs.text("html")
    leaks = [f for f in qs.report["findings"] if f["code"] in ("SL001", "SL002")]
    assert leaks, "the quickstart plants leaked pairs: split_leakage must find them"
    for finding in leaks:
        (article,) = _articles(text, finding["code"])
        shown = min(12, len(finding["evidence"]["pairs"]))
        thumbs = re.findall(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', article)
        assert len(thumbs) == 2 * shown
        assert (
            f"{shown} pair{'s' if shown != 1 else ''} shown, closest first; total count {finding['evidence']['count']}"
            in article
        )
        assert "distance " in article
        import base64
        import io

        from PIL import Image

        with Image.open(io.BytesIO(base64.b64decode(thumbs[0]))) as image:
            assert max(image.size) <= 64


def test_html_is_deterministic(qs):
    report = qs.report
    first, again = _render(report), _render(report)
    assert first == again
    shuffled = copy.deepcopy(report)
    random.Random(1).shuffle(shuffled["findings"])
    random.Random(2).shuffle(shuffled["environment"]["plugins"])
    shuffled = json.loads(json.dumps(shuffled, sort_keys=True))  # every dict in another key order
    assert _render(shuffled) == first
    later = copy.deepcopy(report)
    later["started_at"] = "2031-01-01T00:00:00+00:00"
    later["duration_s"] = 99.0
    diff = [a for a, b in zip(_render(later).splitlines(), first.splitlines(), strict=False) if a != b]
    assert diff and all("2031-01-01" in line or "1 min 39 s" in line for line in diff), diff


def _evil_project(root: Path) -> Path:
    """Real images whose file and class names are HTML, with a byte-identical pair across splits."""
    train, val = root / "data" / "train", root / "data" / "val"
    for i in range(12):
        make_image(train / "cat" / f"c{i}.png", seed=i)
        make_image(train / EVIL_CLASS / f"b{i}.png", seed=100 + i)
        make_image(val / "cat" / f"v{i}.png", seed=200 + i)
    make_image(train / "cat" / EVIL_FILE, seed=999, fmt="JPEG")
    (val / EVIL_CLASS).mkdir(parents=True)
    shutil.copy(train / "cat" / EVIL_FILE, val / EVIL_CLASS / EVIL_FILE)
    splits = {name: {"format": "image_folder", "root": f"data/{name}"} for name in ("train", "val")}
    return write_manifest(
        root,
        {
            "version": 1,
            "name": "<script>alert('name')</script>",
            "data": splits,
            "audits": {"label_distribution": {}, "split_leakage": {}},
        },
    )


def test_every_user_string_is_escaped(tmp_path):
    manifest = _evil_project(tmp_path)
    done = run_cli("run", manifest, "--static", "--format", "html,markdown,junit,github", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    text = (tmp_path / "reports" / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(page, text)
    assert not [b for b in page.named("b") if b.get("class") == "pwn"]
    assert "<script>" not in text and "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in text
    assert (
        "&lt;b class=&#34;pwn&#34;&gt;boss&lt;/b&gt;" in text
        or "&lt;b class=&quot;pwn&quot;&gt;boss&lt;/b&gt;" in text
    )
    # the chart's class label, the thumbnail caption and the title all carry the escaped names
    counts_svg = text.split('<figure class="chart-counts">')[1].split("</svg>")[0]
    assert "&lt;b class=" in counts_svg and "<b " not in counts_svg
    (article,) = _articles(text, "SL001")
    assert article.count('src="data:image/jpeg;base64,') == 2, (
        "the evil-named files are real images: show them"
    )
    assert "<title>auditor: &lt;script&gt;" in text
    markdown = (tmp_path / "reports" / "report.md").read_text(encoding="utf-8")
    assert (
        "<img" not in markdown and "<b " not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in markdown
    )
    ET.parse(tmp_path / "reports" / "report.junit.xml")

    # re-rendered after a file disappeared: a placeholder, not a crash
    (tmp_path / "data" / "val" / EVIL_CLASS / EVIL_FILE).unlink()
    again = run_cli("report", tmp_path / "reports" / "report.json", "--format", "html", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    (article,) = _articles((tmp_path / "reports" / "report.html").read_text(encoding="utf-8"), "SL001")
    assert article.count('src="data:image/jpeg;base64,') == 1 and "file not found" in article


ODD: list[Any] = [
    None,
    "x",
    3,
    [],
    {},
    [None],
    [1, 2],
    {"a": None},
    {"a": "b"},
    {"a": {"b": "c"}},
    {"a": [1, "x"]},
    [{"name": None, "grad_norm": "nan"}],
    [{"grad_norm": float("nan")}, {"grad_norm": -1}, {"grad_norm": 0.0}],
    [{"name": "x", "grad_norm": float("inf")}],
    [float("nan"), float("inf"), None, "a", True],
    {"train": {"mean": [float("nan")], "std": "x", "expected_mean": [0.5, None]}},
    {"train": []},
    {"t": {"c": 1e300}, "v": {"c": -5}},
    [{"name": "m", "trainable": -3, "frozen": float("nan")}],
    {"m": {"trainable": True, "frozen": 2}},
    [{"name": "<b>x</b>", "trainable": 1e9, "frozen": 1e12}],
    [
        {"split": "<x>", "channel": None, "mean": "a", "min": float("-inf"), "max": 3},
        {"mean": 1e308, "std": 1e308},
    ],
]


@pytest.mark.parametrize(
    "key", ["counts", "modules", "grad_norms", "loss_curve", "overfit_curve", "channel_stats", "stats"]
)
def test_charts_never_crash_on_odd_evidence(key):
    from auditor_plugins.reports import _charts

    for value in ODD:
        for build in (
            _charts.class_counts,
            _charts.trainable_frozen,
            _charts.grad_norms,
            _charts.loss_curve,
            _charts.channel_stats,
        ):
            # strict, and the builder called directly: no safety net may hide a bug
            chart = build(measurements({key: value}, strict=True))
            if chart is not None:
                root = ET.fromstring(chart.svg)
                assert root.tag.endswith("svg")
                assert "nan" not in " ".join(
                    v
                    for el in root.iter()
                    for k, v in el.attrib.items()
                    if k in ("x", "y", "width", "height", "cx", "cy", "points")
                )


def test_page_renders_odd_and_missing_evidence(qs):
    report = copy.deepcopy(qs.report)
    for i, audit in enumerate(report["audits"]):
        audit["evidence"] = {
            k: ODD[(i + j) % len(ODD)]
            for j, k in enumerate(["counts", "modules", "grad_norms", "loss_curve", "stats", "side_by_side"])
        }
    for finding in report["findings"]:
        finding["evidence"] = {
            "pairs": [{"a": {"path": "../../nope.jpg"}, "b": None, "distance": None}, "x", [1]],
            "count": "many",
        }
    report["audits"].append(
        {
            "name": "ghost",
            "version": "1",
            "status": "errored",
            "duration_s": 0.1,
            "error": {"type": "RuntimeError", "message": "<boom>", "traceback": "tb"},
        }
    )
    text = _render(report)
    assert "&lt;boom&gt;" in text and 'id="audit-ghost"' in text
    minimal = {
        k: report[k]
        for k in (
            "schema_version",
            "tool",
            "manifest",
            "started_at",
            "duration_s",
            "environment",
            "audits",
            "findings",
            "summary",
            "exit_code",
        )
    }
    minimal["environment"] = {}
    assert "<svg" in _render(minimal) or minimal["audits"]


def test_log_scale_marks_zero_and_non_finite_gradients():
    from auditor_plugins.reports import _charts

    rows = [
        {"name": f"layer{i}.weight", "grad_norm": v}
        for i, v in enumerate([1e-8, 1.0, 0.0, float("nan"), float("inf"), 3e2])
    ]
    chart = _charts.grad_norms(measurements({"grad_norms": rows}, strict=True))
    root = ET.fromstring(chart.svg)
    ns = "{http://www.w3.org/2000/svg}"
    red = [r for r in root.iter(f"{ns}rect") if r.get("fill") == "#C0392B"]
    blue = [r for r in root.iter(f"{ns}rect") if r.get("fill") == "#0072B2"]
    assert len(red) == 3 and len(blue) == 3
    ticks = [t.text for t in root.iter(f"{ns}text") if t.text and t.text.startswith("1e")]
    assert ticks[0] == "1e-8" and ticks[-1] == "1e3"
    widths = sorted(float(r.get("width")) for r in blue)
    assert widths[0] < widths[1] < widths[2]  # 1e-8 < 1 < 300 on a log axis
    # log spacing: 1e-8 -> 1 spans 8 decades, 1 -> 300 spans ~2.5
    assert math.isclose((widths[1] - widths[0]) / (widths[2] - widths[1]), 8 / math.log10(300), rel_tol=0.05)


def test_many_classes_and_layers_are_capped():
    from auditor_plugins.reports import _charts

    counts = {"train": {f"class{i:03d}": i + 1 for i in range(100)}, "val": {"class000": 1}}
    chart = _charts.class_counts(measurements({"counts": counts}, strict=True))
    assert (
        len(re.findall(r"<title>class\d+</title>", chart.svg)) == _charts.MAX_CLASSES
        and "60 smaller classes not shown" in chart.svg
    )
    assert "class099" in chart.svg and "class000" not in chart.svg.split("</title>", 1)[1]
    rows = [{"name": f"l{i}", "grad_norm": 10.0 ** (-(i % 9))} for i in range(500)] + [
        {"name": "dead", "grad_norm": 0}
    ]
    chart = _charts.grad_norms(measurements({"grad_norms": rows}, strict=True))
    assert chart.svg.count('text-anchor="end"') == _charts.MAX_LAYERS
    assert ">dead<" in chart.svg.replace("</title>", "<").replace("<title>", ">")


@pytest.mark.slow
def test_two_runs_differ_only_in_timestamps_and_durations(tmp_path):
    from _reports_quickstart import copy_quickstart

    project = copy_quickstart(tmp_path / "qs", formats=["json"])
    pages = []
    for n in (1, 2):
        done = run_cli(
            "run",
            "audit.yaml",
            "--static",
            "--no-cache",
            "--format",
            "html",
            "--output-dir",
            f"out{n}",
            cwd=project,
        )
        assert done.returncode in (0, 1), done.stdout + done.stderr
        pages.append((project / f"out{n}" / "report.html").read_text(encoding="utf-8"))
    timing = re.compile(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00|\d+\.\d+ s\b|(&#34;\w*seconds&#34;: )[\d.e-]+"
    )
    first, second = (timing.sub(lambda m: (m.group(1) or "") + "T", page) for page in pages)
    assert first == second


def test_thumbnails_are_capped_per_finding_and_per_page(qs):
    from auditor_plugins.reports import _thumbs, html

    report = copy.deepcopy(qs.report)
    sample = {"split": "train", "path": "data/train/cat/cat_000.jpg", "label": "cat"}
    pairs = [{"a": sample, "b": dict(sample, split="val"), "distance": 0} for _ in range(30)]
    report["findings"] = [
        {
            "code": "SL001",
            "audit": "split_leakage",
            "severity": "error",
            "title": "t",
            "message": f"leak {i}",
            "hint": "",
            "location": "data.val",
            "evidence": {"pairs": pairs, "count": 30},
        }
        for i in range(10)
    ]
    text = _render(report)
    per_finding = [a.count('<div class="pair">') for a in _articles(text, "SL001")]
    assert max(per_finding) == _thumbs.MAX_PAIRS and sum(per_finding) == html.MAX_PAIRS_PER_PAGE
    assert text.count('src="data:image/jpeg;base64,') == 2 * html.MAX_PAIRS_PER_PAGE
