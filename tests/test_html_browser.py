"""The quickstart's HTML report in a real browser: headless Debian chromium, no console errors, charts drawn.

Chromium comes from the system (``apt-get install chromium``; ``.ci/run``
installs it in CI), never downloaded by a test tool. Outside CI the test skips
when it is missing; in CI (``CI`` or ``AUDITOR_REQUIRE_BROWSER`` set) a missing
browser fails the test instead of hiding it. ``AUDITOR_REPORT_SCREENSHOT=path``
keeps the screenshot (that is how docs/img/report.png is made).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _reports_quickstart import quickstart_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Console messages (errors, CSP violations, failed loads) are logged as "...:CONSOLE:<line>] "text"...".
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\]\s*(.*)")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("AUDITOR_REQUIRE_BROWSER"):
        pytest.fail("chromium is not installed, but this is CI: .ci/run installs Debian's chromium package")
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and runs this test")


def _browse(chromium: str, page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", *extra, page.as_uri()],
        check=False, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def _console(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [m.group(1) for m in map(CONSOLE.search, done.stderr.splitlines()) if m]


def test_console_check_catches_errors(tmp_path):
    """The detector itself: a page with a script error and a blocked load is caught."""
    chromium = _chromium()
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
                    "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
                    "<img src=\"http://127.0.0.1:9/x.png\"><script>undefined_function();</script></body></html>")
    done = _browse(chromium, page, tmp_path / "profile", "--dump-dom")
    messages = _console(done)
    assert any("Uncaught" in m for m in messages), done.stderr[-3000:]
    assert any("Content Security Policy" in m for m in messages), done.stderr[-3000:]


def test_quickstart_report_in_headless_chromium(tmp_path_factory, tmp_path):
    chromium = _chromium()
    from PIL import Image

    qs = quickstart_run(tmp_path_factory.getbasetemp())
    page = qs.reports / "report.html"

    dom = _browse(chromium, page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert _console(dom) == [], "console messages while loading the report"
    html = dom.stdout
    assert re.search(r'<header id="summary" class="summary verdict-(passed|failed|errored)">', html)
    assert re.search(r'<figure class="chart-counts">.*?<svg[^>]*class="chart"', html, re.DOTALL), \
        "no chart in the DOM"
    assert "<script" not in html

    shot = tmp_path / "report.png"
    done = _browse(chromium, page, tmp_path / "profile-shot", "--window-size=1280,2400", f"--screenshot={shot}")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-3000:]
    assert _console(done) == []
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1280, 2400)
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    counts = {colour: n for n, colour in colours}
    # The verdict badge (#c0392b, the page failed on planted problems) and the class-count bars (#0072B2)
    # are painted: the browser rendered the summary and the SVG chart, not just parsed them.
    assert counts.get((0xC0, 0x39, 0x2B), 0) > 200 or qs.report["exit_code"] == 0
    assert counts.get((0x00, 0x72, 0xB2), 0) > 500, "no chart bars painted"
    assert len(counts) > 50, "screenshot is (nearly) blank"
    keep = os.environ.get("AUDITOR_REPORT_SCREENSHOT")  # docs/report.md: how docs/img/report.png is made
    if keep:
        shutil.copyfile(shot, keep)
