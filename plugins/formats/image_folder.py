"""``image_folder``: one sub-folder per class, as torchvision's ImageFolder reads it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor import DataFormat, Split, SplitSpec, hookimpl
from auditor.errors import ManifestError
from auditor_plugins.formats._listing import LinkLoop, walk_following_links

if TYPE_CHECKING:  # pragma: no cover
    from auditor.kit import RemoteFiles

#: torchvision's IMG_EXTENSIONS, so auditor sees exactly the files training sees.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def load_image(path: Path | str, storage_options: dict[str, Any] | None = None) -> Any:
    """Decode like torchvision's default loader: PIL, converted to RGB (URLs through fsspec)."""
    from PIL import Image

    from auditor.kit import is_url, open_regular, open_url

    # open_regular: a FIFO named x.jpg would block open() until a writer came, maybe never.
    with open_url(path, storage_options) if is_url(path) else open_regular(path) as handle:
        image = Image.open(handle)
        return image.convert("RGB")


class ImageFolderSplit(Split):
    def __init__(self, spec: SplitSpec) -> None:
        super().__init__(spec)
        self.root_url = spec.url("root")
        self.root = Path(self.root_url) if self.root_url else spec.path("root")
        self._index: tuple[list[str], list[str], list[int]] | None = None
        self._paths: list[Path] | None = None
        self._remote: RemoteFiles | None = None
        self._loops: list[dict[str, str]] = []

    def link_loops(self) -> list[dict[str, str]]:
        self._scan()
        return list(self._loops)

    def _scan(self) -> tuple[list[str], list[str], list[int]]:
        if self._index is None and self.root_url is not None:
            from auditor_plugins.formats._remote import list_image_folder

            classes, paths, targets, self._remote = list_image_folder(self.spec, "root", IMAGE_EXTENSIONS)
            self._index = (classes, paths, targets)
        if self._index is None:
            problems = list(check_image_folder(self.spec))
            if problems:
                raise problems[0]
            with os.scandir(self.root) as entries:
                classes = sorted(e.name for e in entries if e.is_dir(follow_symlinks=True))
            # Plain strings: counting labels of 100,000 files must not build 100,000 Paths.
            paths: list[str] = []
            targets: list[int] = []
            root = os.fspath(self.root)
            loops: list[LinkLoop] = []
            for index, name in enumerate(classes):
                # As ImageFolder walks (links followed), except that a link back up is not entered.
                for dirpath, filenames in walk_following_links(os.path.join(root, name), loops):
                    prefix = os.path.join(dirpath, "")  # joined once per folder, not per file
                    found = [prefix + f for f in filenames if f.lower().endswith(IMAGE_EXTENSIONS)]
                    paths.extend(found)
                    targets.extend([index] * len(found))
            self._loops = [loop.to_dict() for loop in loops]
            self._index = (classes, paths, targets)
        return self._index

    def __len__(self) -> int:
        return len(self._scan()[1])

    def classes(self) -> list[str]:
        return list(self._scan()[0])

    def _read_targets(self) -> list[int]:
        return self._scan()[2]

    def remote_files(self) -> RemoteFiles | None:
        self._scan()
        return self._remote

    def paths(self) -> list[Path]:
        if self._paths is None:
            self._paths = [Path(p) for p in self._scan()[1]]
        return self._paths

    def path_strings(self) -> list[str]:
        return self._scan()[1]

    def relative_paths(self) -> list[str]:
        paths = self._scan()[1]
        if self.root_url is None:  # listed as os.path.join(root, ...): the root is a prefix
            cut = len(os.fspath(self.root).rstrip(os.sep)) + 1
            return [p[cut:].replace(os.sep, "/") for p in paths]
        # fsspec may list 'memory:///bucket/x' under the root 'memory://bucket': compare without
        # the scheme and leading slashes.
        root = _without_scheme(self.root_url).rstrip("/") + "/"
        relative = []
        for path in paths:
            bare = _without_scheme(path)
            relative.append(bare[len(root) :] if bare.startswith(root) else path)
        return relative

    def load(self, index: int) -> Any:
        return load_image(self._scan()[1][index], self.spec.storage_options)


def _without_scheme(url: str) -> str:
    return url.split("://", 1)[-1].lstrip("/")


def check_image_folder(spec: SplitSpec) -> Iterable[ManifestError]:
    """The root is a folder (URLs are left to the format that reads them)."""
    if spec.is_url("root") or not isinstance(spec.config.get("root"), str):
        return
    root = spec.path("root")
    from auditor.kit import did_you_mean, display_path

    try:
        if stat.S_ISDIR(os.stat(root).st_mode):
            return
    except FileNotFoundError:
        pass
    except OSError as exc:  # a link loop (ELOOP), a name too long, a folder without permission
        yield spec.error(
            "root",
            "a folder with one sub-folder per class",
            f"{display_path(root)}, which cannot be opened: {exc.strerror or exc}",
        )
        return
    try:
        siblings = sorted(p.name for p in root.parent.iterdir() if p.is_dir()) if root.parent.is_dir() else []
    except OSError:
        siblings = []
    yield spec.error(
        "root",
        "a folder with one sub-folder per class",
        f"{display_path(root)} {'is a file' if root.exists() else 'does not exist'}",
        hint=did_you_mean(root.name, siblings) or "paths are relative to the manifest's folder",
    )


FORMAT = DataFormat(
    name="image_folder",
    open=ImageFolderSplit,
    properties={
        "root": {
            "type": "string",
            "description": "folder with one sub-folder per class, or an fsspec URL "
            "(s3://bucket/prefix, gs://..., file://..., memory://...)",
        }
    },
    required=("root",),
    description="a folder with one sub-folder of images per class (torchvision ImageFolder)",
    check=check_image_folder,
)


@hookimpl
def auditor_data_formats() -> list[DataFormat]:
    return [FORMAT]
