"""``callable``: any map-style dataset of ``(input, label)`` built by a factory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor import DataFormat, Split, SplitSpec, hookimpl
from auditor.errors import ManifestError
from auditor.kit import DeadlineExceeded, plain_ids

#: Attributes torchvision and common datasets use to expose labels without decoding.
LABEL_ATTRIBUTES = ("targets", "labels", "y", "_labels")
#: Attributes that list each sample's file: ``auditor_paths`` (a list of paths, for your own
#: datasets), then torchvision's ImageFolder/DatasetFolder ``samples`` and ``imgs`` ((path, label) pairs).
PATH_ATTRIBUTES = ("auditor_paths", "samples", "imgs")
#: Attributes holding each sample's group id (patient, video, product), when neither ``groups=``
#: nor ``group_pattern`` gives them: ``auditor_groups`` (named for auditor: one id per sample, or the
#: run says it is wrong), then ``groups`` (used when it has one entry per sample, else left alone:
#: a dataset may mean something else by it).
GROUP_ATTRIBUTES = ("auditor_groups", "groups")


#: Labels of a dataset without a targets/labels attribute are read item by item; above this many
#: samples that is refused in words (10**12 calls would never end) rather than sampled: class counts
#: from a sample would be a guess presented as a fact.
MAX_LABEL_READS = 1_000_000


class CallableSplit(Split):
    def __init__(self, spec: SplitSpec) -> None:
        super().__init__(spec)
        self._dataset: Any = None

    @property
    def dataset_object(self) -> Any:
        if self._dataset is None and self.spec.dataset is not None:
            self._dataset = self.spec.dataset
        if self._dataset is None:
            config = self.spec.config
            self._dataset = self.spec.resolver.call_factory(
                config["factory"], f"{self.location}.factory", **dict(config.get("kwargs") or {})
            )
        return self._dataset

    def __len__(self) -> int:
        return len(self.dataset_object)

    @contextlib.contextmanager
    def _without_own_transform(self) -> Iterator[None]:
        """Temporarily drop the dataset's own transform so labels and raw inputs are cheap."""
        dataset = self.dataset_object
        saved = {}
        for attr in ("transform", "transforms"):
            if getattr(dataset, attr, None) is not None:
                saved[attr] = getattr(dataset, attr)
                with contextlib.suppress(AttributeError):
                    setattr(dataset, attr, None)
        try:
            yield
        finally:
            for attr, value in saved.items():
                with contextlib.suppress(AttributeError):
                    setattr(dataset, attr, value)

    def path_strings(self) -> list[str] | None:
        """Each sample's file when the dataset lists them, so split_leakage hashes files, not tensors."""
        dataset = self.dataset_object
        for attr in PATH_ATTRIBUTES:
            values = getattr(dataset, attr, None)
            if values is None or callable(values) or isinstance(values, (str, bytes)):
                continue
            try:
                if len(values) != len(dataset):
                    continue
                paths = [_path_of(value) for value in values]
            except TypeError:
                continue
            if all(path is not None for path in paths):
                return paths  # type: ignore[return-value]
        return None

    def paths(self) -> list[Path] | None:
        strings = self.path_strings()
        return None if strings is None else [Path(p) for p in strings]

    def _read_groups(self) -> list[str | None] | None:
        # groups= and group_pattern first (the host's); then the dataset's own ids.
        declared = super()._read_groups()
        if declared is not None:
            return declared
        dataset = self.dataset_object
        for attr in GROUP_ATTRIBUTES:
            values = getattr(dataset, attr, None)
            if values is None or callable(values) or isinstance(values, (str, bytes, dict)):
                continue
            try:
                fits = len(values) == len(dataset)
            except TypeError:
                fits = False
            if fits:
                self.group_source = f"dataset.{attr}"
                return plain_ids(values)
            if attr == "auditor_groups":  # named for auditor: a wrong one is a mistake, not another meaning
                raise ManifestError(
                    self.spec.resolver.manifest_path,
                    self.location,
                    f"dataset.auditor_groups with one group id per sample ({len(dataset)})",
                    f"{type(values).__name__}" + (f" of {len(values)}" if hasattr(values, "__len__") else ""),
                    line=self.spec.resolver.lines.line(self.location),
                    hint="auditor_groups[i] is the group (patient, video, ...) of sample i",
                )
        return None

    def _read_targets(self) -> list[Any]:
        dataset = self.dataset_object
        for attr in LABEL_ATTRIBUTES:
            values = getattr(dataset, attr, None)
            if values is not None and not callable(values):
                try:
                    if len(values) == len(dataset):
                        return [_as_target(v) for v in values]
                except TypeError:
                    continue
        size = len(dataset)
        if size > MAX_LABEL_READS:
            key = self.location if self.spec.dataset is not None else f"{self.location}.factory"
            raise ManifestError(
                self.spec.resolver.manifest_path,
                key,
                f"a dataset with a targets or labels attribute, or at most {MAX_LABEL_READS:,} samples whose "
                "labels can be read item by item",
                f"{size:,} samples (len() of the dataset) and no targets/labels attribute: reading every label "
                f"would call __getitem__ {size:,} times",
                line=self.spec.resolver.lines.line(key),
                hint="give the dataset a `targets` list (one label per sample), or check its __len__",
            )
        with self._without_own_transform():
            targets = []
            for index in range(size):
                try:
                    item = self.call(dataset.__getitem__, index, what=self.describe_call(index, False))
                    targets.append(_as_target(item[1]))
                except DeadlineExceeded:
                    raise  # names the item already; the next one could hang as long
                except Exception as exc:
                    raise self._item_error(index, exc) from exc
            return targets

    def _item_error(self, index: int, exc: Exception) -> ManifestError:
        handed_over = self.spec.dataset is not None
        key = self.location if handed_over else f"{self.location}.factory"
        made_by = f"{self.name}_dataset" if handed_over else f"{self.spec.config.get('factory')}()"
        return ManifestError(
            self.spec.resolver.manifest_path,
            key,
            "a dataset whose every item can be read",
            f"item {index} of split {self.name!r} raised {type(exc).__name__}: {str(exc).strip()[:200]}",
            line=self.spec.resolver.lines.line(key),
            hint=f"reproduce with `{made_by}[{index}]`; labels are read from "
            "every item when the dataset has no targets/labels attribute",
        )

    def classes(self) -> list[str]:
        names = getattr(self.dataset_object, "classes", None)
        if names is not None and not callable(names):
            return [str(n) for n in names]
        seen: set[int] = set()
        for target in self.targets():
            seen.update(target if isinstance(target, list) else [target])
        return [str(i) for i in range(max(seen) + 1)] if seen else []

    def load(self, index: int) -> Any:
        with self._without_own_transform():
            return self.dataset_object[index][0]

    @property
    def transform(self) -> Any:
        declared = self.manifest_transform()
        if declared is not None:
            return declared
        return getattr(self.dataset_object, "transform", None)

    def class_index(self) -> dict[str, int]:
        # torchvision's ImageFolder/DatasetFolder (and lookalikes) say which index each class gets.
        mapping = getattr(self.dataset_object, "class_to_idx", None)
        if isinstance(mapping, dict) and mapping:
            try:
                return {str(name): int(index) for name, index in mapping.items()}
            except (TypeError, ValueError):
                pass
        return super().class_index()

    def training_item(self, index: int) -> Any:
        if self.manifest_transform() is None:
            # the dataset's own item: what its DataLoader collates; user code, so under the deadline
            return self.call(self.dataset_object.__getitem__, index, what=self.describe_call(index, True))
        return self.sample(index)

    def _sample(self, index: int, transformed: bool) -> tuple[Any, Any]:
        if not transformed:
            return self.load(index), self.targets()[index]
        declared = self.manifest_transform()
        if declared is None:
            value, _ = self.dataset_object[index]  # the dataset applies its own transform
        else:
            value = declared(self.load(index))
        return value, self.targets()[index]


def _path_of(value: Any) -> str | None:
    """A sample's file path from ``path`` or ``(path, label, ...)``; None when it is not one."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    return None


def _as_target(value: Any) -> Any:
    """An int class index, or a list of indices for multi-hot / index-list targets."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if value and all(v in (0, 1, 0.0, 1.0, True, False) for v in value) and len(value) > 1:
            return [i for i, v in enumerate(value) if v]
        return [int(v) for v in value]
    return int(value)


FORMAT = DataFormat(
    name="callable",
    open=CallableSplit,
    properties={
        "factory": {
            "type": "string",
            "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
            "description": "module:attr of callable(**kwargs) -> dataset of (input, label)",
        },
        "kwargs": {"type": "object"},
    },
    required=("factory",),
    description="a map-style dataset of (input, label) returned by a factory",
)


@hookimpl
def auditor_data_formats() -> list[DataFormat]:
    return [FORMAT]
