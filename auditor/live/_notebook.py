"""Jupyter: the report shown inline, and progress as a notebook progress bar.

No new dependency: a notebook always has IPython, and an HTML ``<progress>``
element updated through a display id is a progress bar that needs neither
ipywidgets nor JavaScript. The report goes into an ``<iframe srcdoc>``: its
stylesheet cannot restyle the notebook, and it needs no script (the HTML report
has none), so it still shows where a notebook strips scripts.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["NotebookProgress", "in_notebook", "inline_report"]

#: How often a bar is redrawn at most: each update is a message to the notebook's front end.
_REDRAW_S = 0.25


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not in a terminal IPython, not in plain Python)."""
    if "IPython" not in sys.modules:  # never import IPython just to ask
        return False
    shell = getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def inline_report(page: str, summary: str) -> str:
    """The HTML report page inside an iframe, with a one-line summary above it."""
    return (
        '<div class="auditor-report">'
        f"<p><strong>{html.escape(summary)}</strong></p>"
        f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="" title="auditor report" '
        'style="width:100%;height:720px;border:1px solid #ccc;background:#fff"></iframe>'
        "</div>"
    )


def _bar_html(description: str, total: int | None, done: int, elapsed: float) -> str:
    label = html.escape(description)
    if total:
        return (
            f'<div><progress value="{done}" max="{total}" style="width:40%"></progress> '
            f"{label}: {done}/{total} ({elapsed:.1f} s)</div>"
        )
    return f'<div><progress style="width:40%"></progress> {label}: {done} ({elapsed:.1f} s)</div>'


class _NotebookTask:
    def __init__(self, owner: NotebookProgress, description: str, total: int | None) -> None:
        self.owner = owner
        self.description = description
        self.total = total
        self.done = 0
        self.started = time.perf_counter()

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        self.owner.draw(force=self.total is not None and self.done >= self.total)

    def html(self) -> str:
        return _bar_html(self.description, self.total, self.done, time.perf_counter() - self.started)


class NotebookProgress:
    """A :class:`~auditor.run._progress.ProgressFactory` drawing HTML progress bars in the notebook.

    All bars of a run share one output area (one display id): nested bars show as rows, and
    the area is emptied when the last bar finishes, so the report is not buried under them.
    """

    def __init__(self) -> None:
        self.tasks: list[_NotebookTask] = []
        self.handle: Any = None
        self._drawn = 0.0

    def draw(self, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._drawn < _REDRAW_S:
            return
        self._drawn = now
        from IPython.display import HTML, display

        content = HTML("".join(task.html() for task in self.tasks))
        if self.handle is None:
            self.handle = display(content, display_id=True)
        else:
            self.handle.update(content)

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        task = _NotebookTask(self, description, total)
        self.tasks.append(task)
        self.draw(force=True)
        try:
            yield task
        finally:
            self.tasks.remove(task)
            self.draw(force=True)
