"""DL016: DataLoader workers that all draw the same augmentation.

A dataset holding its own seeded generator (``self.rng = np.random.default_rng(0)``) is copied
into each worker process in the state it had: every worker, and every epoch's fresh workers,
draw the same numbers. torch reseeds its own global generator per worker (and Python's
``random``), not generators a dataset keeps. The check reads the same training index once in
each of two workers of a loader built like the training one (its dataset, worker_init_fn,
multiprocessing context and generator) and once more in this process; outputs identical across
workers while the pipeline does vary in-process are the finding. Bounded: two workers, one
sample each, under the call deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding
from auditor.kit import DeadlineExceeded
from auditor_plugins.data_loading.objects import (
    draw,
    generator_attributes,
    private_copy,
    same_output,
)

__all__ = ["check_workers"]


def check_workers(ctx: AuditContext) -> Iterator[Finding]:
    train = ctx.train
    loader = getattr(train, "loader", None) if train is not None else None
    if loader is None or int(getattr(loader, "num_workers", 0) or 0) < 1 or not len(train):
        return
    dataset = loader.dataset
    try:
        first, second = ctx.call(
            _two_workers,
            loader,
            ctx.call_timeout_s,
            what=f"sample 0 of split {train.name!r} read in two DataLoader workers",
        )
    except DeadlineExceeded:
        raise
    except Exception as exc:
        ctx.note(
            f"the per-worker randomness check could not read sample 0 in two workers: {type(exc).__name__}: {exc}"[
                :300
            ]
        )
        return
    if not same_output(_input(first), _input(second)):
        return
    private = private_copy(dataset)
    try:
        here = [
            _input(draw(train, private, 0, f"drawing sample 0 of split {train.name!r}")) for _ in range(2)
        ]
    except DeadlineExceeded:
        raise
    except Exception:
        return
    if same_output(here[0], here[1]):
        return  # a deterministic pipeline gives the same output everywhere, as it should
    holders = generator_attributes(dataset)
    named = (
        f"the generator it holds in {', '.join(holders)}"
        if holders
        else "a generator the dataset keeps in its own state (no attribute of a known generator type found)"
    )
    yield ctx.finding(
        "DL016",
        f"'{train.name}': workers 0 and 1 of the training DataLoader (num_workers={loader.num_workers}) return "
        f"identical augmented outputs for sample 0, while two reads in one process differ: every worker copies "
        f"{named} in the same state, so the workers draw the same augmentations and each epoch's new workers "
        "repeat the last epoch's",
        hint="draw from a per-call generator seeded from torch (np.random.default_rng(torch.initial_seed() % 2**32) "
        "inside __getitem__, or torch's own random functions), or reseed the dataset's generator per worker: "
        "DataLoader(..., worker_init_fn=lambda i: seed_worker(i)) with "
        "get_worker_info().dataset.rng = np.random.default_rng(torch.initial_seed() % 2**32)",
        location=train.location,
        evidence={
            "num_workers": loader.num_workers,
            "generators": holders,
            "worker_init_fn": getattr(loader.worker_init_fn, "__qualname__", None)
            if loader.worker_init_fn is not None
            else None,
            "persistent_workers": bool(getattr(loader, "persistent_workers", False)),
        },
    )


def _input(item: Any) -> Any:
    return item[0] if isinstance(item, (tuple, list)) and item else item


def _as_is(item: Any) -> Any:
    return item


def _two_workers(loader: Any, timeout_s: float) -> tuple[Any, Any]:
    """Sample 0 read once by worker 0 and once by worker 1 of a loader made like ``loader``."""
    import torch
    from torch.utils.data import DataLoader

    generator = None
    if loader.generator is not None:  # a copy: drawing the workers' base seed must not advance the user's
        generator = torch.Generator()
        generator.set_state(loader.generator.get_state())
    with torch.random.fork_rng(devices=[]):  # nor the global one
        probe = DataLoader(
            loader.dataset,
            batch_size=None,  # one index per task: the loader hands tasks to workers in turn
            sampler=[0, 0],
            num_workers=2,
            worker_init_fn=loader.worker_init_fn,
            multiprocessing_context=loader.multiprocessing_context,
            generator=generator,
            collate_fn=_as_is,
            timeout=max(1.0, timeout_s),
        )
        first, second = list(probe)
    return first, second
