"""The manifest's sections as typed values, and the one place that declares their defaults.

``schemas/manifest.schema.json`` says what a manifest may hold; these dataclasses say
what a valid one means, with the defaults filled in. They are built from the parsed
YAML only after it passed the schema, so they convert without checking again. The
CLI, ``run_manifest``, ``auditor.check`` and the Lightning callback take their
defaults from :data:`DEFAULTS` instead of restating them (a test compares every
default here with the schema's ``default``).

Imports nothing beyond the standard library: ``auditor validate`` and the signatures
of ``auditor.check`` read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULTS",
    "FactorySection",
    "IgnoreEntry",
    "LRSchedulerSection",
    "ManifestSections",
    "ModelSection",
    "ReportSection",
    "TaskSection",
]


@dataclass(frozen=True)
class FactorySection:
    """``optimizer`` or ``loss``: a ``module:attr`` factory and its keyword arguments.

    ``factory`` is None only where the object itself comes from the caller (``auditor.check``).
    """

    factory: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> FactorySection:
        return cls(factory=value.get("factory"), kwargs=dict(value.get("kwargs") or {}))


@dataclass(frozen=True)
class ModelSection(FactorySection):
    """``model``: its factory, and what the checks read about it without building it."""

    #: ``torchvision:<Weights.MEMBER>``, ``timm:<name>`` or a mapping ``{mean, std, input_size}``.
    pretrained: str | Mapping[str, Any] | None = None
    #: Dotted name of the new classifier submodule; None: inferred (the last Linear).
    head: str | None = None

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> ModelSection:
        pretrained = value.get("pretrained")
        return cls(
            factory=value.get("factory"),
            kwargs=dict(value.get("kwargs") or {}),
            pretrained=dict(pretrained) if isinstance(pretrained, Mapping) else pretrained,
            head=value.get("head"),
        )


@dataclass(frozen=True)
class LRSchedulerSection(FactorySection):
    """``lr_scheduler``: a factory ``(optimizer, **kwargs) -> LRScheduler`` and how training steps it.

    ``scheduler`` (top level) stays the Dask scheduler; this is the learning-rate schedule that
    gradient_probe dry-runs over the planned steps.
    """

    #: ``step``: ``scheduler.step()`` after every optimizer step; ``epoch``: once per epoch (Lightning's default).
    interval: str = "epoch"
    #: Planned epochs of training; None only where the caller gave none (``auditor.check``).
    epochs: int | None = None
    #: Optimizer steps per epoch; None: from the train split's length and batch size.
    steps_per_epoch: int | None = None

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> LRSchedulerSection:
        epochs, steps = value.get("epochs"), value.get("steps_per_epoch")
        return cls(
            factory=value.get("factory"),
            kwargs=dict(value.get("kwargs") or {}),
            interval=str(value.get("interval", "epoch")),
            epochs=int(epochs) if epochs is not None else None,
            steps_per_epoch=int(steps) if steps is not None else None,
        )


@dataclass(frozen=True)
class TaskSection:
    """``task``: what the manifest declares; the run infers the rest from the data and the loss."""

    type: str | None = None  # multiclass | binary | multilabel
    num_classes: int | None = None

    @property
    def declared(self) -> bool:
        """True when the manifest declares any part of the task (the report then always shows it)."""
        return self.type is not None or self.num_classes is not None

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> TaskSection:
        return cls(type=value.get("type"), num_classes=value.get("num_classes"))


@dataclass(frozen=True)
class ReportSection:
    """``report``: where the report files go, in which formats, and whether they are redacted."""

    #: Output folder, relative to the manifest.
    dir: str = "reports"
    #: Report formats to write (json is always written); the default keeps only installed ones.
    formats: tuple[str, ...] = ("json", "html")
    #: Paths relative to the manifest and no host details, fit to publish.
    redact: bool = False

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> ReportSection:
        default = cls()
        return cls(
            dir=str(value.get("dir", default.dir)),
            # An empty list asks for nothing in particular: the default formats, as before.
            formats=tuple(value.get("formats") or default.formats),
            redact=bool(value.get("redact", default.redact)),
        )


@dataclass(frozen=True)
class IgnoreEntry:
    """One ``ignore:`` entry: findings of ``code`` (a code or prefix) at ``location`` accepted, and why."""

    code: str
    reason: str
    #: The manifest key the accepted findings concern (and keys below it); None: anywhere.
    location: str | None = None

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> IgnoreEntry:
        location = value.get("location")
        return cls(
            code=str(value["code"]).upper(),
            reason=" ".join(str(value["reason"]).split()),
            location=str(location) if location else None,
        )


@dataclass(frozen=True)
class ManifestSections:
    """Every top-level key of a valid manifest, typed, with the schema's defaults."""

    version: int = 1
    #: Shown in reports; None: the manifest folder's name.
    name: str | None = None
    #: Folders (relative to the manifest) prepended to ``sys.path`` before imports.
    pythonpath: tuple[str, ...] = ()
    task: TaskSection = field(default_factory=TaskSection)
    #: None where the manifest has no such section.
    model: ModelSection | None = None
    optimizer: FactorySection | None = None
    loss: FactorySection | None = None
    #: The learning-rate schedule training steps; None where the manifest has none.
    lr_scheduler: LRSchedulerSection | None = None
    #: Split name -> the split's options as written (each data format validates its own keys).
    data: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Audit name -> its options as written, or None: every installed audit with defaults.
    audits: Mapping[str, Mapping[str, Any] | None] | None = None
    report: ReportSection = field(default_factory=ReportSection)
    #: Exit 1 when a finding is at or above this severity (``never``: only a wrong manifest fails).
    fail_on: str = "error"
    #: ``local`` or a Dask scheduler address for distributable work; None: this machine.
    scheduler: str | None = None
    #: Seconds one call into user code may take before it is abandoned.
    call_timeout_s: float = 300.0
    #: Findings accepted on purpose, each with its reason (reported apart; they do not fail the run).
    ignore: tuple[IgnoreEntry, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ManifestSections:
        """The typed view of ``raw``, a manifest mapping that passed the manifest schema."""
        default = cls()

        def section(key: str) -> Mapping[str, Any] | None:
            value = raw.get(key)
            return value if isinstance(value, Mapping) and value else None

        model, optimizer, loss = section("model"), section("optimizer"), section("loss")
        lr_scheduler = section("lr_scheduler")
        audits = raw.get("audits")
        timeout = raw.get("call_timeout_s")
        return cls(
            version=int(raw.get("version", default.version)),
            name=str(raw["name"]) if raw.get("name") else None,
            pythonpath=tuple(str(p) for p in raw.get("pythonpath") or ()),
            task=TaskSection.from_mapping(section("task") or {}),
            model=ModelSection.from_mapping(model) if model is not None else None,
            optimizer=FactorySection.from_mapping(optimizer) if optimizer is not None else None,
            loss=FactorySection.from_mapping(loss) if loss is not None else None,
            lr_scheduler=LRSchedulerSection.from_mapping(lr_scheduler) if lr_scheduler is not None else None,
            data={str(k): dict(v) for k, v in (section("data") or {}).items()},
            audits=None
            if audits is None
            else {str(k): (dict(v) if isinstance(v, Mapping) else v) for k, v in audits.items()},
            report=ReportSection.from_mapping(section("report") or {}),
            fail_on=str(raw.get("fail_on", default.fail_on)),
            scheduler=str(raw["scheduler"]) if raw.get("scheduler") else None,
            call_timeout_s=float(timeout) if timeout is not None else default.call_timeout_s,
            ignore=tuple(
                IgnoreEntry.from_mapping(entry)
                for entry in raw.get("ignore") or ()
                if isinstance(entry, Mapping)
            ),
        )


#: The defaults of every manifest key, declared once (here) for every caller.
DEFAULTS = ManifestSections()
