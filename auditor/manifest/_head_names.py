"""``model.head`` checked without building the model.

Building the model means importing torch, which ``auditor validate`` must not
do. What can be known without it: the architecture's source (the file of the
torchvision or timm model that ``model.pretrained`` names) and the user's own
sources (the factory's module and everything under ``pythonpath``). A head
named ``classifier`` on a torchvision ResNet appears in none of them; ``fc``
does. When the name is absent from every source that could create it, no
module of that name can exist, and ``auditor run`` would reject it.

Only when the architecture's source is known: a model built by code this
module cannot see is left to ``auditor run``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from auditor._util.suggest import closest
from auditor.manifest._pretrained_names import architecture_source

__all__ = ["check_head"]

#: Classifier-like submodules assigned: ``self.fc = nn.Linear(...)``, ``model.head = torch.nn.Sequential(...)``.
_ASSIGNED = re.compile(
    r"\b(?:self|model|net|m)\.([A-Za-z]\w*)\s*=\s*(?:[\w.]+\.)?(?:Linear|Sequential|Conv2d|"
    r"LazyLinear|Identity)\("
)
#: User projects are small; a pythonpath that points at a huge tree is read this far and no further.
_MAX_FILES = 300


def _sources(factory_source: Path | None, pythonpath: Iterable[Path]) -> list[Path]:
    """The factory's module, its sibling modules (a helper there may attach the head), and pythonpath."""
    files: list[Path] = [factory_source] if factory_source else []
    if factory_source is not None:
        files += sorted(p for p in factory_source.parent.glob("*.py") if p != factory_source)[:_MAX_FILES]
    for folder in pythonpath:
        if folder.is_dir():
            for path in sorted(folder.rglob("*.py")):
                if len(files) >= _MAX_FILES:
                    return files
                files.append(path)
    return files


def check_head(
    head: str, pretrained: str, factory_source: Path | None, pythonpath: Iterable[Path]
) -> tuple[str, str] | None:
    """``(found, hint)`` when no known source can define the head's first component, else None."""
    architecture = architecture_source(pretrained)
    if architecture is None or not head:
        return None
    first = head.split(".")[0]
    word = re.compile(rf"\b{re.escape(first)}\b")
    assigned: set[str] = set()
    for path in [architecture, *_sources(factory_source, pythonpath)]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None  # a source we cannot read might define it
        if word.search(text):
            return None
        assigned.update(_ASSIGNED.findall(text))
    match = closest(first, assigned)
    close = [match] if match else []
    arch = f"{architecture.parent.name}/{architecture.name}"
    found = (
        f"{head!r}, but no submodule {first!r} is defined by the architecture of {pretrained} ({arch}) "
        "or by the factory's sources"
    )
    candidates = sorted(assigned)[:8]
    hint = (f"did you mean {close[0]!r}? " if close else "") + (
        f"layers these sources assign that could be the head: {', '.join(candidates)}"
        if candidates
        else "name the classifier submodule as `print(model)` shows it, e.g. fc for a ResNet"
    )
    return found, hint
