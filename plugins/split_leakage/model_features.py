"""Candidate pairs from the model under audit: penultimate features, nearest training images.

The manifest's backbone carries the user's pretrained weights, so its features cost no
download. Each image is loaded as training loads it (PIL, no EXIF transpose, RGB),
resized to ``resolution`` (reduced: benchmarks/model_features.py measures images/s per
size), normalised with the weights' statistics when ``model.pretrained`` names them,
else ImageNet's, and run in batches through a copy of the model in ``eval()`` mode under
``torch.inference_mode`` on the probe's device. The head's input (the penultimate
features) is L2-normalised and searched with :class:`VectorIndex`: each evaluation image
gets its ``k`` most similar training images as candidates, which the verifier confirms.

The stage does not run (``skipped`` says why) without a model, with random-init
weights (``common.pretrained_weights``), under ``--static``, or without a head to read
features from. A time budget stops it between batches: what was not embedded is said
in ``stopped``, never a silent pass. Features are cached by content digest, model
fingerprint and resolution (``feature_cache``), so a warm run embeds nothing. Every
read of an image and every forward pass runs under the run's call deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FEATURE_VERSION", "IMAGENET", "ModelStage", "model_candidates"]

#: Bump when the loading or feature recipe changes: cached features of another recipe are not used.
FEATURE_VERSION = 1
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: Images in the first batch, whose time sizes the rest (so the first never overruns the budget much).
_FIRST_BATCH = 4


@dataclass
class ModelStage:
    """What the model stage did: its candidates, or why it did not run."""

    source: str
    candidates: list[tuple[int, int, float]] = field(default_factory=list)
    skipped: str | None = None
    embedded: int = 0
    seconds: float = 0.0
    index_backend: str = ""
    #: Features read from the cache instead of the model.
    cached: int = 0
    #: Why some images were not compared (budget reached), with counts; None when all were.
    stopped: str | None = None
    #: (sample id, reason) for images that could not be read or decoded.
    unread: list[tuple[int, str]] = field(default_factory=list)
    cache_state: str = ""

    def suggestions(self) -> dict[int, list[int]]:
        """Evaluation sample id -> its candidate training sample ids, most similar first.

        The shape the geometric stage takes as ``suggestions`` (each is verified there).
        """
        out: dict[int, list[int]] = {}
        for train, evaluation, _ in sorted(self.candidates, key=lambda c: (c[1], -c[2], c[0])):
            out.setdefault(evaluation, []).append(train)
        return out


def model_candidates(
    ctx: Any,
    samples: Any,
    train_ids: Any,
    eval_ids: Any,
    *,
    k: int = 3,
    resolution: int = 112,
    budget_s: float = 120.0,
    batch_size: int = 32,
    device: str = "auto",
    static: bool = False,
    use_cache: bool = True,
) -> ModelStage:
    """Top-``k`` training candidates per evaluation sample from the model's penultimate features.

    ``train_ids``/``eval_ids`` are sample ids into ``samples`` (a ``collect.Samples``).
    ``static``: the run was asked not to run the model (``--static``, the pre-commit hook).
    """
    started = time.perf_counter()
    stage = ModelStage(source="model features")

    def skip(reason: str) -> ModelStage:
        stage.skipped = reason
        stage.seconds = time.perf_counter() - started
        return stage

    if static:
        return skip("runs the model; skipped with --static (the hash and weight-free stages ran)")
    if not ctx.run.has("model"):
        return skip("the run has no model to take features from")
    from auditor.kit import DeadlineExceeded
    from auditor_plugins.common.model_parts import find_head
    from auditor_plugins.common.pretrained_weights import weights_origin
    from auditor_plugins.common.torch_env import pick_device

    try:
        origin = weights_origin(ctx.run)
    except Exception as exc:
        return skip(f"the model could not be built ({type(exc).__name__}: {exc})")
    if origin.pretrained is not True:
        return skip(f"{origin.reason}; random features would miss copies")
    # The budget runs from here: the model build is shared by every audit (the first to ask pays it).
    budget_started = time.perf_counter()
    try:
        head = find_head(ctx.run.model, ctx.run.head_name)
    except LookupError:
        head = None
    if head is None:
        return skip("no classifier head found to read the penultimate features from (set model.head)")
    torch_device, device_note = pick_device(device)
    if device_note:
        ctx.note(device_note)
    try:
        model = ctx.call(_eval_copy, ctx.run, torch_device, what="copying the model for split_leakage")
        module = model.get_submodule(head.name)
    except (Exception, DeadlineExceeded) as exc:
        return skip(f"the model could not be copied to {torch_device} ({type(exc).__name__}: {exc})")
    from auditor_plugins.split_leakage.feature_cache import FeatureCache, model_fingerprint

    fingerprint = model_fingerprint(model)
    mean, std, norm_source = normalisation(ctx)
    stage.source = (
        f"model features: {type(model).__name__} input of {head.name!r} at {resolution} px, "
        f"{norm_source} normalisation, {torch_device}"
    )
    cache = None
    if use_cache:
        from auditor_plugins.common.cache_folder import cache_folder

        folder, stage.cache_state = cache_folder(ctx)
        if folder is not None:
            cache, problem = FeatureCache.open(folder, fingerprint, resolution, FEATURE_VERSION)
            if problem:
                stage.cache_state = problem
    try:
        left = budget_s - (time.perf_counter() - budget_started)
        features = _features(
            ctx,
            stage,
            samples,
            [*eval_ids, *train_ids],
            model,
            module,
            torch_device,
            cache,
            (mean, std),
            resolution,
            batch_size,
            left,
            set(eval_ids),
        )
    except (Exception, DeadlineExceeded) as exc:
        return skip(f"the model stage stopped: {type(exc).__name__}: {exc}")
    finally:
        if cache is not None:
            if cache.problem:
                stage.cache_state = cache.problem
            cache.close()
    _search(stage, samples, list(train_ids), list(eval_ids), features, k)
    stage.seconds = time.perf_counter() - started
    return stage


def _eval_copy(run: Any, device: Any) -> Any:
    model = run.model_copy().to(device)
    model.eval()  # BatchNorm with its stored statistics, dropout off: features as at inference
    return model


def normalisation(ctx: Any) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """(mean, std, where they came from): the weights' own when ``model.pretrained`` names them."""
    value = ctx.run.pretrained
    try:
        if isinstance(value, dict) and value.get("mean") and value.get("std"):
            return tuple(map(float, value["mean"])), tuple(map(float, value["std"])), "model.pretrained's"
        if isinstance(value, str) and value.startswith("torchvision:"):
            from torchvision import models

            enum_name, _, member = value.partition(":")[2].partition(".")
            preset = getattr(getattr(models, enum_name), member).transforms()
            return tuple(preset.mean), tuple(preset.std), f"{enum_name}.{member}'s"
        from auditor.kit import is_hf_pretrained, read_hf_pretrained

        if isinstance(value, str) and is_hf_pretrained(value):
            processor = read_hf_pretrained(value, ctx.manifest.base_dir).processor
            if processor.get("image_mean") and processor.get("image_std"):
                mean, std = processor["image_mean"], processor["image_std"]
                mean = mean if isinstance(mean, list) else [mean] * 3
                std = std if isinstance(std, list) else [std] * 3
                return tuple(map(float, mean)), tuple(map(float, std)), "the image processor's"
    except Exception:  # unresolvable names are transform_parity's finding, not ours
        pass
    return IMAGENET[0], IMAGENET[1], "ImageNet"


def load_image(source: Any, resolution: int) -> np.ndarray:
    """One image as training reads it (no EXIF transpose), RGB, resized: uint8 ``[size, size, 3]``."""
    from PIL import Image

    if isinstance(source, (str, bytes)):
        import io

        from auditor.kit import is_url, open_regular, open_url

        if isinstance(source, bytes):
            handle: Any = io.BytesIO(source)
        else:  # a FIFO or device swapped in for a file must not block: regular files only
            handle = open_url(source) if is_url(source) else open_regular(source)
        with handle, Image.open(handle) as image:
            image.load()
            return _resized(image, resolution)
    if isinstance(source, Image.Image):
        return _resized(source, resolution)
    if isinstance(source, tuple) and source:  # a callable dataset's (input, target)
        return load_image(source[0], resolution)
    array = np.asarray(source.detach().cpu() if hasattr(source, "detach") else source)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # CHW tensor
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return _resized(
        Image.fromarray(array.squeeze(-1) if array.ndim == 3 and array.shape[-1] == 1 else array), resolution
    )


def _resized(image: Any, resolution: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(image.convert("RGB").resize((resolution, resolution), Image.BILINEAR))


def _read_batch(
    ctx: Any, samples: Any, chunk: list[tuple[bytes, int]], resolution: int
) -> tuple[list[np.ndarray], list[bytes], list[tuple[int, str]]]:
    """Pixels of one batch: (images, their digests, (sample, reason) for those that failed)."""
    images, kept, failed = [], [], []
    for digest, sample in chunk:
        try:
            path = samples.path[sample]
            listing = getattr(samples, "remote", {}).get(path) if path is not None else None
            if listing is not None:  # object storage: read with the split's own storage options
                from auditor.kit import filesystem

                fs, target = filesystem(path, listing.storage_options)
                images.append(load_image(bytes(fs.cat_file(target)), resolution))
            elif path is not None:
                images.append(load_image(path, resolution))
            else:
                split = ctx.splits[samples.split_names[samples.split[sample]]]
                images.append(load_image(split.raw(samples.index[sample]), resolution))
            kept.append(digest)
        except Exception as exc:  # a corrupt file is recorded, the others go on
            failed.append((sample, f"{type(exc).__name__}: {exc}"))
    return images, kept, failed


def _features(
    ctx: Any,
    stage: ModelStage,
    samples: Any,
    order: list[int],
    model: Any,
    module: Any,
    device: Any,
    cache: Any,
    norm: tuple[tuple[float, ...], tuple[float, ...]],
    resolution: int,
    batch_size: int,
    budget_s: float,
    eval_set: set[int],
) -> dict[bytes, np.ndarray]:
    """Feature per content digest for the samples in ``order`` (evaluation first), within the budget."""
    import torch

    features: dict[bytes, np.ndarray] = {}
    todo: list[tuple[bytes, int]] = []
    seen: set[bytes] = set()
    for sample in order:
        digest = samples.digest[sample]
        if samples.error[sample] or not digest:
            stage.unread.append((sample, samples.error[sample] or "not hashed"))
        elif digest not in seen:
            seen.add(digest)
            todo.append((digest, sample))
    if cache is not None:
        features.update(cache.lookup([d for d, _ in todo]))
        stage.cached = len(features)
        todo = [(d, s) for d, s in todo if d not in features]
    mean = torch.tensor(norm[0], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(norm[1], dtype=torch.float32).view(1, 3, 1, 1)
    captured: list[Any] = []
    handle = module.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))

    def forward(batch: Any) -> Any:
        captured.clear()
        with torch.inference_mode():
            model(batch.to(device))
        if not captured:
            raise RuntimeError(f"the head {type(module).__name__} was not called by the model's forward pass")
        return captured[-1].detach().flatten(1).float().cpu().numpy()

    began, position, per_image = time.perf_counter(), 0, None
    try:
        while position < len(todo):
            size = _FIRST_BATCH if per_image is None else batch_size
            if per_image is not None:
                size = min(size, int((budget_s - (time.perf_counter() - began)) / per_image))
            if size < 1 or budget_s <= 0:
                break
            chunk = todo[position : position + size]
            position += len(chunk)
            # One deadline per batch of reads (a FIFO or a hung network mount stops here, named).
            first = samples.path[chunk[0][1]] or f"sample {samples.index[chunk[0][1]]}"
            images, kept, failed = ctx.call(
                _read_batch,
                ctx,
                samples,
                chunk,
                resolution,
                what=f"reading {len(chunk)} images for split_leakage's model stage (first: {first})",
            )
            stage.unread.extend(failed)
            if images:
                batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
                batch = (batch - mean) / std
                out = ctx.call(forward, batch, what=f"the model's forward pass on {len(images)} images")
                out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
                rows = list(zip(kept, out, strict=True))
                features.update(rows)
                stage.embedded += len(rows)
                if cache is not None:
                    cache.store(rows)
            per_image = (time.perf_counter() - began) / max(1, position)
    finally:
        handle.remove()
    if position < len(todo):
        left = todo[position:]
        evals = sum(1 for _, s in left if s in eval_set)
        stage.stopped = (
            f"the time budget ({budget_s:.0f} s) was reached: {len(todo) - len(left)} of {len(todo)} images "
            f"to embed were embedded; {len(left)} ({len(left) - evals} train, {evals} evaluation) were not "
            "compared by model features"
        )
    return features


def _search(
    stage: ModelStage,
    samples: Any,
    train_ids: list[int],
    eval_ids: list[int],
    features: dict[bytes, np.ndarray],
    k: int,
) -> None:
    from auditor_plugins.split_leakage.vector_index import VectorIndex

    by_digest: dict[bytes, list[int]] = {}
    for sample in train_ids:
        digest = samples.digest[sample]
        if digest in features:
            by_digest.setdefault(digest, []).append(sample)
    digests = list(by_digest)
    queries = [s for s in eval_ids if samples.digest[s] in features]
    if not digests or not queries:
        stage.index_backend = "none (nothing to compare)"
        return
    dim = len(features[digests[0]])
    index = VectorIndex(dim, expected=len(digests))
    for start in range(0, len(digests), 50_000):
        index.add(np.stack([features[d] for d in digests[start : start + 50_000]]))
    # One search for every query: the index chooses exact or inverted lists from the whole count.
    ids, sims = index.search(np.stack([features[samples.digest[s]] for s in queries]), k)
    stage.index_backend = index.backend
    for sample, row_ids, row_sims in zip(queries, ids, sims, strict=True):
        for found, sim in zip(row_ids, row_sims, strict=True):
            if found >= 0:
                stage.candidates.extend((t, sample, float(sim)) for t in by_digest[digests[found]])
