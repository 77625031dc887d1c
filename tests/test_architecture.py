"""docs/architecture.md stays true: one line per module under auditor/ and plugins/, none for a gone module."""

from __future__ import annotations

import ast
import re

from conftest import REPO

DOC = REPO / "docs" / "architecture.md"
#: A module-map line: "- `auditor/cli/app.py` — its job."
MAP_LINE = re.compile(r"^- `((?:auditor|plugins)/[\w/]+\.py)` — \S")
#: Any module path the page mentions, in the map or in the walk through a run.
MENTIONED = re.compile(r"`((?:auditor|plugins)/[\w/]+\.py)`")


def _modules() -> list[str]:
    found = []
    for top in ("auditor", "plugins"):
        for path in sorted((REPO / top).rglob("*.py")):
            relative = path.relative_to(REPO)
            if "templates" in relative.parts:  # scaffold templates are not modules of ours
                continue
            found.append(relative.as_posix())
    return found


def _first_docstring_line(module: str) -> str:
    doc = ast.get_docstring(ast.parse((REPO / module).read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0].rstrip(".") if doc.strip() else "<its job in one line>"


def _mapped() -> list[str]:
    return [
        m.group(1) for line in DOC.read_text(encoding="utf-8").splitlines() if (m := MAP_LINE.match(line))
    ]


def test_every_module_has_one_line_in_the_module_map():
    mapped = _mapped()
    missing = [module for module in _modules() if module not in mapped]
    assert not missing, (
        "docs/architecture.md: expected one module-map line per module, found none for "
        f"{len(missing)} module(s). Add these lines under the heading of their package:\n"
        + "\n".join(f"- `{module}` — {_first_docstring_line(module)}." for module in missing)
    )


def test_each_module_is_mapped_once():
    mapped = _mapped()
    twice = sorted({module for module in mapped if mapped.count(module) > 1})
    assert not twice, (
        f"docs/architecture.md: expected one line per module, found several for {twice}; keep one"
    )


def test_the_page_names_no_module_that_no_longer_exists():
    text = DOC.read_text(encoding="utf-8")
    gone = sorted({path for path in MENTIONED.findall(text) if not (REPO / path).is_file()})
    assert not gone, (
        f"docs/architecture.md names {gone}, which do not exist (renamed or removed?); "
        "delete those lines or correct the paths"
    )


def test_one_did_you_mean_helper():
    # Every rejected name gets its hint from auditor/_util/suggest.py, so one typo gets one kind of hint.
    users = sorted(
        path
        for path in _modules()
        if path != "auditor/_util/suggest.py"
        and re.search(
            r"^\s*(import difflib|from difflib import)",
            (REPO / path).read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    )
    assert not users, f"{users} import difflib: call auditor._util.suggest.did_you_mean or closest instead"


def test_one_severity_ranking():
    # auditor.findings ranks severities (SEVERITIES, severity_rank, severity_at_least); a second ordering
    # somewhere else drifts from it the day a severity is added.
    ordering = re.compile(
        r"""[(\[]\s*["']error["'],\s*["']warning["'],\s*["']info["']|["'](?:error|warning|info)["']:\s*\d"""
    )
    sources = [*_modules(), *(p.relative_to(REPO).as_posix() for p in (REPO / "plugins").rglob("*.j2"))]
    spelled = sorted(
        p
        for p in sources
        if p != "auditor/findings.py" and ordering.search((REPO / p).read_text(encoding="utf-8"))
    )
    assert not spelled, (
        f"{spelled} order severities themselves: use auditor.findings.SEVERITIES / severity_rank"
    )


def test_readme_and_docs_link_only_to_files_in_the_repository():
    # A fresh clone is all a reader has: a link to a file outside it (SPEC.md once) is a dead end.
    link = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
    dead = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in link.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            if not (page.parent / target).exists():
                dead.append(f"{page.relative_to(REPO)} -> {target}")
    assert not dead, f"links to files that are not in the repository: {dead}"
    assert "SPEC.md" not in (REPO / "README.md").read_text(encoding="utf-8")


def _module_name(path: str) -> str:
    parts = path[: -len(".py")].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


_HOST_MODULES = {
    ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    for p in (REPO / "auditor").rglob("*.py")
    if "templates" not in p.parts
}


def _top_level_imports(path: str) -> set[str]:
    """The host modules ``path`` imports when it is imported: module level, outside ``if TYPE_CHECKING``."""
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(inner, ast.Import):
                found.update(alias.name for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                submodules = {f"{inner.module}.{alias.name}" for alias in inner.names}
                # `from auditor import hookspecs` imports a module, not the names of a half-built package
                found.update(submodules if submodules & _HOST_MODULES else {inner.module})
    return {name for name in found if name == "auditor" or name.startswith("auditor.")}


def test_the_host_has_no_import_cycle():
    # The stage packages (manifest/, data/, run/, live/, report/, cli/) only make sense as a data flow when no
    # module needs a later one to be imported first; a type is all a backward reference may take
    # (`if TYPE_CHECKING:`), and a call-time need is a function-level import.
    modules = {_module_name(p): p for p in _modules() if p.startswith("auditor/")}
    graph = {
        name: {imported for imported in _top_level_imports(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            raise AssertionError(
                "auditor/ has a module-level import cycle: "
                + " -> ".join(cycle)
                + "; import one side under `if TYPE_CHECKING:` when a type is all it needs, else inside the function"
            )
