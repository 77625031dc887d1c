"""Progress bars: rich on a terminal, nothing elsewhere (CI logs, pre-commit)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["NullProgress", "ProgressFactory", "ProgressTask", "RichProgress"]


class ProgressTask(Protocol):
    def advance(self, amount: int = 1) -> None: ...


class ProgressFactory(Protocol):
    def task(self, description: str, total: int | None) -> Any: ...


class _NullTask:
    def advance(self, amount: int = 1) -> None:
        pass


class NullProgress:
    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[ProgressTask]:
        yield _NullTask()


class _RichTask:
    """Shows its bar only once the work has taken longer than ``delay`` seconds."""

    def __init__(self, owner: RichProgress, description: str, total: int | None, delay: float) -> None:
        self.owner = owner
        self.description = description
        self.total = total
        self.delay = delay
        self.started = time.perf_counter()
        self.done = 0
        self.task_id: Any = None

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        if self.task_id is None:
            if time.perf_counter() - self.started < self.delay:
                return
            self.task_id = self.owner.start_bar(self.description, self.total, self.done)
        else:
            self.owner.progress.update(self.task_id, completed=self.done)


class RichProgress:
    def __init__(self, console: Any, delay: float = 1.0) -> None:
        self.console = console
        self.delay = delay
        self.progress: Any = None

    def start_bar(self, description: str, total: int | None, done: int) -> Any:
        if self.progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                ProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.text import Text

            class RateColumn(ProgressColumn):
                def render(self, task: Any) -> Text:
                    speed = task.finished_speed or task.speed
                    return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")

            self.progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                RateColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
        return self.progress.add_task(description, total=total, completed=done)

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[ProgressTask]:
        task = _RichTask(self, description, total, self.delay)
        try:
            yield task
        finally:
            if task.task_id is not None and self.progress is not None:
                self.progress.remove_task(task.task_id)
                if not self.progress.tasks:
                    self.progress.stop()
                    self.progress = None
