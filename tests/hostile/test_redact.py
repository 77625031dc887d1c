"""Reports fit to publish: nothing about the machine or where the project lives."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from hostile._corpus import manifest, project, run


def _all_text(out: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.iterdir()))


def test_redact_writes_paths_relative_to_the_manifest_and_no_host_details(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    (root / "data" / "val" / "cat" / "0000.png").write_bytes(
        (root / "data" / "train" / "cat" / "0000.png").read_bytes()
    )  # a leak: findings quote paths
    path = manifest(
        root,
        audits={"split_leakage": None, "label_distribution": None},
        model={"factory": "hostile:returns_none"},
        optimizer=None,
        loss=None,
    )
    path.write_text(
        path.read_text(encoding="utf-8").replace("optimizer: null\nloss: null\n", ""), encoding="utf-8"
    )
    out = tmp_path / "published"
    done = run(
        "run",
        path,
        "--no-cache",
        "--redact",
        "--format",
        "json,html,sarif,markdown,junit,github",
        "--output-dir",
        out,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["manifest"]["path"] == "audit.yaml"
    assert "platform" not in report["environment"]
    assert report["environment"]["python"]  # versions stay: they explain results
    assert any(f["code"] == "SL001" for f in report["findings"])
    text = _all_text(out)
    assert str(tmp_path) not in text
    assert "data/val/cat/0000.png" in json.dumps(report["findings"])
    user = getpass.getuser()
    assert f"/{user}/" not in text


def test_the_manifest_key_turns_redaction_on(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    path = manifest(root, audits={"label_distribution": None}, report={"redact": True, "formats": ["json"]})
    done = run("run", path, "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((root / "reports" / "report.json").read_text(encoding="utf-8"))
    assert report["manifest"]["path"] == "audit.yaml" and "platform" not in report["environment"]
