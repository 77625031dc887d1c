"""Benchmark: split_leakage's geometric stage (crops, rotations, quarter turns) at the 20k scale.

    .venv/bin/python benchmarks/geometric_leakage.py              # generate once, then hash-only vs full
    .venv/bin/python benchmarks/geometric_leakage.py --runs geometric

Generates once (cached under benchmarks/.data/, gitignored) 20,000 train and 2,000 val
JPEGs rendered as in benchmarks/leakage.py, with 20 copies of each kind below planted
in val (sources drawn from train without repeats):

* the kinds the hash stage already finds: exact copies, re-encoded/resized/brightened,
  mirrored, 96 px JPEG q30, grayscale and colour-jittered copies;
* geometric kinds: centre crops keeping 80% of each side, random crops keeping 70%,
  rotations of 5-10 degrees (either sign) followed by the largest centred crop without
  black corners, quarter turns (90/180/270 degrees, half of them also mirrored), and
  copies whose pixels are turned but whose EXIF orientation tag turns them back (a
  viewer shows the train picture; torchvision's loader does not apply the tag).
  Every geometric copy is also re-encoded (JPEG q60-90), and a third of the crops are
  also resized, made grayscale or colour-jittered.

It then runs ``auditor run``'s split_leakage (through ``run_manifest``, as the CLI
does) twice per configuration, cold (fresh cache) and warm, and prints recall per
kind, false cross-split pairs, wall seconds (warm: best of three) and peak RSS: with
the geometric stage off (``geometric: false``), with the defaults, and -- with
``--before-python`` -- the hash-only run of a checkout from before the stage, which is
the baseline of the printed ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # only the benchmarks: auditor comes from the interpreter's install

from leakage import _cores, _write_many

DATA = HERE / ".data" / "geometric-v1"
CLASSES = 10
N_TRAIN, N_VAL = 20_000, 2_000
PER_KIND = 20
DATA_SEED = 20_261_207
HASH_KINDS = ("exact", "reencoded", "mirrored", "tiny_q30", "grayscale", "jitter")
GEOMETRIC_KINDS = ("centre_crop_80", "random_crop_70", "rotate_crop", "quarter_turn", "exif_turn")
KINDS = HASH_KINDS + GEOMETRIC_KINDS
#: EXIF orientation value -> the PIL transpose a viewer applies to show the picture upright.
_EXIF_UNDO = {3: "ROTATE_180", 6: "ROTATE_270", 8: "ROTATE_90"}


def _extra(image: Any, rng: random.Random) -> Any:
    """A third of the geometric copies also get a resize, grayscale or colour change."""
    from PIL import Image, ImageEnhance, ImageOps

    roll = rng.random()
    if roll < 1 / 9:
        side = rng.choice([128, 160, 224, 320])
        return image.resize((side, side), Image.BICUBIC)
    if roll < 2 / 9:
        return ImageOps.grayscale(image).convert("RGB")
    if roll < 3 / 9:
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.5, 1.5))
        return ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    return image


def _plant(source: Path, target: Path, kind: str, rng: random.Random) -> dict[str, Any]:
    from PIL import Image, ImageEnhance, ImageOps

    with Image.open(source) as opened:
        image = opened.convert("RGB")
    side = image.width
    note: dict[str, Any] = {}
    quality = rng.randint(60, 90)
    exif = None
    if kind == "reencoded":
        quality = rng.randint(55, 85)
    elif kind == "mirrored":
        image = ImageOps.mirror(image)
    elif kind == "tiny_q30":
        image, quality = image.resize((96, 96), Image.BICUBIC), 30
    elif kind == "grayscale":
        image = ImageOps.grayscale(image)
    elif kind == "jitter":
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.4, 1.6))
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    elif kind == "centre_crop_80":
        keep = round(side * 0.8)
        x = (side - keep) // 2
        image = _extra(image.crop((x, x, x + keep, x + keep)), rng)
    elif kind == "random_crop_70":
        keep = round(side * 0.7)
        x, y = rng.randint(0, side - keep), rng.randint(0, side - keep)
        image = _extra(image.crop((x, y, x + keep, y + keep)), rng)
        note = {"x": x, "y": y}
    elif kind == "rotate_crop":
        angle = rng.uniform(5, 10) * rng.choice([-1, 1])
        rotated = image.rotate(angle, resample=Image.BICUBIC)
        radians = math.radians(abs(angle))
        keep = int(side / (math.cos(radians) + math.sin(radians)))  # largest square without corners
        x = (side - keep) // 2
        image = _extra(rotated.crop((x, x, x + keep, x + keep)), rng)
        note = {"angle": round(angle, 2)}
    elif kind == "quarter_turn":
        turn = rng.choice(["ROTATE_90", "ROTATE_180", "ROTATE_270"])
        image = image.transpose(getattr(Image.Transpose, turn))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
            turn += "+mirror"
        note = {"turn": turn}
    elif kind == "exif_turn":
        orientation = rng.choice(sorted(_EXIF_UNDO))
        # Stored pixels are the train picture turned the other way; the tag turns them back.
        undo = getattr(Image.Transpose, _EXIF_UNDO[orientation])
        inverse = {
            Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
            Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
            Image.Transpose.ROTATE_180: Image.Transpose.ROTATE_180,
        }[undo]
        image = image.transpose(inverse)
        exif = Image.Exif()
        exif[0x0112] = orientation
        note = {"orientation": orientation}
    if exif is not None:
        image.save(target, quality=quality, exif=exif)
    else:
        image.save(target, quality=quality)
    return note


def generate(root: Path = DATA) -> dict[str, Any]:
    """Write the data set once; return its ground truth (one entry per planted copy)."""
    truth_path = root / "truth.json"
    if truth_path.is_file():
        return json.loads(truth_path.read_text())
    if root.exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    rng = random.Random(DATA_SEED)
    n_planted = PER_KIND * len(KINDS)
    jobs: list[tuple[int, str, int]] = []
    train: list[str] = []
    for split, count in (("train", N_TRAIN), ("val", N_VAL - n_planted)):
        for c in range(CLASSES):
            (root / split / f"class_{c}").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rel = f"{split}/class_{i % CLASSES}/{split}_{i:05d}.jpg"
            jobs.append((DATA_SEED * 3 + len(jobs), str(root / rel), rng.randint(75, 95)))
            if split == "train":
                train.append(rel)
    chunks = [jobs[i : i + 250] for i in range(0, len(jobs), 250)]
    with ProcessPoolExecutor(max_workers=_cores()) as pool:
        for _done in pool.map(_write_many, chunks):
            pass
    sources = rng.sample(train, n_planted)
    planted = []
    for i, source in enumerate(sources):
        kind = KINDS[i // PER_KIND]
        cls = Path(source).parent.name
        rel = f"val/{cls}/leak_{kind}_{i % PER_KIND:02d}.jpg"
        if kind == "exact":
            shutil.copyfile(root / source, root / rel)
            note: dict[str, Any] = {}
        else:
            note = _plant(root / source, root / rel, kind, rng)
        planted.append({"val": rel, "train": source, "kind": kind, **note})
    truth = {
        "planted": planted,
        "n_train": N_TRAIN,
        "n_val": N_VAL,
        "generated_in_s": round(time.perf_counter() - started, 1),
    }
    truth_path.write_text(json.dumps(truth, indent=1))
    print(f"generated {N_TRAIN + N_VAL} JPEGs under {root} in {truth['generated_in_s']} s")
    return truth


def _to_gray(paths: list[str], source: str, target: str) -> int:
    from PIL import Image

    for path in paths:
        out = Path(target) / Path(path).relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            exif = image.getexif()
            gray = image.convert("L")
        # The EXIF-turned copies keep their tag; everything is re-encoded once more.
        gray.save(out, quality=90, **({"exif": exif} if exif.get(0x0112) else {}))
    return len(paths)


def grayscale(root: Path) -> Path:
    """The same data set converted to grayscale (once): no colour for the check to compare."""
    target = root.with_name(root.name + "-gray")
    if not (target / "truth.json").is_file():
        shutil.rmtree(target, ignore_errors=True)
        files = sorted(str(p) for p in root.glob("*/*/*.jpg"))
        chunks = [files[i : i + 500] for i in range(0, len(files), 500)]
        with ProcessPoolExecutor(max_workers=_cores()) as pool:
            for _done in pool.map(_to_gray, chunks, [str(root)] * len(chunks), [str(target)] * len(chunks)):
                pass
        shutil.copyfile(root / "truth.json", target / "truth.json")
    return target


def score(found: set[tuple[str, str]], truth: dict[str, Any]) -> dict[str, Any]:
    """Recall per kind and cross-split pairs that are not planted (false pairs)."""
    planted = {(p["val"], p["train"]): p["kind"] for p in truth["planted"]}
    recall = {kind: 0 for kind in KINDS}
    for pair in found:
        kind = planted.get(pair)
        if kind is not None:
            recall[kind] += 1
    return {
        "recall": {kind: count / PER_KIND for kind, count in recall.items()},
        "false_pairs": sorted(pair for pair in found if pair not in planted),
    }


def _manifest(root: Path, options: str) -> Path:
    manifest = root / "audit.yaml"
    manifest.write_text(
        "version: 1\nname: geometric-leakage-benchmark\ndata:\n"
        "  train: {format: image_folder, root: train}\n  val: {format: image_folder, root: val}\n"
        f"audits:\n  split_leakage: {{max_pairs: 1000000, within_split: 'off'{', ' + options if options else ''}}}\n"
        "report: {formats: [json]}\n"
    )
    return manifest


def _cross_pairs(outcome: Any) -> set[tuple[str, str]]:
    found = set()
    for finding in outcome.findings:
        if finding.audit != "split_leakage" or finding.code not in ("SL001", "SL002", "SL005", "SL007"):
            continue
        for pair in finding.evidence.get("pairs", []):
            a, b = pair["a"]["path"], pair["b"]["path"]
            if a.startswith("val/"):
                a, b = b, a
            found.add((b, a))
    return found


def run_once(root: Path, truth: dict[str, Any], options: str, *, cold: bool) -> dict[str, Any]:
    from auditor.run.api import run_manifest

    manifest = _manifest(root, options)
    if cold:
        shutil.rmtree(root / ".auditor-cache", ignore_errors=True)
    started = time.perf_counter()
    outcome = run_manifest(manifest, only=["split_leakage"], formats=["json"], output_dir=root / ".reports")
    seconds = time.perf_counter() - started
    evidence = next(a["evidence"] for a in outcome.report["audits"] if a["name"] == "split_leakage")
    return {"seconds": seconds, **score(_cross_pairs(outcome), truth), "evidence": evidence}


def _peak_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--runs",
        default="hash,geometric",
        help="comma-separated: hash (geometric: false), geometric (defaults)",
    )
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument(
        "--before-python",
        help="an interpreter whose auditor predates the geometric stage (e.g. a checkout of the commit "
        "before it, installed editable in its own venv): its hash-only run is the baseline of the ratios",
    )
    parser.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--grayscale", action="store_true", help="run on a grayscale copy of the data (generated once)"
    )
    args = parser.parse_args(argv)
    truth = generate(args.data)
    if args.grayscale:
        args.data = grayscale(args.data)
    if args.generate_only:
        return 0
    configurations = {"hash": "geometric: false", "geometric": "geometric: true", "before": ""}
    results: dict[str, dict[str, Any]] = {}
    print(f"{N_TRAIN} train + {N_VAL} val JPEGs, {PER_KIND} planted copies per kind, {_cores()} cores")
    for name in args.runs.split(","):
        for temperature in ("cold", "warm"):
            # A warm run lasts a fraction of a second: the best of three keeps scheduler noise out.
            tries = [
                run_once(args.data, truth, configurations[name], cold=temperature == "cold")
                for _ in range(1 if temperature == "cold" else 3)
            ]
            result = min(tries, key=lambda r: r["seconds"])
            results[f"{name} {temperature}"] = result
            recall = "  ".join(f"{k} {v:4.0%}" for k, v in result["recall"].items())
            geometric = result["evidence"].get("geometric", {})
            print(
                f"{name:>9} {temperature}: {result['seconds']:7.2f} s  false pairs {len(result['false_pairs'])}  "
                f"peak RSS {_peak_mib():.0f} MiB\n    recall: {recall}"
            )
            if geometric:
                print(f"    geometric stage: {json.dumps(geometric)[:400]}")
            for pair in result["false_pairs"][:5]:
                print(f"    false pair: {pair}")
    if args.json_out:
        args.json_out.write_text(json.dumps({k: v["seconds"] for k, v in results.items()}))
    if args.before_python:
        import subprocess
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "before.json"
            command = [args.before_python, __file__, "--data", str(args.data), "--runs", "before"]
            subprocess.run([*command, "--json-out", str(out)], check=True)
            for name, seconds in json.loads(out.read_text()).items():
                results[name] = {"seconds": seconds}
    baseline = "before" if "before cold" in results else "hash"
    if f"{baseline} cold" in results and "geometric cold" in results:
        for temperature in ("cold", "warm"):
            ratio = (
                results[f"geometric {temperature}"]["seconds"]
                / results[f"{baseline} {temperature}"]["seconds"]
            )
            print(f"{temperature}: geometric / {baseline} (hash-only) = {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
