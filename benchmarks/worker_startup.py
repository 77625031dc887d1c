"""What the supervised worker costs `auditor run`: the same small run in-process and supervised.

The project: a callable dataset of 8 tensors and a linear model, two cheap audits
(label_distribution, frozen_coverage), no cache. Each mode runs ``--repeat`` times, alternating;
the median wall time of each and the difference (the worker's start: a second interpreter that
imports torch and loads the plugins) are printed. Numbers are noisy on a loaded machine.

Run: python benchmarks/worker_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from user_code_cases import plant


def _once(manifest: Path, extra: list[str]) -> float:
    argv = [
        sys.executable,
        "-m",
        "auditor",
        "run",
        str(manifest),
        "--output-dir",
        str(manifest.parent / "out"),
    ]
    argv += ["--only", "label_distribution,frozen_coverage", "--no-cache", "--quiet", *extra]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"auditor run failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        manifest = plant(Path(folder) / "p", {})
        times: dict[str, list[float]] = {"in-process": [], "supervised": []}
        for _ in range(args.repeat):
            times["in-process"].append(_once(manifest, ["--in-process"]))
            times["supervised"].append(_once(manifest, []))
    for mode, values in times.items():
        print(
            f"{mode:<11} median {statistics.median(values):6.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})"
        )
    extra = statistics.median(times["supervised"]) - statistics.median(times["in-process"])
    print(f"worker start-up cost: {extra:+.2f} s per run")


if __name__ == "__main__":
    main()
