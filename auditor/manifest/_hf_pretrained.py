"""``model.pretrained`` as a Hugging Face model folder or hub id, read offline from plain JSON.

A Hugging Face checkpoint says what its weights expect in two files next to the
weights: ``preprocessor_config.json`` (the image processor: ``image_mean``,
``image_std``, ``do_rescale``, ``rescale_factor``, ``do_normalize``, ``size``,
``crop_size``) and ``config.json`` (``num_labels``/``id2label``, the
architecture). Both are JSON, so ``auditor validate`` reads them without
importing torch or transformers.

The value is a folder (relative to the manifest, as every manifest path) or a hub
id (``google/vit-base-patch16-224``, optionally written ``hf:<id>``) that is
already in the local Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or
``~/.cache/huggingface/hub``). Nothing is ever downloaded: an id that is not in
the cache is a manifest error that says how to get the files.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "HFPretrained",
    "HFPretrainedProblem",
    "is_hf_pretrained",
    "read_hf_pretrained",
]

PROCESSOR_FILE = "preprocessor_config.json"
CONFIG_FILE = "config.json"
#: A config this large is not a config (a JSON bomb, a weights file renamed): refused unread.
_MAX_JSON_BYTES = 8 * 1024 * 1024
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PREFIX = "hf:"


class HFPretrainedProblem(ValueError):
    """The value names no readable Hugging Face folder; ``hint`` says what to do."""

    def __init__(self, found: str, hint: str = "") -> None:
        self.found = found
        self.hint = hint
        super().__init__(found + (f" ({hint})" if hint else ""))


@dataclass(frozen=True)
class HFPretrained:
    """What a Hugging Face folder says about its weights (None: the file does not say)."""

    folder: Path
    #: How the manifest named it (the folder as written, or the hub id).
    name: str
    #: preprocessor_config.json as written ({} without one).
    processor: dict[str, Any] = field(default_factory=dict)
    #: config.json as written ({} without one).
    config: dict[str, Any] = field(default_factory=dict)


def is_hf_pretrained(value: Any) -> bool:
    """True for a ``model.pretrained`` string that is not ``torchvision:``/``timm:`` (a folder or hub id)."""
    if not isinstance(value, str) or not value.strip():
        return False
    library = value.partition(":")[0]
    return library not in ("torchvision", "timm") or ":" not in value


def _hub_caches() -> list[Path]:
    """Where huggingface_hub keeps downloaded repositories, in the order it looks."""
    found = []
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            found.append(Path(os.environ[variable]).expanduser())
    if os.environ.get("HF_HOME"):
        found.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    found.append((Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub")
    return found


def _cached_snapshot(hub_id: str) -> Path | None:
    """The cached snapshot of ``hub_id`` (the one ``refs/main`` names, else the newest), or None."""
    for cache in _hub_caches():
        repo = cache / ("models--" + hub_id.replace("/", "--"))
        snapshots = repo / "snapshots"
        if not snapshots.is_dir():
            continue
        ref = repo / "refs" / "main"
        if ref.is_file():
            commit = ref.read_text(encoding="utf-8", errors="replace").strip()
            if (snapshots / commit).is_dir():
                return snapshots / commit
        candidates = sorted(
            (p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
        )
        if candidates:
            return candidates[0]
    return None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    if not path.is_file():
        raise HFPretrainedProblem(
            f"{path} is not a regular file", "point model.pretrained at the model folder"
        )
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise HFPretrainedProblem(
            f"{path} ({path.stat().st_size:,} bytes), too large for a configuration file",
            "save the processor again with save_pretrained()",
        )
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HFPretrainedProblem(
            f"{path}, which cannot be read as JSON ({type(exc).__name__}: {exc})",
            "save the processor again with save_pretrained()",
        ) from None
    if not isinstance(value, dict):
        raise HFPretrainedProblem(f"{path} holds a {type(value).__name__}, not a JSON object")
    return value


def read_hf_pretrained(value: str, base_dir: Path) -> HFPretrained:
    """The folder ``value`` names (relative to ``base_dir``) or the cached hub id, read offline.

    Raises :class:`HFPretrainedProblem` when it is neither, or when the folder holds
    neither ``preprocessor_config.json`` nor ``config.json``.
    """
    text = value[len(_PREFIX) :] if value.startswith(_PREFIX) else value
    local = Path(text).expanduser()
    folder = local if local.is_absolute() else base_dir / local
    if not folder.is_dir():
        if local.is_absolute() or not _HUB_ID.match(text) or text.startswith("."):
            raise HFPretrainedProblem(
                f"{text!r}: no such folder ({folder})",
                "write a local Hugging Face model folder (one save_pretrained() wrote: it holds "
                f"{PROCESSOR_FILE} and {CONFIG_FILE}), torchvision:<WeightsEnum.member> or timm:<name>",
            )
        snapshot = _cached_snapshot(text)
        if snapshot is None:
            raise HFPretrainedProblem(
                f"{text!r}, a Hugging Face hub id that is not in the local cache "
                f"({', '.join(str(c) for c in _hub_caches())}); auditor never downloads",
                f"download it once where you have network (huggingface-cli download {text}) or save the model "
                "and its processor with save_pretrained() into a folder and name that folder",
            )
        folder = snapshot
    processor = _read_json(folder / PROCESSOR_FILE)
    config = _read_json(folder / CONFIG_FILE)
    if not processor and not config:
        raise HFPretrainedProblem(
            f"the folder {folder}, which holds neither {PROCESSOR_FILE} nor {CONFIG_FILE}",
            "save the image processor into it: AutoImageProcessor.from_pretrained(...).save_pretrained(folder)",
        )
    return HFPretrained(folder=folder, name=text, processor=processor, config=config)
