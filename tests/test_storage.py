"""fsspec URLs as split roots: what is a URL, the cache's version token, and the local fast path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auditor.data._storage import is_url, version_token
from auditor.testing import make_image_folder, write_manifest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://bucket/prefix", True),
        ("gs://b/x", True),
        ("file:///data/train", True),
        ("memory://x", True),
        ("abfs://container/x", True),
        ("data/train", False),
        ("/abs/train", False),
        ("C:\\data\\train", False),
        ("c://odd", False),
        ("s3:/bucket", False),
        ("", False),
        (None, False),
        ("./s3://x", False),
    ],
)
def test_is_url_tells_urls_from_local_paths(text: object, expected: bool) -> None:
    assert is_url(text) is expected


def test_version_token_prefers_versions_then_etag_then_mtime() -> None:
    both = {"VersionId": "v1", "ETag": '"abc"', "LastModified": "2026-01-01", "size": 3}
    assert version_token(both) == version_token({"VersionId": "v1"})
    assert version_token({"ETag": '"abc"', "LastModified": "x"}) == version_token({"ETag": '"abc"'})
    assert version_token({"ETag": '"abc"'}) != version_token({"ETag": '"abd"'})
    assert version_token({"mtime": 1.5}) != version_token({"mtime": 1.6})
    assert version_token({"size": 3, "name": "x"}) is None  # nothing names the version: never cached
    token = version_token({"ETag": '"abc"'})
    assert token is not None and 0 <= token < 1 << 63  # fits SQLite's signed integer column


def test_a_local_run_imports_neither_fsspec_nor_dask(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "train", {"a": 3, "b": 3}, seed=1)
    make_image_folder(tmp_path / "val", {"a": 2, "b": 2}, seed=2)
    manifest = write_manifest(
        tmp_path,
        {
            "version": 1,
            "data": {
                "train": {"format": "image_folder", "root": "train"},
                "val": {"format": "csv", "path": "val.csv"},
            },
            "audits": {"split_leakage": {}, "label_distribution": {}},
        },
    )
    (tmp_path / "val.csv").write_text("path,label\nval/a/0000.png,a\nval/b/0000.png,b\n")
    code = (
        "import sys\nfrom auditor.run.api import run_manifest\n"
        f"outcome = run_manifest({str(manifest)!r}, only=['split_leakage', 'label_distribution'], "
        "formats=['json'])\n"
        "assert all(a['status'] != 'errored' for a in outcome.report['audits']), outcome.report['audits']\n"
        "print('HEAVY', sorted(m for m in ('fsspec', 'dask', 'distributed', 's3fs') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_file_urls_read_through_fsspec_give_the_local_findings(tmp_path: Path, run_audit: object) -> None:
    pytest.importorskip("fsspec", reason="needs fsspec (pip install '.[test]')")
    make_image_folder(tmp_path / "train", {"a": 4, "b": 4}, seed=1, ext=".jpg")
    make_image_folder(tmp_path / "val", {"a": 2, "b": 2}, seed=2, ext=".jpg")
    (tmp_path / "val/b/copy.jpg").write_bytes((tmp_path / "train/a/0001.jpg").read_bytes())
    local = write_manifest(
        tmp_path / "local",
        {
            "version": 1,
            "data": {
                "train": {"format": "image_folder", "root": str(tmp_path / "train")},
                "val": {"format": "image_folder", "root": str(tmp_path / "val")},
            },
        },
    )
    url = write_manifest(
        tmp_path / "url",
        {
            "version": 1,
            "data": {
                "train": {"format": "image_folder", "root": f"file://{tmp_path}/train"},
                "val": {"format": "image_folder", "root": f"file://{tmp_path}/val"},
            },
        },
    )
    expected = run_audit(local, only=["split_leakage", "label_distribution"])  # type: ignore[operator]
    got = run_audit(url, only=["split_leakage", "label_distribution"])  # type: ignore[operator]
    assert [f["code"] for f in got.report["findings"]] == [f["code"] for f in expected.report["findings"]]
    assert "SL001" in [f["code"] for f in got.report["findings"]]
    text = str(got.report["findings"]).replace(f"file://{tmp_path}/", "")
    assert text == str(expected.report["findings"]).replace(f"{tmp_path}/", "")
    warm = run_audit(url, only=["split_leakage"])  # type: ignore[operator]
    evidence = next(a["evidence"] for a in warm.report["audits"] if a["name"] == "split_leakage")
    assert evidence["cache_hits"] == evidence["samples"] == 13 and evidence["files_hashed"] == 0
