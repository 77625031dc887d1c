"""``csv``: a CSV or Parquet table with a path column and a label column (read with pandas)."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from auditor import DataFormat, Split, SplitSpec, hookimpl
from auditor.errors import ManifestError
from auditor.kit import RemoteFiles, closest, did_you_mean, display_path, is_url
from auditor_plugins.formats.image_folder import load_image

PARQUET_SUFFIXES = (".parquet", ".pq")
DEFAULT_PATH_COLUMN = "path"
DEFAULT_LABEL_COLUMN = "label"


class TableSplit(Split):
    def __init__(self, spec: SplitSpec) -> None:
        super().__init__(spec)
        config = spec.config
        self.table_url = spec.url("path")
        self.table_path = Path(self.table_url) if self.table_url else spec.path("path")
        # A URL root (given, or the folder of a URL table) keeps its '//': never a Path.
        self.root_url = (
            spec.url("root")
            if config.get("root")
            else (self.table_url.rpartition("/")[0] if self.table_url else None)
        )
        self.root = (
            Path(self.root_url)
            if self.root_url
            else (spec.path("root") if config.get("root") else self.table_path.parent)
        )
        self._remote: RemoteFiles | None = None
        self._label_problems: tuple[dict[str, int], list[dict[str, Any]]] = ({}, [])
        self.path_column = str(config.get("path_column", DEFAULT_PATH_COLUMN))
        self.label_column = str(config.get("label_column", DEFAULT_LABEL_COLUMN))
        self.separator = config.get("label_separator")
        self.group_column = str(config["group_column"]) if config.get("group_column") else None
        self._loaded: tuple[list[str], list[Any], list[str]] | None = None
        self._group_cells: list[str | None] | None = None

    def _read(self) -> tuple[list[str], list[Any], list[str]]:
        if self._loaded is not None:
            return self._loaded
        # The same header check `auditor validate` runs: a wrong column is named in the project's
        # words (key, file, the columns it has, the default) before pandas says it its own way.
        problems = list(check_table(self.spec))
        if problems:
            raise problems[0]
        import pandas as pd

        columns = _columns(self.spec.config)
        # pandas reads URLs through fsspec itself; local files keep the plain path.
        source: Any = self.table_url or self.table_path
        remote: dict[str, Any] = {"storage_options": self.spec.storage_options} if self.table_url else {}
        shown = self.table_url or display_path(self.table_path)
        try:
            if self.table_path.suffix.lower() in PARQUET_SUFFIXES:
                frame = pd.read_parquet(source, columns=columns, **remote)
            else:
                # The group column as written: read as numbers, '007' and '7' would be one patient.
                text = {self.group_column: str} if self.group_column else {}
                frame = pd.read_csv(
                    source, usecols=columns, engine="c", low_memory=False, dtype=text, **remote
                )
        except FileNotFoundError as exc:
            raise self.spec.error("path", "a CSV or Parquet file", f"{shown} does not exist") from exc
        except UnicodeDecodeError as exc:
            raise self.spec.error(
                "path",
                "a CSV file in UTF-8",
                f"{shown}: bytes that are not UTF-8 at offset {exc.start} ({exc.reason})",
                hint="re-save the table as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            ) from exc
        except ImportError as exc:
            raise self.spec.error(
                "path",
                "a readable Parquet file",
                f"no Parquet engine ({exc})",
                hint="pip install 'auditor[parquet]'",
            ) from exc
        except (ValueError, OSError) as exc:
            # The header was checked above (locally); what is left is a damaged file or a remote
            # table whose columns differ.
            raise self.spec.error(
                "path",
                f"a table with the columns {columns}",
                f"{shown} could not be read: {type(exc).__name__}: {exc}",
                hint="set path_column / label_column to the table's column names, and check "
                "the file is a complete CSV (comma-separated, one header row) or Parquet "
                "file",
            ) from exc
        paths = frame[self.path_column].astype(str).tolist()
        labels = frame[self.label_column]
        kept: list[int] | None = None
        if self.separator:
            lists = [str(v).split(self.separator) if isinstance(v, str) and v else [] for v in labels]
            classes = sorted({name.strip() for row in lists for name in row if name.strip()})
            index = {name: i for i, name in enumerate(classes)}
            targets: list[Any] = [[index[n.strip()] for n in row if n.strip()] for row in lists]
        else:
            from auditor_plugins.formats._labels import parse_label_column

            parsed = parse_label_column(labels)
            targets, classes = list(parsed.targets), parsed.classes
            if parsed.counts:
                # Rows without a usable label are left out (LD008 lists them), never made a class.
                paths = [paths[row] for row in parsed.kept]
                kept = parsed.kept
                line = (
                    2 if self.table_path.suffix.lower() not in PARQUET_SUFFIXES else None
                )  # the header is line 1
                self._label_problems = (
                    dict(parsed.counts),
                    [
                        {**problem, "line": problem["row"] + line if line else None}
                        for problem in parsed.problems
                    ],
                )
        if self.group_column:
            from auditor.kit import plain_ids

            cells = plain_ids(frame[self.group_column].tolist())
            self._group_cells = cells if kept is None else [cells[row] for row in kept]
        self._loaded = (paths, targets, classes)
        return self._loaded

    def _read_groups(self) -> list[str | None] | None:
        if self.group_column and self.spec.groups is None:
            self._read()
            return self._group_cells
        return super()._read_groups()

    def relative_paths(self) -> list[str]:
        # The cells as written: relative to root already (an absolute cell or a URL stays whole).
        return [p.replace(os.sep, "/") for p in self._read()[0]]

    def label_problems(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        self._read()
        return self._label_problems

    def __len__(self) -> int:
        return len(self._read()[0])

    def classes(self) -> list[str]:
        return list(self._read()[2])

    def _read_targets(self) -> list[Any]:
        return self._read()[1]

    def paths(self) -> list[Path]:
        root = self.root
        return [Path(p) if Path(p).is_absolute() else root / p for p in self._read()[0]]

    def path_strings(self) -> list[str]:
        if self.root_url is None and not self._has_urls():
            return [os.fspath(p) for p in self.paths()]
        return [self._location(raw) for raw in self._read()[0]]

    def _has_urls(self) -> bool:
        # A substring test first: a table of a million local paths pays no regex.
        return any("://" in p and is_url(p) for p in self._read()[0])

    def _location(self, raw: str) -> str:
        if is_url(raw) or Path(raw).is_absolute():
            return raw
        if self.root_url is not None:
            return f"{self.root_url.rstrip('/')}/{raw.lstrip('/')}"
        return os.fspath(self.root / raw)

    def remote_files(self) -> RemoteFiles | None:
        if self._remote is None:
            if self.root_url is not None:
                from auditor_plugins.formats._remote import list_files_under

                key = "root" if self.spec.config.get("root") else "path"
                self._remote = list_files_under(self.spec, key, self.root_url)
            elif self._has_urls():
                self._remote = RemoteFiles(self.spec.storage_options)
        return self._remote

    def load(self, index: int) -> Any:
        return load_image(self._location(self._read()[0][index]), self.spec.storage_options)


def read_header(path: Path) -> list[str]:
    """Column names of a table, reading only its header (a Parquet file's schema; a CSV's first row)."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq  # the Parquet engine pandas would use; imports no torch

        return [str(name) for name in pq.read_schema(path).names]
    with open(path, encoding="utf-8-sig", newline="") as handle:  # -sig: pandas skips a BOM too
        return next(csv.reader(handle), [])


def check_table(spec: SplitSpec) -> Iterable[ManifestError]:
    """The table exists, the image root exists, and the header has the path and label columns."""
    try:
        yield from _check_table(spec)
    except OSError as exc:  # a name too long for the file system, a folder without permission
        where = display_path(exc.filename) if isinstance(exc.filename, str) else "a path"
        yield spec.error(
            "path",
            "a readable CSV or Parquet file",
            f"{where}, which cannot be opened: {exc.strerror or exc}",
        )


def _check_table(spec: SplitSpec) -> Iterable[ManifestError]:
    config = spec.config
    if config.get("root") and not spec.is_url("root") and not spec.path("root").is_dir():
        root = spec.path("root")
        yield spec.error(
            "root",
            "a folder (the base of relative image paths in the table)",
            f"{display_path(root)} {'is a file' if root.exists() else 'does not exist'}",
            hint="paths are relative to the manifest's folder; leave root out to use the table's folder",
        )
    if spec.is_url("path") or not isinstance(config.get("path"), str):
        return
    table = spec.path("path")
    shown = display_path(table)
    with contextlib.suppress(FileNotFoundError):
        os.stat(table)  # ELOOP, ENAMETOOLONG, EACCES: worded by check_table, not "does not exist"
    if not table.is_file():
        if table.exists():  # is_file is False for a FIFO too, which reading would wait on forever
            yield spec.error(
                "path", "a CSV or Parquet file", f"{shown} is not a regular file (a FIFO, device or folder?)"
            )
            return
        siblings = (
            sorted(p.name for p in table.parent.glob("*") if p.suffix.lower() in (".csv", *PARQUET_SUFFIXES))
            if table.parent.is_dir()
            else []
        )
        yield spec.error(
            "path",
            "a CSV or Parquet file",
            f"{shown} does not exist",
            hint=did_you_mean(table.name, siblings) or "paths are relative to the manifest's folder",
        )
        return
    bounded = _bounds_problem(spec, table)
    if bounded is not None:
        yield bounded
        return
    try:
        header = read_header(table)
    except ImportError as exc:
        yield spec.error(
            "path",
            "a readable Parquet file",
            f"no Parquet engine ({exc})",
            hint="pip install 'auditor[parquet]'",
        )
        return
    except UnicodeDecodeError as exc:
        yield spec.error(
            "path",
            "a CSV file in UTF-8",
            f"{shown}: bytes that are not UTF-8 at offset {exc.start} ({exc.reason})",
            hint="re-save the table as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        )
        return
    except (OSError, ValueError, csv.Error) as exc:
        # pyarrow raises ArrowInvalid (a ValueError) for a file that is not Parquet.
        yield spec.error(
            "path",
            "a CSV or Parquet file with a header row",
            f"{shown}, whose header cannot be read ({type(exc).__name__})",
            hint="CSV: UTF-8 text, comma-separated, column names in the first row",
        )
        return
    if not header:
        yield spec.error("path", "a table with a header row naming its columns", f"{shown} is empty")
        return
    wanted = [("path_column", DEFAULT_PATH_COLUMN), ("label_column", DEFAULT_LABEL_COLUMN)]
    if config.get("group_column"):
        wanted.append(("group_column", ""))
    for key, default in wanted:
        column = str(config.get(key, default))
        if column in header:
            continue
        close = [match] if (match := closest(column, header)) else []
        stripped = next((h for h in header if h.strip() == column), None)
        if stripped is not None:
            hint = (
                f"the column is named {stripped!r} (with spaces); set {key}: {stripped!r} or fix the header"
            )
        elif close:
            hint = f"did you mean {close[0]!r}? set {key}: {close[0]}"
        else:
            what = {"path_column": "image paths", "label_column": "labels"}.get(
                key, "group ids (patient, video, ...)"
            )
            hint = f"set {key} to the column that holds the {what}"
        which = " (the default)" if key not in config else ""
        yield spec.error(
            key, f"a column of {shown}", f"{column!r}{which} is not among its columns {header}", hint=hint
        )


def _columns(config: dict[str, Any]) -> list[str]:
    """The columns read: paths, labels, and the group ids when declared (each once)."""
    names = [
        str(config.get("path_column", DEFAULT_PATH_COLUMN)),
        str(config.get("label_column", DEFAULT_LABEL_COLUMN)),
    ]
    if config.get("group_column"):
        names.append(str(config["group_column"]))
    return list(dict.fromkeys(names))


def _bounds_problem(spec: SplitSpec, table: Path) -> ManifestError | None:
    """The table refused for its size, rows, line length or NUL bytes (see _table_bounds), or None."""
    from auditor_plugins.formats._table_bounds import csv_problem, parquet_problem

    config = spec.config
    shown = display_path(table)
    columns = _columns(config)
    try:
        if table.suffix.lower() in PARQUET_SUFFIXES:
            problem = parquet_problem(table, columns)
        else:
            problem = csv_problem(table)
    except (ImportError, ValueError):
        return None  # no Parquet engine, or not Parquet at all: the header read words it
    except OSError as exc:
        return spec.error("path", "a readable CSV or Parquet file", f"{shown}: {exc.strerror or exc}")
    if problem is None:
        return None
    return spec.error(
        "path",
        "a CSV or Parquet table within auditor's bounds (see docs/reliability.md)",
        f"{shown}: {problem}",
        hint="check that the file is the table you meant; split a bigger table into several splits",
    )


FORMAT = DataFormat(
    name="csv",
    open=TableSplit,
    properties={
        "path": {
            "type": "string",
            "description": "the table: .csv, or .parquet/.pq (a path or an fsspec URL)",
        },
        "root": {
            "type": "string",
            "description": "base folder (or URL) for relative image paths (default: the table's folder)",
        },
        "path_column": {
            "type": "string",
            "default": DEFAULT_PATH_COLUMN,
            "description": "column holding each image's path (absolute, relative to root, or a URL)",
        },
        "label_column": {
            "type": "string",
            "default": DEFAULT_LABEL_COLUMN,
            "description": "column holding each image's label: a class name or an integer index",
        },
        "group_column": {
            "type": "string",
            "minLength": 1,
            "description": "column holding each sample's group id (patient, video, product), read as text; "
            "split_leakage reports groups in train and an evaluation split (SL008) and blank cells (SL009)",
        },
        "label_separator": {
            "type": "string",
            "minLength": 1,
            "description": "multilabel: labels in one cell separated by this string, e.g. '|'",
        },
    },
    required=("path",),
    description="a CSV or Parquet table of image paths and labels (string or integer labels)",
    check=check_table,
)


@hookimpl
def auditor_data_formats() -> list[DataFormat]:
    return [FORMAT]
