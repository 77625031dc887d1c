"""A run context over live Python objects, for :func:`auditor.check` and the integrations.

The manifest path builds everything from ``module:attr`` factories. Here the
caller already holds the model, optimizer, loss and datasets, so this module
writes the equivalent manifest *in memory* (the same ``raw`` mapping, validated
by the same schemas, so audit options, ``task``, ``fail_on`` and the rest mean
exactly what they mean in YAML) and swaps only the step that turns a factory
reference into an object. Splits open through the ``callable`` data format as
any factory-made dataset would. The audits cannot tell the two paths apart.

The caller's objects are never changed: ``model`` and ``optimizer`` are handed
out read-only (as :class:`~auditor.run.context.RunContext` documents), and
everything that trains gets deep copies made here.
"""

from __future__ import annotations

import copy
import weakref
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import ManifestError
from auditor.manifest._yaml import LineMap
from auditor.manifest.resolve import Resolver
from auditor.run.context import RunContext

if TYPE_CHECKING:  # pragma: no cover
    from auditor.data.splits import Split
    from auditor.manifest.load import Manifest
    from auditor.run.registry import Registry

__all__ = [
    "LIVE_PATH_NAME",
    "LiveObjects",
    "LiveRunContext",
    "LoaderSettings",
    "TrainingStepLoss",
    "live_manifest",
    "unpack_split",
]

#: What reports show as the manifest's file name for a run from Python (there is no file).
LIVE_PATH_NAME = "<auditor.check>"
#: Factory references written into the in-memory manifest; never imported (see LiveResolver).
_REF = "__live__:{}"


@dataclass(frozen=True)
class LoaderSettings:
    """What a DataLoader says about how training reads a split."""

    batch_size: int | None = None
    collate_fn: Callable[[list[Any]], Any] | None = None
    sampler: str | None = None  # "weighted" for a WeightedRandomSampler, else a class name or None
    #: True for a RandomSampler, False for a SequentialSampler, None when a custom sampler decides
    shuffle: bool | None = None


@dataclass
class LiveObjects:
    """The caller's objects, exactly as given (never copied or modified here)."""

    model: Any = None
    optimizer: Any = None
    loss: Any = None
    datasets: Mapping[str, Any] = None  # type: ignore[assignment]
    loaders: Mapping[str, LoaderSettings] = None  # type: ignore[assignment]
    #: ``(model, batch, step) -> loss tensor`` replacing ``loss(model(inputs), targets)`` in the probe.
    loss_step: Callable[[Any, Any, int], Any] | None = None

    def __post_init__(self) -> None:
        self.datasets = dict(self.datasets or {})
        self.loaders = dict(self.loaders or {})


def unpack_split(name: str, value: Any) -> tuple[Any, LoaderSettings | None]:
    """``(dataset, loader settings)`` from a map-style Dataset or a DataLoader."""
    from torch.utils.data import DataLoader, WeightedRandomSampler

    if isinstance(value, DataLoader):
        sampler = getattr(value, "sampler", None)
        batch_sampler = getattr(value, "batch_sampler", None)
        inner = getattr(batch_sampler, "sampler", None)
        kinds = [s for s in (sampler, inner) if s is not None]
        if any(isinstance(s, WeightedRandomSampler) for s in kinds):
            how: str | None = "weighted"
        else:
            custom = [
                s
                for s in kinds
                if type(s).__name__ not in ("RandomSampler", "SequentialSampler", "BatchSampler")
            ]
            how = type(custom[0]).__name__ if custom else None
        batch_size = (
            value.batch_size if value.batch_size is not None else getattr(batch_sampler, "batch_size", None)
        )
        collate = value.collate_fn
        from torch.utils.data import default_collate

        names = {type(s).__name__ for s in kinds}
        shuffle = (
            True
            if "RandomSampler" in names
            else False
            if names <= {"SequentialSampler", "BatchSampler"}
            else None
        )
        return value.dataset, LoaderSettings(
            batch_size=int(batch_size) if batch_size else None,
            collate_fn=None if collate is default_collate else collate,
            sampler=how,
            shuffle=shuffle if how is None else None,  # a weighted or custom sampler decides the order
        )
    if not (hasattr(value, "__getitem__") and hasattr(value, "__len__")):
        raise TypeError(
            f"auditor.check: split {name!r}: expected a map-style Dataset (with __getitem__ and __len__) or a "
            f"DataLoader over one, found {type(value).__name__}; hint: an IterableDataset cannot be audited "
            "sample by sample, wrap its samples in a list or a TensorDataset"
        )
    return value, None


def live_manifest(
    *,
    name: str,
    base_dir: Path,
    objects: LiveObjects,
    pretrained: Any = None,
    head: str | None = None,
    task: Mapping[str, Any] | None = None,
    audits: Any = None,
    fail_on: str = "error",
) -> dict[str, Any]:
    """The manifest (as parsed YAML would be) that describes ``objects``."""
    raw: dict[str, Any] = {"version": 1, "name": name}
    if task:
        raw["task"] = dict(task)
    if objects.model is not None:
        model: dict[str, Any] = {"factory": _ref("model", objects.model)}
        if pretrained is not None:
            model["pretrained"] = pretrained
        if head is not None:
            model["head"] = head
        raw["model"] = model
    if objects.optimizer is not None:
        raw["optimizer"] = {"factory": _ref("optimizer", objects.optimizer)}
    if objects.loss is not None:
        raw["loss"] = {"factory": _ref("loss", objects.loss)}
    data: dict[str, Any] = {}
    for split in objects.datasets:
        entry: dict[str, Any] = {"format": "callable", "factory": _REF.format(_ident(split))}
        settings = objects.loaders.get(split)
        if settings is not None and settings.sampler == "weighted":
            entry["sampler"] = "weighted"
        if settings is not None and settings.shuffle is not None:
            entry["shuffle"] = settings.shuffle  # the real loader's order, for LD010
        data[split] = entry
    if data:
        raw["data"] = data
    if audits is not None:
        raw["audits"] = audits
    raw["fail_on"] = fail_on
    return raw


def _ref(role: str, value: Any) -> str:
    """``__live__:loss.BCEWithLogitsLoss``: the class name is what the manifest path reads from a
    factory reference (e.g. RunContext.task tells binary from multiclass by 'BCE' in the loss)."""
    return _REF.format(f"{role}.{_ident(type(value).__name__, '')}")


def _ident(split: str, prefix: str = "data_") -> str:
    """A split name as the attribute part of a reference (the schema's pattern)."""
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in str(split))
    return prefix + (cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else "_" + cleaned)


class TrainingStepLoss:
    """The loss when only a training step knows it (``loss_step`` and no ``loss``).

    Audits that read the loss see a custom loss they cannot inspect (LD004 says so); the
    gradient probe never calls it, because the training step computes the loss itself.
    """

    def __call__(self, *args: Any) -> Any:
        raise TypeError(
            "the loss is computed inside the training step (loss_step); it cannot be called alone"
        )


class LiveResolver(Resolver):
    """Hands out the caller's datasets where the manifest path would import a factory."""

    def __init__(self, manifest_path: Path, objects: LiveObjects) -> None:
        super().__init__(manifest_path, [], LineMap())
        self.objects = objects
        self._by_ref = {_REF.format(_ident(split)): dataset for split, dataset in objects.datasets.items()}

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers pickle splits; the datasets travel with them as they would in training.
        return dict(self.__dict__)

    def resolve(self, ref: str, key: str) -> Any:
        if ref in self._by_ref:
            return self._by_ref[ref]
        raise ManifestError(
            self.manifest_path,
            key,
            "an object passed to auditor.check",
            f"reference {ref!r}",
            hint="pass the object as a keyword of auditor.check",
        )

    def call_factory(self, ref: str, key: str, *args: Any, **kwargs: Any) -> Any:
        return self.resolve(ref, key)

    def check(self, ref: str, key: str) -> ManifestError | None:
        return None


class LiveRunContext(RunContext):
    """A :class:`RunContext` whose factories are the caller's objects (copied before any training)."""

    def __init__(self, manifest: Manifest, registry: Registry, objects: LiveObjects, **kwargs: Any) -> None:
        super().__init__(manifest, registry, **kwargs)
        self.objects = objects
        self.loss_step = objects.loss_step
        # model copy -> the optimizer copied with it (same deepcopy memo, so it holds the copy's parameters).
        # Weak keys: a copy an audit drops without asking for its optimizer must not stay alive here.
        self._paired: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    # The caller's objects, read-only (as for the manifest path's shared objects).
    @property
    def model(self) -> Any:  # type: ignore[override]
        if self.objects.model is None:
            raise self._missing("model")
        return self.objects.model

    @property
    def optimizer(self) -> Any:  # type: ignore[override]
        if self.objects.optimizer is None:
            raise self._missing("optimizer")
        return self.objects.optimizer

    @property
    def loss(self) -> Any:  # type: ignore[override]
        if self.objects.loss is not None:
            return self.objects.loss
        if self.loss_step is not None:
            return TrainingStepLoss()
        raise self._missing("loss")

    def model_copy(self) -> Any:
        """A deep copy of the model; :meth:`make_optimizer` on it returns the matching optimizer copy."""
        model, optimizer = self.objects.model, self.objects.optimizer
        if model is None:
            raise self._missing("model")
        if optimizer is None:
            return copy.deepcopy(model)
        # Copy both in one go so the optimizer copy points at the model copy's parameters. The
        # optimizer starts with empty state, like a fresh optimizer from a factory would: momentum
        # from the caller's training so far must not leak into the probe (or double its memory).
        memo: dict[int, Any] = {id(optimizer.state): defaultdict(dict)}
        model_c, optimizer_c = copy.deepcopy((model, optimizer), memo)
        self._paired[model_c] = optimizer_c
        return model_c

    def make_optimizer(self, model: Any) -> Any:
        if self.objects.optimizer is None:
            raise self._missing("optimizer")
        if model is self.objects.model:
            return self.objects.optimizer
        paired = self._paired.pop(model, None)
        if paired is not None:
            return paired
        raise ManifestError(
            self.manifest.path,
            "optimizer",
            "a model made by RunContext.model_copy()",
            f"a {type(model).__name__} the optimizer was not copied with",
            hint="an audit that trains must take model_copy() and call make_optimizer() on that copy",
        )

    def make_loss(self) -> Any:
        return copy.deepcopy(self.loss)

    def has(self, section: str) -> bool:
        if section == "data":
            return bool(self.objects.datasets)
        if section == "loss":
            return self.objects.loss is not None or self.loss_step is not None
        return bool(self.manifest.raw.get(section))

    def open_split(self, name: str) -> Split:
        split = super().open_split(name)
        settings = self.objects.loaders.get(name)
        if settings is not None:
            split.batch_size = settings.batch_size
            split.collate_fn = settings.collate_fn
        return split

    def _missing(self, section: str) -> ManifestError:
        return ManifestError(
            self.manifest.path,
            section,
            f"a {section} passed to auditor.check",
            "none",
            hint=f"this audit needs the {section}; pass {section}=... or leave the audit out with audits=[...]",
        )
