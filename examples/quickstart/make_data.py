"""Generate the quickstart's small image dataset (deterministic; about 0.5 MB).

Three classes of synthetic 48x48 "photos" (a shape over a textured background),
with problems planted on purpose so that every audit has something to say:

- train is imbalanced (cat 160, dog 40, fox 8) and the loss is unweighted;
- val has a different class mix and a class ('owl') that train lacks;
- 6 val images are byte copies of train images, 6 more are re-encoded,
  resized, brightened or mirrored copies.

Run: python make_data.py [--out data]
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

SIZE = 48
TRAIN = {"cat": 160, "dog": 40, "fox": 8}
VAL = {"cat": 20, "dog": 20, "fox": 6, "owl": 4}


def draw(cls: str, rng: random.Random) -> Image.Image:
    base = tuple(rng.randint(40, 215) for _ in range(3))
    image = Image.new("RGB", (SIZE, SIZE), base)
    pen = ImageDraw.Draw(image)
    for _ in range(12):  # background texture so that no two images hash alike
        x, y = rng.randint(0, SIZE), rng.randint(0, SIZE)
        shade = tuple(max(0, min(255, c + rng.randint(-60, 60))) for c in base)
        pen.line(
            (x, y, x + rng.randint(-20, 20), y + rng.randint(-20, 20)), fill=shade, width=rng.randint(1, 4)
        )
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    x, y, r = rng.randint(12, 36), rng.randint(12, 36), rng.randint(6, 12)
    if cls == "cat":
        pen.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif cls == "dog":
        pen.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    elif cls == "fox":
        pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    else:
        pen.ellipse((x - r, y - r // 2, x + r, y + r // 2), outline=colour, width=3)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()
    rng = random.Random(1234)
    if args.out.exists():
        shutil.rmtree(args.out)
    train_files: list[Path] = []
    for split, table in (("train", TRAIN), ("val", VAL)):
        for cls, count in table.items():
            folder = args.out / split / cls
            folder.mkdir(parents=True)
            for index in range(count):
                path = folder / f"{cls}_{index:03d}.jpg"
                draw(cls, rng).save(path, quality=85)
                if split == "train":
                    train_files.append(path)
    cats = [p for p in train_files if p.parent.name == "cat"]
    # Leaked copies: the kind of overlap a careless re-split produces.
    for index, source in enumerate(cats[:6]):
        shutil.copyfile(source, args.out / "val" / "cat" / f"leak_exact_{index}.jpg")
    edits = [
        lambda im: im,  # re-encoded at another quality
        lambda im: im.resize((40, 40)).resize((SIZE, SIZE)),
        lambda im: ImageEnhance.Brightness(im).enhance(1.1),
        ImageOps.mirror,
        ImageOps.mirror,
        lambda im: ImageEnhance.Contrast(im).enhance(0.9),
    ]
    for index, (source, edit) in enumerate(zip(cats[6:12], edits, strict=False)):
        with Image.open(source) as image:
            edit(image.convert("RGB")).save(args.out / "val" / "cat" / f"leak_near_{index}.jpg", quality=70)
    print(f"wrote {sum(1 for _ in args.out.rglob('*.jpg'))} images under {args.out}")


if __name__ == "__main__":
    main()
