"""Weights that really loaded: every ``load_state_dict`` while the model is built, and what it matched.

``load_state_dict(sd, strict=False)`` raises nothing when the keys do not fit: a checkpoint saved
from ``DataParallel`` (keys prefixed ``module.``), a wrong file or a head-only file loads nothing,
and the backbone trains from random init while every other check believes the declared pretrained
weights are there. :func:`recording_loads` patches ``torch.nn.Module.load_state_dict`` for the
duration of the model factory (always restored) and records each call with what it returned;
:func:`from_load_result` and :func:`from_checkpoint` say the same for a load the caller did
(``auditor.check(load_result=..., checkpoint=...)``). Audits read :class:`WeightLoad` records
(``RunContext.weight_loads``) and judge them; nothing here knows a finding code.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WeightLoad", "from_checkpoint", "from_load_result", "recording_loads"]

#: Names kept per list in a record (the evidence and messages need the first few, not 10,000).
_KEPT_NAMES = 20
#: Keys under which training scripts commonly nest the state dict in a checkpoint file.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")


@dataclass(frozen=True)
class WeightLoad:
    """One load of weights into a module, and how many of the module's keys it filled."""

    #: Where the load happened: ``model.factory``, ``load_result[0]``, ``checkpoint <path>``.
    where: str
    #: Class name of the module the weights went into.
    module: str
    #: Dotted name of that module inside the model ("" for the model itself); None: not known.
    target: str | None
    #: Keys of the module's state dict, and how many of them the load filled.
    module_keys: int | None
    matched: int | None
    #: Keys given in the state dict (None where only the load's result is known).
    given_keys: int | None = None
    strict: bool | None = None
    #: The first module keys left unfilled / given keys the module does not have (at most 20 each).
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    missing_count: int = 0
    unexpected_count: int = 0
    #: Given keys whose tensor shape differs from the module's (a checkpoint compared, not loaded).
    shape_mismatches: tuple[str, ...] = ()
    #: ``(action, prefix, count)``: stripping (``strip``) or adding (``add``) ``prefix`` to the given
    #: keys would match ``count`` more of them, e.g. ``("strip", "module.", 62)`` for DataParallel.
    prefix_fix: tuple[str, str, int] | None = None
    #: Why the load could not be judged (an unreadable checkpoint), else "".
    problem: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def share(self) -> float | None:
        """Share of the module's keys the load filled (None where unknown)."""
        if self.module_keys is None or self.matched is None or self.module_keys == 0:
            return None
        return self.matched / self.module_keys

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "module": self.module,
            "target": self.target,
            "module_keys": self.module_keys,
            "matched": self.matched,
            "share": None if self.share is None else round(self.share, 4),
            "given_keys": self.given_keys,
            "strict": self.strict,
            "missing": list(self.missing),
            "missing_count": self.missing_count,
            "unexpected": list(self.unexpected),
            "unexpected_count": self.unexpected_count,
            "shape_mismatches": list(self.shape_mismatches),
            "prefix_fix": list(self.prefix_fix) if self.prefix_fix else None,
            "problem": self.problem,
            "notes": list(self.notes),
        }


#: Record lists of the builds now running (two runs in two threads may build at once). The patch is
#: installed while this is non-empty and removed with the last one, so interleaved builds never leave
#: a wrapper behind or restore another build's.
_active: list[tuple[str, list[WeightLoad]]] = []
_lock = threading.Lock()
_original: Any = None


@contextmanager
def recording_loads(where: str) -> Iterator[list[WeightLoad]]:
    """Record every ``torch.nn.Module.load_state_dict`` call made inside the block.

    The patch lives on the class while a block is open and is removed however the last block ends
    (an exception, an abandoned factory). Calls from other threads during the block are recorded too:
    a model factory that loads in a helper thread is still the factory loading. Each record names the
    module the load went into; :func:`locate` later finds it inside the built model.
    """
    global _original
    import torch

    records: list[WeightLoad] = []
    entry = (where, records)
    with _lock:
        if not _active:
            _original = torch.nn.Module.load_state_dict
            torch.nn.Module.load_state_dict = _make_recorder(_original)  # type: ignore[method-assign]
        _active.append(entry)
    try:
        yield records
    finally:
        with _lock:
            _active.remove(entry)
            if not _active:
                torch.nn.Module.load_state_dict = _original  # type: ignore[method-assign]
                _original = None


def _make_recorder(original: Any) -> Any:
    @functools.wraps(original)
    def load_state_dict(self: Any, state_dict: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, state_dict, *args, **kwargs)
        try:
            strict = kwargs.get("strict", args[0] if args else True)
            for where, records in list(_active):
                records.append(_record(where, self, state_dict, result, bool(strict)))
        except Exception:  # recording never changes what the user's load does
            pass
        return result

    return load_state_dict


def _weight_keys(keys: Iterable[str]) -> list[str]:
    """Keys that hold weights: BatchNorm's ``num_batches_tracked`` is filled in silently by torch when absent."""
    return [k for k in keys if not k.endswith("num_batches_tracked")]


def _incompatible_keys(result: Any) -> tuple[list[str], list[str]]:
    """The missing and unexpected keys a ``load_state_dict`` returned (its ``_IncompatibleKeys``)."""
    return (
        [str(k) for k in getattr(result, "missing_keys", ())],
        [str(k) for k in getattr(result, "unexpected_keys", ())],
    )


def _key_fields(missing: list[str], unexpected: list[str]) -> dict[str, Any]:
    """What every record says of a load's missing and unexpected keys (names kept, counts, a prefix fix)."""
    return {
        "missing": tuple(missing[:_KEPT_NAMES]),
        "unexpected": tuple(unexpected[:_KEPT_NAMES]),
        "missing_count": len(missing),
        "unexpected_count": len(unexpected),
        "prefix_fix": prefix_fix(missing, unexpected),
    }


def _record(where: str, module: Any, state_dict: Any, result: Any, strict: bool) -> WeightLoad:
    keys = _weight_keys(module.state_dict(keep_vars=True))
    missing, unexpected = _incompatible_keys(result)
    given = len(state_dict) if isinstance(state_dict, Mapping) else None
    return WeightLoad(
        where=where,
        module=type(module).__name__,
        target=None,
        module_keys=len(keys),
        matched=len(keys) - len(set(missing) & set(keys)),
        given_keys=given,
        strict=strict,
        **_key_fields(missing, unexpected),
        notes=(f"id:{id(module)}",),
    )


def locate(records: Sequence[WeightLoad], model: Any) -> list[WeightLoad]:
    """``records`` with ``target`` set to each loaded module's dotted name inside ``model``."""
    import dataclasses

    names = {f"id:{id(m)}": name for name, m in model.named_modules()}
    out = []
    for record in records:
        ident = next((n for n in record.notes if n.startswith("id:")), None)
        notes = tuple(n for n in record.notes if not n.startswith("id:"))
        target = names.get(ident) if ident else None
        if ident is not None and target is None:
            notes += ("the module it loaded into is not part of the built model",)
        out.append(dataclasses.replace(record, target=target, notes=notes))
    return out


def from_load_result(result: Any, model: Any, where: str) -> WeightLoad:
    """The record for a load the caller made: the ``_IncompatibleKeys`` it returned, judged on ``model``."""
    missing, unexpected = _incompatible_keys(result)
    keys = _weight_keys(model.state_dict(keep_vars=True))
    target, scope = _scope(keys, missing)
    if target is None:
        notes: tuple[str, ...] = ("the missing keys are not all keys of the model: share not known",)
        total: int | None = None
        matched: int | None = None
    else:
        notes = ()
        total = len(scope)
        matched = total - len(set(missing) & set(scope))
    return WeightLoad(
        where=where,
        module=type(model).__name__ if target in ("", None) else type(model.get_submodule(target)).__name__,
        target=target,
        module_keys=total,
        matched=matched,
        **_key_fields(missing, unexpected),
        notes=notes,
    )


def _scope(keys: list[str], missing: list[str]) -> tuple[str | None, list[str]]:
    """The module the missing keys are relative to: the model, else the submodule they all sit under."""
    key_set = set(keys)
    if all(m in key_set for m in missing):
        return "", keys
    # A load into a submodule (model.backbone.load_state_dict): its keys are the model's minus a prefix.
    prefixes: Counter[str] = Counter()
    for key in keys:
        parts = key.split(".")
        for i in range(1, len(parts)):
            prefixes[".".join(parts[:i])] += 1
    for prefix in sorted(prefixes, key=lambda p: prefixes[p]):  # smallest module first
        if all(f"{prefix}.{m}" in key_set for m in missing):
            return prefix, [k[len(prefix) + 1 :] for k in keys if k.startswith(prefix + ".")]
    return None, []


def from_checkpoint(path: str | Path, model: Any, where: str) -> WeightLoad:
    """How a state-dict file fits ``model`` (nothing is loaded into it): the best-fitting module and share.

    A checkpoint made for a submodule (a backbone file) is judged against that submodule: the
    record names the module whose keys it fills best.
    """
    import torch

    shown = str(path)
    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        return WeightLoad(
            where=where,
            module=type(model).__name__,
            target=None,
            module_keys=None,
            matched=None,
            problem=f"torch.load({shown!r}, weights_only=True) failed with {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
        )
    state, note = _unwrap(raw)
    if state is None:
        return WeightLoad(
            where=where,
            module=type(model).__name__,
            target=None,
            module_keys=None,
            matched=None,
            problem=f"{shown} holds a {type(raw).__name__}, not a state dict (a mapping of names to tensors)",
        )
    given = {str(k): v for k, v in state.items()}
    full = model.state_dict(keep_vars=True)
    own = {k: full[k] for k in _weight_keys(full)}
    best: tuple[float, str, int, int, list[str], list[str]] | None = None
    for prefix in _candidate_prefixes(list(own), given):
        scope = {k[len(prefix) :]: v for k, v in own.items() if k.startswith(prefix)}
        if not scope:
            continue
        fits = [k for k in scope if k in given and _same_shape(scope[k], given[k])]
        wrong = [k for k in scope if k in given and not _same_shape(scope[k], given[k])]
        share = len(fits) / len(scope)
        if best is None or share > best[0]:
            best = (share, prefix, len(scope), len(fits), wrong, list(scope))
    if best is None:
        return WeightLoad(
            where=where,
            module=type(model).__name__,
            target="",
            module_keys=0,
            matched=0,
            given_keys=len(given),
        )
    share, prefix, total, matched, wrong, scope_keys = best
    fit_set = set(scope_keys) & set(given)
    missing = [k for k in scope_keys if k not in fit_set]
    unexpected = [k for k in given if k not in fit_set]
    target = prefix.rstrip(".")
    module = model.get_submodule(target) if target else model
    return WeightLoad(
        where=where,
        module=type(module).__name__,
        target=target,
        module_keys=total,
        matched=matched,
        given_keys=len(given),
        **_key_fields(missing, unexpected),
        shape_mismatches=tuple(wrong[:_KEPT_NAMES]),
        notes=(note,) if note else (),
    )


def _unwrap(raw: Any) -> tuple[Mapping[str, Any] | None, str]:
    """The state dict in a checkpoint file, unwrapping ``{"state_dict": ...}``-style nesting once."""
    import torch

    def is_state(value: Any) -> bool:
        return (
            isinstance(value, Mapping)
            and bool(value)
            and all(isinstance(v, torch.Tensor) for v in list(value.values())[:50])
        )

    if is_state(raw):
        return raw, ""
    if isinstance(raw, Mapping):
        for key in _WRAPPER_KEYS:
            if is_state(raw.get(key)):
                return raw[key], f"the state dict is the file's {key!r} entry"
    return None, ""


def _candidate_prefixes(own: Iterable[str], given: Mapping[str, Any]) -> list[str]:
    """ "" and every module prefix under which some given key is a key of the model."""
    found = {""}
    for key in own:
        parts = key.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[i:]) in given:
                found.add(".".join(parts[:i]) + ".")
    return sorted(found)


def _same_shape(a: Any, b: Any) -> bool:
    return tuple(getattr(a, "shape", ())) == tuple(getattr(b, "shape", ()))


def prefix_fix(missing: Sequence[str], unexpected: Sequence[str]) -> tuple[str, str, int] | None:
    """The one leading prefix whose removal from (or addition to) the given keys matches the most.

    ``module.layer1.0.weight`` given where ``layer1.0.weight`` is missing: ``("strip", "module.", n)``.
    """
    missing_set, unexpected_set = set(missing), set(unexpected)
    strip: Counter[str] = Counter()
    for key in unexpected:
        parts = key.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[i:]) in missing_set:
                strip[".".join(parts[:i]) + "."] += 1
                break
    add: Counter[str] = Counter()
    for key in missing:
        parts = key.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[i:]) in unexpected_set:
                add[".".join(parts[:i]) + "."] += 1
                break
    options = [("strip", *strip.most_common(1)[0])] if strip else []
    options += [("add", *add.most_common(1)[0])] if add else []
    if not options:
        return None
    action, prefix, count = max(options, key=lambda o: o[2])
    return (str(action), str(prefix), int(count))
