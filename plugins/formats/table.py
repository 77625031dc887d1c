"""``csv``: a CSV or Parquet table with a path column and a label column (read with pandas)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from auditor import DataFormat, Split, SplitSpec, hookimpl
from auditor._storage import RemoteFiles, is_url
from auditor.errors import ManifestError
from auditor_plugins.formats.image_folder import load_image

PARQUET_SUFFIXES = (".parquet", ".pq")


class TableSplit(Split):
    def __init__(self, spec: SplitSpec) -> None:
        super().__init__(spec)
        config = spec.config
        self.table_url = spec.url("path")
        self.table_path = Path(self.table_url) if self.table_url else spec.path("path")
        # A URL root (given, or the folder of a URL table) keeps its '//': never a Path.
        self.root_url = spec.url("root") if config.get("root") else (
            self.table_url.rpartition("/")[0] if self.table_url else None)
        self.root = Path(self.root_url) if self.root_url else (
            spec.path("root") if config.get("root") else self.table_path.parent)
        self._remote: RemoteFiles | None = None
        self._label_problems: tuple[dict[str, int], list[dict[str, Any]]] = ({}, [])
        self.path_column = str(config.get("path_column", "path"))
        self.label_column = str(config.get("label_column", "label"))
        self.separator = config.get("label_separator")
        self._loaded: tuple[list[str], list[Any], list[str]] | None = None

    def _error(self, key: str, expected: str, found: str, hint: str = "") -> ManifestError:
        full = f"{self.location}.{key}"
        return ManifestError(self.spec.resolver.manifest_path, full, expected, found,
                             line=self.spec.resolver.lines.line(full), hint=hint)

    def _read(self) -> tuple[list[str], list[Any], list[str]]:
        if self._loaded is not None:
            return self._loaded
        import pandas as pd

        if self.table_url is None and not self.table_path.is_file():
            # is_file is False for a FIFO too, which pandas would wait on forever.
            found = "is not a regular file (a FIFO, device or folder?)" if self.table_path.exists() else \
                "does not exist"
            raise self._error("path", "a CSV or Parquet file", f"{self.table_path} {found}")
        columns = [self.path_column, self.label_column]
        # pandas reads URLs through fsspec itself; local files keep the plain path.
        source: Any = self.table_url or self.table_path
        remote: dict[str, Any] = {"storage_options": self.spec.storage_options} if self.table_url else {}
        try:
            if self.table_path.suffix.lower() in PARQUET_SUFFIXES:
                frame = pd.read_parquet(source, columns=columns, **remote)
            else:
                frame = pd.read_csv(source, usecols=columns, engine="c", low_memory=False, **remote)
        except FileNotFoundError as exc:
            raise self._error("path", "a CSV or Parquet file", f"{source} does not exist") from exc
        except UnicodeDecodeError as exc:
            raise self._error(
                "path", "a CSV file in UTF-8", f"{source}: bytes that are not UTF-8 at offset {exc.start} "
                f"({exc.reason})", hint="re-save the table as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            ) from exc
        except ValueError as exc:
            header = _header(self.table_path)
            raise self._error(
                "label_column" if self.path_column in header else "path_column",
                f"columns {columns}", f"columns {header} ({exc})",
                hint="set path_column / label_column to the table's column names",
            ) from exc
        except ImportError as exc:
            raise self._error("path", "a readable Parquet file", f"no Parquet engine ({exc})",
                              hint="pip install 'auditor[parquet]'") from exc
        paths = frame[self.path_column].astype(str).tolist()
        labels = frame[self.label_column]
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
                line = 2 if self.table_path.suffix.lower() not in PARQUET_SUFFIXES else None  # the header is line 1
                self._label_problems = (dict(parsed.counts), [
                    {**problem, "line": problem["row"] + line if line else None} for problem in parsed.problems])
        self._loaded = (paths, targets, classes)
        return self._loaded

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


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [c.strip() for c in handle.readline().strip().split(",")]
    except OSError:
        return []


FORMAT = DataFormat(
    name="csv",
    open=TableSplit,
    properties={
        "path": {"type": "string", "description": "the table: .csv, or .parquet/.pq (a path or an fsspec URL)"},
        "root": {"type": "string", "description": "base folder (or URL) for relative image paths (default: the table's folder)"},
        "path_column": {"type": "string", "default": "path"},
        "label_column": {"type": "string", "default": "label"},
        "label_separator": {
            "type": "string", "minLength": 1,
            "description": "multilabel: labels in one cell separated by this string, e.g. '|'",
        },
    },
    required=("path",),
    description="a CSV or Parquet table of image paths and labels (string or integer labels)",
)


@hookimpl
def auditor_data_formats() -> list[DataFormat]:
    return [FORMAT]
