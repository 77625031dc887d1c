"""split_leakage's geometric stage (SL007): crops, small rotations, quarter turns, EXIF turns.

Real JPEG files on disk, the real CLI in a subprocess for the end-to-end case; every planted
copy must be found with how it relates, and unrelated pictures (including simple ones that
share a disc or a ramp) must never be paired.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _leak_models import MODELS
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from auditor.testing import make_image

SIDE = 192


def _picture(seed: int) -> Image.Image:
    """A 192 px picture with a gradient, soft light, shapes and noise (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
    canvas = rng.uniform(0, 255, 3) * (1 - ramp) + rng.uniform(0, 255, 3) * ramp
    cx, cy = rng.uniform(0, 1, 2).tolist()
    sigma = rng.uniform(0.1, 0.3)
    canvas += rng.uniform(-120, 120, 3) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))[..., None]
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(5, 12))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = (int(v) for v in rng.integers(-20, SIDE, 2))
        w, h = (int(v) for v in rng.integers(10, 90, 2))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            pen.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 1:
            pen.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            pen.line((x0, y0, x0 + w, y0 + h), fill=colour, width=int(rng.integers(2, 6)))
    noise = rng.normal(0, 6, (SIDE, SIDE, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def _save(image: Image.Image, path: Path, **options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=85, **options)
    return path


def _largest_square(side: int, degrees: float) -> int:
    radians = math.radians(abs(degrees))
    return int(side / (math.cos(radians) + math.sin(radians)))


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """12 train pictures, 6 unrelated val pictures and 6 planted geometric copies."""
    root = tmp_path_factory.mktemp("geometric")
    train = [_save(_picture(100 + i), root / "train" / "things" / f"t{i:02d}.jpg") for i in range(12)]
    for i in range(6):
        _save(_picture(900 + i), root / "val" / "things" / f"own{i}.jpg")
    source = [Image.open(path).convert("RGB") for path in train]
    val = root / "val" / "things"
    copies = {
        # 80% of each side from the centre, then grayscale.
        "centre_crop.jpg": (0, ImageOps.grayscale(source[0].crop((19, 19, 173, 173))).convert("RGB")),
        # 70% of each side at an offset, resized up.
        "random_crop.jpg": (1, source[1].crop((40, 10, 174, 144)).resize((224, 224), Image.BICUBIC)),
        # 7 degrees counter-clockwise, cropped to hide the corners, colour-jittered.
        "rotated.jpg": (2, _rotated(source[2], 7.0)),
        # 8 degrees clockwise.
        "rotated_cw.jpg": (3, _rotated(source[3], -8.0)),
        "turned.jpg": (4, source[4].transpose(Image.Transpose.ROTATE_90)),
    }
    for name, (_index, image) in copies.items():
        _save(image, val / name)
    # Pixels turned a quarter counter-clockwise, with the tag (6) a viewer undoes it with.
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(source[5].transpose(Image.Transpose.ROTATE_90), val / "exif_turned.jpg", exif=exif)
    truth = {name: f"train/things/t{index:02d}.jpg" for name, (index, _) in copies.items()}
    truth["exif_turned.jpg"] = "train/things/t05.jpg"
    return {"root": root, "truth": truth}


def _rotated(image: Image.Image, degrees: float) -> Image.Image:
    turned = image.rotate(degrees, resample=Image.BICUBIC)
    keep = _largest_square(image.width, degrees)
    x = (image.width - keep) // 2
    return ImageEnhance.Color(turned.crop((x, x, x + keep, x + keep))).enhance(1.3)


def _manifest(root: Path, options: str = "") -> Path:
    manifest = root / "audit.yaml"
    manifest.write_text(
        "version: 1\ndata:\n  train: {format: image_folder, root: train}\n"
        "  val: {format: image_folder, root: val}\n"
        f"audits:\n  split_leakage: {{{options}}}\n"
    )
    return manifest


def _sl007_pairs(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pairs = {}
    for finding in report["findings"]:
        if finding["code"] == "SL007":
            for pair in finding["evidence"]["pairs"]:
                pairs[Path(pair["b"]["path"]).name] = pair
    return pairs


def test_every_planted_geometric_copy_is_sl007_with_its_relation(planted: dict[str, Any], cli: Any) -> None:
    root = planted["root"]
    result = cli(
        "run",
        _manifest(root),
        "--only",
        "split_leakage",
        "--format",
        "html",
        cwd=root,
        output_dir=root / "reports",
    )
    assert result.exit_code == 0, result.output  # SL007 is a warning, below the default fail_on
    pairs = _sl007_pairs(result.report)
    assert {name: pair["a"]["path"] for name, pair in pairs.items()} == planted["truth"]
    assert "cropped to" in pairs["centre_crop.jpg"]["relation"]
    assert 0.55 <= pairs["centre_crop.jpg"]["area"] <= 0.75  # 80% of each side: 64% of the area
    assert 0.4 <= pairs["random_crop.jpg"]["area"] <= 0.6
    assert "counter-clockwise" in pairs["rotated.jpg"]["relation"]
    assert 5 <= pairs["rotated.jpg"]["angle"] <= 9
    assert "clockwise" in pairs["rotated_cw.jpg"]["relation"] and pairs["rotated_cw.jpg"]["angle"] < -5
    assert pairs["turned.jpg"]["kind"] == "turn" and "90 degrees" in pairs["turned.jpg"]["relation"]
    exif = pairs["exif_turned.jpg"]
    assert exif["exif_orientation"] == 6 and "EXIF orientation tag (6)" in exif["relation"]
    for pair in pairs.values():  # the region drawn in the HTML report lies in the picture
        if "region" in pair:
            x0, y0, x1, y1 = pair["region"]
            assert -0.05 <= x0 < x1 <= 1.05 and -0.05 <= y0 < y1 <= 1.05
    audit = next(a for a in result.report["audits"] if a["name"] == "split_leakage")
    assert audit["evidence"]["geometric"]["features"] == "weight-free (window codes)"
    assert "SL007" in result.output
    html = (root / "reports" / "report.html").read_text(encoding="utf-8")
    assert "cropped to" in html and "EXIF orientation tag (6)" in html


def test_the_html_outlines_the_region_the_copy_shows(planted: dict[str, Any], run_audit: Any) -> None:
    import base64
    import io

    from auditor.report.evidence import leaked_pairs
    from auditor_plugins.reports._thumbs import pair_views

    root = planted["root"]
    outcome = run_audit(_manifest(root), only=["split_leakage"])
    finding = next(f for f in outcome.report["findings"] if f["code"] == "SL007")
    pairs = {Path(p.b.path).name: p for p in leaked_pairs(finding["evidence"])}
    views = {Path(v.b.path).name: v for v in pair_views(list(pairs.values()), root, size=128)}

    def red(uri: str) -> int:
        data = base64.b64decode(uri.split(",", 1)[1])
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
        return int(((pixels[..., 0] > 200) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)).sum())

    crop = views["random_crop.jpg"]
    assert len(pairs["random_crop.jpg"].outline) == 4
    assert red(crop.a.uri) > 100 and red(crop.b.uri) < 20  # the outline is on the training image only
    assert "cropped to" in crop.note
    assert pairs["turned.jpg"].outline == ()  # a turn shows the whole picture: nothing to outline


def test_the_warm_run_searches_nothing_and_finds_the_same(planted: dict[str, Any], run_audit: Any) -> None:
    manifest = _manifest(planted["root"])
    first = run_audit(manifest, only=["split_leakage"])
    second = run_audit(manifest, only=["split_leakage"])
    assert _sl007_pairs(first.report) == _sl007_pairs(second.report)
    evidence = next(a for a in second.report["audits"] if a["name"] == "split_leakage")["evidence"]
    assert evidence["geometric"]["searched"] == 0 and evidence["files_hashed"] == 0


def test_geometric_false_turns_the_stage_off(planted: dict[str, Any], run_audit: Any) -> None:
    outcome = run_audit(_manifest(planted["root"], "geometric: false"), only=["split_leakage"])
    assert _sl007_pairs(outcome.report) == {}
    evidence = next(a for a in outcome.report["audits"] if a["name"] == "split_leakage")["evidence"]
    assert evidence["geometric"] == {"skipped": "geometric: false"}


def test_static_keeps_the_weight_free_stage(planted: dict[str, Any], cli: Any) -> None:
    root = planted["root"]
    result = cli(
        "run",
        _manifest(root),
        "--static",
        "--only",
        "split_leakage",
        "--format",
        "json",
        cwd=root,
        output_dir=root / "reports",
    )
    assert set(_sl007_pairs(result.report)) == set(planted["truth"])


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_simple_unrelated_pictures_are_never_paired(tmp_path: Path, run_audit: Any, mode: str) -> None:
    # Discs on flat grounds: any two share a disc edge somewhere; colours (or, in grayscale,
    # finer structure) differ.
    for i in range(16):
        make_image(tmp_path / "train" / "c" / f"{i}.jpg", seed=100 + i, size=96, mode=mode)
    for i in range(10):
        make_image(tmp_path / "val" / "c" / f"{i}.jpg", seed=700 + i, size=96, mode=mode)
    for i in range(4):  # smooth ramps and blobs with no edges at all
        ramp = np.linspace(0, 255, 96, dtype=np.float32)[None, :].repeat(96, 0)
        blob = Image.fromarray((ramp * (0.5 + 0.1 * i)).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3))
        _save(blob.convert("RGB"), tmp_path / ("train" if i % 2 else "val") / "c" / f"ramp{i}.jpg")
    outcome = run_audit(_manifest(tmp_path), only=["split_leakage"])
    assert _sl007_pairs(outcome.report) == {}


def test_in_memory_tensors_are_searched_from_their_kept_grids(tmp_path: Path, run_audit: Any) -> None:
    pictures = [np.asarray(_picture(300 + i), dtype=np.float32) / 255 for i in range(6)]
    crop = pictures[2][20:160, 30:170]
    module = tmp_path / "crop_data.py"
    np.save(tmp_path / "train.npy", np.stack(pictures))
    np.save(tmp_path / "crop.npy", crop)
    module.write_text(
        "import numpy as np, torch\n"
        "from pathlib import Path\n"
        "HERE = Path(__file__).parent\n"
        "class Images(torch.utils.data.Dataset):\n"
        "    def __init__(self, arrays): self.arrays = arrays\n"
        "    def __len__(self): return len(self.arrays)\n"
        "    def __getitem__(self, i): return torch.from_numpy(self.arrays[i]).permute(2, 0, 1), 0\n"
        "def train(): return Images(list(np.load(HERE / 'train.npy')))\n"
        "def val(): return Images([np.load(HERE / 'crop.npy')])\n"
    )
    manifest = tmp_path / "audit.yaml"
    manifest.write_text(
        "version: 1\npythonpath: ['.']\ndata:\n"
        "  train: {format: callable, factory: 'crop_data:train'}\n"
        "  val: {format: callable, factory: 'crop_data:val'}\n"
    )
    outcome = run_audit(manifest, only=["split_leakage"])
    pairs = [p for f in outcome.report["findings"] if f["code"] == "SL007" for p in f["evidence"]["pairs"]]
    assert [(p["a"]["index"], p["b"]["index"]) for p in pairs] == [(2, 0)]
    assert "cropped to" in pairs[0]["relation"]


def test_a_cache_written_before_the_geometric_stage_is_upgraded(
    planted: dict[str, Any], run_audit: Any
) -> None:
    root = planted["root"]
    database = root / ".auditor-cache" / "split_leakage.sqlite"
    run_audit(_manifest(root), only=["split_leakage"])
    with sqlite3.connect(database) as connection:  # the table as version 1.0 of the audit wrote it
        connection.execute("DROP TABLE file_hashes")
        connection.execute(
            "CREATE TABLE file_hashes (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
            " version INTEGER NOT NULL, digest BLOB NOT NULL, phash INTEGER, mirror INTEGER, thumb BLOB,"
            " error TEXT) WITHOUT ROWID"
        )
    outcome = run_audit(_manifest(root), only=["split_leakage"])
    assert set(_sl007_pairs(outcome.report)) == set(planted["truth"])
    with sqlite3.connect(database) as connection:
        stored = connection.execute("SELECT count(*) FROM file_hashes WHERE anchors IS NOT NULL").fetchone()[
            0
        ]
    assert stored == 12 + 6 + len(planted["truth"])


def test_window_codes_of_a_crop_match_the_anchor_it_contains() -> None:
    from auditor_plugins.split_leakage import windows

    picture = _picture(5).convert("L")
    grid = np.asarray(picture.resize((64, 64), Image.BOX), dtype=np.float32)
    anchors = windows.Anchors(windows.anchor_codes([grid]))
    # A centred crop keeping 82% of each side contains the centred anchor (number 12).
    low, high = 0.09 * SIDE, 0.91 * SIDE
    crop = np.asarray(picture.crop((low, low, high, high)).resize((64, 64), Image.BOX), dtype=np.float32)
    _query_hashes, units = windows.query_windows(crop[None])
    count = len(windows.ANCHORS)
    rows = np.repeat(np.arange(len(units[0])), count)
    cosine = anchors.cosine(
        units[0][rows], np.zeros(len(rows), dtype=np.int64), np.tile(np.arange(count), len(units[0]))
    )
    cosine = cosine.reshape(len(units[0]), count)
    window, anchor = np.unravel_index(int(cosine.argmax()), cosine.shape)
    assert cosine.max() > 0.95 and anchor == 12
    assert abs(windows.QUERY_GEOMETRY[window][3]) <= 4  # unturned, or the nearest turn


def test_a_fifo_named_like_an_image_never_blocks_the_second_read(tmp_path: Path) -> None:
    import os

    from auditor_plugins.split_leakage import hashing

    fifo = tmp_path / "val.jpg"
    os.mkfifo(fifo)
    picture = _save(_picture(7), tmp_path / "ok.jpg")
    grids = hashing.grids_of_files([str(fifo), str(picture)])
    assert grids[0] is None and grids[1] is not None and len(grids[1]) == 64 * 64


def test_hostile_file_names_are_escaped_in_the_html_and_the_console(tmp_path: Path, cli: Any) -> None:
    source = _picture(11)
    _save(source, tmp_path / "train" / "x" / "a.jpg")
    for i in range(3):
        _save(_picture(40 + i), tmp_path / "train" / "x" / f"other{i}.jpg")
    hostile = "<img src=x onerror=alert(1)>\x1b[31mred.jpg"
    _save(source.crop((30, 20, 170, 160)), tmp_path / "val" / "x" / hostile)
    result = cli(
        "run",
        _manifest(tmp_path),
        "--only",
        "split_leakage",
        "--format",
        "html",
        cwd=tmp_path,
        output_dir=tmp_path / "reports",
    )
    assert "SL007" in result.output and "\x1b[31m" not in result.stdout
    html = (tmp_path / "reports" / "report.html").read_text(encoding="utf-8")
    assert "cropped to" in html and "<img src=x onerror" not in html


def _with_model(root: Path, mode: str) -> Path:
    (root / "geo_models.py").write_text(MODELS, encoding="utf-8")
    manifest = root / f"audit_{mode}.yaml"
    manifest.write_text(
        "version: 1\npythonpath: ['.']\nmodel: {factory: 'geo_models:pretrained'}\n"
        "data:\n  train: {format: image_folder, root: train}\n  val: {format: image_folder, root: val}\n"
        f"audits:\n  split_leakage: {{model_features: {mode}}}\n"
    )
    return manifest


def test_the_model_stage_adds_its_candidates_and_the_report_says_it_ran(
    planted: dict[str, Any], run_audit: Any
) -> None:
    outcome = run_audit(_with_model(planted["root"], "true"), only=["split_leakage"], use_cache=False)
    evidence = next(a for a in outcome.report["audits"] if a["name"] == "split_leakage")["evidence"]
    model = evidence["geometric"]["model"]
    assert model["embedded"] > 0 and model["candidates"] > 0 and model.get("stopped") is None
    assert "model features: Net" in evidence["geometric"]["features"]
    assert set(_sl007_pairs(outcome.report)) == set(planted["truth"])  # same pairs, no false ones


def test_the_model_stage_is_skipped_with_a_note_under_static_and_on_cpu_by_default(
    planted: dict[str, Any], cli: Any
) -> None:
    root = planted["root"]
    static = cli(
        "run",
        _with_model(root, "true"),
        "--static",
        "--only",
        "split_leakage",
        "--no-cache",
        cwd=root,
        output_dir=root / "reports",
    )
    audit = next(a for a in static.report["audits"] if a["name"] == "split_leakage")
    assert "skipped with --static" in audit["evidence"]["geometric"]["model"]["skipped"]
    assert any("model stage of the geometric search skipped" in note for note in audit["notes"])
    assert set(_sl007_pairs(static.report)) == set(planted["truth"])  # the weight-free stage ran
    auto = cli("run", _with_model(root, "auto"), "--only", "split_leakage", "--no-cache", cwd=root)
    assert auto.exit_code == 0, auto.output
    import torch

    if not torch.cuda.is_available():
        audit = next(a for a in auto.report["audits"] if a["name"] == "split_leakage")
        assert "no GPU here" in audit["evidence"]["geometric"]["model"]["skipped"]


def test_a_new_evaluation_file_is_the_only_one_searched_and_reads_the_cached_anchors(
    tmp_path: Path, run_audit: Any
) -> None:
    for i in range(8):
        _save(_picture(500 + i), tmp_path / "train" / "t" / f"{i}.jpg")
    _save(_picture(600), tmp_path / "val" / "t" / "own.jpg")
    manifest = _manifest(tmp_path)
    first = run_audit(manifest, only=["split_leakage"])
    assert _sl007_pairs(first.report) == {}
    source = Image.open(tmp_path / "train" / "t" / "3.jpg").convert("RGB")
    _save(source.crop((10, 30, 160, 180)), tmp_path / "val" / "t" / "crop.jpg")
    second = run_audit(manifest, only=["split_leakage"])
    evidence = next(a for a in second.report["audits"] if a["name"] == "split_leakage")["evidence"]
    assert evidence["files_hashed"] == 1 and evidence["geometric"]["searched"] == 1
    assert {name: pair["a"]["path"] for name, pair in _sl007_pairs(second.report).items()} == {
        "crop.jpg": "train/t/3.jpg"
    }


def test_a_new_training_file_is_searched_against_the_cached_evaluation_grids_only(
    tmp_path: Path, run_audit: Any
) -> None:
    for i in range(8):
        _save(_picture(700 + i), tmp_path / "train" / "t" / f"{i}.jpg")
    source = _picture(799)
    _save(source.crop((20, 10, 170, 160)), tmp_path / "val" / "t" / "crop.jpg")
    _save(_picture(798), tmp_path / "val" / "t" / "own.jpg")
    manifest = _manifest(tmp_path)
    assert _sl007_pairs(run_audit(manifest, only=["split_leakage"]).report) == {}
    _save(source, tmp_path / "train" / "t" / "late.jpg")  # the crop's source joins train later
    second = run_audit(manifest, only=["split_leakage"])
    evidence = next(a for a in second.report["audits"] if a["name"] == "split_leakage")["evidence"]
    assert evidence["files_hashed"] == 1
    assert evidence["geometric"]["decoded"] == 0  # the evaluation grids came from the cache
    assert {n: p["a"]["path"] for n, p in _sl007_pairs(second.report).items()} == {
        "crop.jpg": "train/t/late.jpg"
    }
    (tmp_path / "train" / "t" / "late.jpg").unlink()  # and its pair goes with it
    assert _sl007_pairs(run_audit(manifest, only=["split_leakage"]).report) == {}


def test_pictures_too_small_to_verify_are_noted_not_paired(tmp_path: Path, run_audit: Any) -> None:
    # 48 px pictures: a square on a flat ground is all they hold, and look-alikes fit as well as copies.
    source = _picture(21).resize((48, 48), Image.BICUBIC)
    _save(source, tmp_path / "train" / "t" / "small.jpg")
    for i in range(4):
        _save(_picture(30 + i), tmp_path / "train" / "t" / f"{i}.jpg")
    _save(source.crop((4, 4, 44, 44)), tmp_path / "val" / "t" / "small_crop.jpg")
    outcome = run_audit(_manifest(tmp_path), only=["split_leakage"])
    assert _sl007_pairs(outcome.report) == {}
    audit = next(a for a in outcome.report["audits"] if a["name"] == "split_leakage")
    too_small = audit["evidence"]["geometric"]["too_small"]
    notes = [n for n in audit["notes"] if "smaller than 64 px" in n]
    assert too_small == 1 and len(notes) == 1, (too_small, audit["notes"])
