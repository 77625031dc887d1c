"""A structural fingerprint of a transform pipeline: equal fingerprints mean equal behaviour.

transform_parity and data_loading cache what a pipeline did to the sampled images; reusing that
is only honest when the pipeline cannot have changed. ``repr`` is not enough
(``Lambda()`` hides its function, a closure hides its cells), so the fingerprint
walks the object graph instead:

* plain values by type and ``repr``; containers element by element; tensors and
  arrays by dtype, shape and bytes;
* functions by their bytecode, constants, names, defaults, closure cells and the
  module globals they name; bound methods by function and instance;
* other objects by class and every attribute (``__dict__`` and ``__slots__``);
* the source file of every module defining a class or function met on the way,
  or named by a function's globals, by content; from a module of the user's
  project, also the project modules it imports (a step's constant can live in
  a config module no step mentions). The set depends only on the pipeline,
  never on what else happened to be imported, so every run computes one key.

Whatever the walk cannot describe (an object with no inspectable state whose
``repr`` is a memory address, a graph too deep or too big) raises
:class:`Uncacheable`: such a pipeline is measured on every run, never guessed.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import sys
import types
from collections.abc import Iterable
from typing import Any

import xxhash

__all__ = ["Uncacheable", "fingerprint"]

#: A pipeline holding more tensor/array bytes than this is not worth fingerprinting.
_MAX_BYTES = 64 * 1024 * 1024
_MAX_DEPTH = 60
#: Objects visited at most: a step naming a big global (a dataset, a list of paths) is not
#: worth walking; measuring the samples again is cheaper.
_MAX_OBJECTS = 200_000
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


class Uncacheable(Exception):
    """The object graph holds something the fingerprint cannot describe."""


def fingerprint(obj: Any, *, project_dirs: Iterable[str] = ()) -> str:
    """Hex digest of ``obj``'s behaviour-relevant state; raises :class:`Uncacheable`.

    ``project_dirs``: folders of the user's project (the manifest's folder and
    pythonpath); a project module the pipeline reaches also brings in the project
    modules it imports.
    """
    walker = _Walker([os.path.realpath(folder) for folder in project_dirs])
    walker.feed(obj, 0)
    for path in sorted(walker.files):
        walker.update(f"file:{path}:")
        try:
            with open(path, "rb") as source:
                walker.hasher.update(source.read())
        except OSError:
            walker.update("unreadable;")
    return walker.hasher.hexdigest()


def _inside_project(path: str, project_dirs: Iterable[str]) -> bool:
    if "site-packages" in path or "dist-packages" in path:
        return False  # a virtualenv inside the project is libraries, versioned separately
    real = os.path.realpath(path)
    return any(real.startswith(folder + os.sep) for folder in project_dirs)


class _Walker:
    def __init__(self, project_dirs: list[str]) -> None:
        self.project_dirs = project_dirs
        self.hasher = xxhash.xxh3_128()
        self.files: set[str] = set()
        self.bytes_hashed = 0
        self.visited = 0
        # id -> position; objects are kept alive in _keep so an id is never reused mid-walk.
        self._seen: dict[int, int] = {}
        self._keep: list[Any] = []

    def update(self, text: str) -> None:
        self.hasher.update(text.encode("utf-8", "surrogatepass"))

    def feed(self, obj: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise Uncacheable("the pipeline's object graph is nested too deeply")
        self.visited += 1
        if self.visited > _MAX_OBJECTS:
            raise Uncacheable(f"the pipeline reaches more than {_MAX_OBJECTS:,} values")
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            self.update(f"{type(obj).__name__}:{obj!r};")
            return
        if isinstance(obj, enum.Enum):
            self.update(f"enum:{type(obj).__module__}.{type(obj).__qualname__}.{obj.name};")
            return
        if id(obj) in self._seen:
            self.update(f"ref:{self._seen[id(obj)]};")  # shared objects and cycles
            return
        self._seen[id(obj)] = len(self._seen)
        self._keep.append(obj)
        self._dispatch(obj, depth + 1)

    def _dispatch(self, obj: Any, depth: int) -> None:
        if isinstance(obj, (list, tuple)):
            self.update(f"{type(obj).__name__}[{len(obj)}]:")
            for item in obj:
                self.feed(item, depth)
        elif isinstance(obj, dict):
            self.update(f"{type(obj).__name__}[{len(obj)}]:")
            for key, value in obj.items():
                self.feed(key, depth)
                self.feed(value, depth)
        elif isinstance(obj, (set, frozenset)):
            self.update(f"{type(obj).__name__}[{len(obj)}]:")
            for item in sorted(obj, key=self._sort_key):
                self.feed(item, depth)
        elif isinstance(obj, type):
            self.update(f"class:{obj.__module__}.{obj.__qualname__};")
            self._module_source(obj.__module__)
        elif isinstance(obj, types.ModuleType):
            self.update(f"module:{obj.__name__};")
            self._module_source(obj.__name__)
        elif isinstance(obj, types.FunctionType):
            self._function(obj, depth)
        elif isinstance(obj, types.MethodType):
            self.update("method:")
            self.feed(obj.__func__, depth)
            self.feed(obj.__self__, depth)
        elif isinstance(
            obj, (types.BuiltinFunctionType, types.MethodWrapperType, types.WrapperDescriptorType)
        ):
            owner = getattr(obj, "__self__", None)
            self.update(f"builtin:{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', obj)};")
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.feed(owner, depth)
        elif isinstance(obj, functools.partial):
            self.update("partial:")
            self.feed(obj.func, depth)
            self.feed(obj.args, depth)
            self.feed(obj.keywords, depth)
        elif isinstance(obj, types.CodeType):
            self._code(obj, depth)
        elif self._array(obj):
            return
        else:
            self._instance(obj, depth)

    def _sort_key(self, item: Any) -> str:
        text = repr(item)
        if _ADDRESS.search(text):
            raise Uncacheable(f"a set holds {type(item).__qualname__} objects with no stable order")
        return text

    def _array(self, obj: Any) -> bool:
        """Tensors, numpy arrays and torch's small value types; False when ``obj`` is none of them."""
        module = type(obj).__module__ or ""
        if module.startswith("torch"):
            import torch

            if isinstance(obj, torch.Tensor):
                self._buffer(f"tensor:{obj.dtype}:{tuple(obj.shape)}", obj.detach().cpu().contiguous().numpy)
                return True
            if isinstance(obj, (torch.dtype, torch.device, torch.Size, torch.memory_format, torch.layout)):
                self.update(f"torch:{obj!r};")
                return True
        if module == "numpy":
            import numpy

            if isinstance(obj, numpy.ndarray):
                self._buffer(f"ndarray:{obj.dtype}:{obj.shape}", lambda: numpy.ascontiguousarray(obj))
                return True
            if isinstance(obj, (numpy.generic, numpy.dtype)):
                self.update(f"numpy:{type(obj).__name__}:{obj!r};")
                return True
        return False

    def _buffer(self, header: str, as_array: Any) -> None:
        try:
            array = as_array()
        except (TypeError, RuntimeError) as exc:  # e.g. bfloat16 has no numpy view
            raise Uncacheable(f"{header}: {exc}") from None
        self.bytes_hashed += array.nbytes
        if self.bytes_hashed > _MAX_BYTES:
            raise Uncacheable("the pipeline holds more than 64 MB of tensors")
        self.update(header)
        self.hasher.update(array.tobytes())

    def _function(self, fn: types.FunctionType, depth: int) -> None:
        self.update(f"function:{fn.__module__}.{fn.__qualname__}:")
        self._code(fn.__code__, depth)
        self.feed(fn.__defaults__, depth)
        self.feed(fn.__kwdefaults__, depth)
        for cell in fn.__closure__ or ():
            try:
                self.feed(cell.cell_contents, depth)
            except ValueError:  # an empty cell
                self.update("empty-cell;")
        # Globals the code names (attribute names land in co_names too; they are just skipped).
        for name in sorted(_names(fn.__code__)):
            if name in fn.__globals__:
                self.update(f"global:{name}=")
                self.feed(fn.__globals__[name], depth)
        self._module_source(fn.__module__)

    def _code(self, code: types.CodeType, depth: int) -> None:
        # Not marshal.dumps: its output depends on reference counts, so it differs between processes.
        self.update(
            f"code:{code.co_name}:{code.co_argcount}:{code.co_flags}:{code.co_names}:"
            f"{code.co_varnames}:{code.co_freevars}:{code.co_cellvars}:"
        )
        self.hasher.update(code.co_code)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self._code(const, depth + 1)
            else:
                self.feed(const, depth + 1)

    def _instance(self, obj: Any, depth: int) -> None:
        cls = type(obj)
        self.feed(cls, depth)
        state = getattr(obj, "__dict__", None)
        slots = [
            name
            for klass in cls.__mro__
            for name in getattr(klass, "__slots__", ())
            if isinstance(name, str) and name not in ("__dict__", "__weakref__")
        ]
        if state is None and not slots:
            text = repr(obj)
            if _ADDRESS.search(text):
                raise Uncacheable(f"{cls.__module__}.{cls.__qualname__} has no state auditor can inspect")
            self.update(f"repr:{text};")
            return
        if isinstance(state, dict):
            self.feed(state, depth)
        for name in slots:
            self.update(f"slot:{name}=")
            self.feed(getattr(obj, name, "<unset>"), depth)

    def _module_source(self, name: str | None) -> None:
        module = sys.modules.get(name or "")
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py") or path in self.files:
            return
        self.files.add(path)
        if not _inside_project(path, self.project_dirs):
            return  # a library: its version is part of the key
        # A project module: the project modules it imports count too, whatever name they go by.
        for value in list(vars(module).values()):
            owner = (
                value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            )
            if (
                isinstance(owner, str)
                and owner != name
                and isinstance(value, (types.ModuleType, type, types.FunctionType))
            ):
                self._module_source(owner)


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names
