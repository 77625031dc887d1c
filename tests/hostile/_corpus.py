"""Building hostile inputs in a temporary folder, and checking a run left the rest alone.

Every test of this package writes its own corpus: a small image-folder project,
a module of misbehaving user code, and a manifest pointing at both.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.testing import CliResult, make_image_folder, run_cli, write_manifest

#: User code that misbehaves on purpose. ``HANG_MARKER`` proves a hanging call really started.
HOSTILE_MODULE = """
import os
import time

import torch


def _hang(marker):
    if marker:
        open(marker, "w").close()
    while True:
        time.sleep(0.05)


def hang_model(marker=""):
    _hang(marker)


class HangForward(torch.nn.Module):
    def __init__(self, marker=""):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        self.marker = marker

    def forward(self, x):
        _hang(self.marker)


def hang_forward(marker=""):
    return HangForward(marker)


class Tiny(torch.nn.Module):
    def __init__(self, num_classes=2):
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(3, num_classes)

    def forward(self, x):
        return self.fc(self.pool(x).flatten(1))


def tiny(num_classes=2):
    return Tiny(num_classes)


def returns_none():
    return None


def returns_dict():
    return {"fc": torch.nn.Linear(3, 2)}


def sgd(model, lr=0.1):
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)


def _pixels(image):
    # Plain torch, no torchvision: importing it takes seconds on a loaded machine.
    import numpy

    array = numpy.asarray(image.convert("RGB").resize((16, 16)), dtype=numpy.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def to_tensor():
    return _pixels


class RaisesOnFive(torch.utils.data.Dataset):
    classes = ["a", "b"]
    targets = [i % 2 for i in range(8)]

    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == 5:
            raise OSError("disk went away at item five")
        return torch.zeros(3, 8, 8), index % 2


def raises_on_five():
    return RaisesOnFive()


class HangsOnItems(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        _hang("")


def hangs_on_items():
    return HangsOnItems()
"""


def child_pids(pid: int) -> set[int]:
    """The direct children of ``pid`` (every thread's), read from /proc: the pool workers of a run."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def project(
    root: Path, *, train: Mapping[str, int] | None = None, val: Mapping[str, int] | None = None
) -> Path:
    """``root`` with data/train and data/val image folders and ``hostile.py``; returns root."""
    make_image_folder(root / "data" / "train", dict(train or {"cat": 4, "dog": 4}), size=16)
    make_image_folder(root / "data" / "val", dict(val or {"cat": 2, "dog": 2}), size=16, seed=7)
    (root / "hostile.py").write_text(HOSTILE_MODULE, encoding="utf-8")
    return root


def manifest(root: Path, **sections: Any) -> Path:
    """A manifest in ``root`` over its two image folders; ``sections`` replace or add top-level keys."""
    body: dict[str, Any] = {
        "version": 1,
        "pythonpath": ["."],
        "model": {"factory": "hostile:tiny"},
        "optimizer": {"factory": "hostile:sgd"},
        "loss": {"factory": "torch.nn:CrossEntropyLoss"},
        "data": {
            "train": {"format": "image_folder", "root": "data/train", "transform": "hostile:to_tensor"},
            "val": {"format": "image_folder", "root": "data/val", "transform": "hostile:to_tensor"},
        },
    }
    body.update(sections)
    return write_manifest(root, body)


def run(
    *args: str | Path, cwd: Path | None = None, timeout: float = 120, env: Mapping[str, str] | None = None
) -> CliResult:
    """``python -m auditor ARGS``; no bytecode is written beside the user's modules."""
    return run_cli(*args, cwd=cwd, timeout=timeout, env={"PYTHONDONTWRITEBYTECODE": "1", **(env or {})})


def snapshot(root: Path, *, outside: Path | None = None) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root`` (not following links) but ``outside``: mode, size, mtime."""
    found: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if outside is not None and (path == outside or outside in path.parents):
                continue
            info = path.lstat()
            found[str(path.relative_to(root))] = (
                stat.S_IFMT(info.st_mode),
                info.st_size if not stat.S_ISDIR(info.st_mode) else 0,
                info.st_mtime_ns if not stat.S_ISDIR(info.st_mode) else 0,
            )
    return found
