"""The caller's own objects as a run's source, for :func:`auditor.check` and the integrations.

The manifest path builds everything from ``module:attr`` factories
(:class:`~auditor.run.sources.ManifestSource`). Here the caller already holds the
model, optimizer, loss and datasets, and :class:`LiveSource` hands them to the run
context as they are: no reference is written, none is resolved. The manifest of a
live run holds only its settings (audit options, ``task``, ``fail_on``, ...),
validated by the same schemas, so they mean exactly what they mean in YAML.
Splits open through the ``callable`` data format with the dataset object handed
over (``SplitSpec.dataset``), as a factory-made dataset would. The audits cannot
tell the two paths apart.

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

if TYPE_CHECKING:  # pragma: no cover
    from auditor.data.splits import Split
    from auditor.manifest.resolve import Resolver
    from auditor.run.lr_schedule import LRSchedule
    from auditor.run.registry import Registry
    from auditor.run.weight_loads import WeightLoad

__all__ = [
    "LIVE_PATH_NAME",
    "LiveObjects",
    "LiveSource",
    "LoaderSettings",
    "TrainingStepLoss",
    "split_options",
    "unpack_split",
]

#: What reports show as the manifest's file name for a run from Python (there is no file).
LIVE_PATH_NAME = "<auditor.check>"
#: The data format that opens a dataset object, as it opens one a factory returned.
_DATASET_FORMAT = "callable"
#: The data format that opens a Hugging Face ``datasets.Dataset`` (image and label columns).
_HF_FORMAT = "hf_dataset"


def _is_hf_dataset(value: Any) -> bool:
    """True for a ``datasets.Dataset``, told by its type name so that ``datasets`` is never imported here."""
    return any(
        cls.__name__ == "Dataset" and (cls.__module__ or "").startswith("datasets.")
        for cls in type(value).__mro__
    )


@dataclass(frozen=True)
class LoaderSettings:
    """What a DataLoader says about how training reads a split."""

    batch_size: int | None = None
    collate_fn: Callable[[list[Any]], Any] | None = None
    sampler: str | None = None  # "weighted" for a WeightedRandomSampler, else a class name or None
    #: True for a RandomSampler, False for a SequentialSampler, None when a custom sampler decides
    shuffle: bool | None = None
    #: The DataLoader itself, for audits that check what it really iterates (sampler, last batch, workers).
    loader: Any = None


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
    #: What the caller's own ``load_state_dict`` calls returned (``_IncompatibleKeys``), judged on the model.
    load_results: tuple[Any, ...] = ()
    #: State-dict files the caller loaded (or will load) into the model: compared, never loaded into it.
    checkpoints: tuple[str, ...] = ()
    #: The learning-rate schedule training steps (``auditor.check(lr_scheduler=...)``), or None.
    lr_schedule: LRSchedule | None = None
    #: Split name -> the data format's options given with it (``image_column`` of an hf_dataset split).
    split_options: Mapping[str, Mapping[str, Any]] = None  # type: ignore[assignment]
    #: Split name -> one group id per sample (``auditor.check(groups=...)``).
    groups: Mapping[str, Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.groups = dict(self.groups or {})
        self.datasets = dict(self.datasets or {})
        self.loaders = dict(self.loaders or {})
        self.split_options = dict(self.split_options or {})


#: Options a split given as a mapping ``{"dataset": ..., **options}`` may carry (its data format's keys).
SPLIT_OPTION_KEYS = ("image_column", "label_column")


def split_options(name: str, value: Any) -> tuple[Any, dict[str, Any]]:
    """``(dataset or loader, options)``: a split given as ``{"dataset": obj, "image_column": ...}`` is unpacked."""
    if not isinstance(value, Mapping) or "dataset" not in value:
        return value, {}
    unknown = [k for k in value if k != "dataset" and k not in SPLIT_OPTION_KEYS]
    if unknown:
        raise TypeError(
            f"auditor.check: split {name!r}: unknown option {unknown[0]!r}; expected 'dataset' and "
            f"{', '.join(SPLIT_OPTION_KEYS)}"
        )
    return value["dataset"], {k: str(v) for k, v in value.items() if k != "dataset"}


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
            loader=value,
        )
    if not (hasattr(value, "__getitem__") and hasattr(value, "__len__")):
        raise TypeError(
            f"auditor.check: split {name!r}: expected a map-style Dataset (with __getitem__ and __len__) or a "
            f"DataLoader over one, found {type(value).__name__}; hint: an IterableDataset cannot be audited "
            "sample by sample, wrap its samples in a list or a TensorDataset"
        )
    return value, None


class TrainingStepLoss:
    """The loss when only a training step knows it (``loss_step`` and no ``loss``).

    Audits that read the loss see a custom loss they cannot inspect (label_distribution says so); the
    gradient probe never calls it, because the training step computes the loss itself.
    """

    def __call__(self, *args: Any) -> Any:
        raise TypeError(
            "the loss is computed inside the training step (loss_step); it cannot be called alone"
        )


class LiveSource:
    """The caller's objects as the run's source (copied before any training, never changed)."""

    #: The model is the caller's, handed over: getting it runs no user code.
    builds_model = False

    def __init__(
        self, objects: LiveObjects, registry: Registry, manifest_path: Path, resolver: Resolver
    ) -> None:
        self.objects = objects
        self.registry = registry
        self.manifest_path = manifest_path
        self.resolver = resolver
        self.loss_step = objects.loss_step
        # model copy -> the optimizer copied with it (same deepcopy memo, so it holds the copy's parameters).
        # Weak keys: a copy an audit drops without asking for its optimizer must not stay alive here.
        self._paired: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def has(self, section: str) -> bool:
        if section == "data":
            return bool(self.objects.datasets)
        if section == "loss":
            return self.objects.loss is not None or self.loss_step is not None
        return getattr(self.objects, section, None) is not None

    # The caller's objects, read-only (as for the manifest path's shared objects).
    def model(self) -> Any:
        if self.objects.model is None:
            raise self.missing("model")
        from auditor.run.sources import refuse_meta

        refuse_meta(self.objects.model, "the model passed to auditor.check", "model")
        return self.objects.model

    def model_copy(self, model: Any) -> Any:
        """A deep copy of the model; :meth:`optimizer` on it returns the matching optimizer copy."""
        optimizer = self.objects.optimizer
        if optimizer is None:
            return copy.deepcopy(model)
        # Copy both in one go so the optimizer copy points at the model copy's parameters. The
        # optimizer starts with empty state, like a fresh optimizer from a factory would: momentum
        # from the caller's training so far must not leak into the probe (or double its memory).
        memo: dict[int, Any] = {id(optimizer.state): defaultdict(dict)}
        model_c, optimizer_c = copy.deepcopy((model, optimizer), memo)
        self._paired[model_c] = optimizer_c
        return model_c

    def optimizer(self, model: Any) -> Any:
        if self.objects.optimizer is None:
            raise self.missing("optimizer")
        if model is self.objects.model:
            return self.objects.optimizer
        paired = self._paired.pop(model, None)
        if paired is not None:
            return paired
        raise ManifestError(
            self.manifest_path,
            "optimizer",
            "a model made by RunContext.model_copy()",
            f"a {type(model).__name__} the optimizer was not copied with",
            hint="an audit that trains must take model_copy() and call make_optimizer() on that copy",
        )

    def loss(self) -> Any:
        if self.objects.loss is not None:
            return self.objects.loss
        if self.loss_step is not None:
            return TrainingStepLoss()
        raise self.missing("loss")

    def fresh_loss(self) -> Any:
        return copy.deepcopy(self.loss())

    def binary_loss(self) -> bool:
        loss = self.objects.loss
        if loss is None:
            return False
        import torch

        return isinstance(loss, (torch.nn.BCEWithLogitsLoss, torch.nn.BCELoss))

    def split_names(self) -> list[str]:
        return list(self.objects.datasets)

    def split_format(self, name: str) -> str:
        dataset = self.objects.datasets[name]
        if _HF_FORMAT in self.registry.data_formats and _is_hf_dataset(dataset):
            return _HF_FORMAT
        return _DATASET_FORMAT

    def open_split(self, name: str) -> Split:
        from auditor.data.splits import SplitSpec

        settings = self.objects.loaders.get(name)
        fmt = self.split_format(name)
        config: dict[str, Any] = {"format": fmt, **self.objects.split_options.get(name, {})}
        if settings is not None and settings.sampler == "weighted":
            config["sampler"] = (
                "weighted"  # what label_distribution reads as class balancing, as in a manifest
            )
        if settings is not None and settings.shuffle is not None:
            config["shuffle"] = (
                settings.shuffle
            )  # the real loader's order, as the manifest's data.SPLIT.shuffle
        spec = SplitSpec(
            name=name,
            config=config,
            base_dir=self.manifest_path.parent,
            resolver=self.resolver,
            deadline=self.resolver.deadline,
            location=f"data.{name}",
            dataset=self.objects.datasets[name],
            groups=self.objects.groups.get(name),
        )
        split = self.registry.data_formats[fmt].open(spec)
        if settings is not None:
            split.batch_size = settings.batch_size
            split.collate_fn = settings.collate_fn
            split.loader = settings.loader
        return split

    def weight_loads(self, model: Any) -> list[WeightLoad]:
        from auditor.run.weight_loads import from_checkpoint, from_load_result

        records = [
            from_load_result(
                result, model, "load_result" if len(self.objects.load_results) == 1 else f"load_result[{i}]"
            )
            for i, result in enumerate(self.objects.load_results)
        ]
        for path in self.objects.checkpoints:
            records.append(
                self.resolver.deadline.call(
                    from_checkpoint, path, model, f"checkpoint {path}", what=f"reading checkpoint {path}"
                )
            )
        return records

    def lr_schedule(self) -> LRSchedule | None:
        return self.objects.lr_schedule

    def missing(self, section: str) -> ManifestError:
        return ManifestError(
            self.manifest_path,
            section,
            f"a {section} passed to auditor.check",
            "none",
            hint=f"this audit needs the {section}; pass {section}=... or leave the audit out with audits=[...]",
        )
