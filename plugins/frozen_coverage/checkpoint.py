"""Which tensors ``from_pretrained(..., ignore_mismatched_sizes=True)`` dropped and re-initialised (FZ016).

A Hugging Face model folder stores its weights in ``model.safetensors``, whose
header (a length and a JSON object) lists every tensor's name and shape. Comparing
those with the model's own tensors tells, without loading a weight, which ones the
checkpoint could not fill: a shape that differs (dropped under
``ignore_mismatched_sizes``) or a name it lacks (initialised at random). The
folder is ``model.pretrained`` when it names one, else the folder the model was
loaded from (``config._name_or_path``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Mismatch", "checkpoint_mismatch"]

_WEIGHTS = "model.safetensors"
#: A safetensors header larger than this is not one (the format caps it at 100 MB).
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class Mismatch:
    folder: Path
    #: name -> (checkpoint shape, model shape) for tensors of another shape in the checkpoint.
    resized: dict[str, tuple[list[int], list[int]]]
    #: the model's tensors the checkpoint does not hold at all.
    missing: list[str]


def _header(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            raw = handle.read(8)
            if len(raw) != 8:
                return None
            (length,) = struct.unpack("<Q", raw)
            if length > _MAX_HEADER:
                return None
            header = json.loads(handle.read(length).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, struct.error):
        return None
    return header if isinstance(header, dict) else None


def _folder(ctx: Any, base: Any) -> Path | None:
    from auditor.kit import HFPretrainedProblem, is_hf_pretrained, read_hf_pretrained

    declared = ctx.run.pretrained if ctx.run.has("model") else None
    if is_hf_pretrained(declared):
        try:
            return read_hf_pretrained(str(declared), ctx.manifest.base_dir).folder
        except HFPretrainedProblem:
            return None  # the manifest check already said so
    loaded_from = getattr(getattr(base, "config", None), "_name_or_path", None)
    if isinstance(loaded_from, str) and loaded_from and Path(loaded_from).is_dir():
        return Path(loaded_from)
    return None


def checkpoint_mismatch(ctx: Any, model: Any) -> Mismatch | None:
    """The tensors the folder's checkpoint could not fill, or None without a readable checkpoint."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    folder = _folder(ctx, base)
    if folder is None or not (folder / _WEIGHTS).is_file():
        return None
    header = _header(folder / _WEIGHTS)
    if header is None:
        return None
    stored = {k: v.get("shape") for k, v in header.items() if isinstance(v, dict) and k != "__metadata__"}
    resized: dict[str, tuple[list[int], list[int]]] = {}
    missing: list[str] = []
    mine = {}
    for name, tensor in base.state_dict().items():
        parts = name.split(".")
        if any(p.startswith("lora_") or p == "modules_to_save" for p in parts):
            continue  # adapters and their trainable copies are not the checkpoint's
        # peft moves a wrapped layer's own tensors one level down: q_proj.base_layer.weight is q_proj.weight
        mine[".".join(p for p in parts if p not in ("base_layer", "original_module"))] = list(tensor.shape)
    for name, shape in mine.items():
        if name not in stored:
            missing.append(name)
        elif list(stored[name] or []) != shape:
            resized[name] = (list(stored[name] or []), shape)
    if len(missing) > len(mine) / 2:
        # Names do not line up (another prefix, or a library that renames layers when it loads, as
        # transformers 5 does): only the tensors whose names match can be compared.
        missing = []
    return Mismatch(folder, resized, missing)
