"""Reports fit to publish: paths relative to the manifest, no host details.

A report published as a CI artifact or attached to an issue should not tell
the world where the project lives, who ran it or on what machine. With
``--redact`` (manifest ``report.redact: true``; the pre-commit hook's default)
every string in the report has the manifest's folder removed (paths become
relative to it), the home folder written as ``~`` and the user's name replaced
wherever it stands as a path component; the platform string and crashed
audits' tracebacks (full of interpreter paths) are dropped. Versions of
Python, auditor, torch and the plugins stay: they explain results.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["redact"]


def redact(report: dict[str, Any], manifest_dir: Path) -> dict[str, Any]:
    """A copy of ``report`` as described in the module docstring."""
    clean = _cleaner(manifest_dir)
    result: dict[str, Any] = _walk(report, clean)
    manifest = dict(result.get("manifest") or {})
    if "path" in manifest:
        manifest["path"] = clean(str(manifest["path"]))
    result["manifest"] = manifest
    environment = dict(result.get("environment") or {})
    environment.pop("platform", None)
    result["environment"] = environment
    for audit in result.get("audits") or []:
        if isinstance(audit, dict) and isinstance(audit.get("error"), dict):
            audit["error"] = {**audit["error"], "traceback": ""}
    return result


def _cleaner(manifest_dir: Path) -> Callable[[str], str]:
    folders = {os.fspath(manifest_dir), os.path.realpath(manifest_dir)}
    home = {os.path.expanduser("~"), os.path.realpath(os.path.expanduser("~"))} - {"/", ""}
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry: nothing to hide by name
        user = ""
    # Longest first, so the manifest folder wins over the home folder that contains it.
    prefixes = sorted(((f.rstrip(os.sep), "") for f in folders if f.rstrip(os.sep)), key=lambda p: -len(p[0]))
    homes = sorted(((h.rstrip(os.sep), "~") for h in home), key=lambda p: -len(p[0]))
    name = re.compile(rf"(?<=[/\\]){re.escape(user)}(?=[/\\]|$)") if len(user) >= 2 else None

    def clean(text: str) -> str:
        for prefix, replacement in (*prefixes, *homes):
            if prefix not in text:
                continue
            if replacement:
                text = text.replace(prefix, replacement)
            else:
                # "<folder>/x" -> "x"; the folder itself -> "."
                text = text.replace(prefix + os.sep, "").replace(prefix, ".")
        return name.sub("<user>", text) if name else text

    return clean


def _walk(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k) if isinstance(k, str) else k: _walk(v, clean) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(item, clean) for item in value]
    return value
