"""Resolving ``module:attr`` strings from a manifest.

A manifest is code: resolving its factories imports the user's modules, the
way pytest imports a ``conftest.py``. ``check`` verifies the same strings
without importing anything (``auditor validate`` must stay fast and must not
import torch); ``resolve`` really imports.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.machinery
import inspect
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from auditor._util.suggest import did_you_mean
from auditor.errors import ManifestError
from auditor.manifest._yaml import LineMap
from auditor.run._deadline import CallDeadline, DeadlineExceeded
from auditor.run.user_code import UserCodeFailed

__all__ = ["Resolver", "split_ref"]


def split_ref(ref: str) -> tuple[str, str]:
    module, _, attr = ref.partition(":")
    return module, attr


class Resolver:
    """Imports ``module:attr`` strings with the manifest's ``pythonpath`` on ``sys.path``."""

    def __init__(self, manifest_path: Path, pythonpath: Sequence[Path], lines: LineMap) -> None:
        self.manifest_path = manifest_path
        self.pythonpath = [str(p) for p in pythonpath]
        self.lines = lines
        #: The deadline of factory calls: the run that uses this manifest sets its own (``RunContext``).
        self.deadline = CallDeadline()
        #: Factories that passed their deadline: asking again must not wait again.
        self._hung: dict[str, DeadlineExceeded] = {}

    # Pickling (DataLoader workers) must not drag the line map along needlessly.
    def __getstate__(self) -> dict[str, Any]:
        return {
            "manifest_path": self.manifest_path,
            "pythonpath": self.pythonpath,
            "lines": LineMap(),
            "deadline": self.deadline,
            "_hung": {},
        }

    @contextlib.contextmanager
    def _syspath(self) -> Iterator[None]:
        added = [p for p in self.pythonpath if p not in sys.path]
        sys.path[:0] = added
        try:
            yield
        finally:
            for p in added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(p)

    def _error(self, ref: str, key: str, found: str, hint: str = "") -> ManifestError:
        return ManifestError(
            self.manifest_path,
            key,
            f"an importable 'module:attr' ({ref!r})",
            found,
            line=self.lines.line(key),
            hint=hint,
        )

    def resolve(self, ref: str, key: str) -> Any:
        """Import ``ref`` and return the attribute, or raise a ManifestError naming it."""
        module_name, attr = split_ref(ref)
        if not module_name or not attr:
            raise self._error(ref, key, "no ':' separating module and attribute")
        with self._syspath():
            try:
                module = self._import(module_name)
            except DeadlineExceeded:
                raise
            except Exception as exc:  # any import-time failure is the user's
                if isinstance(exc, UserCodeFailed):  # failed before in this run (a worker died in it)
                    raise
                raise self._error(
                    ref,
                    key,
                    f"import of module {module_name!r} failed: {type(exc).__name__}: {exc}",
                    hint=f"pythonpath is {self.pythonpath or '[]'} (relative to the manifest)",
                ) from exc
        value: Any = module
        for part in attr.split("."):
            try:
                value = getattr(value, part)
            except AttributeError as exc:
                raise self._error(
                    ref,
                    key,
                    f"module {module_name!r} has no attribute {attr!r}",
                    hint=did_you_mean(attr, dir(module)),
                ) from exc
        return value

    def _import(self, module_name: str) -> Any:
        """Import ``module_name`` under the call deadline: a module's top level is user code too.

        An import that hung is not tried again (its thread still holds the module's import lock).
        """
        what = f"import of module {module_name!r}"
        if what in self._hung:
            raise self._hung[what]
        if module_name in sys.modules:
            return sys.modules[module_name]
        _preload()
        try:
            return self.deadline.call(importlib.import_module, module_name, what=what)
        except DeadlineExceeded as exc:
            self._hung[what] = exc
            raise

    def resolve_transform(self, ref: str, key: str) -> Any:
        """A transform object, or the result of calling a zero-argument factory."""
        value = self.resolve(ref, key)
        if _is_zero_arg_factory(value):
            try:
                return self._call(value, key, ref)
            except DeadlineExceeded:
                raise
            except Exception as exc:
                raise ManifestError(
                    self.manifest_path,
                    key,
                    "a transform factory that can be called without arguments",
                    f"calling {ref} raised {type(exc).__name__}: {exc}",
                    line=self.lines.line(key),
                ) from exc
        return value

    def call_factory(self, ref: str, key: str, *args: Any, **kwargs: Any) -> Any:
        factory = self.resolve(ref, key)
        if not callable(factory):
            raise self._error(ref, key, f"{type(factory).__name__} object, which is not callable")
        return self._call(factory, key, ref, *args, **kwargs)

    def _call(self, factory: Any, key: str, ref: str, *args: Any, **kwargs: Any) -> Any:
        """Call user code under the call deadline; a call that hung once is not retried."""
        if key in self._hung:
            raise self._hung[key]
        try:
            return self.deadline.call(factory, *args, what=f"{key} ({ref})", **kwargs)
        except DeadlineExceeded as exc:
            self._hung[key] = exc
            raise

    # -- static checks (no import) ------------------------------------------------------

    def module_source(self, module_name: str) -> Path | None:
        """The ``.py`` file of a module on pythonpath or sys.path, found without importing it."""
        location = _find_module_source(module_name, self.pythonpath)
        return Path(location) if location else None

    def check(self, ref: str, key: str) -> ManifestError | None:
        """Check that ``ref`` can be imported, without importing it."""
        module_name, attr = split_ref(ref)
        if not module_name or not attr:
            return self._error(ref, key, "no ':' separating module and attribute")
        location = _find_module_source(module_name, self.pythonpath)
        if location is None:
            return self._error(
                ref,
                key,
                f"no module named {module_name!r}",
                hint=f"searched sys.path and pythonpath {self.pythonpath or '[]'}",
            )
        if location == "":
            return None  # compiled or namespace module: existence is all we can check statically
        try:
            names = _top_level_names(Path(location))
        except (OSError, SyntaxError, ValueError) as exc:
            return self._error(ref, key, f"{location} cannot be parsed: {exc}")
        if names is None or attr.split(".")[0] in names:
            return None
        return self._error(
            ref,
            key,
            f"module {module_name!r} ({location}) defines no {attr.split('.')[0]!r}",
            hint=did_you_mean(attr.split(".")[0], names),
        )


def _preload() -> None:
    """Import torch and torchvision (auditor's own dependencies) before the first user module, outside
    its deadline: a user module's ``import torch`` then takes no time of ``call_timeout_s``, which is for
    the user's own code (seconds on a loaded machine, more than a short ``call_timeout_s``)."""
    for name in ("torch", "torchvision"):
        if name not in sys.modules:
            with contextlib.suppress(Exception):
                importlib.import_module(name)


def _is_zero_arg_factory(value: Any) -> bool:
    if not (inspect.isfunction(value) or inspect.isclass(value) or inspect.ismethod(value)):
        return False
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return False
    required = [
        p
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return not required


def _find_module_source(module_name: str, pythonpath: Sequence[str]) -> str | None:
    """Path of the module's source ('' if it exists without one), None if not found.

    Walks packages with PathFinder so that no parent package is imported.
    """
    parts = module_name.split(".")
    search: list[str] | None = [*pythonpath, *sys.path]
    spec = None
    for index, part in enumerate(parts):
        name = ".".join(parts[: index + 1])
        if index == 0 and part in sys.builtin_module_names:
            return ""
        spec = importlib.machinery.PathFinder.find_spec(name if index == 0 else part, search)
        if spec is None and index > 0:
            spec = importlib.machinery.PathFinder.find_spec(name, search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    if spec is None:
        return None
    origin = spec.origin
    if origin and origin.endswith(".py"):
        return origin
    return ""


def _top_level_names(path: Path) -> set[str] | None:
    """Names a module defines at top level; None when it exports dynamically."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        names.update(_defined(node))
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__getattr__":
            return None
        if isinstance(node, (ast.If, ast.Try)):
            for child in ast.walk(node):
                names.update(_defined(child))
    return names


def _defined(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        found: set[str] = set()
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    found.add(sub.id)
        return found
    return set()
