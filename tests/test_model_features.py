"""split_leakage's model stage: real image files, a real (tiny) torch model built by a manifest factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from _leak_models import MODELS
from PIL import Image


def _picture(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)  # smooth, distinct layouts
    return Image.fromarray(low).resize((size, size), Image.BILINEAR)


def _project(root: Path, model: str | None = "pretrained") -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "mf_models.py").write_text(MODELS, encoding="utf-8")
    for i in range(10):
        folder = root / "data" / "train" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        _picture(i).save(folder / f"t{i}.png")
    (root / "data" / "val" / "a").mkdir(parents=True)
    for i in range(3):
        _picture(100 + i).save(root / "data" / "val" / "a" / f"v{i}.png")
    # A leaked copy: train image 4 cropped to 80% of each side, saved again at the original size.
    _picture(4).crop((5, 5, 43, 43)).resize((48, 48), Image.BILINEAR).save(
        root / "data" / "val" / "a" / "leak.png"
    )
    (root / "data" / "val" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    manifest: dict[str, Any] = {
        "version": 1,
        "pythonpath": ["src"],
        "data": {
            "train": {"format": "image_folder", "root": "data/train"},
            "val": {"format": "image_folder", "root": "data/val"},
        },
    }
    if model:
        manifest["model"] = {"factory": f"mf_models:{model}", "head": "fc"}
    path = root / "audit.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


def _context(path: Path) -> tuple[Any, Any, list[int], list[int]]:
    from auditor.manifest.load import load_manifest
    from auditor.run.context import AuditContext, RunContext
    from auditor.run.registry import load_registry
    from auditor_plugins.split_leakage.collect import collect

    registry = load_registry()
    run = RunContext(load_manifest(path, registry), registry, cache_dir=path.parent / "cache")
    ctx = AuditContext(run, registry.audits["split_leakage"], {})
    samples = collect(ctx.splits, cache=None, workers=1, progress=ctx.progress)
    train = [i for i in range(len(samples)) if samples.split_names[samples.split[i]] == "train"]
    evals = [i for i in range(len(samples)) if samples.split_names[samples.split[i]] != "train"]
    return ctx, samples, train, evals


def _name(samples: Any, sample: int) -> str:
    return Path(samples.path[sample]).name


def test_planted_crop_is_a_candidate_and_a_warm_run_embeds_nothing(tmp_path):
    from auditor_plugins.split_leakage.model_features import model_candidates

    ctx, samples, train, evals = _context(_project(tmp_path))
    stage = model_candidates(ctx, samples, train, evals, k=2, resolution=32, device="cpu")
    assert stage.skipped is None, stage.skipped
    assert "input of 'fc' at 32 px" in stage.source and "ImageNet" in stage.source
    assert stage.embedded == 10 + 4 and stage.cached == 0  # the broken file is not embedded
    assert [_name(samples, s) for s, _ in stage.unread] == ["broken.png"]
    assert stage.stopped is None and "exact" in stage.index_backend
    by_eval: dict[str, list[tuple[str, float]]] = {}
    for t, e, sim in stage.candidates:
        by_eval.setdefault(_name(samples, e), []).append((_name(samples, t), sim))
    assert set(by_eval) == {"v0.png", "v1.png", "v2.png", "leak.png"}
    assert all(len(found) == 2 for found in by_eval.values())
    assert by_eval["leak.png"][0][0] == "t4.png", by_eval["leak.png"]
    assert by_eval["leak.png"][0][1] > 0.9
    suggested = stage.suggestions()  # the geometric stage's input: eval id -> train ids, best first
    leak = next(e for e in suggested if _name(samples, e) == "leak.png")
    assert _name(samples, suggested[leak][0]) == "t4.png" and len(suggested) == 4

    again = model_candidates(ctx, samples, train, evals, k=2, resolution=32, device="cpu")
    assert again.embedded == 0 and again.cached == 14
    assert [(t, e) for t, e, _ in again.candidates] == [(t, e) for t, e, _ in stage.candidates]
    assert np.allclose([s for *_, s in again.candidates], [s for *_, s in stage.candidates], atol=2e-3)
    # Another resolution is another key: embedded afresh.
    other = model_candidates(ctx, samples, train, evals, k=2, resolution=40, device="cpu")
    assert other.embedded == 14 and other.cached == 0


def test_budget_stop_says_what_was_not_compared(tmp_path):
    from auditor_plugins.split_leakage.model_features import model_candidates

    ctx, samples, train, evals = _context(_project(tmp_path))
    stage = model_candidates(ctx, samples, train, evals, resolution=32, budget_s=0.0, use_cache=False)
    assert stage.skipped is None and stage.embedded == 0 and not stage.candidates
    assert stage.stopped is not None
    assert "14 (10 train, 4 evaluation) were not compared" in stage.stopped
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("model", "static", "reason"),
    [
        ("random_init", False, "initial running statistics"),
        (None, False, "no model"),
        ("pretrained", True, "--static"),
        ("crashes", False, "the model stage stopped: ValueError: boom in forward"),
    ],
)
def test_skipped_with_the_reason(tmp_path, model, static, reason):
    from auditor_plugins.split_leakage.model_features import model_candidates

    ctx, samples, train, evals = _context(_project(tmp_path, model))
    stage = model_candidates(ctx, samples, train, evals, static=static)
    assert stage.skipped is not None and reason in stage.skipped
    assert not stage.candidates and stage.embedded == 0


def test_normalisation_follows_model_pretrained(tmp_path):
    from auditor_plugins.split_leakage.model_features import IMAGENET, normalisation

    path = _project(tmp_path)
    manifest = yaml.safe_load(path.read_text())
    manifest["model"]["pretrained"] = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    ctx, *_ = _context(path)
    assert normalisation(ctx) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "model.pretrained's")
    manifest["model"]["pretrained"] = "torchvision:ResNet18_Weights.IMAGENET1K_V1"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    ctx, *_ = _context(path)
    mean, std, source = normalisation(ctx)
    assert (mean, std) == IMAGENET and source == "ResNet18_Weights.IMAGENET1K_V1's"


def test_images_load_as_training_loads_them_without_exif_transpose(tmp_path):
    from auditor_plugins.split_leakage.model_features import load_image

    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    wide.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° to view": a viewer turns it, torchvision's loader does not
    wide.save(tmp_path / "tagged.jpg", exif=exif, quality=95)
    pixels = load_image(str(tmp_path / "tagged.jpg"), 16)
    assert pixels.shape == (16, 16, 3)
    assert pixels[8, 2, 2] > 200 and pixels[8, 13, 0] > 200  # still blue left, red right
    gray = Image.new("L", (10, 10), 128)
    assert load_image(gray, 8).shape == (8, 8, 3)


def test_a_fifo_swapped_in_after_hashing_is_recorded_not_waited_on(tmp_path):
    import os

    from auditor_plugins.split_leakage.model_features import model_candidates

    ctx, samples, train, evals = _context(_project(tmp_path))
    victim = tmp_path / "data" / "val" / "a" / "v0.png"
    victim.unlink()
    os.mkfifo(victim)  # opening it for reading would block forever
    stage = model_candidates(ctx, samples, train, evals, resolution=32, use_cache=False)
    assert stage.skipped is None
    unread = {_name(samples, s): reason for s, reason in stage.unread}
    assert set(unread) == {"broken.png", "v0.png"} and "regular" in unread["v0.png"].lower()
    assert stage.embedded == 13
