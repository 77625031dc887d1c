"""DL011-DL014: the training sampler as training iterates it, one real pass counted.

The sampler is the live DataLoader's (``auditor.check``), or the one the manifest's
``data.train.sampler: module:attr`` factory builds from the split's dataset (``sampler:
weighted`` only declares one; there is nothing to iterate). One pass is drawn under the call
deadline, on a forked random state so the user's own generator is not advanced, and counted:
how many distinct samples it reaches, how many indices fall outside the dataset, and the
class proportions it draws against the split's own.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor import AuditContext, Finding
from auditor_plugins.data_loading.objects import dataset_of

__all__ = ["check_sampler", "training_sampler"]

#: A pass reaching fewer distinct samples than this share of the split is a sliver (DL012).
SLIVER = 0.10
#: Draws of one pass counted at most (a sampler with num_samples in the billions is cut here).
MAX_DRAWS = 1_000_000
#: The drawn max/min class ratio must exceed the split's by this factor to be "worse" (DL013).
WORSE_FACTOR = 1.5


@dataclass
class SamplerPass:
    name: str
    draws: int = 0
    unique: int = 0
    out_of_range: list[int] = field(default_factory=list)
    drawn_classes: Counter[int] = field(default_factory=Counter)
    truncated: bool = False


def training_sampler(ctx: AuditContext, split: Any) -> tuple[Any, str] | None:
    """(the sampler, where it comes from) for ``split``, or None when training draws in plain order or at random."""
    loader = getattr(split, "loader", None)
    if loader is not None:
        batch_sampler = getattr(loader, "batch_sampler", None)
        from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

        if batch_sampler is not None and type(batch_sampler) is not BatchSampler:
            return batch_sampler, f"the training DataLoader's batch_sampler ({type(batch_sampler).__name__})"
        sampler = loader.sampler
        if type(sampler) in (RandomSampler, SequentialSampler):
            return None
        return sampler, f"the training DataLoader's sampler ({type(sampler).__name__})"
    ref = split.spec.config.get("sampler")
    if not ref or ":" not in str(ref):
        return None  # 'weighted' declares a balancing sampler the manifest cannot show
    key = f"{split.location}.sampler"
    factory = split.spec.resolver.resolve(str(ref), key)
    dataset = dataset_of(split)
    dataset = dataset if dataset is not None else split.dataset()
    sampler = split.call(factory, dataset, what=f"the sampler factory {ref}({split.name} dataset) of {key}")
    return sampler, f"{key} ({ref} -> {type(sampler).__name__})"


def check_sampler(ctx: AuditContext) -> Iterator[Finding]:
    train = ctx.train
    if train is None or not len(train):
        return
    if train.spec.config.get("sampler") and train.spec.config.get("shuffle") is True:
        yield ctx.finding(
            "DL014",
            f"{train.location} declares both sampler: {train.spec.config['sampler']} and shuffle: true: "
            "DataLoader(sampler=..., shuffle=True) raises 'sampler option is mutually exclusive with shuffle', "
            "and a script that drops one of them either loses the balancing or the random order",
            hint="pass only the sampler (it decides the order; a WeightedRandomSampler draws at random) and set "
            "shuffle: false",
            location=f"{train.location}.shuffle",
            evidence={"sampler": str(train.spec.config["sampler"]), "shuffle": True},
        )
    found = training_sampler(ctx, train)
    if found is None:
        return
    sampler, where = found
    size = len(train)
    weights_finding = _weights(ctx, train, sampler, where, size)
    if weights_finding is not None:
        yield weights_finding
    counted = _one_pass(train, sampler, where, size)
    ctx.evidence.setdefault("sampler", {})[train.name] = {
        "sampler": where,
        "draws": counted.draws,
        "unique": counted.unique,
        "out_of_range": len(counted.out_of_range),
        "truncated": counted.truncated,
    }
    yield from _reach(ctx, train, counted, where, size, weights_finding)
    yield from _balance(ctx, train, sampler, counted, where)


def _weights(ctx: AuditContext, split: Any, sampler: Any, where: str, size: int) -> Finding | None:
    from torch.utils.data import WeightedRandomSampler

    inner = getattr(sampler, "sampler", sampler)  # a BatchSampler around it
    if not isinstance(inner, WeightedRandomSampler):
        return None
    count = len(inner.weights)
    if count == size:
        return None
    classes = len(split.classes()) if not split.multilabel else 0
    per_class = " (one weight per class, not per sample)" if count == classes else ""
    reach = (
        f"it only ever draws indices 0-{count - 1}"
        if count < size
        else f"{count - size} of its indices are past the end of the dataset (IndexError)"
    )
    return ctx.finding(
        "DL011",
        f"{where} has {count} weights for the {size} samples of '{split.name}'{per_class}: {reach}",
        hint="give one weight per sample: class_weights = 1.0 / class_counts; "
        "WeightedRandomSampler(class_weights[targets], num_samples=len(dataset))",
        location=split.location,
        evidence={"weights": count, "samples": size, "classes": classes, "sampler": where},
    )


def _one_pass(split: Any, sampler: Any, where: str, size: int) -> SamplerPass:
    import torch

    def draw_all() -> list[int]:
        # Neither the global generator nor the sampler's own (restored below) is advanced by this pass.
        own = getattr(getattr(sampler, "sampler", sampler), "generator", None)
        saved = own.get_state() if isinstance(own, torch.Generator) else None
        try:
            return _draw_all()
        finally:
            if saved is not None:
                own.set_state(saved)

    def _draw_all() -> list[int]:
        with torch.random.fork_rng(devices=[]):
            drawn: list[int] = []
            for value in itertools.islice(iter(sampler), MAX_DRAWS + 1):
                if isinstance(value, (list, tuple)):  # a batch sampler yields batches of indices
                    drawn.extend(int(v) for v in value)
                else:
                    drawn.append(int(value))
                if len(drawn) > MAX_DRAWS:
                    break
            return drawn

    drawn = split.call(draw_all, what=f"one pass of {where} over split {split.name!r}")
    counted = SamplerPass(where, truncated=len(drawn) > MAX_DRAWS)
    drawn = drawn[:MAX_DRAWS]
    counted.draws = len(drawn)
    distinct = set(drawn)
    counted.out_of_range = sorted(i for i in distinct if not 0 <= i < size)[:20]
    counted.unique = len([i for i in distinct if 0 <= i < size])
    if not split.multilabel:
        targets = split.targets()
        counted.drawn_classes = Counter(int(targets[i]) for i in drawn if 0 <= i < size)
    return counted


def _reach(
    ctx: AuditContext, split: Any, counted: SamplerPass, where: str, size: int, cause: Finding | None
) -> Iterator[Finding]:
    loader = getattr(split, "loader", None)  # not `loader and ...`: a loader's truth is its len()
    replicas = getattr(loader.sampler, "num_replicas", None) if loader is not None else None
    share = SLIVER / replicas if isinstance(replicas, int) and replicas > 1 else SLIVER
    sliver = size >= 10 and counted.draws > 0 and counted.unique < share * size
    if not (sliver or counted.out_of_range or counted.draws == 0):
        return
    parts = [
        f"one pass of {where} draws {counted.draws} indices reaching {counted.unique} of the {size} samples"
    ]
    if size:
        parts[0] += f" of '{split.name}' ({100 * counted.unique / size:.1f}%)"
    if counted.out_of_range:
        parts.append(
            f"{len(counted.out_of_range)} distinct indices are outside the dataset (first {counted.out_of_range[0]}): "
            "the DataLoader raises IndexError on them"
        )
    if counted.drawn_classes:
        top = ", ".join(f"{_class(split, c)}: {n}" for c, n in counted.drawn_classes.most_common(3))
        parts.append(f"classes drawn: {top}")
    yield ctx.finding(
        "DL012",
        "; ".join(parts) + ": every epoch trains on the same few samples",
        hint="check num_samples and the weights (one per sample, all positive); with replacement=True "
        "num_samples=len(dataset) reaches about 63% of the samples per epoch when the weights are even",
        location=split.location,
        evidence={
            "draws": counted.draws,
            "unique": counted.unique,
            "samples": size,
            "out_of_range": counted.out_of_range,
            "classes_drawn": {_class(split, c): n for c, n in counted.drawn_classes.most_common()},
            "sampler": where,
        },
        cause=cause,
    )


def _balance(
    ctx: AuditContext, split: Any, sampler: Any, counted: SamplerPass, where: str
) -> Iterator[Finding]:
    if split.multilabel:
        return
    targets = split.targets()
    held = Counter(int(t) for t in targets)
    if len(held) < 2:
        return
    expected = _expected_shares(sampler, targets, len(held))
    if expected is not None:
        drawn = expected  # the weights say exactly what each class gets: no sampling noise
        how = "its weights give"
    elif counted.draws >= 200:
        total = sum(counted.drawn_classes.values()) or 1
        drawn = {c: counted.drawn_classes.get(c, 0) / total for c in held}
        how = f"one pass of {counted.draws} draws gives"
    else:
        return  # too few draws to tell a worse balance from chance
    total_held = sum(held.values())
    held_share = {c: n / total_held for c, n in held.items()}
    held_ratio = max(held_share.values()) / min(held_share.values())
    missing = [c for c in held if drawn.get(c, 0.0) <= 0.0]
    present = [drawn[c] for c in held if drawn.get(c, 0.0) > 0.0]
    drawn_ratio = max(present) / min(present) if present and not missing else None
    if missing:
        worse = f"it never draws {', '.join(repr(_class(split, c)) for c in missing[:5])}"
    elif drawn_ratio is not None and drawn_ratio > held_ratio * WORSE_FACTOR and drawn_ratio > 2:
        worse = f"its largest/smallest class ratio is {drawn_ratio:.1f} against {held_ratio:.1f} in the data"
    else:
        return
    shown = ", ".join(
        f"{_class(split, c)} {100 * drawn.get(c, 0.0):.0f}% (data {100 * held_share[c]:.0f}%)"
        for c, _ in held.most_common(5)
    )
    yield ctx.finding(
        "DL013",
        f"{where} makes class balance worse on '{split.name}': {worse}; {how} per class: {shown}",
        hint="weight each sample by the inverse frequency of its class (1.0 / class_counts[target]), or drop the "
        "sampler and use shuffle=True",
        location=split.location,
        evidence={
            "drawn_share": {_class(split, c): round(drawn.get(c, 0.0), 4) for c in held},
            "held": {_class(split, c): n for c, n in held.items()},
            "drawn_ratio": drawn_ratio,
            "held_ratio": held_ratio,
            "from_weights": expected is not None,
            "sampler": where,
        },
    )


def _expected_shares(sampler: Any, targets: list[Any], classes: int) -> dict[int, float] | None:
    """Each class's expected share of a WeightedRandomSampler's draws (one weight per sample), else None."""
    from torch.utils.data import WeightedRandomSampler

    inner = getattr(sampler, "sampler", sampler)
    if not isinstance(inner, WeightedRandomSampler) or len(inner.weights) != len(targets):
        return None
    weights = [float(w) for w in inner.weights]
    total = sum(w for w in weights if w > 0)
    if total <= 0:
        return None
    shares: dict[int, float] = {}
    for target, weight in zip(targets, weights, strict=True):
        shares[int(target)] = shares.get(int(target), 0.0) + max(weight, 0.0) / total
    return shares


def _class(split: Any, index: int) -> str:
    names = split.classes()
    return names[index] if 0 <= index < len(names) else str(index)
