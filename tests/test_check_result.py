"""auditor.check takes every manifest key as a keyword; every way of running returns one result type."""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import pytest
import torch
from conftest import REPO, make_image_folder, write_manifest
from torch.utils.data import TensorDataset

import auditor
from auditor.errors import AuditFailed, ManifestInvalid
from auditor.run.api import RunOutcome, run_manifest

SCHEMA = json.loads((REPO / "schemas" / "manifest.schema.json").read_text(encoding="utf-8"))
#: Static audits only: these tests are about keywords and results, not about what the audits find.
STATIC = ["label_distribution"]


def labelled(n: int = 12, classes: int = 3) -> TensorDataset:
    return TensorDataset(torch.zeros(n, 3, 4, 4), torch.arange(n) % classes)


def test_every_top_level_manifest_key_is_a_keyword_of_check():
    keys = sorted(SCHEMA["properties"])
    assert len(keys) >= 13  # read from the schema, not from a list kept here
    parameters = inspect.signature(auditor.check).parameters
    missing = [key for key in keys if key not in parameters]
    assert not missing, f"auditor.check has no keyword for the manifest keys {missing}"
    keyword_only = [key for key in keys if key not in ("model", "optimizer", "loss")]
    assert all(parameters[key].kind is inspect.Parameter.KEYWORD_ONLY for key in keyword_only)


def test_check_keyword_defaults_are_the_manifest_defaults():
    parameters = inspect.signature(auditor.check).parameters
    assert parameters["fail_on"].default == SCHEMA["properties"]["fail_on"]["default"]
    assert parameters["version"].default == SCHEMA["properties"]["version"]["const"]


class Slow(torch.utils.data.Dataset):
    """No labels attribute: the labels are read item by item, each call under the deadline."""

    def __init__(self, n: int, seconds: float) -> None:
        self.n, self.seconds = n, seconds

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Any:
        time.sleep(self.seconds)
        return torch.zeros(3), index % 2


def test_call_timeout_s_keyword_bounds_each_call_into_user_code():
    result = auditor.check(train=Slow(4, 1.5), audits=STATIC, call_timeout_s=0.2, progress=False)
    text = json.dumps(result.report)
    assert "did not return within 0.2 s" in text, text[:2000]
    assert "DL006" in result.codes()  # user code that hangs is a finding (exit 1), not auditor's crash
    assert result.exit_code == 1
    # The next run without the keyword has the manifest default (300 s), not this run's 0.2 s.
    later = auditor.check(train=Slow(2, 0.4), audits=STATIC, progress=False)
    assert "did not return" not in json.dumps(later.report)
    assert later.exit_code == 0


def test_data_keyword_is_splits_by_the_manifest_name():
    by_data = auditor.check(data={"train": labelled(), "val": labelled(6)}, audits=STATIC, progress=False)
    by_keywords = auditor.check(train=labelled(), val=labelled(6), audits=STATIC, progress=False)
    assert by_data.report["findings"] == by_keywords.report["findings"]
    assert by_data.report["task"] == by_keywords.report["task"]
    with pytest.raises(auditor.UsageError, match="'train' is given twice"):
        auditor.check(train=labelled(), data={"train": labelled()}, audits=STATIC)


def test_report_keyword_writes_where_the_manifest_key_says(tmp_path):
    result = auditor.check(
        train=labelled(),
        audits=STATIC,
        base_dir=tmp_path,
        report={"dir": "out", "formats": ["json", "markdown"], "redact": True},
        progress=False,
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "report.md"]
    written = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert "platform" not in written["environment"]  # report.redact: true took effect
    assert str(tmp_path) not in json.dumps(written)
    assert result.report == written  # redacted in memory as on disk


def test_manifest_keys_are_validated_with_the_manifest_words(tmp_path):
    with pytest.raises(ManifestInvalid) as wrong:
        auditor.check(train=labelled(), audits=STATIC, version=2, call_timeout_s=-1, scheduler="ftp://x")
    keys = sorted(error.key for error in wrong.value.errors)
    assert keys == ["call_timeout_s", "scheduler", "version"], wrong.value
    with pytest.raises(ManifestInvalid, match="data"):
        auditor.check(torch.nn.Linear(2, 2), audits=STATIC)  # no split at all: as a manifest without data


def test_run_manifest_and_check_return_the_one_result_type(tmp_path):
    folder = tmp_path / "project"
    make_image_folder(folder / "data" / "train", {"cat": 4, "dog": 4})
    path = write_manifest(
        folder,
        {
            "version": 1,
            "data": {"train": {"format": "image_folder", "root": "data/train"}},
            "audits": {"label_distribution": {}},
        },
    )
    outcome = run_manifest(path, formats=["json"], output_dir=tmp_path / "reports")
    checked = auditor.check(train=labelled(), audits=STATIC, progress=False)
    assert [name for name, _ in outcome.written] == ["json"]
    assert checked.written == []

    assert RunOutcome is auditor.CheckResult
    for result in (outcome, checked):
        assert type(result) is auditor.CheckResult
        assert {f.code for f in result.findings} == {f["code"] for f in result.report["findings"]}
        assert [f.id for f in result.findings] == [f["id"] for f in result.report["findings"]]
        assert result.exit_code == result.report["exit_code"]
        saved = result.save(tmp_path / f"saved-{id(result)}", formats=["json", "markdown"])
        assert sorted(p.name for p in saved) == ["report.json", "report.md"]
        assert "<" in result._repr_html_()
        assert repr(result).startswith(f"auditor: exit code {result.exit_code}")
        assert [name for name, _ in result.written][-2:] == ["json", "markdown"]


def test_raise_for_errors_follows_the_exit_code():
    clean = auditor.check(train=labelled(12), audits=STATIC, progress=False)
    assert clean.exit_code == 0
    clean.raise_for_errors()  # nothing to raise
    skewed = TensorDataset(torch.zeros(40, 3), torch.tensor([0] * 38 + [1, 2]))
    failing = auditor.check(train=skewed, audits=STATIC, fail_on="info", progress=False)
    assert failing.exit_code == 1
    with pytest.raises(AuditFailed):
        failing.raise_for_errors()
