"""User code that never returns: the run records what hung, goes on, and exits."""

from __future__ import annotations

from pathlib import Path

from hostile._corpus import manifest, project, run, snapshot


def test_hanging_model_factory_is_abandoned_and_named(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    marker = tmp_path / "factory-started"
    path = manifest(
        root,
        call_timeout_s=1,
        model={"factory": "hostile:hang_model", "kwargs": {"marker": str(marker)}},
        audits={"frozen_coverage": None, "label_distribution": None},
    )
    before = snapshot(root, outside=root / "out")
    done = run("run", path, "--no-cache", "--output-dir", root / "out", timeout=90)
    assert marker.exists(), "the factory never ran, so nothing was tested"
    assert done.returncode == 1, done.stdout + done.stderr  # a finding (DL006), not auditor's crash
    text = " ".join(done.stdout.split())  # the console may wrap long lines
    assert "DL006" in text and "model.factory (hostile:hang_model): did not return within 1 s" in text
    # The run went on: the audit that needs no model ran to the end.
    assert "label_distribution" in done.stdout and "passed" in done.stdout
    assert "Traceback" not in done.stderr
    assert snapshot(root, outside=root / "out") == before


def test_hanging_forward_is_stopped_by_the_probe_budget(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    marker = tmp_path / "forward-started"
    path = manifest(
        root,
        model={"factory": "hostile:hang_forward", "kwargs": {"marker": str(marker)}},
        # frozen_coverage runs first and builds model and optimizer outside the probe: the
        # first import of torch.optim's internals takes seconds on a loaded machine.
        audits={"frozen_coverage": None, "gradient_probe": {"time_budget_s": 8, "steps": 2, "device": "cpu"}},
    )
    before = snapshot(root, outside=root / "out")
    done = run("run", path, "--no-cache", "--output-dir", root / "out", timeout=90)
    # A budget of a few seconds leaves room for building the model on a loaded machine.
    assert marker.exists(), "forward never ran, so nothing was tested:\n" + done.stdout
    assert done.returncode == 1, done.stdout + done.stderr  # a finding (DL006), not auditor's crash
    text = " ".join(done.stdout.split())  # the console may wrap long lines
    assert "gradient_probe: the model's forward pass and the loss on training step 1: did not return" in text
    assert "time_budget_s is 8 s" in text
    assert (root / "out" / "report.json").is_file()
    assert snapshot(root, outside=root / "out") == before


def test_a_call_deadline_passes_results_errors_and_grad_mode_through() -> None:
    import threading

    import pytest
    import torch

    from auditor.kit import CallDeadline, DeadlineExceeded
    from auditor.run._deadline import abandoned

    deadline = CallDeadline()
    assert deadline.call(lambda a, b=0: a + b, 2, b=3, what="add") == 5
    with pytest.raises(KeyError, match="missing"):
        deadline.call(lambda: {}["missing"], what="lookup")
    with torch.no_grad():
        assert deadline.call(torch.is_grad_enabled, what="grad mode") is False
    release = threading.Event()
    with pytest.raises(DeadlineExceeded, match=r"a blocked wait did not return within 0\.2 s"):
        CallDeadline(0.2).call(release.wait, what="a blocked wait")
    assert "a blocked wait" in abandoned()
    release.set()  # the abandoned thread finishes, and is then no longer listed
    for _ in range(200):
        if "a blocked wait" not in abandoned():
            break
        threading.Event().wait(0.05)
    assert "a blocked wait" not in abandoned()


def test_a_call_deadline_refuses_a_limit_that_is_not_a_positive_number() -> None:
    import pytest

    from auditor.kit import DEFAULT_CALL_TIMEOUT_S, CallDeadline

    assert CallDeadline.of(None).seconds == DEFAULT_CALL_TIMEOUT_S
    assert CallDeadline.of(2).seconds == 2.0
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="expected a finite number of seconds > 0"):
            CallDeadline(bad)


def test_a_dataset_whose_items_never_return_is_abandoned_at_the_first_item(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    path = manifest(
        root,
        call_timeout_s=1,
        data={"train": {"format": "callable", "factory": "hostile:hangs_on_items"}},
        audits={"label_distribution": None},
    )
    before = snapshot(root, outside=root / "out")
    done = run("run", path, "--no-cache", "--output-dir", root / "out", timeout=90)
    assert done.returncode == 1, done.stdout + done.stderr  # a finding (DL006), not auditor's crash
    text = " ".join(done.stdout.split())
    assert "reading sample 0 of split 'train' (data.train): did not return within 1 s" in text, done.stdout
    assert snapshot(root, outside=root / "out") == before
