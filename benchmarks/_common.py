"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / ".data"  # gitignored; generated once


def best_of(repeat: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs (the least disturbed by other load) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result


def open_split(name: str, config: dict[str, Any], base_dir: Path) -> Any:
    """A split opened through its registered data-format plugin, as a run would."""
    from auditor.data.splits import SplitSpec
    from auditor.manifest._yaml import LineMap
    from auditor.manifest.resolve import Resolver
    from auditor.run.registry import load_registry

    registry = load_registry(autoload=False)
    resolver = Resolver(base_dir / "audit.yaml", [], LineMap())
    spec = SplitSpec(name=name, config=config, base_dir=base_dir, resolver=resolver, location=f"data.{name}")
    return registry.data_formats[config["format"]].open(spec)
