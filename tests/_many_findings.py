"""A small real project with more findings than GitHub shows annotations for, in a second of auditing.

Only label_distribution runs (every other audit is disabled in the manifest, visibly): 14 training
classes of 2 images each (LD005, a warning per class) and 12 evaluation splits that each hold a class
'train' never has (LD002, an error per split) and drift from train (LD003, a warning per split).
"""

from __future__ import annotations

from pathlib import Path

from auditor.testing import make_image_folder, write_manifest

TRAIN_CLASSES = [f"c{i:02d}" for i in range(14)]
EVAL_SPLITS = [f"e{i:02d}" for i in range(12)]


def many_findings_project(root: Path, *, extra: dict | None = None) -> Path:
    """Write the project under ``root``; return its manifest."""
    make_image_folder(root / "data" / "train", dict.fromkeys(TRAIN_CLASSES, 2), size=8)
    data = {"train": {"format": "image_folder", "root": "data/train"}}
    for index, name in enumerate(EVAL_SPLITS):
        make_image_folder(root / "data" / name, {"c00": 1, f"only_{name}": 1}, size=8, seed=index + 1)
        data[name] = {"format": "image_folder", "root": f"data/{name}"}
    manifest = {
        "version": 1,
        "name": "many-findings",
        "data": data,
        "audits": {"label_distribution": {}},
        "report": {"dir": "reports", "formats": ["json"]},
        **(extra or {}),
    }
    return write_manifest(root / "audit.yaml", manifest)
