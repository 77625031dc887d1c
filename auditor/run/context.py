"""The run context: what the manifest describes, built lazily and at most once.

Audits share one :class:`RunContext`. Building the model, optimizer, loss or a
split happens on first use and is cached, so an audit that does not need the
model never pays for it. Shared objects must not be mutated: an audit that
trains or changes state takes :meth:`RunContext.model_copy` and
:meth:`RunContext.make_optimizer` instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from auditor.audit import SkipAudit
from auditor.errors import ManifestError
from auditor.findings import Finding
from auditor.run._deadline import CallDeadline
from auditor.run.sources import MODEL_BUILD_SEED
from auditor.run.user_code import note_plugins

if TYPE_CHECKING:  # pragma: no cover
    from auditor.audit import Audit
    from auditor.data.splits import Split
    from auditor.manifest.load import Manifest
    from auditor.run._progress import ProgressFactory, ProgressTask
    from auditor.run.lr_schedule import LRSchedule
    from auditor.run.registry import Registry
    from auditor.run.sources import ObjectSource
    from auditor.run.weight_loads import WeightLoad

__all__ = ["MODEL_BUILD_SEED", "AuditContext", "RunContext", "SplitUnavailable", "TaskInfo"]

T = TypeVar("T")


@dataclass(frozen=True)
class TaskInfo:
    """The learning task: from the manifest's ``task`` or inferred from the data."""

    type: str  # multiclass | binary | multilabel
    num_classes: int | None
    source: str  # "manifest" or "inferred"
    class_names: tuple[str, ...] = ()


class SplitUnavailable(SkipAudit):
    """An audit asked for a split that failed to open: it is skipped, pointing at the problem."""

    def __init__(self, names: list[str], problems: Mapping[str, ManifestError]) -> None:
        self.names = list(names)
        keys = " and ".join(f"data.{name}" for name in names)
        super().__init__(
            f"{keys} could not be opened; see the manifest problem{'s' if len(names) != 1 else ''} "
            "reported for it" + ("" if len(names) == 1 else "s")
        )


class RunContext:
    """Shared, lazily built view of one run: the manifest's settings, the objects from its source."""

    def __init__(
        self,
        manifest: Manifest,
        registry: Registry,
        *,
        source: ObjectSource | None = None,
        use_cache: bool = True,
        cache_dir: Path | None = None,
        progress: ProgressFactory | None = None,
        scheduler: str | None = None,
    ) -> None:
        from auditor.run.sources import ManifestSource

        self.manifest = manifest
        #: Where the model, optimizer, loss and splits come from (the manifest's factories by default).
        self.source: ObjectSource = source if source is not None else ManifestSource(manifest, registry)
        #: Dask scheduler for distributable work (``local`` or an address); None: this machine.
        self.scheduler = scheduler if scheduler is not None else manifest.scheduler
        self.registry = registry
        self.resolver = manifest.resolver
        self.use_cache = use_cache
        self._cache_dir = cache_dir
        self._progress = progress
        #: ``(model, batch, step) -> loss`` when training computes its loss itself (a LightningModule's
        #: ``training_step``); ``None``: the loss is ``loss(model(inputs), targets)``. Audits that train
        #: (gradient_probe) call it on their own model copy with the batch as the DataLoader makes it.
        self.loss_step: Callable[[Any, Any, int], Any] | None = self.source.loss_step
        self._opened: dict[str, Split] = {}
        self._split_problems: dict[str, ManifestError] = {}
        #: This run's limit on one call into user code (the manifest's ``call_timeout_s``). It travels
        #: with the run: the manifest's resolver calls factories under it and every split opened here
        #: carries it, so another run in the same process keeps its own.
        self.deadline = CallDeadline.of(manifest.call_timeout_s)
        self.resolver.deadline = self.deadline
        #: Audits this run runs (set by the runner once it selected them; None: not known yet), the
        #: status of each that finished, and whether a code survives --select/--ignore: what
        #: :meth:`AuditContext.refers` answers from, so no text points at a code that did not run.
        self.running: frozenset[str] | None = None
        #: The run may not run the model (``--static``, the pre-commit hook; set by the runner): an
        #: audit that reads data but can also use the model skips that part, with a note.
        self.static = False
        self.finished: dict[str, str] = {}
        self.code_kept: Callable[[str], bool] = lambda code: True

    @property
    def call_timeout_s(self) -> float:
        """Seconds one call into user code may take in this run."""
        return self.deadline.seconds

    def call(self, fn: Callable[..., T], *args: Any, what: str, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under this run's call deadline.

        ``what`` names the call in the :class:`~auditor.kit.DeadlineExceeded` raised when it does
        not return within :attr:`call_timeout_s` (the call is then abandoned and the run goes on).
        """
        return self.deadline.call(fn, *args, what=what, **kwargs)

    # -- model, optimizer, loss -----------------------------------------------------

    @functools.cached_property
    def model(self) -> Any:
        """The model in the state training sees it, built once by the source. Treat as read-only.

        A training script runs the factories in order (model, then optimizer, then loss) and calls
        ``model.train()``; the manifest's source does the same (an optimizer factory that sets
        ``requires_grad`` by parameter name is a common pattern), so audits read the model only after that
        factory ran on it. Live objects are the caller's and are handed over as they are.
        """
        return self.source.model()

    def model_at_hand(self) -> Any | None:
        """The model when getting it calls no user code (handed over live, or built already), else None.

        For a check that only glances at the model (a label map in its config): building it from a
        factory there would move the factory's failures, and its cost, into an audit that does not
        need the model to do its job.
        """
        if "model" in self.__dict__:  # functools.cached_property keeps the built model here
            return self.__dict__["model"]
        if getattr(self.source, "builds_model", True) or not self.has("model"):
            return None
        return self.model

    def model_copy(self) -> Any:
        """A deep copy of the model for audits that train or change state."""
        return self.source.model_copy(self.model)

    @functools.cached_property
    def optimizer(self) -> Any:
        """The optimizer over the shared model, built once. Never call ``step`` on it."""
        return self.make_optimizer(self.model)

    def make_optimizer(self, model: Any) -> Any:
        """An optimizer over ``model`` (the shared model, or one from :meth:`model_copy`)."""
        return self.source.optimizer(model)

    @functools.cached_property
    def loss(self) -> Any:
        """The loss, built once by the source. Treat as read-only."""
        return self.source.loss()

    def make_loss(self) -> Any:
        """A loss of the caller's own, for audits that train."""
        return self.source.fresh_loss()

    def has(self, section: str) -> bool:
        """True when the run has a ``model``, ``optimizer``, ``loss`` or ``data``."""
        return self.source.has(section)

    @functools.cached_property
    def weight_loads(self) -> list[WeightLoad]:
        """Every load of weights into the model while it was built, or that the caller reported.

        The manifest's model factory runs with ``load_state_dict`` recorded; ``auditor.check``
        turns ``load_result=`` and ``checkpoint=`` into the same records. Builds the model first.
        """
        return self.source.weight_loads(self.model)

    @functools.cached_property
    def lr_schedule(self) -> LRSchedule | None:
        """The learning-rate schedule training steps (manifest ``lr_scheduler``), or None."""
        return self.source.lr_schedule()

    @property
    def pretrained(self) -> Any:
        """``model.pretrained`` as written (string or mapping), or None."""
        return self.manifest.model.pretrained if self.manifest.model is not None else None

    @property
    def head_name(self) -> str | None:
        return self.manifest.model.head if self.manifest.model is not None else None

    # -- data -----------------------------------------------------------------------

    def open_split(self, name: str) -> Split:
        """Open split ``name`` through the source; not cached."""
        return self.source.open_split(name)

    def _split(self, name: str) -> Split:
        """Split ``name``, opened once; a split that failed to open stops whoever asks for it."""
        if name in self._split_problems:
            raise SplitUnavailable([name], self._split_problems)
        if name not in self._opened:
            self._opened[name] = self.open_split(name)
        return self._opened[name]

    def open_splits(self) -> dict[str, ManifestError]:
        """Open every split before any audit runs and return the problems, one per broken split.

        A wrong column or a missing folder is then reported once, for every split, as
        a problem of the manifest, instead of once per audit and only for the first
        split each audit happened to touch. Audits that ask for a broken split are
        skipped (:class:`SplitUnavailable`) with a reason that points at it.
        """
        for name in self.source.split_names():
            if name in self._split_problems:
                continue
            try:
                len(self._split(name))  # a format reads its index (folder listing, table) here
            except ManifestError as exc:
                self._split_problems[name] = exc
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                note_plugins(self.registry)
                found = _opening_failed(exc, self.manifest, self.deadline.failed)
                key = f"data.{name}"
                self._split_problems[name] = ManifestError(
                    self.manifest.path,
                    key,
                    f"a split the {self.source.split_format(name)!r} format can open",
                    found,
                    line=self.manifest.line(key),
                    hint="fix the split's options (auditor validate checks them) or the data it points at",
                )
        return dict(self._split_problems)

    @property
    def splits_opened(self) -> bool:
        """True once a split was opened; asking opens nothing (the report uses it for the task)."""
        return bool(self._opened)

    @property
    def split_problems(self) -> dict[str, ManifestError]:
        """Splits that failed to open, by name (empty until :meth:`open_splits` ran)."""
        return dict(self._split_problems)

    @property
    def splits(self) -> dict[str, Split]:
        """Every split, opened (cheaply) in the order the source lists them."""
        names = self.source.split_names()
        broken = [name for name in names if name in self._split_problems]
        if broken:
            raise SplitUnavailable(broken, self._split_problems)
        return {name: self._split(name) for name in names}

    @property
    def train(self) -> Split | None:
        return self._split("train") if "train" in self.source.split_names() else None

    @property
    def eval_splits(self) -> list[Split]:
        return [split for name, split in self.splits.items() if name != "train"]

    @functools.cached_property
    def task(self) -> TaskInfo:
        declared = self.manifest.task
        names: list[str] = []
        for split in self.splits.values():
            for name in split.classes():
                if name not in names:
                    names.append(name)
        multilabel = any(split.multilabel for split in self.splits.values() if len(split))
        if declared.type:
            kind = declared.type
        elif multilabel:
            kind = "multilabel"
        elif len(names) == 2 and self.source.binary_loss():
            kind = "binary"
        else:
            kind = "multiclass"
        num = declared.num_classes or (len(names) or None)
        source = "manifest" if declared.declared else "inferred"
        return TaskInfo(kind, num, source, tuple(names))

    # -- infrastructure ---------------------------------------------------------------

    @property
    def cache_dir(self) -> Path:
        """Folder for caches (beside the manifest by default); never inside a data folder."""
        return self._cache_dir or (self.manifest.base_dir / ".auditor-cache")

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[ProgressTask]:
        """A progress bar (shown on a terminal for work that takes more than a second)."""
        from auditor.run._progress import NullProgress

        factory = self._progress or NullProgress()
        with factory.task(description, total) as task:
            yield task


def _opening_failed(exc: BaseException, manifest: Manifest, failed: dict[str, Any]) -> str:
    """Why opening a split failed, in words; user code's failures name the call, how and where.

    A failed call into user code is remembered in ``failed`` (the run's deadline): an audit that needs
    it again (the model's module, imported for the dataset first) is skipped, pointing at the problem.
    """
    from auditor.run.user_code import UserCodeFailed, call_of, failure_from_exception

    if isinstance(exc, KeyboardInterrupt) and call_of(exc) is None:
        raise exc  # a real Ctrl-C
    if isinstance(exc, UserCodeFailed):
        first = exc.failure
        return f"{first.describe()} (earlier in this run)" if exc.repeat else first.describe()
    roots = [str(manifest.base_dir), *manifest.resolver.pythonpath]
    failure = failure_from_exception(exc, audit="the data splits", user_roots=roots)
    if failure is not None:
        if failure.key:
            failed.setdefault(failure.key, failure)
        return f"opening it failed: {failure.describe()}"
    return f"opening it failed with {type(exc).__name__}: {exc}"


class AuditContext:
    """What one audit sees: the shared run context plus its own options and output."""

    def __init__(self, run: RunContext, audit: Audit, options: dict[str, Any]) -> None:
        self.run = run
        self.audit = audit
        self.options = options
        #: Data for the reports' charts and tables, kept even when nothing is wrong.
        self.evidence: dict[str, Any] = {}
        #: Short remarks shown with the audit (e.g. "stopped early at the time budget").
        self.notes: list[str] = []

    def finding(
        self,
        code: str,
        message: str,
        *,
        hint: str = "",
        location: str = "",
        evidence: dict[str, Any] | None = None,
        cause: Finding | None = None,
    ) -> Finding:
        """A finding with severity and title taken from the audit's declared code.

        ``cause``: another finding of this run this one follows from; the report links them
        (``caused_by``) and shows this one under it.
        """
        info = self.audit.code(code)
        return Finding(
            code=code,
            audit=self.audit.name,
            severity=info.severity,
            title=info.title,
            message=message,
            hint=hint,
            location=location,
            evidence=dict(evidence or {}),
            cause=cause,
        )

    def note(self, text: str) -> None:
        self.notes.append(text)

    def refers(self, code: str) -> bool:
        """True when a message of this audit may point the reader at ``code`` ("see XY006").

        That is when the audit declaring ``code`` runs in this run (not disabled, not skipped, not
        errored when it already finished) and ``--select``/``--ignore`` keep the code: a hint that
        names a code the report cannot contain sends the reader looking for nothing.
        """
        owner = self.run.registry.audit_for_code(code)
        if owner is None or not self.run.code_kept(code):
            return False
        if self.run.running is not None and owner.name not in self.run.running:
            return False
        return self.run.finished.get(owner.name, "passed") in ("passed", "failed")

    def see(self, *codes: str, prefix: str = " (see ", suffix: str = ")") -> str:
        """``" (see XY006)"`` for the ``codes`` this run can report (:meth:`refers`), else ``""``."""
        shown = [code for code in codes if self.refers(code)]
        return f"{prefix}{', '.join(shown)}{suffix}" if shown else ""

    def call(self, fn: Callable[..., T], *args: Any, what: str, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under the run's call deadline (see :meth:`RunContext.call`)."""
        return self.run.call(fn, *args, what=what, **kwargs)

    @property
    def call_timeout_s(self) -> float:
        """Seconds one call into user code may take in this run."""
        return self.run.call_timeout_s

    # Shortcuts to the shared context, so audits read naturally.
    @property
    def manifest(self) -> Manifest:
        return self.run.manifest

    @property
    def splits(self) -> dict[str, Split]:
        return self.run.splits

    @property
    def train(self) -> Split | None:
        return self.run.train

    @property
    def eval_splits(self) -> list[Split]:
        return self.run.eval_splits

    @property
    def task(self) -> TaskInfo:
        return self.run.task

    def progress(self, description: str, total: int | None) -> Any:
        return self.run.progress(f"{self.audit.name}: {description}", total)
