"""Where a run's objects come from: the model, optimizer, loss and data splits.

:class:`~auditor.run.context.RunContext` asks an :class:`ObjectSource` for each
object and caches what it shares. :class:`ManifestSource` builds them from the
manifest's ``module:attr`` factories, each call under the run's call deadline and
every failure worded as a manifest error; ``auditor.check`` hands over the
caller's own objects through :class:`auditor.live._source.LiveSource`. Audits
cannot tell the two apart: both answer the same questions the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from auditor.errors import ManifestError

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from auditor.data.splits import Split
    from auditor.manifest.load import Manifest
    from auditor.run.lr_schedule import LRSchedule
    from auditor.run.registry import Registry
    from auditor.run.weight_loads import WeightLoad

__all__ = ["MODEL_BUILD_SEED", "ManifestSource", "ObjectSource", "refuse_meta"]

#: Seed of torch's random state while the model factory runs (see :meth:`ManifestSource.model`).
MODEL_BUILD_SEED = 0


class ObjectSource(Protocol):
    """What a run context needs from wherever the objects come from.

    The context calls :meth:`model` and :meth:`loss` once and shares the results; every other
    method may be called as often as audits ask. Sections are ``model``, ``optimizer``,
    ``loss`` and ``data``.
    """

    #: ``(model, batch, step) -> loss`` when training computes its loss itself, else None.
    loss_step: Callable[[Any, Any, int], Any] | None
    #: False when :meth:`model` calls no user code (objects handed over live); a source without the
    #: attribute builds its model (a factory), which audits that only glance at the model must not trigger.
    builds_model: bool

    def has(self, section: str) -> bool:
        """True when this source can provide ``section``."""
        ...

    def model(self) -> Any:
        """The model audits share (read-only)."""
        ...

    def model_copy(self, model: Any) -> Any:
        """A deep copy of ``model`` (the shared one) for an audit that trains."""
        ...

    def optimizer(self, model: Any) -> Any:
        """An optimizer over ``model``: the shared model, or a copy this source made."""
        ...

    def loss(self) -> Any:
        """The loss audits share (read-only)."""
        ...

    def fresh_loss(self) -> Any:
        """A loss of the audit's own, for one that trains."""
        ...

    def binary_loss(self) -> bool:
        """True when the loss is a binary cross-entropy (two classes then mean a binary task)."""
        ...

    def split_names(self) -> list[str]:
        """The data splits, in the order the user gave them."""
        ...

    def split_format(self, name: str) -> str:
        """The data format that opens split ``name`` (for messages)."""
        ...

    def open_split(self, name: str) -> Split:
        """Open split ``name`` (cheaply; the context opens each once)."""
        ...

    def missing(self, section: str) -> ManifestError:
        """The error for an audit that needs ``section`` where this source has none."""
        ...

    def weight_loads(self, model: Any) -> list[WeightLoad]:
        """Every load of weights into ``model`` (the shared one, already built) this source knows of."""
        ...

    def lr_schedule(self) -> LRSchedule | None:
        """The learning-rate schedule training steps, as a plan to dry-run; None where there is none."""
        ...


class ManifestSource:
    """Objects built from the manifest's ``module:attr`` factories, under the call deadline."""

    builds_model = True  # the model comes from the manifest's factory: user code

    loss_step: Callable[[Any, Any, int], Any] | None = None

    def __init__(self, manifest: Manifest, registry: Registry) -> None:
        self.manifest = manifest
        self.registry = registry
        #: (the shared model, the optimizer its factory made on it): asked again, the same one.
        self._shared_optimizer: tuple[Any, Any] | None = None
        #: Every load_state_dict call the model factory made (see auditor.run.weight_loads).
        self._loads: list[WeightLoad] = []

    def has(self, section: str) -> bool:
        if section == "data":
            return bool(self.manifest.data)
        if section in ("model", "optimizer", "loss"):
            return getattr(self.manifest, section) is not None
        return False

    def model(self) -> Any:
        section = self.manifest.model
        if section is None or section.factory is None:
            raise self.missing("model")
        import torch

        # A new head starts from random weights, and the probe's loss checks judge what those weights do: seeding the
        # build makes two runs of one manifest give the same findings. fork_rng leaves the caller's random
        # state (a notebook's, a training script's) as it was.
        from auditor.run.weight_loads import locate, recording_loads

        with torch.random.fork_rng(devices=[]), recording_loads("model.factory") as loads:
            torch.manual_seed(MODEL_BUILD_SEED)
            model = self.manifest.resolver.call_factory(section.factory, "model.factory", **section.kwargs)
        model = self._checked(model, "model", section.factory, "named_parameters", "a torch.nn.Module")
        self._loads = locate(loads, model)
        refuse_meta(model, f"model.factory ({section.factory})", "model.factory")
        # As a training script: the optimizer factory runs on the model before anything reads it (it may
        # set requires_grad by name), then model.train(). Its optimizer is the one shared with the audits.
        if self.has("optimizer"):
            self._shared_optimizer = (model, self.optimizer(model))
        model.train()
        return model

    def model_copy(self, model: Any) -> Any:
        import copy

        return copy.deepcopy(model)

    def optimizer(self, model: Any) -> Any:
        shared = self._shared_optimizer
        if shared is not None and shared[0] is model:
            return shared[1]
        section = self.manifest.optimizer
        if section is None or section.factory is None:
            raise self.missing("optimizer")
        optimizer = self.manifest.resolver.call_factory(
            section.factory, "optimizer.factory", model, **section.kwargs
        )
        return self._checked(
            optimizer, "optimizer", section.factory, "param_groups", "a torch.optim.Optimizer"
        )

    def loss(self) -> Any:
        return self.fresh_loss()

    def fresh_loss(self) -> Any:
        section = self.manifest.loss
        if section is None or section.factory is None:
            raise self.missing("loss")
        loss = self.manifest.resolver.call_factory(section.factory, "loss.factory", **section.kwargs)
        return self._checked(
            loss, "loss", section.factory, "__call__", "a callable loss (e.g. torch.nn.CrossEntropyLoss())"
        )

    def binary_loss(self) -> bool:
        # Judged from the reference as written, so inferring the task never builds (or imports) the loss:
        # the manifest documents "binary for 2 classes with a BCE loss" (torch.nn:BCEWithLogitsLoss).
        section = self.manifest.loss
        return section is not None and "BCE" in (section.factory or "")

    def split_names(self) -> list[str]:
        return list(self.manifest.data)

    def split_format(self, name: str) -> str:
        return str(self.manifest.data[name].get("format"))

    def open_split(self, name: str) -> Split:
        from auditor.data.splits import SplitSpec

        config = self.manifest.data[name]
        fmt = self.registry.data_formats[config["format"]]
        spec = SplitSpec(
            name=name,
            config=dict(config),
            base_dir=self.manifest.base_dir,
            resolver=self.manifest.resolver,
            deadline=self.manifest.resolver.deadline,
            location=f"data.{name}",
        )
        return fmt.open(spec)

    def missing(self, section: str) -> ManifestError:
        return ManifestError(
            self.manifest.path,
            section,
            f"a '{section}' section with a 'factory'",
            "none",
            hint=f"this audit needs the {section}; add it to the manifest or skip the audit",
        )

    def weight_loads(self, model: Any) -> list[WeightLoad]:
        return list(self._loads)

    def lr_schedule(self) -> LRSchedule | None:
        section = self.manifest.lr_scheduler
        if section is None or section.factory is None:
            return None
        from auditor.run.lr_schedule import from_section

        return from_section(section, self.manifest.resolver)

    def _checked(self, value: Any, section: str, ref: str, attribute: str, expected: str) -> Any:
        """``value`` when it has ``attribute``; otherwise a ManifestError naming the factory."""
        if hasattr(value, attribute):
            return value
        key = f"{section}.factory"
        found = "None" if value is None else f"a {type(value).__name__}"
        raise ManifestError(
            self.manifest.path,
            key,
            f"a factory returning {expected}",
            f"{ref} returned {found}",
            line=self.manifest.line(key),
            hint="return the object itself from the factory (a missing return?)",
        )


def refuse_meta(model: Any, call: str, location: str) -> None:
    """Raise :class:`~auditor.run.user_code.UserCodeFailed` when ``model`` holds tensors on ``meta``.

    Such tensors have a shape and no data: every audit that runs the model would fail in torch with
    "Cannot copy out of meta tensor", which is the user's model, not auditor, failing.
    """
    from auditor.run.user_code import UserCodeFailed, UserCodeFailure, meta_tensors

    names = meta_tensors(model)
    if names:
        shown = ", ".join(names) + (" ..." if len(names) >= 5 else "")
        raise UserCodeFailed(
            UserCodeFailure(
                "meta",
                call,
                f"the model it returned has tensors on the meta device (no data): {shown}",
                location=location,
                key=call,
            )
        )
