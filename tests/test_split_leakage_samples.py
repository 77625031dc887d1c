"""split_leakage on datasets without files (tensors, arrays, PIL images), and its hashing and search units."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditor_plugins.split_leakage.hashing import hash_sample
from auditor_plugins.split_leakage.search import pairs_within, plan, search

DATASETS = '''
import numpy as np
import torch
from PIL import Image


def picture(seed, size=32):
    """A smooth random image: low-frequency noise upsampled, so it has structure."""
    rng = np.random.default_rng(seed)
    small = torch.tensor(rng.uniform(0, 1, (3, 6, 6)), dtype=torch.float32)
    return torch.nn.functional.interpolate(small[None], size=(size, size), mode="bilinear",
                                           align_corners=False)[0]


class Tensors(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items
        self.targets = [label for _, label in items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def train():
    return Tensors([(picture(i), i % 2) for i in range(12)])


def val(kind="clean"):
    items = [(picture(100 + i), i % 2) for i in range(4)]
    if kind == "leaky":
        items.append((picture(3).clone(), 1))                                # identical tensor
        items.append((torch.flip(picture(5), dims=[2]), 1))                  # mirrored
        items.append((picture(7).double(), 1))                               # same values, other dtype
        items.append((picture(8) * 0.9 + 0.02, 0))                           # darker
    return Tensors(items)


def arrays():
    """HWC uint8 numpy arrays and PIL images, as some datasets return them."""
    pics = [(picture(i) * 255).byte().permute(1, 2, 0).numpy() for i in range(4)]
    items = [(pics[0], 0), (pics[1], 1), (Image.fromarray(pics[2]), 0), (Image.fromarray(pics[2]), 1),
             (pics[0].copy(), 0), ("a string sample", 1), ({"not": "hashable"}, 0)]
    return Tensors(items)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "leaky_data.py").write_text(textwrap.dedent(DATASETS))
    return tmp_path


def _manifest(project: Path, writer: Any, **splits: dict[str, Any]) -> Path:
    data = {name: {"format": "callable", **spec} for name, spec in splits.items()}
    return writer(
        project, {"version": 1, "pythonpath": ["src"], "data": data, "audits": {"split_leakage": {}}}
    )


def _by_code(outcome: Any) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in outcome.report["findings"] if f["audit"] == "split_leakage"}


def test_tensor_datasets_without_leakage_give_no_finding(
    project: Path, manifest_writer: Any, run_audit: Any
) -> None:
    manifest = _manifest(
        project, manifest_writer, train={"factory": "leaky_data:train"}, val={"factory": "leaky_data:val"}
    )
    outcome = run_audit(manifest, only=["split_leakage"])
    assert _by_code(outcome) == {}
    evidence = next(a for a in outcome.report["audits"] if a["name"] == "split_leakage")["evidence"]
    assert evidence["in_memory_samples"] == 16 and evidence["files"] == 0


def test_identical_and_near_tensors_across_splits(
    project: Path, manifest_writer: Any, run_audit: Any
) -> None:
    manifest = _manifest(
        project,
        manifest_writer,
        train={"factory": "leaky_data:train"},
        val={"factory": "leaky_data:val", "kwargs": {"kind": "leaky"}},
    )
    found = _by_code(run_audit(manifest, only=["split_leakage"]))
    exact = found["SL001"]
    assert exact["evidence"]["count"] == 1
    assert "identical to samples in 'train'" in exact["message"] and "byte-identical" not in exact["message"]
    (pair,) = exact["evidence"]["pairs"]
    assert pair["a"] == {"split": "train", "path": None, "index": 3, "label": "1"}
    assert pair["b"]["index"] == 4 and "val[4] = train[3]" in exact["hint"]
    near = found["SL002"]["evidence"]
    # dtype is part of the identity: the float64 copy is a near duplicate, not an identical one.
    assert {(p["b"]["index"], p["a"]["index"], p["mirrored"]) for p in near["pairs"]} == {
        (5, 5, True),
        (6, 7, False),
        (7, 8, False),
    }


def test_arrays_pil_images_and_unhashable_samples(
    project: Path, manifest_writer: Any, run_audit: Any
) -> None:
    manifest = _manifest(project, manifest_writer, train={"factory": "leaky_data:arrays"})
    found = _by_code(run_audit(manifest, only=["split_leakage"]))
    # Same PIL pixels with labels 0 and 1: conflicting labels; a copied array with the same label.
    assert found["SL003"]["evidence"]["count"] == 1
    assert {p["b"]["index"] for p in found["SL004"]["evidence"]["pairs"]} == {4}
    unhashable = found["SL006"]["evidence"]
    assert unhashable["files"] == [{"path": None, "index": 6, "error": "cannot hash a sample of type dict"}]
    assert "1 sample in 'train'" in found["SL006"]["message"]


def test_sample_hashes_depend_on_dtype_shape_and_pixels() -> None:
    from PIL import Image

    base = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert hash_sample(base).digest == hash_sample(base.copy()).digest
    assert hash_sample(base).digest != hash_sample(base.astype(np.int16)).digest
    assert hash_sample(base).digest != hash_sample(base.reshape(3, 4, 4)).digest
    image = Image.fromarray(base)
    assert hash_sample(image).digest == hash_sample(Image.fromarray(base.copy())).digest
    assert hash_sample(image).digest != hash_sample(image.convert("L")).digest
    assert hash_sample(b"abc").digest != hash_sample("abc").digest
    assert hash_sample(object()).error == "cannot hash a sample of type object"
    # A 1-D vector has a content hash but no perceptual hash.
    vector = hash_sample(np.ones(10))
    assert vector.digest and vector.phash is None and vector.error is None


def test_mirrored_hash_is_the_hash_of_the_mirrored_image() -> None:
    rng = np.random.default_rng(0)
    picture = rng.uniform(0, 255, (32, 32)).astype(np.float32)
    direct, flipped = hash_sample(picture), hash_sample(picture[:, ::-1].copy())
    assert direct.mirror == flipped.phash and flipped.mirror == direct.phash
    assert direct.phash.bit_count() == 32  # median split: balanced bits
    # Flat images carry no structure: hash 0, and they match each other.
    assert hash_sample(np.full((8, 8), 7.0)).phash == 0 == hash_sample(np.zeros((16, 16))).phash


def _random(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)


def _near(rng: np.random.Generator, values: np.ndarray, up_to: int) -> np.ndarray:
    out = values.copy()
    for i in range(len(out)):
        for bit in rng.choice(64, int(rng.integers(0, up_to + 1)), replace=False):
            out[i] ^= np.uint64(1) << np.uint64(bit)
    return out


@pytest.mark.parametrize("k", [0, 1, 3, 4, 8, 10])
def test_search_finds_exactly_the_pairs_brute_force_finds(k: int) -> None:
    rng = np.random.default_rng(k)
    reference = _random(rng, 2000)
    queries = np.concatenate([_near(rng, reference[:300], k + 2), _random(rng, 300), reference[:5]])
    found = [
        (int(q), int(r), int(d))
        for qs, rs, ds in search(reference, queries, k)
        for q, r, d in zip(qs, rs, ds, strict=False)
    ]
    assert len(found) == len(set(found)), "a pair was reported twice"
    distances = np.bitwise_count(queries[:, None] ^ reference[None, :])
    expected = {
        (int(q), int(r), int(distances[q, r])) for q, r in zip(*np.nonzero(distances <= k), strict=False)
    }
    assert set(found) == expected and expected


def test_pairs_within_matches_brute_force_with_mirrors() -> None:
    rng = np.random.default_rng(1)
    hashes = np.concatenate([_random(rng, 400), _near(rng, _random(rng, 50), 3)])
    hashes[400:450] = _near(rng, hashes[:50], 4)
    mirrors = _random(rng, len(hashes))
    mirrors[10] = hashes[20]  # the mirror of 10 is 20
    i, j, d, m, complete = pairs_within(hashes, mirrors, 6)
    assert complete and np.all(i < j)
    got = {(int(a), int(b)): (int(c), bool(e)) for a, b, c, e in zip(i, j, d, m, strict=False)}
    expected = {}
    for a, b in itertools.combinations(range(len(hashes)), 2):
        direct = int(hashes[a] ^ hashes[b]).bit_count()
        flipped = min(int(mirrors[a] ^ hashes[b]).bit_count(), int(mirrors[b] ^ hashes[a]).bit_count())
        best = min(direct, flipped)
        if best <= 6:
            expected[(a, b)] = (best, flipped < direct)
    assert got == expected and got[(10, 20)] == (0, True)


def test_pairs_within_stops_at_its_pair_limit() -> None:
    hashes = np.zeros(200, dtype=np.uint64)
    hashes[::2] = 1  # 200 hashes within distance 1 of each other: 19,900 pairs
    *_, complete = pairs_within(hashes, None, 2, max_pairs=1000)
    assert complete is False


def test_plan_uses_wide_chunks_for_large_references() -> None:
    small, large = plan(20_000, 8, 40_000), plan(1_000_000, 8, 100_000)
    assert sum(small.widths) == sum(large.widths) == 64
    assert max(large.widths) <= 22 and large.radius >= small.radius
    assert len(large.widths) * (large.radius + 1) > 8  # pigeonhole: some chunk within the radius


def test_popcount_without_numpy_bitwise_count(monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor_plugins.split_leakage.search import popcount

    values = _random(np.random.default_rng(3), 500)
    expected = [int(v).bit_count() for v in values]
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert popcount(values).tolist() == expected
    assert int(popcount(values[7])) == expected[7]


@pytest.mark.parametrize("k", [0, 2, 5, 8])
def test_self_join_reports_each_unordered_pair_once(k: int) -> None:
    rng = np.random.default_rng(10 + k)
    base = _random(rng, 300)
    hashes = np.concatenate([base, _near(rng, base[:200], k + 1), base[:20]])  # incl. exact repeats
    found = [(int(q), int(r)) for qs, rs, _ in search(hashes, None, k) for q, r in zip(qs, rs, strict=False)]
    pairs = {tuple(sorted(p)) for p in found}
    assert len(found) == len(pairs) and all(q != r for q, r in found)
    distances = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    assert pairs == {(int(i), int(j)) for i, j in zip(*np.nonzero(distances <= k), strict=False) if i < j}
