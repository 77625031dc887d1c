"""junit report format: a testsuite per audit, a testcase per code, failures at or above fail_on."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

import pytest
from _reports_quickstart import quickstart_run

RANK = {"info": 1, "warning": 2, "error": 3, "never": 99}


@pytest.fixture(scope="module")
def qs(tmp_path_factory):
    return quickstart_run(tmp_path_factory.getbasetemp())


def _render(report) -> ET.Element:
    from auditor.run.registry import load_registry
    from auditor_plugins.reports import junit

    return ET.fromstring(junit.render(copy.deepcopy(report), load_registry().catalog).encode("utf-8"))


def _expected_failures(report, fail_on: str) -> set[str]:
    return {f["code"] for f in report["findings"] if RANK[f["severity"]] >= RANK[fail_on]}


def test_structure_matches_the_run(qs):
    root = ET.fromstring(qs.text("junit").encode("utf-8"))  # valid XML, as CI servers parse it
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [a["name"] for a in qs.report["audits"]]
    for suite, audit in zip(suites, qs.report["audits"], strict=False):
        cases = suite.findall("testcase")
        assert [c.get("name").split()[0] for c in cases] == sorted(audit["codes"])
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
        assert float(suite.get("time")) == pytest.approx(audit["duration_s"], abs=1e-3)
    failed = {c.get("name").split()[0] for c in root.iter("testcase") if c.find("failure") is not None}
    assert failed == _expected_failures(qs.report, qs.report["fail_on"])
    assert int(root.get("failures")) == len(failed) and int(root.get("tests")) == len(
        root.findall(".//testcase")
    )
    below = {c.get("name").split()[0] for c in root.iter("testcase") if c.find("system-out") is not None}
    fail_rank = RANK[qs.report["fail_on"]]
    assert below == {f["code"] for f in qs.report["findings"] if RANK[f["severity"]] < fail_rank}
    for case in root.iter("testcase"):
        failure = case.find("failure")
        if failure is not None:
            assert failure.get("message") and case.get("name").split()[0] in failure.text


@pytest.mark.parametrize("fail_on", ["info", "warning", "error", "never"])
def test_failures_follow_fail_on(qs, fail_on):
    report = copy.deepcopy(qs.report)
    report["fail_on"] = fail_on
    root = _render(report)
    failed = {c.get("name").split()[0] for c in root.iter("testcase") if c.find("failure") is not None}
    assert failed == _expected_failures(report, fail_on)
    if fail_on == "never":
        assert not failed


def test_crashed_and_skipped_audits(qs):
    report = copy.deepcopy(qs.report)
    report["audits"][0].update(
        status="errored",
        error={
            "type": "RuntimeError",
            "message": "boom\x00\x07",
            "traceback": "Traceback <most recent> & more",
        },
    )
    report["audits"][-1].update(status="skipped", reason="--static skips audits that run the model")
    root = _render(report)
    first, last = root.findall("testsuite")[0], root.findall("testsuite")[-1]
    assert all(c.find("error") is not None for c in first.findall("testcase"))
    assert "boom" in first.find("testcase/error").get("message")
    assert "<most recent> & more" in first.find("testcase/error").text
    assert all(c.find("skipped") is not None for c in last.findall("testcase"))
    assert int(root.get("errors")) == len(first.findall("testcase"))
    assert int(root.get("skipped")) == len(last.findall("testcase"))
