"""Listing a class folder the way torchvision's ImageFolder does, without ever following a loop.

torchvision's ``make_dataset`` lists each class folder with ``os.walk(followlinks=True)``:
it descends into symlinked folders. A link to the folder itself or to one above it (``cat/a ->
.``) then makes the walk revisit that folder forever, a level deeper each time (two such links
double the listing at every level): the user's own training hangs in ImageFolder's constructor,
and a naive listing here grew to 9 GiB. This walk descends the same way (links followed, folders
and files in sorted order) but keeps the folders on the current path, and every folder above
the class folder, by identity (``st_dev``, ``st_ino``); a link that leads back to one of them
is recorded as a :class:`LinkLoop` and not entered. Memory and time stay proportional to the real tree.

A link to a folder elsewhere (not an ancestor) is followed, as ImageFolder follows it: its
images are listed once more under the link's path, exactly what training would see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["LinkLoop", "walk_following_links"]


@dataclass(frozen=True)
class LinkLoop:
    """A symlinked folder that leads back to a folder above it (or to itself)."""

    link: str  # the link, as the walk reached it
    target: str  # what the link says (os.readlink)
    revisits: str  # the folder on the current path it leads back to

    def to_dict(self) -> dict[str, str]:
        return {"link": self.link, "target": self.target, "revisits": self.revisits}


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def walk_following_links(top: str, loops: list[LinkLoop]) -> Iterator[tuple[str, list[str]]]:
    """``(folder, sorted file names)`` for ``top`` and every folder below it, links followed.

    The order is ``os.walk(top, followlinks=True)`` with each folder's sub-folders sorted.
    Unreadable folders are skipped, as os.walk skips them. Loops are appended to ``loops``.
    """
    try:
        start = _identity(os.stat(top))
    except OSError:
        return
    # A link to any folder above ``top`` loops too: that folder holds the way back down to ``top``.
    on_path: dict[tuple[int, int], str] = {}
    above = os.path.dirname(os.path.realpath(top))
    while True:
        try:
            on_path.setdefault(_identity(os.stat(above)), above)
        except OSError:
            break
        parent = os.path.dirname(above)
        if parent == above:
            break
        above = parent
    # ("enter", path, identity) visits a folder; ("leave", ...) takes it off the current path.
    stack: list[tuple[bool, str, tuple[int, int]]] = [(True, top, start)]
    while stack:
        entering, path, identity = stack.pop()
        if not entering:
            on_path.pop(identity, None)
            continue
        on_path[identity] = path
        stack.append((False, path, identity))
        folders: list[tuple[str, bool]] = []
        files: list[str] = []
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir()  # follows links, as os.walk(followlinks=True) does
                    except OSError:
                        is_dir = False
                    if is_dir:
                        folders.append((entry.name, entry.is_symlink()))
                    else:
                        files.append(entry.name)
        except OSError:
            continue
        yield path, sorted(files)
        prefix = os.path.join(path, "")
        for name, is_link in sorted(folders, reverse=True):  # popped in sorted order
            child = prefix + name
            try:
                child_identity = _identity(os.stat(child))
            except OSError:
                continue  # gone, or a link chain the kernel refuses (ELOOP): os.walk skips it too
            back = on_path.get(child_identity)
            if back is not None:
                try:
                    target = os.readlink(child) if is_link else child
                except OSError:
                    target = "?"
                loops.append(LinkLoop(child, target, back))
                continue
            stack.append((True, child, child_identity))
