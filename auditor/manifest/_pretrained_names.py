"""``model.pretrained`` names checked without importing torch, torchvision or timm.

``auditor validate`` must answer in a fraction of a second and never import
torch, yet a misspelt ``torchvision:ResNet18_Weights.IMAGENET1K_V3`` should fail
there, not minutes into ``auditor run``. Both libraries declare their names in
plain source that a regular expression reads: torchvision's weights enums
(``class ResNet18_Weights(WeightsEnum):`` with ``IMAGENET1K_V1 = Weights(...)``
members) and ``@register_model`` builders; timm's ``@register_model`` builders
and its ``'arch.tag': _cfg(...)`` pretrained configurations. The installed
package is read, so the names always match the version training will use;
``tests/test_validate.py`` checks the index against the imported libraries.

The check errs on the side of silence: a name it cannot decide on (a library
that builds names dynamically, a package that is not installed) passes, and
``auditor run`` resolves it for real.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from auditor._util.suggest import closest

__all__ = [
    "NameProblem",
    "TimmIndex",
    "TorchvisionIndex",
    "architecture_source",
    "check_pretrained",
    "timm_index",
    "torchvision_index",
]

_TV_ENUM = re.compile(r"^class (\w+)\(WeightsEnum\):", re.MULTILINE)
_TV_MEMBER = re.compile(r"^    ([A-Z][A-Z0-9_]*) = ", re.MULTILINE)
# A builder may carry more decorators (spanning lines) between @register_model and its def.
_REGISTER = re.compile(
    r"^@register_model\((?:name=['\"](\w+)['\"])?\)[ \t]*\n(?:[@ \t)].*\n)*?def (\w+)\(", re.MULTILINE
)
_TIMM_REGISTER = re.compile(r"^@register_model[ \t]*\n(?:[@ \t)].*\n)*?def (\w+)\(", re.MULTILINE)
_TIMM_KEY = re.compile(r"""^\s*['"]([\w-]+(?:\.[\w-]+)?)\*?['"]\s*:""", re.MULTILINE)


@dataclass(frozen=True)
class NameProblem:
    """What was found wrong with a pretrained name, and what to write instead."""

    found: str
    hint: str


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


@dataclass
class TorchvisionIndex:
    #: weights enum name -> member names (``DEFAULT`` included)
    enums: dict[str, list[str]] = field(default_factory=dict)
    #: registered model builder names (``resnet18``), lower case as get_model_weights looks them up
    models: set[str] = field(default_factory=set)
    #: the source file that defines each enum and each model: where the architecture lives
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class TimmIndex:
    #: registered architectures (``resnet50``)
    models: set[str] = field(default_factory=set)
    #: architecture -> pretrained tags with a literal config (``a1_in1k``); '' for an untagged config
    tags: dict[str, set[str]] = field(default_factory=dict)
    #: the source file that registers each architecture
    files: dict[str, Path] = field(default_factory=dict)


@lru_cache(maxsize=1)
def torchvision_index() -> TorchvisionIndex | None:
    """Names torchvision's model sources declare, or None when torchvision is not installed."""
    root = _package_dir("torchvision")
    if root is None or not (root / "models").is_dir():
        return None
    index = TorchvisionIndex()
    for source in sorted((root / "models").rglob("*.py")):
        text = source.read_text(encoding="utf-8", errors="replace")
        if "WeightsEnum" in text:
            starts = [(m.start(), m.group(1)) for m in _TV_ENUM.finditer(text)]
            for i, (start, name) in enumerate(starts):
                end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
                body = text[start:end]
                # The class body ends at the next top-level statement.
                stop = re.search(r"\n\S", body[body.find("\n") :])
                body = body[: body.find("\n") + stop.start()] if stop else body
                index.enums[name] = _TV_MEMBER.findall(body)
                index.files[name] = source
        for named, function in _REGISTER.findall(text):
            index.models.add((named or function).lower())
            index.files[(named or function).lower()] = source
    return index


@lru_cache(maxsize=1)
def timm_index() -> TimmIndex | None:
    """Architectures and pretrained tags timm's sources declare, or None when timm is not installed."""
    root = _package_dir("timm")
    if root is None or not (root / "models").is_dir():
        return None
    index = TimmIndex()
    for source in sorted((root / "models").glob("*.py")):
        text = source.read_text(encoding="utf-8", errors="replace")
        for arch in _TIMM_REGISTER.findall(text):
            index.models.add(arch)
            index.files[arch] = source
        for key in _TIMM_KEY.findall(text):
            arch, _, tag = key.partition(".")
            index.tags.setdefault(arch, set()).add(tag)
    return index


def architecture_source(value: str) -> Path | None:
    """The library source file that defines the architecture a pretrained name belongs to, if known."""
    library, _, name = value.partition(":")
    if library == "torchvision":
        index = torchvision_index()
        key = name.partition(".")[0] if "." in name else name.lower()
        return index.files.get(key) if index else None
    if library == "timm":
        timm = timm_index()
        return timm.files.get(name.partition(".")[0]) if timm else None
    return None


def _close(name: str, candidates: list[str] | set[str]) -> str | None:
    return closest(name, candidates)


def check_pretrained(value: str) -> NameProblem | None:
    """The problem with ``torchvision:...`` / ``timm:...``, or None when it exists or cannot be decided."""
    library, _, name = value.partition(":")
    if library == "torchvision":
        return _check_torchvision(name)
    if library == "timm":
        return _check_timm(name)
    return None


def _check_torchvision(name: str) -> NameProblem | None:
    index = torchvision_index()
    if index is None or not index.enums:
        return None  # torchvision not installed here: `auditor run` says so with an install hint
    if "." not in name:
        if name.lower() in index.models:
            return None
        close = _close(name.lower(), index.models)
        hint = (
            f"did you mean torchvision:{close} (its default weights)?"
            if close
            else "write the weights enum and member, e.g. torchvision:ResNet50_Weights.IMAGENET1K_V2"
        )
        return NameProblem(
            f"{name!r}, which is neither a torchvision weights enum member nor a model name", hint
        )
    enum, _, member = name.partition(".")
    if enum not in index.enums:
        close = _close(enum, index.enums)
        hint = (
            f"did you mean torchvision:{close}.{_latest(index.enums[close])}? its members: "
            f"{', '.join(index.enums[close])}"
            if close
            else "write the weights enum and member, e.g. torchvision:ResNet50_Weights.IMAGENET1K_V2"
        )
        return NameProblem(f"{name!r}: torchvision has no weights enum {enum!r}", hint)
    members = index.enums[enum]
    if member not in members:
        close = _close(member, members)
        hint = (
            f"did you mean torchvision:{enum}.{close}? " if close else ""
        ) + f"{enum} has {', '.join(members)}"
        return NameProblem(f"{name!r}: {enum} has no member {member!r}", hint)
    return None


def _check_timm(name: str) -> NameProblem | None:
    index = timm_index()
    if index is None:
        return NameProblem(
            f"'timm:{name}' but timm is not installed",
            "pip install 'auditor[timm]', or write the normalization as a mapping "
            "{mean: [...], std: [...], input_size: [3, H, W]}",
        )
    arch, _, tag = name.partition(".")
    tags = index.tags.get(arch)
    if arch not in index.models and tags is None:
        close = _close(arch, index.models)
        return NameProblem(
            f"{name!r}: timm has no model {arch!r}",
            f"did you mean timm:{close}?" if close else "see timm.list_models(pretrained=True)",
        )
    if tag and tags and tag not in tags:
        close = _close(tag, tags - {""})
        known = ", ".join(sorted(t for t in tags if t))
        hint = (
            f"did you mean timm:{arch}.{close}? " if close else ""
        ) + f"{arch} has pretrained tags: {known}"
        return NameProblem(f"{name!r}: timm has no pretrained tag {tag!r} for {arch}", hint)
    return None


def _latest(members: list[str]) -> str:
    """The newest named weights of an enum (its last member that is not the DEFAULT alias)."""
    named = [m for m in members if m != "DEFAULT"]
    return named[-1] if named else "DEFAULT"
