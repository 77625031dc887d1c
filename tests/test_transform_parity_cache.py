"""transform_parity's measurement cache: reused only when nothing the numbers depend on changed.

The fingerprint tests build real torchvision pipelines; the run tests use real image
folders, a real project module on the manifest's pythonpath and the CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import load_json_report

from auditor.testing import make_image_folder, run_cli, write_manifest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _fingerprint(obj: Any, **kwargs: Any) -> str:
    from auditor_plugins.common.fingerprint import fingerprint

    return fingerprint(obj, **kwargs)


def _pipeline(mean: list[float] = MEAN, size: int = 32) -> Any:
    from torchvision import transforms as T

    return T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, STD)])


# -- fingerprint ---------------------------------------------------------------------------


def test_equal_pipelines_built_separately_have_one_fingerprint() -> None:
    assert _fingerprint(_pipeline()) == _fingerprint(_pipeline())


def test_any_changed_parameter_changes_the_fingerprint() -> None:
    base = _fingerprint(_pipeline())
    assert _fingerprint(_pipeline(mean=[0.5, 0.456, 0.406])) != base
    assert _fingerprint(_pipeline(size=33)) != base


def test_functions_are_told_apart_by_code_constants_closures_and_globals() -> None:
    from torchvision import transforms as T

    def scaled(factor: float) -> Any:
        return T.Lambda(lambda x: x * factor)

    by_constant = {_fingerprint(T.Lambda(lambda x: x * 255)), _fingerprint(T.Lambda(lambda x: x * 1))}
    assert len(by_constant) == 2
    assert _fingerprint(scaled(2.0)) == _fingerprint(scaled(2.0))
    assert _fingerprint(scaled(2.0)) != _fingerprint(scaled(3.0))

    namespace: dict[str, Any] = {"SCALE": 1.0}
    exec("def step(x):\n    return x * SCALE\n", namespace)
    before = _fingerprint(namespace["step"])
    namespace["SCALE"] = 255.0
    assert _fingerprint(namespace["step"]) != before


def test_project_modules_a_step_imports_count_and_unrelated_ones_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fp_config.py").write_text("SCALE = 2.0\n", encoding="utf-8")
    (tmp_path / "fp_steps.py").write_text(
        "import fp_config\n\n\ndef step(x):\n    return x * fp_config.SCALE\n", encoding="utf-8"
    )
    (tmp_path / "fp_other.py").write_text("UNRELATED = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fp_steps  # type: ignore[import-not-found]

    before = _fingerprint(fp_steps.step, project_dirs=[str(tmp_path)])
    import fp_other  # type: ignore[import-not-found]  # noqa: F401 - imported, never used by the step

    assert _fingerprint(fp_steps.step, project_dirs=[str(tmp_path)]) == before
    (tmp_path / "fp_config.py").write_text(
        "SCALE = 255.0\n", encoding="utf-8"
    )  # the edit, not yet re-imported
    assert _fingerprint(fp_steps.step, project_dirs=[str(tmp_path)]) != before


def test_state_without_a_description_is_uncacheable() -> None:
    import torch

    from auditor_plugins.common.fingerprint import Uncacheable

    generator = torch.Generator()  # no __dict__, repr is an address: its state is invisible
    with pytest.raises(Uncacheable):
        _fingerprint(lambda x: x + torch.rand(1, generator=generator))


def test_a_step_naming_a_huge_global_is_not_walked_to_the_end() -> None:
    from auditor_plugins.common.fingerprint import Uncacheable

    namespace: dict[str, Any] = {"ALL_PATHS": [f"img_{i}.jpg" for i in range(300_000)]}
    exec("def step(x):\n    return x if ALL_PATHS else None\n", namespace)
    with pytest.raises(Uncacheable, match="more than 200,000"):
        _fingerprint(namespace["step"])


def test_cycles_and_shared_objects_do_not_loop() -> None:
    class Step:
        def __call__(self, x: Any) -> Any:
            return x

    step = Step()
    step.me = step  # type: ignore[attr-defined]
    assert _fingerprint([step, step]) == _fingerprint([step, step])


def test_fingerprint_is_the_same_in_another_process() -> None:
    code = textwrap.dedent("""
        import sys
        from torchvision import transforms as T
        from auditor_plugins.common.fingerprint import fingerprint
        print(fingerprint(T.Compose([T.Resize(32), T.Lambda(lambda x: x * 2), T.ToTensor(),
                                     T.Normalize([0.5] * 3, [0.25] * 3)])))
    """)
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(digests) == 1 and len(next(iter(digests))) == 32


# -- runs ------------------------------------------------------------------------------

PROJECT = textwrap.dedent("""
    from torchvision import transforms as T

    MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    train_tf = T.Compose([T.RandomResizedCrop(32), T.ToTensor(), T.Normalize(MEAN, STD)])
    eval_tf = T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor(), T.Normalize(MEAN, STD)])
""")


def _project(root: Path) -> Path:
    make_image_folder(root / "data" / "train", {"cat": 6, "dog": 6}, seed=1)
    make_image_folder(root / "data" / "val", {"cat": 3, "dog": 3}, seed=2)
    (root / "src").mkdir(parents=True)
    (root / "src" / "cache_project.py").write_text(PROJECT, encoding="utf-8")
    splits = {
        name: {"format": "image_folder", "root": f"data/{name}", "transform": f"cache_project:{name}_tf"}
        for name in ("train", "val")
    }
    splits["val"]["transform"] = "cache_project:eval_tf"
    return write_manifest(
        root,
        {
            "version": 1,
            "pythonpath": ["src"],
            "model": {
                "factory": "torchvision.models:resnet18",
                "kwargs": {"num_classes": 2},
                "pretrained": "torchvision:ResNet18_Weights.IMAGENET1K_V1",
            },
            "data": splits,
            "audits": {"transform_parity": {"samples": 8}},
        },
    )


def _audit(root: Path, *args: str) -> dict[str, Any]:
    """The transform_parity entry of a CLI run's JSON report, with its findings' codes added."""
    done = run_cli("run", "audit.yaml", "--format", "json", "--quiet", *args, cwd=root)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = load_json_report(root / "reports")
    (audit,) = [a for a in report["audits"] if a["status"] != "disabled"]
    assert audit["status"] in ("passed", "failed"), audit
    return {**audit, "found": sorted(f["code"] for f in report["findings"])}


def _codes(audit: dict[str, Any]) -> list[str]:
    return audit["found"]


@pytest.mark.slow
def test_rerun_reuses_until_data_pipeline_or_source_change(tmp_path: Path) -> None:
    _project(tmp_path)
    first = _audit(tmp_path)
    assert first["evidence"]["measurement_cache"] == {"train": "measured", "val": "measured"}
    assert (tmp_path / ".auditor-cache" / "CACHEDIR.TAG").is_file()

    second = _audit(tmp_path)
    assert second["evidence"]["measurement_cache"] == {"train": "reused", "val": "reused"}
    assert second["evidence"]["measured"] == first["evidence"]["measured"]
    assert second["notes"] == first["notes"]

    # New content in one sampled val file (same name): only val is measured again.
    changed = min((tmp_path / "data" / "val" / "cat").iterdir())
    changed.write_bytes(changed.read_bytes() + b"\0")
    third = _audit(tmp_path)
    assert third["evidence"]["measurement_cache"] == {"train": "reused", "val": "measured"}

    # The user edits the eval pipeline in the project module: val is measured again, train is not.
    source = tmp_path / "src" / "cache_project.py"
    source.write_text(
        PROJECT.replace(
            "T.CenterCrop(32), T.ToTensor(), T.Normalize(MEAN, STD)", "T.CenterCrop(32), T.ToTensor()"
        ),
        encoding="utf-8",
    )
    fourth = _audit(tmp_path)
    assert fourth["evidence"]["measurement_cache"] == {"train": "reused", "val": "measured"}
    assert "TP001" in _codes(fourth) and "TP001" not in _codes(third)

    disabled = _audit(tmp_path, "--no-cache")
    assert set(disabled["evidence"]["measurement_cache"].values()) == {"cache disabled (--no-cache)"}


@pytest.mark.slow
def test_a_damaged_cache_entry_is_measured_again_and_replaced(tmp_path: Path) -> None:
    _project(tmp_path)
    first = _audit(tmp_path)
    entries = sorted((tmp_path / ".auditor-cache" / "transform_parity").glob("*.json"))
    assert len(entries) == 2
    entries[0].write_text('{"key": "', encoding="utf-8")  # a write cut short by a crash
    entries[1].write_text(json.dumps({"key": "stale", "measured": {}}), encoding="utf-8")
    second = _audit(tmp_path)
    assert second["evidence"]["measurement_cache"] == {"train": "measured", "val": "measured"}
    assert second["evidence"]["measured"] == first["evidence"]["measured"]
    assert all(json.loads(path.read_text())["key"] != "stale" for path in entries)
    assert not list((tmp_path / ".auditor-cache" / "transform_parity").glob(".tmp-*"))
