"""User code that tries to take `auditor run` down: each case planted in a temporary folder and run.

For every case: the exit code, whether report.json was written, the seconds the run took, the
processes of the run still alive afterwards, and the line of the output that names the cause.
Issue 23's table (case, before, after) comes from running this on the old and the new code.
A run is stopped after ``--timeout`` seconds (the "before" of the hangs).

Run: python benchmarks/user_code_cases.py [--timeout 60] [--only CASE ...] [--extra-args ...]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: One module per case: ``m.py`` with the model factory, a dataset factory and whatever it does wrong.
BASE = """
import ctypes, os, sys, time
import torch

class Items(torch.utils.data.Dataset):
    classes = ["a", "b"]
    def __init__(self, n=8):
        self.n = n
    def __len__(self):
        return self.n
    def __getitem__(self, index):
        return torch.full((4,), float(index % 2)), index % 2

def items():
    return Items()

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)
    def forward(self, x):
        {forward}
        return self.fc(x)

def model():
    {factory}
    return Net()

def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)

{top}
"""

#: case -> (what the factory does, what forward does, module top level, manifest extras, CLI extras)
CASES: dict[str, dict[str, object]] = {
    "factory sys.exit(0)": {"factory": "sys.exit(0)"},
    "factory sys.exit(3)": {"factory": "sys.exit(3)"},
    "factory os._exit(0)": {"factory": "os._exit(0)"},
    "import sys.exit(0)": {"top": "sys.exit(0)"},
    "import os._exit(0)": {"top": "os._exit(0)"},
    "forward sys.exit(0)": {"forward": "sys.exit(0)"},
    "forward os._exit(0)": {"forward": "os._exit(0)"},
    "factory segfault": {"factory": "ctypes.string_at(0)"},
    "factory abort": {"factory": "os.abort()"},
    "import sleeps forever (call_timeout_s 8)": {"top": "time.sleep(10**6)", "timeout": 8},
    "factory raises TypeError": {"factory": "raise TypeError('bad width')"},
    "factory allocates 3 GiB": {
        "factory": "hog = [bytearray(2**26) for _ in range(48)]",
        "cli": ["--memory-limit", "1"],
    },
    "len() 10**12, no .targets": {"items": "Items(10**12)"},
    "model on meta device": {"model": "meta"},
}


def plant(root: Path, case: dict[str, object]) -> Path:
    root.mkdir(parents=True)
    source = BASE.format(
        factory=case.get("factory", "pass"), forward=case.get("forward", "pass"), top=case.get("top", "")
    )
    if case.get("items"):
        source += f"\ndef items():\n    return {case['items']}\n"
    if case.get("model") == "meta":
        source += "\ndef model():\n    with torch.device('meta'):\n        return Net()\n"
    (root / "m.py").write_text(source)
    lines = [
        "version: 1",
        "pythonpath: ['.']",
        "model: {factory: 'm:model'}",
        "optimizer: {factory: 'm:sgd'}",
        "loss: {factory: 'torch.nn:CrossEntropyLoss'}",
        "data:",
        "  train: {format: callable, factory: 'm:items'}",
        "audits: {split_leakage: false}",
    ]
    if "timeout" in case:
        lines.append(f"call_timeout_s: {case['timeout']}")
    manifest = root / "audit.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found.add(child)
                    stack.append(child)
    return found


def _alive_in_session(session: int) -> list[int]:
    """Processes of the run's session (it was started in a new one) still alive."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if session in (int(fields[3]), int(fields[4])) and fields[0] != "Z":  # pgrp or session
            alive.append(int(stat.parent.name))
    return alive


def run_case(name: str, case: dict[str, object], timeout: float, extra: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        manifest = plant(Path(folder) / "p", case)
        out = Path(folder) / "p" / "out"
        argv = [sys.executable, "-m", "auditor", "run", str(manifest), "--output-dir", str(out)]
        argv += [str(a) for a in case.get("cli", [])] + extra  # type: ignore[union-attr]
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        started = time.monotonic()
        process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        try:
            output, _ = process.communicate(timeout=timeout)
            code: object = process.returncode
        except subprocess.TimeoutExpired:
            code = f"none in {timeout:g} s"
            output = ""
        seconds = time.monotonic() - started
        time.sleep(0.5)
        left = _alive_in_session(process.pid)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        process.communicate()
        if isinstance(code, int) and code < 0:
            code = f"{signal.Signals(-code).name}"
        words = [line.strip() for line in output.splitlines() if any(k in line for k in ("DL0", "error"))]
        return {
            "case": name,
            "exit": code,
            "report": (out / "report.json").exists(),
            "seconds": round(seconds, 1),
            "left": len(left),
            "words": (words[0] if words else output.strip().splitlines()[-1:] or [""])[:160],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--extra-args", nargs=argparse.REMAINDER, default=[])
    args = parser.parse_args()
    print(f"{'case':<42} {'exit':<14} {'report':<7} {'s':>6} {'left':>4}  words")
    for name, case in CASES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        extra = list(args.extra_args)
        if "--memory-limit" in [str(c) for c in case.get("cli", [])] and _old():  # type: ignore[union-attr]
            case = {k: v for k, v in case.items() if k != "cli"}
        row = run_case(name, case, args.timeout, extra)
        print(
            f"{row['case']:<42} {row['exit']!s:<14} {'yes' if row['report'] else 'no':<7} "
            f"{row['seconds']:>6} {row['left']:>4}  {row['words']}",
            flush=True,
        )


def _old() -> bool:
    """The code before issue 23 has no --memory-limit option."""
    done = subprocess.run([sys.executable, "-m", "auditor", "run", "--help"], capture_output=True, text=True)
    return "--memory-limit" not in done.stdout


if __name__ == "__main__":
    main()
