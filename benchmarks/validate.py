"""Speed of `auditor validate` with every offline check it does (issue 14: < 0.5 s on the quickstart).

Each variant is the quickstart manifest with one more kind of check to do; each
time is the best of 5 fresh `auditor validate` processes (interpreter start
included), so it is what a pre-commit hook waits for. Prints one line per number.

    .venv/bin/python benchmarks/validate.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from precommit import AUDITOR, copy_quickstart


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(project: Path) -> tuple[float, tuple[float, int]]:
    """Wall and CPU seconds of one `auditor validate`; CPU time is what a loaded machine does not inflate."""
    started, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(
        [AUDITOR, "validate", "audit.yaml"], cwd=project, check=False, capture_output=True, text=True
    )
    return time.perf_counter() - started, (_cpu() - cpu, done.returncode)


def _variant(base: Path, name: str, change: dict) -> Path:
    project, _ = copy_quickstart(base / name)
    manifest = yaml.safe_load((project / "audit.yaml").read_text())
    for section, value in change.items():
        manifest.setdefault(section, {}).update(value)
    (project / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    rows = [
        "path,label",
        *(f"{p.relative_to(project)},{p.parent.name}" for p in (project / "data" / "val").rglob("*.jpg")),
    ]
    (project / "val.csv").write_text("\n".join(rows) + "\n")
    return project


def main() -> None:
    import importlib.util

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        variants = [
            ("quickstart as shipped (image folders, torchvision weights, head)", {}),
            ("with a CSV split (header read)", {"data": {"val": {"format": "csv", "path": "val.csv"}}}),
        ]
        if importlib.util.find_spec("timm") is not None:
            variants.append(
                (
                    "with timm weights (timm's sources scanned)",
                    {"model": {"pretrained": "timm:resnet18.a1_in1k"}},
                )
            )
        for number, (label, change) in enumerate(variants):
            project = _variant(base, f"v{number}", change)
            runs = [_timed(project) for _ in range(5)]
            wall = min(r[0] for r in runs)
            cpu = min(r[1][0] for r in runs)
            print(
                f"auditor validate, {label}: best of 5 {wall:.3f} s wall, {cpu:.3f} s CPU, exit {runs[-1][1][1]}"
                "  (target < 0.5 s)"
            )
        started, cpu = time.perf_counter(), _cpu()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        print(
            f"python interpreter start alone: {time.perf_counter() - started:.3f} s wall, {_cpu() - cpu:.3f} s CPU"
        )


if __name__ == "__main__":
    main()
