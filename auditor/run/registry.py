"""Plugin discovery and the registry of audits, data formats and report formats.

Plugins come from the entry-point group ``auditor``; auditor's own built-ins
are listed in that group too, so they load through exactly the same path.
Setting ``AUDITOR_DISABLE_PLUGIN_AUTOLOAD=1`` loads only auditor's own entry
points (for tests and for debugging a misbehaving third-party plugin).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from auditor import hookspecs
from auditor._util.suggest import did_you_mean
from auditor.audit import Audit
from auditor.data.splits import DataFormat
from auditor.errors import PluginError
from auditor.findings import CodeInfo
from auditor.report.format import ReportFormat

__all__ = [
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "BrokenPlugin",
    "PluginInfo",
    "Registry",
    "hookimpl",
    "load_registry",
]

ENTRY_POINT_GROUP = "auditor"
DISABLE_AUTOLOAD_ENV = "AUDITOR_DISABLE_PLUGIN_AUTOLOAD"
OWN_DISTRIBUTION = "auditor"
#: The distribution named for plugins registered in-process (``load_registry(extra_plugins=...)``).
IN_PROCESS = "<in-process>"

hookimpl = pluggy.HookimplMarker("auditor")


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that failed to load; reported, never fatal for the others."""

    name: str
    distribution: str
    error: str


@dataclass
class Registry:
    """Everything the installed plugins declared, checked for conflicts."""

    manager: pluggy.PluginManager
    plugins: list[PluginInfo] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)
    audits: dict[str, Audit] = field(default_factory=dict)
    data_formats: dict[str, DataFormat] = field(default_factory=dict)
    report_formats: dict[str, ReportFormat] = field(default_factory=dict)
    #: audit name -> plugin that declared it
    audit_plugin: dict[str, PluginInfo] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        return self.manager.hook

    @property
    def catalog(self) -> dict[str, CodeInfo]:
        """Every declared finding code."""
        return {info.code: info for audit in self.audits.values() for info in audit.codes}

    def audit_for_code(self, code: str) -> Audit | None:
        for audit in self.audits.values():
            if any(info.code == code for info in audit.codes):
                return audit
        return None

    def ordered_audits(self) -> list[Audit]:
        return sorted(self.audits.values(), key=lambda a: (a.order, a.name))


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    return manager


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_registry(
    extra_plugins: Iterable[tuple[str, object]] = (), *, autoload: bool | None = None
) -> Registry:
    """Load every plugin of the entry-point group, then collect and check declarations.

    ``extra_plugins`` are ``(name, plugin)`` pairs registered in-process
    (tests, ``auditor.testing``); they count as distribution ``<in-process>``.
    """
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("1", "true", "yes")
    manager = _new_manager()
    registry = Registry(manager=manager)
    owners: dict[int, PluginInfo] = {}
    seen: set[tuple[str, str]] = set()
    for entry_point in _entry_points():
        dist = entry_point.dist
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        dist_version = dist.version if dist is not None else "?"
        if not autoload and _normalise(dist_name) != OWN_DISTRIBUTION:
            continue
        if (entry_point.name, dist_name) in seen:
            continue  # the same distribution visible twice on sys.path
        seen.add((entry_point.name, dist_name))
        info = PluginInfo(entry_point.name, dist_name, dist_version)
        try:
            plugin = entry_point.load()
            if manager.is_registered(plugin):
                continue
            problem = _register(manager, plugin, f"{dist_name}:{entry_point.name}")
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            registry.broken.append(BrokenPlugin(entry_point.name, dist_name, problem))
            continue
        registry.plugins.append(info)
        owners[id(plugin)] = info
    for name, plugin in extra_plugins:
        problem = _register(manager, plugin, name)
        if problem:
            registry.broken.append(BrokenPlugin(name, IN_PROCESS, problem))
            continue
        info = PluginInfo(name, IN_PROCESS, "0")
        registry.plugins.append(info)
        owners[id(plugin)] = info
    _collect(registry, owners)
    return registry


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> str:
    """Register ``plugin``; return why it is broken ("" when it is not).

    pluggy accepts a hook implementation that matches no specification and never calls it, so a
    misspelt hook (``auditor_audit`` for ``auditor_audits``) would load a plugin that silently does
    nothing. ``check_pending`` right after each registration pins such a hook on this plugin, which is
    then unregistered and listed as broken.
    """
    manager.register(plugin, name=name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        manager.unregister(plugin)
        unknown = _unknown_hooks(manager, plugin)
        if not unknown:
            return f"{type(exc).__name__}: {exc}"
        known = sorted(_HOOK_NAMES)
        return "; ".join(
            f"hook {hook!r} matches no hook of auditor (expected one of {', '.join(known)})"
            + (f"; {hint}" if (hint := did_you_mean(hook, known)) else "")
            for hook in unknown
        )
    return ""


#: The names a hook implementation may have: the specifications in auditor/hookspecs.py.
_HOOK_NAMES = frozenset(name for name in vars(hookspecs) if name.startswith("auditor_"))


def _unknown_hooks(manager: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hook implementations of ``plugin`` whose names match no specification (optional hooks excepted)."""
    unknown = []
    for attr in dir(plugin):
        opts = manager.parse_hookimpl_opts(plugin, attr)
        if opts is not None and not opts.get("optionalhook") and attr not in _HOOK_NAMES:
            unknown.append(attr)
    return unknown


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def _results(
    registry: Registry, hook_name: str, owners: Mapping[int, PluginInfo]
) -> Iterable[tuple[PluginInfo, Any]]:
    """Call one declaration hook on each plugin separately, to know who declared what."""
    for impl in getattr(registry.hook, hook_name).get_hookimpls():
        owner = owners.get(id(impl.plugin), PluginInfo(impl.plugin_name, "?", "?"))
        try:
            declared = impl.function()
        except Exception as exc:
            registry.broken.append(
                BrokenPlugin(owner.name, owner.distribution, f"{hook_name}: {type(exc).__name__}: {exc}")
            )
            continue
        for item in declared or []:
            yield owner, item


def _collect(registry: Registry, owners: Mapping[int, PluginInfo]) -> None:
    prefixes: dict[str, tuple[str, PluginInfo]] = {}
    for owner, audit in _results(registry, "auditor_audits", owners):
        if not isinstance(audit, Audit):
            raise PluginError(
                f"plugin {owner.name!r} ({owner.distribution}): auditor_audits returned "
                f"{type(audit).__name__}, expected auditor.Audit"
            )
        if audit.name in registry.audits:
            other = registry.audit_plugin[audit.name]
            raise PluginError(
                f"audit name {audit.name!r} is declared by two plugins: {other.name!r} from distribution "
                f"{other.distribution!r} and {owner.name!r} from distribution {owner.distribution!r}; "
                "uninstall one of them"
            )
        if audit.prefix in prefixes:
            other_audit, other = prefixes[audit.prefix]
            raise PluginError(
                f"code prefix {audit.prefix!r} is claimed by two plugins: audit {other_audit!r} from "
                f"distribution {other.distribution!r} and audit {audit.name!r} from distribution "
                f"{owner.distribution!r}; finding codes must be unique, so uninstall one of them "
                "(or ask its author to pick another prefix)"
            )
        prefixes[audit.prefix] = (audit.name, owner)
        registry.audits[audit.name] = audit
        registry.audit_plugin[audit.name] = owner
    for kind, hook_name, target, cls in (
        ("data format", "auditor_data_formats", registry.data_formats, DataFormat),
        ("report format", "auditor_report_formats", registry.report_formats, ReportFormat),
    ):
        declared_by: dict[str, PluginInfo] = {}
        for owner, item in _results(registry, hook_name, owners):
            if not isinstance(item, cls):
                raise PluginError(
                    f"plugin {owner.name!r} ({owner.distribution}): {hook_name} returned "
                    f"{type(item).__name__}, expected auditor.{cls.__name__}"
                )
            if item.name in target:
                other = declared_by[item.name]
                raise PluginError(
                    f"{kind} {item.name!r} is declared by two plugins: {other.name!r} from distribution "
                    f"{other.distribution!r} and {owner.name!r} from distribution {owner.distribution!r}"
                )
            target[item.name] = item
            declared_by[item.name] = owner


@functools.lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of the installed plugins, loaded once per process."""
    return load_registry()
