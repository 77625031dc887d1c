"""The learning-rate schedule training steps, as a plan an audit can dry-run on copies.

A schedule comes from the manifest's ``lr_scheduler`` (a factory taking the optimizer, with
``interval: step|epoch`` and the planned ``epochs``), from ``auditor.check(lr_scheduler=...)`` (a
live scheduler, alone or in Lightning's ``{"scheduler": ..., "interval": ...}`` form) or from the
Lightning integration (``configure_optimizers``' scheduler config). :meth:`LRSchedule.copies`
gives an optimizer and a scheduler of the audit's own: stepping them changes neither the user's
optimizer nor their scheduler, and the model's parameters are shared, never copied (a schedule
only writes ``param_groups[i]["lr"]``). Nothing here knows a finding code.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from auditor.manifest.resolve import Resolver
    from auditor.manifest.sections import LRSchedulerSection

__all__ = ["INTERVALS", "LRSchedule", "from_live", "from_section"]

#: How often training calls ``scheduler.step()``: after every optimizer step, or once per epoch.
INTERVALS = ("step", "epoch")


@dataclass(frozen=True)
class LRSchedule:
    """A schedule and how the training loop steps it."""

    #: ``optimizer -> scheduler`` (a manifest factory, under the run's call deadline); None for a live one.
    make: Callable[[Any], Any] | None
    interval: str = "epoch"
    #: Planned epochs; None where the caller gave none (the dry run then cannot plan).
    epochs: int | None = None
    #: Optimizer steps per epoch; None: the audit derives it from the train split.
    steps_per_epoch: int | None = None
    #: ``scheduler.step()`` every ``frequency`` intervals (Lightning's ``frequency``).
    frequency: int = 1
    #: How messages name it: ``lr_scheduler.factory torch.optim...:OneCycleLR``, ``the Lightning module's ...``.
    described: str = "lr_scheduler"
    #: The report location of findings about it.
    location: str = "lr_scheduler"
    #: The caller's scheduler object (copied, with its optimizer, before anything steps it).
    scheduler: Any = None

    def copies(self, optimizer: Any) -> tuple[Any, Any]:
        """``(optimizer copy, scheduler over it)``: the dry run's own, sharing only the parameters.

        ``optimizer`` is the run's shared optimizer (for a factory-made schedule). A live scheduler
        is copied together with the optimizer it holds. The copy's optimizer state starts empty: a
        schedule never reads it, and copying Adam's moments would double their memory.
        """
        if self.scheduler is not None:
            inner = getattr(self.scheduler, "optimizer", None)
            memo = _sharing_memo(inner) if inner is not None else {}
            return copy.deepcopy((inner, self.scheduler), memo)
        if self.make is None:
            raise ValueError("an LRSchedule needs a factory or a scheduler")
        optimizer_copy = copy.deepcopy(optimizer, _sharing_memo(optimizer))
        return optimizer_copy, self.make(optimizer_copy)


def from_section(section: LRSchedulerSection, resolver: Resolver) -> LRSchedule:
    """The plan for the manifest's ``lr_scheduler``: its factory called on the dry run's optimizer copy."""
    factory, kwargs = section.factory, dict(section.kwargs)
    if factory is None:
        raise ValueError("lr_scheduler has no factory")

    def make(optimizer: Any) -> Any:
        return resolver.call_factory(factory, "lr_scheduler.factory", optimizer, **kwargs)

    return LRSchedule(
        make=make,
        interval=section.interval,
        epochs=section.epochs,
        steps_per_epoch=section.steps_per_epoch,
        described=f"lr_scheduler.factory {factory}",
        location="lr_scheduler",
    )


def _sharing_memo(optimizer: Any) -> dict[int, Any]:
    """A deepcopy memo that keeps ``optimizer``'s parameters (and nothing of its state)."""
    memo: dict[int, Any] = {id(optimizer.state): defaultdict(dict)}
    for group in getattr(optimizer, "param_groups", ()):
        for param in group.get("params", ()):
            memo[id(param)] = param
    return memo


def from_live(value: Any, *, epochs: int | None = None, steps_per_epoch: int | None = None) -> LRSchedule:
    """The plan for a live scheduler: the object alone, or Lightning's config mapping.

    ``value`` is an ``LRScheduler``, or ``{"scheduler": obj, "interval": "step"|"epoch",
    "frequency": n, "epochs": n, "steps_per_epoch": n}`` (Lightning's lr_scheduler config plus the
    plan's two numbers). ``interval`` defaults to ``epoch``, as in Lightning. Raises
    :class:`~auditor.errors.UsageError` naming what is wrong.
    """
    config: Mapping[str, Any] = value if isinstance(value, Mapping) else {"scheduler": value}
    scheduler = config.get("scheduler")
    if scheduler is None or not hasattr(scheduler, "step") or not hasattr(scheduler, "optimizer"):
        raise UsageError(
            "auditor.check: lr_scheduler= expected a torch.optim.lr_scheduler scheduler or a mapping "
            f"{{'scheduler': scheduler, 'interval': 'step'|'epoch', 'epochs': N}}, found "
            f"{type(scheduler if isinstance(value, Mapping) else value).__name__}; hint: pass the object "
            "configure_optimizers() returns under 'lr_scheduler'"
        )
    unknown = sorted(
        set(config)
        - {"scheduler", "interval", "frequency", "epochs", "steps_per_epoch", "name", "monitor", "strict"}
    )
    if unknown:
        raise UsageError(
            f"auditor.check: lr_scheduler= has unknown key {unknown[0]!r}; expected scheduler, interval, "
            "frequency, epochs, steps_per_epoch (and Lightning's name, monitor, strict)"
        )
    interval = str(config.get("interval", "epoch"))
    if interval not in INTERVALS:
        raise UsageError(
            f"auditor.check: lr_scheduler['interval'] expected 'step' or 'epoch', found {interval!r}; "
            "hint: 'step' steps the scheduler after every optimizer step"
        )
    numbers: dict[str, int | None] = {}
    for key, default in (("frequency", 1), ("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        given = config.get(key, default)
        if given is not None and (isinstance(given, bool) or not isinstance(given, int) or given < 1):
            raise UsageError(
                f"auditor.check: lr_scheduler[{key!r}] expected a whole number of at least 1, found {given!r}"
            )
        numbers[key] = given
    return LRSchedule(
        make=None,
        interval=interval,
        epochs=numbers["epochs"],
        steps_per_epoch=numbers["steps_per_epoch"],
        frequency=int(numbers["frequency"] or 1),
        described=f"the {type(scheduler).__name__} passed as lr_scheduler",
        location="lr_scheduler",
        scheduler=scheduler,
    )
