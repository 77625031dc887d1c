"""Label counting speed: a 1,000,000-row CSV, a 100,000-file image folder, and `auditor validate`.

Targets (issue 2): CSV < 3 s, image folder < 3 s, validate < 0.5 s wall.
Run: .venv/bin/python benchmarks/labels.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, best_of, open_split

REPO = Path(__file__).resolve().parent.parent
ROWS = 1_000_000
FILES = 100_000
CLASSES = 10


def make_csv(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("path,label\n")
        handle.writelines(f"images/{i:07d}.jpg,class_{(i * 7919) % CLASSES}\n" for i in range(ROWS))


def make_folder(root: Path) -> None:
    marker = root / ".complete"
    if marker.exists():
        return
    for c in range(CLASSES):
        (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
    for i in range(FILES):
        (root / f"class_{i % CLASSES}" / f"{i:06d}.jpg").touch()  # empty files: counting decodes nothing
    marker.touch()


def main() -> None:
    csv_path = DATA / "labels" / "train.csv"
    folder = DATA / "labels" / "folder"
    t = time.perf_counter()
    make_csv(csv_path)
    make_folder(folder)
    print(f"data ready in {time.perf_counter() - t:.1f} s ({ROWS:,} CSV rows, {FILES:,} files)")

    def count_csv() -> dict[str, int]:
        return open_split("train", {"format": "csv", "path": str(csv_path)}, DATA).label_counts()

    def count_folder() -> dict[str, int]:
        return open_split("train", {"format": "image_folder", "root": str(folder)}, DATA).label_counts()

    count_csv()  # warm imports (pandas) and the page cache, as a second run would be
    seconds, counts = best_of(3, count_csv)
    assert sum(counts.values()) == ROWS
    print(f"csv label counting:          {seconds:6.3f} s  ({ROWS / seconds:,.0f} rows/s)   target < 3 s")
    seconds, counts = best_of(3, count_folder)
    assert sum(counts.values()) == FILES
    print(f"image_folder label counting: {seconds:6.3f} s  ({FILES / seconds:,.0f} files/s)  target < 3 s")

    auditor = Path(sys.executable).parent / "auditor"
    manifest = REPO / "examples" / "quickstart" / "audit.yaml"

    def validate() -> int:
        return subprocess.run(
            [str(auditor), "validate", str(manifest)],
            check=False,
            capture_output=True,
            env={**os.environ, "NO_COLOR": "1"},
        ).returncode

    seconds, code = best_of(5, validate)
    print(f"auditor validate quickstart: {seconds:6.3f} s wall (exit {code})             target < 0.5 s")


if __name__ == "__main__":
    main()
