"""The built-ins live by the rules of any third-party plugin.

A module under ``plugins/`` imports from the host only public modules (``auditor``,
``auditor.kit``, ``auditor.findings``, ...: no ``_``-prefixed module anywhere in the
path), and from the built-ins only its own package and ``auditor_plugins.common``:
what two audits share lives there, not in one of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "plugins"
#: The package the ``plugins/`` folder is installed as.
INSTALLED_AS = "auditor_plugins"


def _package_of(path: Path) -> str:
    """``data_loading`` for plugins/data_loading/cache.py; ``""`` for plugins/__init__.py."""
    parts = path.relative_to(PLUGINS).parts
    return parts[0] if len(parts) > 1 else ""


def _imported(tree: ast.AST, module_name: str) -> list[tuple[int, str]]:
    """Every module an ``import`` statement names, relative imports made absolute, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module_name.split(".")[: -node.level]
                base = ".".join([*parent, *([base] if base else [])])
            found.append((node.lineno, base))
            # ``from auditor.data import _storage`` names the private module as an attribute.
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*")
    return found


def violations(source: str, relative: str) -> list[str]:
    """What module ``relative`` (a path under plugins/) imports that a plugin may not."""
    path = PLUGINS / relative
    own = _package_of(path)
    # A package's __init__ keeps its "__init__" part, so "from . import x" resolves to the package.
    dotted = ".".join([INSTALLED_AS, *Path(relative).with_suffix("").parts])
    problems: list[str] = []
    for line, name in _imported(ast.parse(source), dotted):
        parts = name.split(".")
        if parts[0] == "auditor" and any(part.startswith("_") for part in parts[1:]):
            problems.append(f"{relative}:{line}: imports {name}, a private host module (use auditor.kit)")
        elif parts[0] == INSTALLED_AS and len(parts) > 1 and parts[1] not in (own, "common"):
            problems.append(
                f"{relative}:{line}: imports {name}, another built-in's package "
                f"(move what {own or 'plugins'} shares with {parts[1]} into auditor_plugins.common)"
            )
    return problems


def test_no_built_in_imports_a_private_host_module_or_another_audit() -> None:
    problems = []
    for path in sorted(PLUGINS.rglob("*.py")):
        if "templates" in path.parts:
            continue
        relative = path.relative_to(PLUGINS).as_posix()
        problems.extend(violations(path.read_text(encoding="utf-8"), relative))
    assert not problems, "plugins/ crosses a boundary:\n" + "\n".join(problems)


def test_the_boundary_check_sees_each_kind_of_crossing() -> None:
    # The test above passes on a clean tree; these prove it would fail on each kind of import.
    crossing = {
        "from auditor.run._deadline import CallDeadline": "private host module",
        "import auditor._util.suggest": "private host module",
        "from auditor.data import _storage": "private host module",
        "    from auditor.data._regular import open_regular": "private host module",
        "from auditor_plugins.transform_parity.stats import Measured": "another built-in",
        "from ..transform_parity import stats": "another built-in",
    }
    for statement, kind in crossing.items():
        source = f"def f():\n{statement}\n" if statement.startswith(" ") else statement + "\n"
        found = violations(source, "data_loading/cache.py")
        assert found and kind in found[0], (statement, found)
    allowed = (
        "from auditor.kit import CallDeadline, open_regular\n"
        "from auditor import Audit, hookimpl\n"
        "from auditor.report.numbers import format_number\n"
        "from auditor_plugins.common.sample_cache import SampleKeys\n"
        "from auditor_plugins.data_loading.check import SplitCheck\n"
        "from . import codes\n"
    )
    assert violations(allowed, "data_loading/cache.py") == []
