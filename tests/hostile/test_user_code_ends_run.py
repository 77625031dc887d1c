"""User code that tries to end `auditor run` (issue 23): exits, crashes, hangs, memory, Ctrl-C.

Each case is planted in a temporary project and run as a real `auditor run` subprocess in a
session of its own, so the test can see every process the run started and that none is left.
The run must write its report with every audit that finished, word the failed call as a finding
(DL004 ended the process, DL006 passed a limit), exit 1 or 2 (never 0), and change no user file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hostile._corpus import snapshot

MODULE = """
import ctypes, os, sys, time
import torch

ACTION = os.environ.get("HOSTILE_ACTION", "")
if ACTION == "import-sleep":
    time.sleep(10**6)


def act(where):
    if ACTION != where:
        return
    if ACTION.endswith("os-exit") or where == "forward":
        os._exit(0)
    if "segfault" in ACTION:
        ctypes.string_at(0)
    if "memory" in ACTION:
        global HOG
        HOG = [b"x" * 2**26 for _ in range(64)]  # 4 GiB, touched


class Items(torch.utils.data.Dataset):
    classes = ["a", "b"]
    targets = [0, 1] * 4

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return torch.full((4,), float(index % 2)), index % 2


def items():
    return Items()


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        act("forward")
        return self.fc(x)


def model():
    act("factory-os-exit")
    act("factory-segfault")
    act("factory-memory")
    return Net()


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)
"""

MANIFEST = """version: 1
pythonpath: ['.']
call_timeout_s: {timeout}
model: {{factory: '{module}:model'}}
optimizer: {{factory: '{module}:sgd'}}
loss: {{factory: 'torch.nn:CrossEntropyLoss'}}
data:
  train: {{format: callable, factory: '{module}:items'}}
audits:
  gradient_probe: {{steps: 2, batch_size: 4}}
"""

ONLY = "label_distribution,frozen_coverage,gradient_probe"


def _plant(root: Path, timeout: float = 30, module: str = "m") -> Path:
    """The project; ``module``: a name of its own where the test also runs in this process (an imported
    module stays in sys.modules)."""
    root.mkdir(parents=True)
    (root / f"{module}.py").write_text(MODULE, encoding="utf-8")
    manifest = root / "audit.yaml"
    manifest.write_text(MANIFEST.format(timeout=timeout, module=module), encoding="utf-8")
    return manifest


def _session_alive(session: int) -> list[int]:
    """Processes still alive in the run's session (the run and every process it started)."""
    alive = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if session in (int(fields[3]), int(fields[4])) and fields[0] != "Z":
            alive.append(int(stat_file.parent.name))
    return alive


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        for task in Path(f"/proc/{stack.pop()}/task").glob("*"):
            try:
                children = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            stack.extend(children - found)
            found |= children
    return found


def _gone(pids: set[int] | list[int], within: float = 30.0) -> set[int]:
    deadline = time.monotonic() + within
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if Path(f"/proc/{p}").exists() and _state(p) != "Z"}
        time.sleep(0.1)
    return alive


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _start(manifest: Path, action: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "HOSTILE_ACTION": action}
    argv = [sys.executable, "-m", "auditor", "run", str(manifest), "--output-dir", "out", "--only", ONLY]
    return subprocess.Popen(
        [*argv, *extra],
        cwd=manifest.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _run(manifest: Path, action: str, *extra: str) -> tuple[int, str, dict[str, Any]]:
    """The run's exit code, output and report; asserts that it left no process and changed no file."""
    before = snapshot(manifest.parent, outside=manifest.parent / "out")
    process = _start(manifest, action, *extra)
    try:
        output, _ = process.communicate(timeout=300)  # a hang guard, not a speed requirement
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert _gone(_session_alive(process.pid)) == set(), "the run left processes behind"
    after = snapshot(manifest.parent, outside=manifest.parent / "out")
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert not {k for k in changed if not k.startswith((".auditor-cache", "__pycache__"))}, changed
    report = json.loads((manifest.parent / "out" / "report.json").read_text(encoding="utf-8"))
    from auditor.report.document import validate_report

    validate_report(report)
    return process.returncode, output, report


def _finding(report: dict[str, Any], code: str) -> dict[str, Any]:
    found = [f for f in report["findings"] if f["code"] == code]
    assert found, [(f["code"], f["message"]) for f in report["findings"]]
    return found[0]


def _status(report: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["status"] for a in report["audits"]}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("action", "how"),
    [
        ("factory-os-exit", "exit code 0"),
        ("factory-segfault", "SIGSEGV"),
    ],
)
def test_a_factory_that_ends_the_process_is_a_finding_and_the_report_is_written(
    tmp_path: Path, action: str, how: str
) -> None:
    code, output, report = _run(_plant(tmp_path / "p"), action)
    assert code == 1, output
    finding = _finding(report, "DL004")
    assert finding["audit"] == "frozen_coverage"
    assert finding["message"].startswith("model.factory (m:model): ")
    assert how in finding["message"], finding
    assert "m.py:" in finding["message"] and "in act" in finding["message"], finding  # the user's frame
    assert finding["location"] == "model.factory"
    status = _status(report)
    assert status["label_distribution"] == "passed"  # finished before the death: kept
    assert status["frozen_coverage"] == "failed"
    # The probe needs the same factory: not called again (and not killed again), it points at the finding.
    probe = next(a for a in report["audits"] if a["name"] == "gradient_probe")
    assert probe["status"] == "skipped" and "failed earlier in this run" in probe["reason"], probe
    assert "DL004" in output and "Traceback" not in output, output


@pytest.mark.slow
def test_os_exit_in_forward_names_the_forward_and_its_line(tmp_path: Path) -> None:
    code, output, report = _run(_plant(tmp_path / "p"), "forward")
    assert code == 1, output
    finding = _finding(report, "DL004")
    assert finding["audit"] == "gradient_probe"
    assert "the model's forward" in finding["message"] and "m.py:" in finding["message"], finding
    assert finding["evidence"]["process_ended"] is True
    assert _status(report)["frozen_coverage"] == "passed"


@pytest.mark.slow
def test_memory_past_the_limit_stops_the_worker_with_a_finding(tmp_path: Path) -> None:
    code, output, report = _run(_plant(tmp_path / "p"), "factory-memory", "--memory-limit", "0.6")
    assert code == 1, output
    finding = _finding(report, "DL006")
    assert "past the run's memory limit of 0.6 GiB" in finding["message"], finding
    assert finding["evidence"]["memory_limit_gib"] == 0.6


@pytest.mark.slow
def test_a_module_that_sleeps_at_import_is_stopped_by_call_timeout(tmp_path: Path) -> None:
    code, output, report = _run(_plant(tmp_path / "p", timeout=2), "import-sleep")
    assert code == 2, output  # the split cannot be opened: a problem of the manifest's data
    problem = report["problems"][0]
    assert problem["key"] == "data.train"
    assert "import of module 'm'" in problem["found"] and "did not return within 2 s" in problem["found"]
    # Audits that need the model do not wait for the same import again.
    assert report["duration_s"] < 120


@pytest.mark.slow
def test_ctrl_c_to_the_run_exits_130_and_leaves_no_process(tmp_path: Path) -> None:
    manifest = _plant(tmp_path / "p", timeout=600)
    process = _start(manifest, "import-sleep")
    deadline = time.monotonic() + 120
    while not _descendants(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = _descendants(process.pid)
    assert workers, "the run started no worker"
    time.sleep(3)  # the worker is inside the import by now (or still starting: both must stop)
    os.kill(process.pid, signal.SIGINT)  # the parent only: it passes Ctrl-C on to its worker
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output, output
    assert _gone(workers | set(_session_alive(process.pid))) == set()


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in ("duration_s", "started_at")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


@pytest.mark.slow
def test_a_passing_run_reports_the_same_supervised_and_in_process(tmp_path: Path) -> None:
    from auditor.testing import run_in_process

    manifest = _plant(tmp_path / "p", module="hostile_same_report")
    only = ["label_distribution", "frozen_coverage"]
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "auditor",
            "run",
            str(manifest),
            "--output-dir",
            "out",
            "--only",
            ",".join(only),
        ],
        cwd=manifest.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    supervised = json.loads((manifest.parent / "out" / "report.json").read_text(encoding="utf-8"))
    in_process = run_in_process(manifest, only=only, output_dir=tmp_path / "in-process").report
    assert process.returncode == in_process["exit_code"], process.stdout + process.stderr
    assert supervised["environment"]["torch"] == in_process["environment"]["torch"] is not None
    assert _without_times(supervised) == _without_times(in_process)
