"""The run context: what the manifest describes, built lazily and at most once.

Audits share one :class:`RunContext`. Building the model, optimizer, loss or a
split happens on first use and is cached, so an audit that does not need the
model never pays for it. Shared objects must not be mutated: an audit that
trains or changes state takes :meth:`RunContext.model_copy` and
:meth:`RunContext.make_optimizer` instead.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.audit import SkipAudit
from auditor.errors import ManifestError
from auditor.findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from auditor.audit import Audit
    from auditor.data.splits import Split
    from auditor.manifest.load import Manifest
    from auditor.run._progress import ProgressFactory, ProgressTask
    from auditor.run.registry import Registry

__all__ = ["AuditContext", "RunContext", "SplitUnavailable", "TaskInfo"]


#: Seed of torch's random state while the model factory runs (see ``RunContext.model``).
MODEL_BUILD_SEED = 0


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
    """Shared, lazily built view of one manifest."""

    def __init__(
        self,
        manifest: Manifest,
        registry: Registry,
        *,
        use_cache: bool = True,
        cache_dir: Path | None = None,
        progress: ProgressFactory | None = None,
        scheduler: str | None = None,
    ) -> None:
        self.manifest = manifest
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
        self.loss_step: Callable[[Any, Any, int], Any] | None = None
        self._opened: dict[str, Split] = {}
        self._split_problems: dict[str, ManifestError] = {}
        from auditor.run._deadline import set_call_timeout

        set_call_timeout(manifest.raw.get("call_timeout_s"))

    # -- model, optimizer, loss -----------------------------------------------------

    @functools.cached_property
    def model(self) -> Any:
        """The model in the state training sees it. Treat as read-only.

        A training script runs the factories in order (model, then optimizer, then loss) and calls
        ``model.train()``; an optimizer factory that sets ``requires_grad`` by parameter name is a common
        pattern, so audits read the model only after that factory ran on it (and the optimizer it made
        is the shared one).
        """
        model = self._build_model()
        if self.has("optimizer"):
            self.__dict__["optimizer"] = self.make_optimizer(model)
        model.train()
        return model

    def _build_model(self) -> Any:
        section = self.manifest.section("model")
        if not section:
            raise self._missing("model")
        import torch

        # A new head starts from random weights, and GP006/GP007 judge what those weights do: seeding the
        # build makes two runs of one manifest give the same findings. fork_rng leaves the caller's random
        # state (a notebook's, a training script's) as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(MODEL_BUILD_SEED)
            model = self.resolver.call_factory(
                section["factory"], "model.factory", **dict(section.get("kwargs") or {})
            )
        return self._checked(model, "model.factory", "named_parameters", "a torch.nn.Module")

    def model_copy(self) -> Any:
        """A deep copy of the model for audits that train or change state."""
        return copy.deepcopy(self.model)

    @functools.cached_property
    def optimizer(self) -> Any:
        """The optimizer over the shared model, built once. Never call ``step`` on it."""
        return self.make_optimizer(self.model)

    def make_optimizer(self, model: Any) -> Any:
        """A fresh optimizer from the manifest's factory, over ``model``."""
        section = self.manifest.section("optimizer")
        if not section:
            raise self._missing("optimizer")
        optimizer = self.resolver.call_factory(
            section["factory"], "optimizer.factory", model, **dict(section.get("kwargs") or {})
        )
        return self._checked(optimizer, "optimizer.factory", "param_groups", "a torch.optim.Optimizer")

    @functools.cached_property
    def loss(self) -> Any:
        section = self.manifest.section("loss")
        if not section:
            raise self._missing("loss")
        return self.make_loss()

    def make_loss(self) -> Any:
        section = self.manifest.section("loss")
        loss = self.resolver.call_factory(
            section["factory"], "loss.factory", **dict(section.get("kwargs") or {})
        )
        return self._checked(
            loss, "loss.factory", "__call__", "a callable loss (e.g. torch.nn.CrossEntropyLoss())"
        )

    def _checked(self, value: Any, key: str, attribute: str, expected: str) -> Any:
        """``value`` when it has ``attribute``; otherwise a ManifestError naming the factory."""
        if hasattr(value, attribute):
            return value
        section, _, leaf = key.partition(".")
        ref = self.manifest.section(section).get(leaf)
        found = "None" if value is None else f"a {type(value).__name__}"
        raise ManifestError(
            self.manifest.path,
            key,
            f"a factory returning {expected}",
            f"{ref} returned {found}",
            line=self.manifest.line(key),
            hint="return the object itself from the factory (a missing return?)",
        )

    def has(self, section: str) -> bool:
        """True when the manifest declares ``model``, ``optimizer``, ``loss`` or ``data``."""
        return bool(self.manifest.raw.get(section))

    @property
    def pretrained(self) -> Any:
        """``model.pretrained`` as written (string or mapping), or None."""
        return self.manifest.section("model").get("pretrained")

    @property
    def head_name(self) -> str | None:
        return self.manifest.section("model").get("head")

    # -- data -----------------------------------------------------------------------

    def open_split(self, name: str) -> Split:
        """Open split ``name`` through its data format (subclasses may adjust the result); not cached."""
        from auditor.data.splits import SplitSpec

        config = self.manifest.data[name]
        fmt = self.registry.data_formats[config["format"]]
        spec = SplitSpec(
            name=name,
            config=dict(config),
            base_dir=self.manifest.base_dir,
            resolver=self.resolver,
            location=f"data.{name}",
        )
        return fmt.open(spec)

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
        for name in self.manifest.data:
            if name in self._split_problems:
                continue
            try:
                len(self._split(name))  # a format reads its index (folder listing, table) here
            except ManifestError as exc:
                self._split_problems[name] = exc
            except Exception as exc:
                key = f"data.{name}"
                self._split_problems[name] = ManifestError(
                    self.manifest.path,
                    key,
                    f"a split the {self.manifest.data[name].get('format')!r} format can open",
                    f"opening it failed with {type(exc).__name__}: {exc}",
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
        """Every split of the manifest, opened (cheaply) in manifest order."""
        broken = [name for name in self.manifest.data if name in self._split_problems]
        if broken:
            raise SplitUnavailable(broken, self._split_problems)
        return {name: self._split(name) for name in self.manifest.data}

    @property
    def train(self) -> Split | None:
        return self._split("train") if "train" in self.manifest.data else None

    @property
    def eval_splits(self) -> list[Split]:
        return [split for name, split in self.splits.items() if name != "train"]

    @functools.cached_property
    def task(self) -> TaskInfo:
        declared = self.manifest.section("task")
        names: list[str] = []
        for split in self.splits.values():
            for name in split.classes():
                if name not in names:
                    names.append(name)
        multilabel = any(split.multilabel for split in self.splits.values() if len(split))
        loss_ref = str(self.manifest.section("loss").get("factory", ""))
        if declared.get("type"):
            kind = declared["type"]
        elif multilabel:
            kind = "multilabel"
        elif len(names) == 2 and "BCE" in loss_ref:
            kind = "binary"
        else:
            kind = "multiclass"
        num = declared.get("num_classes") or (len(names) or None)
        source = "manifest" if declared else "inferred"
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

    def _missing(self, section: str) -> ManifestError:
        return ManifestError(
            self.manifest.path,
            section,
            f"a '{section}' section with a 'factory'",
            "none",
            hint=f"this audit needs the {section}; add it to the manifest or skip the audit",
        )


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
