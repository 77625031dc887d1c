"""The call deadline belongs to a run: two runs in one process each keep their own ``call_timeout_s``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor.kit import DeadlineExceeded
from auditor.testing import Project, run_in_process

#: User code that blocks until the test creates the file RELEASE, so no thread outlives the test.
SLOW_MODULE = """
import os
import time

import torch

RELEASE = {release!r}


def _wait():
    while not os.path.exists(RELEASE):
        time.sleep(0.02)


def model():
    _wait()
    return torch.nn.Linear(2, 2)


class Items(torch.utils.data.Dataset):
    targets = [0, 1]
    classes = ["a", "b"]

    def __len__(self):
        return 2

    def __getitem__(self, index):
        _wait()
        return torch.zeros(2), self.targets[index]


def items():
    return Items()
"""


@dataclass
class SlowProject:
    project: Project
    #: A module name of its own per test: an imported module stays in sys.modules with its RELEASE.
    module: str

    def manifest(self, name: str, seconds: float) -> Path:
        return self.project.manifest(
            {"train": {"format": "callable", "factory": f"{self.module}:items"}},
            audits={"frozen_coverage": {}},
            name=f"{name}.yaml",
            pythonpath=["."],
            call_timeout_s=seconds,
            model={"factory": f"{self.module}:model"},
        )


@pytest.fixture
def slow(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SlowProject]:
    release = tmp_path / "release"
    project = Project(tmp_path / "project")
    module = f"slow_{request.node.name}"
    project.write(f"{module}.py", SLOW_MODULE.format(release=str(release)))
    yield SlowProject(project, module)
    release.touch()  # the abandoned calls return and their threads end


def test_two_run_contexts_in_one_process_each_keep_their_own_deadline(slow: SlowProject) -> None:
    from auditor.manifest.load import load_manifest
    from auditor.run.context import RunContext
    from auditor.run.registry import load_registry

    registry = load_registry()
    short = RunContext(load_manifest(slow.manifest("short", 0.5), registry), registry)
    # Made after `short`: a deadline kept per process would now be 1.5 s for both runs.
    long = RunContext(load_manifest(slow.manifest("long", 1.5), registry), registry)
    assert (short.call_timeout_s, long.call_timeout_s) == (0.5, 1.5)

    for context, seconds in ((short, 0.5), (long, 1.5), (short, 0.5)):
        train = context.train
        assert train is not None
        with pytest.raises(DeadlineExceeded) as hung:
            train.sample(0)
        assert hung.value.seconds == seconds
        assert f"sample 0 of split 'train' (data.train) did not return within {seconds:g} s" in str(
            hung.value
        )

    for context, seconds in ((long, 1.5), (short, 0.5)):
        with pytest.raises(DeadlineExceeded) as hung:
            _ = context.model
        assert hung.value.seconds == seconds
        assert f"model.factory ({slow.module}:model) did not return within {seconds:g} s" in str(hung.value)


def test_an_audit_calls_user_code_under_its_own_runs_deadline(slow: SlowProject) -> None:
    from auditor.manifest.load import load_manifest
    from auditor.run.context import AuditContext, RunContext
    from auditor.run.registry import load_registry

    registry = load_registry()
    run = RunContext(load_manifest(slow.manifest("audit", 0.3), registry), registry)
    audit = AuditContext(run, registry.audits["frozen_coverage"], {})
    assert audit.call_timeout_s == 0.3
    assert audit.call(lambda a, b: a * b, 6, b=7, what="a product") == 42
    with pytest.raises(DeadlineExceeded, match=r"a slow wait did not return within 0\.3 s"):
        audit.call(time.sleep, 3, what="a slow wait")


def test_runs_one_after_another_report_their_own_deadline(slow: SlowProject) -> None:
    for name, seconds in (("first", 0.5), ("second", 1.0)):
        outcome = run_in_process(slow.manifest(name, seconds), output_dir=slow.project.path(f"out-{name}"))
        entry = outcome.audit("frozen_coverage")
        assert entry["status"] == "failed", entry  # user code that hangs is a finding, not auditor's crash
        (finding,) = outcome.findings_for("DL006")
        assert finding["message"] == (
            f"model.factory ({slow.module}:model): did not return within {seconds:g} s; it was abandoned"
        )
        assert "call_timeout_s" in finding["hint"]
        assert outcome.exit_code == 1
