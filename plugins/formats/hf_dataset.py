"""``hf_dataset``: a Hugging Face ``datasets.Dataset`` of images and class labels.

Every Hugging Face image tutorial holds its data as a ``datasets.Dataset`` with an
``image`` column (the ``Image`` feature, decoded to PIL) and a ``label`` column
(``ClassLabel``, whose ``names`` are the class names). A split of this format is
such a dataset: a folder ``Dataset.save_to_disk()`` wrote (``path``; ``split``
picks one of a ``DatasetDict``'s), or, through ``auditor.check``, the object itself.

What audits read, and how:

* labels: the label column alone, with the dataset's own transform switched off
  (no image is decoded); class names: the ``ClassLabel``'s ``names``.
* raw samples: the image column decoded by ``datasets`` (a PIL image), in memory:
  split_leakage hashes these decoded pixels, nothing is written to disk.
* the training pipeline: the manifest's ``transform`` when it names one (applied to
  the PIL image, as a torchvision pipeline in ``set_transform`` would be); else the
  dataset's own ``set_transform``/``with_transform`` function, applied to a batch of
  one row as ``datasets`` applies it, its image output (``pixel_values``) measured.
* what the Trainer's collator receives: the dataset's own items (dicts) as they are.

``datasets`` is imported only when a split is opened (``auditor[transformers]``).
``auditor validate`` reads the folder's ``dataset_info.json`` (plain JSON) to check
that the columns exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from auditor import DataFormat, Split, SplitSpec, hookimpl
from auditor.errors import ManifestError, UsageError

__all__ = ["FORMAT", "HFDatasetSplit", "is_hf_dataset"]

DEFAULT_IMAGE_COLUMN = "image"
DEFAULT_LABEL_COLUMN = "label"
#: Output keys an image transform of the Hugging Face examples writes, in the order looked for.
_PIXEL_KEYS = ("pixel_values", "pixel_value", "input", "inputs", "image", "img")
_MAX_JSON_BYTES = 8 * 1024 * 1024


def is_hf_dataset(value: Any) -> bool:
    """True for a ``datasets.Dataset`` (checked by type name: ``datasets`` need not be imported)."""
    return any(
        cls.__name__ == "Dataset" and cls.__module__.startswith("datasets.") for cls in type(value).__mro__
    )


class _RowTransform:
    """The dataset's ``set_transform`` function, applied to one raw image as ``datasets`` applies it to a row.

    ``datasets`` calls the function with a batch (a dict of column lists); the image
    output training batches is the first of ``pixel_values``, ``input``, ... it returns.
    """

    def __init__(self, function: Any, image_column: str, label_column: str) -> None:
        self.function = function
        self.image_column = image_column
        self.label_column = label_column
        pipeline = _pipeline_in(function)
        if pipeline is not None:
            # transform_parity reads a container's ``transforms`` list: the pipeline the function applies
            self.transforms = [pipeline]

    def __call__(self, image: Any) -> Any:
        out = self.function({self.image_column: [image], self.label_column: [0]})
        if not isinstance(out, dict):
            raise TypeError(f"the dataset's transform returned a {type(out).__name__}, not a dict of columns")
        for key in (*_PIXEL_KEYS, *out):
            if key in out and key != self.label_column:
                values = out[key]
                return values[0] if isinstance(values, (list, tuple)) or hasattr(values, "shape") else values
        raise KeyError(f"the dataset's transform returned only the columns {sorted(out)}")

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", type(self.function).__name__)
        return f"set_transform({name})"


def _pipeline_in(function: Any) -> Any:
    """The one torchvision pipeline a ``set_transform`` function applies, found in what it refers to.

    The Hugging Face examples write ``def preprocess(batch): batch["pixel_values"] = [train_tf(im) ...]``
    with ``train_tf`` a global or a closure variable. Exactly one torchvision transform among those,
    and no image processor, is read as the function's pipeline; anything else stays opaque (measured only).
    """
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    referred = [
        cell.cell_contents for cell in (getattr(function, "__closure__", None) or ()) if _filled(cell)
    ]
    namespace = getattr(function, "__globals__", {}) or {}
    referred += [namespace[name] for name in _global_names(code) if name in namespace]
    pipelines = [v for v in referred if (type(v).__module__ or "").startswith("torchvision.transforms")]
    processors = [v for v in referred if hasattr(v, "image_mean") and hasattr(v, "do_rescale")]
    unique = {id(v): v for v in pipelines}
    return next(iter(unique.values())) if len(unique) == 1 and not processors else None


def _global_names(code: Any) -> list[str]:
    """Names a code object and its nested ones (comprehensions, lambdas) look up globally."""
    names = list(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names += _global_names(const)
    return names


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


class HFDatasetSplit(Split):
    def __init__(self, spec: SplitSpec) -> None:
        super().__init__(spec)
        self.image_column = str(spec.config.get("image_column") or DEFAULT_IMAGE_COLUMN)
        self.label_column = str(spec.config.get("label_column") or DEFAULT_LABEL_COLUMN)
        self._dataset: Any = None
        self._plain: Any = None

    @property
    def dataset_object(self) -> Any:
        """The dataset as training reads it (its own transform included)."""
        if self._dataset is None:
            self._dataset = self.spec.dataset if self.spec.dataset is not None else self._load()
            self._check_columns(self._dataset)
        return self._dataset

    @property
    def plain(self) -> Any:
        """The same rows without the dataset's transform: raw images and labels, as stored."""
        if self._plain is None:
            self._plain = self.dataset_object.with_format(None)
        return self._plain

    def _load(self) -> Any:
        try:
            import datasets
        except ImportError as exc:
            raise UsageError(
                f"{self.location}: hf_dataset splits need the optional dependency 'datasets', which is not "
                "installed; install it with: pip install 'auditor[transformers]'"
            ) from exc
        folder = self.spec.path("path")
        loaded = self.call(datasets.load_from_disk, str(folder), what=f"loading {folder} ({self.location})")
        if isinstance(loaded, datasets.DatasetDict):
            wanted = self.spec.config.get("split")
            if wanted not in loaded:
                raise self.spec.error(
                    "split",
                    f"one of the DatasetDict's splits {sorted(loaded)}",
                    repr(wanted) if wanted is not None else "none",
                    hint=f"add split: {sorted(loaded)[0]!r}" if loaded else "",
                )
            loaded = loaded[wanted]
        return loaded

    def _check_columns(self, dataset: Any) -> None:
        columns = list(getattr(dataset, "column_names", None) or [])
        for key, column in (("image_column", self.image_column), ("label_column", self.label_column)):
            if column not in columns:
                from auditor.kit import did_you_mean

                raise self.spec.error(
                    key,
                    f"a column of the dataset ({', '.join(columns)})",
                    repr(column),
                    hint=did_you_mean(column, columns) or f"set {key} to the column that holds them",
                )

    def __len__(self) -> int:
        return len(self.dataset_object)

    def _feature(self) -> Any:
        return (getattr(self.dataset_object, "features", None) or {}).get(self.label_column)

    def classes(self) -> list[str]:
        names = getattr(self._feature(), "names", None)
        if names:
            return [str(n) for n in names]
        seen: set[int] = set()
        for target in self.targets():
            seen.update(target if isinstance(target, list) else [target])
        return [str(i) for i in range(max(seen) + 1)] if seen else []

    def _read_targets(self) -> list[Any]:
        column = self.call(
            lambda: list(self.plain[self.label_column]), what=f"reading the label column of {self.location}"
        )
        targets: list[Any] = []
        for index, value in enumerate(column):
            if value is None or (isinstance(value, int) and value < 0):
                raise ManifestError(
                    self.spec.resolver.manifest_path,
                    f"{self.location}.label_column",
                    "a class index (ClassLabel) in every row",
                    f"row {index} of {self.label_column!r} is {value!r}",
                    hint="drop unlabelled rows first: dataset.filter(lambda row: row[label] is not None and "
                    "row[label] >= 0)",
                )
            if isinstance(value, (list, tuple)):
                targets.append([int(v) for v in value])
            else:
                targets.append(int(value))
        return targets

    def load(self, index: int) -> Any:
        value = self.plain[int(index)][self.image_column]
        if isinstance(value, dict) and value.get("bytes") is not None:
            # an Image feature with decode=False: decode in memory, as the Image feature would
            import io

            from PIL import Image

            with Image.open(io.BytesIO(value["bytes"])) as image:
                image.load()
                return image.copy()
        return value

    def own_transform(self) -> Any:
        """The dataset's ``set_transform``/``with_transform`` function, or None."""
        fmt = getattr(self.dataset_object, "format", None) or {}
        function = fmt.get("format_kwargs", {}).get("transform") if isinstance(fmt, dict) else None
        return function if callable(function) else None

    @property
    def transform(self) -> Any:
        declared = self.manifest_transform()
        if declared is not None:
            return declared
        function = self.own_transform()
        return None if function is None else _RowTransform(function, self.image_column, self.label_column)

    def training_item(self, index: int) -> Any:
        if self.manifest_transform() is None:
            return self.call(
                self.dataset_object.__getitem__, int(index), what=self.describe_call(index, True)
            )
        return self.sample(index)

    def describe(self) -> str:
        return f"{self.name} (hf_dataset, {len(self)} rows)"


def _read_json(path: Path) -> Any:
    if not path.is_file() or path.stat().st_size > _MAX_JSON_BYTES:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def check_hf_dataset(spec: SplitSpec) -> Iterable[ManifestError]:
    """The folder is one ``save_to_disk()`` wrote, the split exists and the columns are among its features."""
    if not isinstance(spec.config.get("path"), str):
        return
    from auditor.kit import did_you_mean, display_path

    folder = spec.path("path")
    if not folder.is_dir():
        yield spec.error(
            "path",
            "a folder Dataset.save_to_disk() or DatasetDict.save_to_disk() wrote",
            f"{display_path(folder)} {'is a file' if folder.exists() else 'does not exist'}",
            hint="paths are relative to the manifest's folder",
        )
        return
    listing = _read_json(folder / "dataset_dict.json")
    if isinstance(listing, dict):
        splits = [str(s) for s in listing.get("splits") or []]
        wanted = spec.config.get("split")
        if wanted not in splits:
            yield spec.error(
                "split",
                f"one of the DatasetDict's splits {splits}",
                repr(wanted) if wanted is not None else "none",
                hint=did_you_mean(str(wanted), splits)
                if wanted
                else f"add split: {splits[0]!r}"
                if splits
                else "",
            )
            return
        folder = folder / str(wanted)
    info = _read_json(folder / "dataset_info.json")
    if not isinstance(info, dict):
        yield spec.error(
            "path",
            "a folder Dataset.save_to_disk() wrote (with dataset_info.json)",
            f"{display_path(folder)} without a readable dataset_info.json",
            hint="save the dataset with dataset.save_to_disk(folder)",
        )
        return
    features = info.get("features")
    if not isinstance(features, dict):
        return
    for key, default in (("image_column", DEFAULT_IMAGE_COLUMN), ("label_column", DEFAULT_LABEL_COLUMN)):
        column = str(spec.config.get(key) or default)
        if column not in features:
            yield spec.error(
                key,
                f"a column of the dataset ({', '.join(features)})",
                repr(column),
                hint=did_you_mean(column, list(features)) or f"set {key} to the column that holds them",
            )


FORMAT = DataFormat(
    name="hf_dataset",
    open=HFDatasetSplit,
    properties={
        "path": {
            "type": "string",
            "description": "folder written by Dataset.save_to_disk() or DatasetDict.save_to_disk() "
            "(read with datasets.load_from_disk; needs auditor[transformers])",
        },
        "split": {
            "type": "string",
            "description": "which split of a saved DatasetDict (e.g. train); not used for a single Dataset",
        },
        "image_column": {
            "type": "string",
            "default": DEFAULT_IMAGE_COLUMN,
            "description": "the column of images (an Image feature, decoded to PIL)",
        },
        "label_column": {
            "type": "string",
            "default": DEFAULT_LABEL_COLUMN,
            "description": "the column of class indices; a ClassLabel's names are the class names",
        },
    },
    required=("path",),
    description="a Hugging Face datasets.Dataset of images and class labels, saved with save_to_disk()",
    check=check_hf_dataset,
)


@hookimpl
def auditor_data_formats() -> list[DataFormat]:
    return [FORMAT]
