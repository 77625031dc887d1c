"""DL015: the training loader's last batch holds one sample, and the model's BatchNorm cannot train on it.

The batch plan is the real loader's: ``len(sampler)`` samples per epoch on this process (a
``DistributedSampler`` already divides by the world size), ``batch_size`` and ``drop_last``.
When the last batch holds a single sample and the model has BatchNorm layers in train mode,
a deep copy of the model is given one real sample, collated as the loader collates it, in
train mode: a BatchNorm that sees one value per channel raises "Expected more than 1 value
per channel when training", which is what training hits at the end of every epoch. The user's
model is never run; nothing is trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding
from auditor.kit import DeadlineExceeded

__all__ = ["check_last_batch", "last_batch_size"]

_BN_ERROR = "Expected more than 1 value per channel"


def last_batch_size(loader: Any) -> tuple[int, int, int] | None:
    """(samples per epoch on this process, batch size, size of the last batch) of a loader, or None."""
    batch_size = getattr(loader, "batch_size", None)
    if not batch_size or getattr(loader, "drop_last", False):
        return None
    try:
        samples = len(loader.sampler)
    except TypeError:  # a sampler without a length: the epoch's end is unknown
        return None
    if samples <= 0:
        return None
    return samples, int(batch_size), samples % int(batch_size)


def check_last_batch(ctx: AuditContext) -> Iterator[Finding]:
    train = ctx.train
    loader = getattr(train, "loader", None) if train is not None else None
    if loader is None or not ctx.run.has("model"):
        return
    plan = last_batch_size(loader)
    if plan is None or plan[2] != 1:
        return
    samples, batch_size, _ = plan
    model = ctx.run.model
    norms = _training_norms(model)
    if not norms:
        return
    failing, tried = _one_sample_forward(ctx, train, loader)
    if failing is None and not any(kind == "BatchNorm1d" for kind in norms.values()):
        ctx.note(
            f"the training loader's last batch holds 1 sample ({samples} % {batch_size}) and the model has "
            f"BatchNorm layers in train mode; whether they accept it is unknown ({tried})"
        )
        return
    if failing is False:
        ctx.note(
            f"the training loader's last batch holds 1 sample ({samples} % {batch_size}); the model's BatchNorm "
            f"layers ({', '.join(list(norms)[:3])}) accepted a one-sample batch ({tried})"
        )
        return
    replicas = getattr(loader.sampler, "num_replicas", None)
    per = (
        f" per process ({replicas} processes, DistributedSampler)"
        if isinstance(replicas, int) and replicas > 1
        else ""
    )
    proof = (
        f"a one-sample batch through a copy of the model in train mode raises '{failing}'"
        if isinstance(failing, str)
        else f"the model has BatchNorm layers in train mode ({tried})"
    )
    yield ctx.finding(
        "DL015",
        f"'{train.name}' gives {samples} samples an epoch{per} in batches of {batch_size} with drop_last=False: "
        f"the last batch holds 1 sample, and {proof}: training stops at the end of the first epoch",
        hint="DataLoader(..., drop_last=True) for the training loader (or a batch size that does not leave one "
        "sample over)",
        location=train.location,
        evidence={
            "samples_per_epoch": samples,
            "batch_size": batch_size,
            "last_batch": 1,
            "drop_last": False,
            "world_size": replicas if isinstance(replicas, int) else 1,
            "batchnorm": list(norms)[:10],
            "confirmed": isinstance(failing, str),
        },
    )


def _training_norms(model: Any) -> dict[str, str]:
    """BatchNorm layers in train mode: name -> class name."""
    from torch.nn.modules.batchnorm import _BatchNorm

    return {
        name or type(m).__name__: type(m).__name__
        for name, m in model.named_modules()
        if isinstance(m, _BatchNorm) and m.training
    }


def _one_sample_forward(ctx: AuditContext, split: Any, loader: Any) -> tuple[str | bool | None, str]:
    """The BatchNorm error a one-sample batch raises (str), False when it passes, None when it could not be run."""
    import torch

    try:
        item = split.training_item(0)
        collate = loader.collate_fn
        batch = split.call(
            collate, [item], what=f"the collate function on one sample of split {split.name!r}"
        )
    except DeadlineExceeded:
        raise
    except Exception as exc:
        return None, f"one sample could not be batched: {type(exc).__name__}: {exc}"[:200]
    inputs = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    if not isinstance(inputs, torch.Tensor):
        return None, f"the batch's inputs are a {type(inputs).__name__}, not a tensor"
    replica = ctx.run.model_copy()  # keeps each module's own mode (a frozen BatchNorm may be in eval)
    try:
        device = next(replica.parameters()).device
    except StopIteration:
        device = torch.device("cpu")

    def forward() -> None:
        with torch.no_grad():
            replica(inputs.to(device))

    try:
        ctx.call(forward, what="the model's forward on a one-sample batch (last-batch check)")
    except DeadlineExceeded:
        raise
    except Exception as exc:
        message = str(exc)
        if _BN_ERROR in message:
            return message.splitlines()[0][:160], "forward"
        return None, f"the forward failed otherwise: {type(exc).__name__}: {message}"[:200]
    return False, "a forward of one sample in train mode passed"
