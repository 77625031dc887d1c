"""Data splits as audits see them, and the data-format plugin declaration.

A :class:`Split` is one entry of the manifest's ``data`` mapping, opened by the
data-format plugin its ``format`` names. Audits rely on a small contract:
labels are cheap (no image decode), raw samples come untransformed, and the
training view applies the manifest's transform exactly as training would.
"""

from __future__ import annotations

import abc
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from auditor.data._groups import GROUP_PROPERTIES
from auditor.run._deadline import CallDeadline

if TYPE_CHECKING:  # pragma: no cover
    from auditor.data._storage import RemoteFiles
    from auditor.errors import ManifestError
    from auditor.manifest.resolve import Resolver

__all__ = ["COMMON_SPLIT_PROPERTIES", "DataFormat", "Split", "SplitDataset", "SplitSpec"]

T = TypeVar("T")

#: Keys every split accepts whatever its format; the format's own schema adds the rest.
COMMON_SPLIT_PROPERTIES: dict[str, Any] = {
    "format": {"type": "string", "description": "data-format plugin that opens this split"},
    "transform": {
        "type": "string",
        "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        "description": "module:attr of a transform object or a zero-argument factory returning one",
    },
    "storage_options": {
        "type": "object",
        "description": (
            "fsspec options for this split's URLs (s3://, gs://, ...), e.g. {anon: true} or "
            "{client_kwargs: {endpoint_url: ...}}; ignored for local paths"
        ),
    },
    "collate_fn": {
        "type": "string",
        "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        "description": (
            "module:attr of the collate function this split's DataLoader uses (default: torch's "
            "default_collate); called with a list of the dataset's items, e.g. (input, target) pairs"
        ),
    },
    "shuffle": {
        "type": "boolean",
        "description": (
            "whether training reads this split in random order (DataLoader(shuffle=True)); default true "
            "for train. false over samples stored class by class gives batches of one class (label_distribution warns)"
        ),
    },
    "sampler": {
        "type": "string",
        "description": (
            "how training samples are drawn: 'weighted' (or module:attr of a sampler factory) "
            "counts as class balancing (label_distribution's imbalance check); a factory is called with the "
            "split's dataset and returns the sampler, of which data_loading draws and counts one pass"
        ),
    },
    **GROUP_PROPERTIES,
}


@dataclass(frozen=True)
class SplitSpec:
    """Everything a data format needs to open one split."""

    name: str
    config: dict[str, Any]
    base_dir: Path
    resolver: Resolver
    #: dotted key path in the manifest, e.g. ``data.val``; findings use it as location.
    location: str = ""
    #: The run's deadline for calls into user code (reading, transforming a sample).
    deadline: CallDeadline = field(default_factory=CallDeadline)
    #: The dataset object itself when the caller handed it over (``auditor.check``); a format that
    #: builds its dataset from a factory (``callable``) uses this one instead of calling anything.
    dataset: Any = None
    #: One group id per sample when the caller handed them over (``auditor.check(groups=...)``).
    groups: Sequence[Any] | None = None

    def path(self, key: str) -> Path:
        """A manifest path option resolved against the manifest's folder, ``..`` folded away."""
        value = Path(str(self.config[key])).expanduser()
        return Path(os.path.normpath(value if value.is_absolute() else (self.base_dir / value)))

    def is_url(self, key: str) -> bool:
        """True when the option is a URL (``s3://...``): only its data format can reach it."""
        return self.url(key) is not None

    def error(self, key: str, expected: str, found: str, hint: str = "") -> ManifestError:
        """A problem with option ``key`` of this split, located in the manifest."""
        from auditor.errors import ManifestError

        full = f"{self.location or 'data.' + self.name}.{key}"
        return ManifestError(
            self.resolver.manifest_path, full, expected, found, line=self.resolver.lines.line(full), hint=hint
        )

    def url(self, key: str) -> str | None:
        """The option as an fsspec URL (``s3://...``) when it is one, else None (a local path)."""
        from auditor.data._storage import is_url

        value = self.config.get(key)
        return str(value) if is_url(value) else None

    @property
    def storage_options(self) -> dict[str, Any]:
        """The split's ``storage_options`` (credentials, endpoint) for its URLs."""
        return dict(self.config.get("storage_options") or {})


class Split(abc.ABC):
    """One data split. Subclasses implement the abstract methods; the rest is shared."""

    #: How training batches this split, when known (from a DataLoader given to ``auditor.check``):
    #: the loader's batch size, and its collate function (``None``: torch's ``default_collate``).
    batch_size: int | None = None
    collate_fn: Callable[[list[Any]], Any] | None = None
    #: The DataLoader training iterates, when the caller handed one over (``auditor.check``): audits
    #: read its sampler, ``drop_last`` and workers. Read-only; ``None`` for a manifest's splits.
    loader: Any = None
    #: Where a format's own :meth:`_read_groups` found the ids (e.g. ``dataset.auditor_groups``).
    group_source: str | None = None

    def __init__(self, spec: SplitSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.location = spec.location or f"data.{spec.name}"
        self._transform_resolved = False
        self._transform: Any = None
        self._collate_resolved = False
        self._targets: list[Any] | None = None
        self._groups: list[str | None] | None = None
        self._groups_read = False

    # -- what a format implements ---------------------------------------------------

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abc.abstractmethod
    def classes(self) -> list[str]:
        """Class names, indexed by the integer targets training will see."""

    @abc.abstractmethod
    def _read_targets(self) -> list[Any]:
        """Per-sample targets, cheaply: an ``int`` each, or a list of ints (multilabel)."""

    @abc.abstractmethod
    def load(self, index: int) -> Any:
        """The raw, untransformed input of sample ``index`` (a PIL image for files)."""

    def paths(self) -> list[Path] | None:
        """File path of every sample, for file-backed formats; ``None`` otherwise."""
        return None

    def remote_files(self) -> RemoteFiles | None:
        """For files behind fsspec URLs: their storage options and listed sizes and versions."""
        return None

    def path_strings(self) -> list[str] | None:
        """``paths()`` as plain strings: what hot loops over many files should use.

        Building a ``Path`` costs microseconds per file, which is a good part of a
        warm run over a large split; formats that list files as strings override this.
        """
        paths = self.paths()
        return None if paths is None else [os.fspath(p) for p in paths]

    def relative_paths(self) -> list[str] | None:
        """Each sample's path relative to the split's root, with '/' separators: what ``group_pattern`` searches.

        The default is :meth:`path_strings` as listed; formats with a root override it.
        """
        paths = self.path_strings()
        return None if paths is None else [p.replace(os.sep, "/") for p in paths]

    def groups(self) -> list[str | None] | None:
        """Each sample's group id (patient, video, product), ``None`` for a sample without one;
        ``None`` in all when the split declares no grouping.

        From ``auditor.check(groups=...)``, else ``group_pattern`` over :meth:`relative_paths`, else
        what the format reads (a table's ``group_column``, a dataset's ``auditor_groups``). Read once,
        under the run's deadline: the ids are user data, and a dataset attribute may be user code.
        """
        if not self._groups_read:
            self._groups = self.call(
                self._read_groups, what=f"reading the group ids of split {self.name!r} ({self.location})"
            )
            self._groups_read = True
        return self._groups

    def grouping(self) -> str | None:
        """Where :meth:`groups` come from, in the words a message uses; ``None``: no grouping declared.

        Reads no data: a format whose :meth:`_read_groups` finds ids elsewhere sets ``group_source``.
        """
        if self.spec.groups is not None:
            return f"groups[{self.name!r}]"
        for key in ("group_column", "group_pattern"):
            if self.spec.config.get(key):
                return f"{key} '{self.spec.config[key]}'"
        return self.group_source

    def _read_groups(self) -> list[str | None] | None:
        """The ids given with the dataset or matched by ``group_pattern``; formats add their own sources."""
        from auditor.data._groups import ids_from_pattern, plain_ids

        given = self.spec.groups
        if given is not None:
            ids = plain_ids(given)
            if len(ids) != len(self):
                raise self._groups_error(
                    f"one group id per sample of split {self.name!r} ({len(self)})",
                    f"{len(ids)} ids",
                    "give groups={'" + self.name + "': ids} with ids[i] the group of sample i",
                )
            return ids
        pattern = self.spec.config.get("group_pattern")
        if not pattern:
            return None
        relative = self.relative_paths()
        if relative is None:
            raise self.spec.error(
                "group_pattern",
                "a split whose samples are files (the pattern is searched in their paths)",
                "a dataset that lists no file per sample",
                hint="give the dataset an `auditor_paths` list, or its ids as an `auditor_groups` list",
            )
        import re

        return ids_from_pattern(re.compile(pattern), relative)

    def _groups_error(self, expected: str, found: str, hint: str) -> ManifestError:
        from auditor.errors import ManifestError

        return ManifestError(
            self.spec.resolver.manifest_path, f"groups[{self.name!r}]", expected, found, hint=hint
        )

    def manifest_transform(self) -> Any:
        """The transform the manifest names for this split, built once (or ``None``)."""
        if not self._transform_resolved:
            ref = self.spec.config.get("transform")
            if ref:
                self._transform = self.spec.resolver.resolve_transform(ref, f"{self.location}.transform")
            self._transform_resolved = True
        return self._transform

    def training_collate(self) -> Callable[[list[Any]], Any] | None:
        """The collate function training batches this split with; ``None`` means torch's ``default_collate``.

        The live DataLoader's (``collate_fn``, set by ``auditor.check``) when known, else the one the
        manifest names in ``data.<split>.collate_fn`` (imported on first use). It is given a list of
        :meth:`training_item` results, as a DataLoader gives it.
        """
        if self.collate_fn is None and not self._collate_resolved:
            ref = self.spec.config.get("collate_fn")
            if ref:
                self.collate_fn = self.spec.resolver.resolve(ref, f"{self.location}.collate_fn")
            self._collate_resolved = True
        return self.collate_fn

    @property
    def transform(self) -> Any:
        """The pipeline training applies to this split's inputs (``None`` when absent)."""
        return self.manifest_transform()

    # -- shared ---------------------------------------------------------------------

    def targets(self) -> list[Any]:
        if self._targets is None:
            self._targets = list(self._read_targets())
        return self._targets

    @property
    def multilabel(self) -> bool:
        targets = self.targets()
        return bool(targets) and isinstance(targets[0], (list, tuple))

    def label_counts(self) -> dict[str, int]:
        """Samples per class name; multilabel targets count once per label."""
        names = self.classes()
        counter: Counter[int] = Counter()
        if self.multilabel:
            for target in self.targets():
                counter.update(int(t) for t in target)
        else:
            counter.update(int(t) for t in self.targets())
        return {_class_name(names, index): count for index, count in sorted(counter.items())}

    def sample(self, index: int, *, transformed: bool = True) -> tuple[Any, Any]:
        """``(input, target)`` as training sees it (or raw with ``transformed=False``).

        Runs under the call deadline: reading and transforming one sample is user code.
        """
        return self.call(self._sample, index, transformed, what=self.describe_call(index, transformed))

    def raw(self, index: int) -> Any:
        """``load(index)`` under the call deadline: what audits call instead of ``load``."""
        return self.call(self.load, index, what=self.describe_call(index, False))

    def call(self, fn: Callable[..., T], *args: Any, what: str, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under the deadline of the run that opened this split.

        For formats and audits that call user code on this split's samples (a dataset's
        ``__getitem__``, a transform, a collate function); raises
        :class:`~auditor.kit.DeadlineExceeded` naming ``what`` when it does not return in time.
        """
        return self.spec.deadline.call(fn, *args, what=what, **kwargs)

    def describe_call(self, index: int, transformed: bool) -> str:
        """How a deadline message names the read of sample ``index``."""
        what = "reading and transforming" if transformed else "reading"
        return f"{what} sample {index} of split {self.name!r} ({self.location})"

    def _sample(self, index: int, transformed: bool) -> tuple[Any, Any]:
        value = self.load(index)
        transform = self.transform if transformed else None
        if transform is not None:
            value = transform(value)
        return value, self.targets()[index]

    def training_item(self, index: int) -> Any:
        """Sample ``index`` exactly as the training DataLoader receives it from the dataset.

        What a custom collate function (``collate_fn``) is given; the default is
        ``(input, target)`` from :meth:`sample`. Formats wrapping a user's dataset return its item.
        """
        return self.sample(index)

    def label_problems(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """Samples left out because their label is blank, NaN, unparsable or negative (label_distribution reports them).

        Counts per problem (``blank``, ``unparsable``, ``negative``) and the first rows as
        ``{"row", "line", "value", "problem"}``. Formats that parse labels from text override it.
        """
        return {}, []

    def link_loops(self) -> list[dict[str, str]]:
        """Symlinked folders whose listing leads back to a folder above them (data_loading reports them).

        Each as ``{"link", "target", "revisits"}``; the listing did not enter them. A format that
        walks folders with links followed (as torchvision's ImageFolder does) overrides it.
        """
        return []

    def class_index(self) -> dict[str, int]:
        """Class name -> the index training uses for it (a dataset's ``class_to_idx``), compared across splits."""
        return {name: index for index, name in enumerate(self.classes())}

    def dataset(self) -> SplitDataset:
        """A map-style dataset of transformed samples, usable with a torch DataLoader."""
        return SplitDataset(self)

    def describe(self) -> str:
        return f"{self.name} ({self.spec.config.get('format')}, {len(self)} samples)"


def _class_name(names: Sequence[str], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


class SplitDataset:
    """Map-style dataset over a split; picklable so DataLoader workers can use it."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.split.sample(index)

    @property
    def targets(self) -> list[Any]:
        """Every sample's target (no decode), as torchvision datasets expose them: what a sampler factory reads."""
        return self.split.targets()


@dataclass(frozen=True)
class DataFormat:
    """A data format as a plugin declares it through ``auditor_data_formats``.

    ``options_schema`` is a JSON Schema ``properties`` mapping for the keys this
    format adds to a split (``format``, ``transform`` and ``sampler`` are common
    to all formats); ``required`` lists the ones that must be present.
    """

    name: str
    open: Callable[[SplitSpec], Split]
    properties: dict[str, Any] = field(default_factory=dict)
    required: Sequence[str] = ()
    description: str = ""
    #: Cheap checks of a split that read no sample (folders exist, a table's header has the
    #: columns): ``auditor validate`` runs them, and so does ``auditor run`` before any audit.
    #: Must not import torch; returns every problem found, worded as manifest errors.
    check: Callable[[SplitSpec], Iterable[ManifestError]] | None = None

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {**COMMON_SPLIT_PROPERTIES, **self.properties},
            "required": ["format", *self.required],
            "additionalProperties": False,
        }
