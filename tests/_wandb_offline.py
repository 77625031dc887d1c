"""Reading back what a W&B offline run wrote, without a server.

An offline run keeps its records in ``run-<id>.wandb``: the LevelDB log format (a 7-byte file
header ``:W&B`` + magic + version, then 32 KiB blocks of records, each with a 7-byte header:
CRC, length, type FULL/FIRST/MIDDLE/LAST) holding ``wandb_internal_pb2.Record`` messages. This is
what ``wandb sync`` uploads; reading it back checks what would reach the server.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_HEADER = 7


def _payloads(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: expected a W&B run file (':W&B' header), found {data[:4]!r}")
    pos, chunk = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # the block's tail is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        pos += _HEADER
        payload = data[pos : pos + length]
        pos += length
        if kind == 0 and length == 0:
            break
        if kind == 1:
            yield payload
        elif kind == 2:
            chunk = payload
        elif kind == 3:
            chunk += payload
        elif kind == 4:
            yield chunk + payload
            chunk = b""


@dataclass
class OfflineRun:
    folder: Path
    summary: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    #: (name, type, [paths]) of each logged artifact.
    artifacts: list[tuple[str, str, list[str]]] = field(default_factory=list)
    #: How many records of each kind the file holds.
    kinds: dict[str, int] = field(default_factory=dict)

    def media(self, relative: str) -> Any:
        return json.loads((self.folder / "files" / relative).read_text(encoding="utf-8"))


def read_offline_run(folder: Path, wait_s: float = 60.0) -> OfflineRun:
    """The run's records, once the file holds its ``exit`` record.

    ``run.finish()`` can return before W&B's writer process has flushed the file; a read then sees
    a prefix of it, so this polls until the run's last record (``exit``) is there.
    """
    import time

    deadline = time.monotonic() + wait_s
    while True:
        run = _read(folder)
        if run.kinds.get("exit") or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def _read(folder: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = folder.glob("run-*.wandb")
    run = OfflineRun(folder)
    for payload in _payloads(path):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        run.kinds[kind] = run.kinds.get(kind, 0) + 1
        if kind == "summary":
            for item in record.summary.update:
                run.summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "history":
            for item in record.history.item:
                run.history[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "artifact":
            contents = [entry.path for entry in record.artifact.manifest.contents]
            run.artifacts.append((record.artifact.name, record.artifact.type, contents))
    return run
