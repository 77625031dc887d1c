"""Bounds on the tables the ``csv`` format reads, checked before pandas holds a byte of them.

pandas reads a whole CSV into memory, and a file's size says little about what that costs: a
1 GiB sparse file of NUL bytes took 2.1 GiB of memory before failing, and one 500 MB "row"
(a binary file named ``.csv``) is one giant string. So a local table is first scanned in
chunks of :data:`CHUNK_BYTES` (constant memory, about 1 GB/s) and refused, in words naming the
file and where, when it:

* is larger than :data:`MAX_TABLE_BYTES` (checked with ``stat``, before reading);
* holds a NUL byte (text tables never do: a sparse, binary or damaged file);
* has a line longer than :data:`MAX_ROW_BYTES`;
* has more than :data:`MAX_ROWS` lines.

A Parquet table is judged by its footer (``pyarrow.parquet.read_metadata``): its row count and
the uncompressed size of the two columns read. Tables behind URLs are read as they are.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = [
    "CHUNK_BYTES",
    "MAX_ROWS",
    "MAX_ROW_BYTES",
    "MAX_TABLE_BYTES",
    "csv_problem",
    "parquet_problem",
]

#: Largest table file read (512 MiB; a table of 10 million image paths is about 600 MB of CSV
#: only with very long paths). pandas needs a few times the file's size in memory.
MAX_TABLE_BYTES = 512 * 1024 * 1024
#: Rows (lines) a table may have.
MAX_ROWS = 10_000_000
#: Longest line of a CSV: a row of a path and a label is far shorter.
MAX_ROW_BYTES = 1024 * 1024
#: Read size of the scan; equal to MAX_ROW_BYTES, so a chunk never hides a long line inside it.
CHUNK_BYTES = MAX_ROW_BYTES


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def csv_problem(path: Path) -> str | None:
    """Why the CSV at ``path`` is refused (``found ...`` wording), or None when it is within bounds."""
    with open(path, "rb", buffering=0) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > MAX_TABLE_BYTES:
            sparse = " (a sparse file)" if info.st_blocks * 512 < info.st_size // 2 else ""
            return f"{_mib(info.st_size)}{sparse}, more than the {_mib(MAX_TABLE_BYTES)} a table may have"
        offset = 0
        line = 0  # bytes of the current line so far
        lines = 0
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if not chunk:
                break
            nul = chunk.find(b"\0")
            if nul >= 0:
                where = lines + chunk.count(b"\n", 0, nul) + 1
                return (
                    f"a NUL byte at offset {offset + nul} (line {where}): "
                    "a sparse, binary or damaged file, not a CSV text table"
                )
            first = chunk.find(b"\n")
            if first < 0:
                line += len(chunk)
            else:
                if line + first > MAX_ROW_BYTES:
                    return _long_line(lines + 1)
                lines += chunk.count(b"\n")
                line = len(chunk) - chunk.rfind(b"\n") - 1
            if line > MAX_ROW_BYTES:
                return _long_line(lines + 1)
            if lines > MAX_ROWS:
                return f"more than {MAX_ROWS:,} lines, the most a table may have"
            offset += len(chunk)
    return None


def _long_line(number: int) -> str:
    return f"line {number} longer than {_mib(MAX_ROW_BYTES)} (a binary file, or a broken quote?)"


def parquet_problem(path: Path, columns: list[str]) -> str | None:
    """Why the Parquet table is refused (rows, uncompressed size of ``columns``), or None."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    if meta.num_rows > MAX_ROWS:
        return f"{meta.num_rows:,} rows, more than the {MAX_ROWS:,} a table may have"
    wanted = set(columns)
    size = 0
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            if column.path_in_schema in wanted:
                size += column.total_uncompressed_size
    if size > MAX_TABLE_BYTES:
        return (
            f"columns {sorted(wanted)} of {_mib(size)} uncompressed, more than the "
            f"{_mib(MAX_TABLE_BYTES)} a table may have"
        )
    return None
