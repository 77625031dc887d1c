"""``auditor.check``: the audits on live objects, for notebooks and training scripts.

Same audits, same report document as ``auditor run``; the difference is only
where the model, optimizer, loss and data come from: the caller's objects
(:class:`auditor.live._source.LiveSource`) instead of the manifest's factories.
Every manifest key is a keyword. Nothing here imports torch until :func:`check` is called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import UsageError
from auditor.manifest.sections import DEFAULTS
from auditor.run.result import CheckResult

if TYPE_CHECKING:  # pragma: no cover
    from auditor.run.registry import Registry

__all__ = ["CheckResult", "check"]


def check(
    model: Any = None,
    optimizer: Any = None,
    loss: Any = None,
    *,
    train: Any = None,
    val: Any = None,
    splits: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    groups: Mapping[str, Sequence[Any]] | None = None,
    pretrained: Any = None,
    head: str | None = None,
    task: str | Mapping[str, Any] | None = None,
    audits: Sequence[str] | Mapping[str, Any] | None = None,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    static: bool = False,
    fail_on: str = DEFAULTS.fail_on,
    call_timeout_s: float | None = None,
    scheduler: str | None = None,
    report: Mapping[str, Any] | None = None,
    pythonpath: Sequence[str] | None = None,
    version: int = DEFAULTS.version,
    name: str = "auditor.check",
    report_dir: str | Path | None = None,
    formats: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    progress: bool | None = None,
    loss_step: Callable[[Any, Any, int], Any] | None = None,
    lr_scheduler: Any = None,
    load_result: Any = None,
    checkpoint: str | Path | Sequence[str | Path] | None = None,
    registry: Registry | None = None,
    **audit_options: Mapping[str, Any] | None,
) -> CheckResult:
    """Run the installed audits on live objects and return the report.

    ``train``/``val`` and the values of ``splits`` (or ``data``, the manifest's
    name for it) are map-style Datasets or DataLoaders (whose batch size,
    collate function, sampler, ``drop_last`` and workers are used). A Hugging Face
    ``datasets.Dataset`` opens as an ``hf_dataset`` split (its ``image`` and ``label``
    columns; give others as ``{"dataset": ds, "image_column": ..., "label_column": ...}``).
    ``groups`` maps split names to one group id per sample (patient, video, product: ``str``,
    ``int`` or ``None`` for unknown), the manifest's ``group_pattern``/``group_column`` for live
    data; without it a dataset's ``auditor_groups`` attribute (or ``groups``, when it has one entry
    per sample) is used. split_leakage reports groups found in ``train`` and an evaluation split.
    ``model``, ``optimizer`` and ``loss`` are only read; the gradient probe trains deep
    copies. Every other manifest key is a keyword and means what it means in YAML:
    ``pretrained`` (also a Hugging Face image processor object, whose
    ``image_mean``/``image_std``/``do_rescale``/``do_normalize`` are read) and
    ``head`` (``model.*``), ``task`` (``"multiclass"`` or ``{type,
    num_classes}``), ``audits`` (a mapping name -> options configures, and
    ``name: False`` disables, as in the manifest; a list of names selects like
    ``only``: every other audit is ``disabled``), ``fail_on``,
    ``call_timeout_s``, ``scheduler``, ``pythonpath``, ``version``, ``name``,
    ``report`` (``{dir, formats, redact}``: reports are written there, ``dir``
    relative to ``base_dir``), and options per audit as keywords named after
    it, e.g. ``gradient_probe={"steps": 5}``. ``only``/``skip``/``select``/
    ``ignore``/``static`` are the command line's options; ``report_dir`` and
    ``formats`` override ``report``'s ``dir`` and ``formats`` as
    ``--output-dir`` and ``--format`` do. ``loss_step(model, batch, step)``
    replaces ``loss(model(inputs), targets)`` in the gradient probe (the
    Lightning callback passes the module's ``training_step``).

    ``lr_scheduler``: the learning-rate schedule training steps, dry-run on copies by
    gradient_probe: a scheduler object (stepped once per epoch), Lightning's config mapping
    ``{"scheduler": obj, "interval": "step"|"epoch", "frequency": n}`` plus the plan's
    ``"epochs"`` (and ``"steps_per_epoch"``; default: the train loader's length), or the
    manifest's form ``{"factory": "module:attr", "kwargs": {...}, "interval": ..., "epochs": n}``
    (the factory is called with the optimizer). ``load_result``: what your own
    ``load_state_dict(..., strict=False)`` returned (or a list of them), and ``checkpoint``: the
    state-dict file(s) you load into ``model`` (read with ``weights_only=True``, compared by key
    and shape, never loaded into it); frozen_coverage reports a load that filled few of the
    module's keys. A model handed over is audited in the mode it is in: modules with dropout,
    BatchNorm or drop-path left in ``eval()`` where they train are reported.

    Raises :class:`auditor.ManifestInvalid` when an option is wrong (the same
    messages ``auditor run`` gives for a manifest), and ``TypeError`` naming the
    parameter when ``model``, ``optimizer``, ``loss``, ``loss_step`` or ``groups`` is not what
    it must be (a string for a model, say), before anything runs.

    The audits run in this process (live objects cannot be sent to another one):
    an exception, ``sys.exit`` or ``KeyboardInterrupt`` raised by the caller's code,
    and a call past ``call_timeout_s``, become findings (worded by the plugin that owns
    failures of user code) and the report is still returned; ``os._exit`` or a crash in C code ends the caller's process with
    it. docs/reliability.md lists which path keeps which guarantee.
    """
    from auditor.live._source import LIVE_PATH_NAME, LiveObjects, LiveSource, split_options, unpack_split
    from auditor.manifest._yaml import LineMap
    from auditor.manifest.load import manifest_from_mapping
    from auditor.manifest.resolve import Resolver
    from auditor.report.document import build_report
    from auditor.run.context import RunContext
    from auditor.run.registry import load_registry
    from auditor.run.runner import run_audits, select_audits

    _require_types(model=model, optimizer=optimizer, loss=loss, loss_step=loss_step)
    registry = registry or load_registry()
    named = _named_splits(train, val, splits, data)
    _require_groups(groups, named)
    datasets: dict[str, Any] = {}
    loaders = {}
    options: dict[str, dict[str, Any]] = {}
    for split_name, value in named.items():
        value, options[split_name] = split_options(split_name, value)
        datasets[split_name], settings = unpack_split(split_name, value)
        if settings is not None:
            loaders[split_name] = settings
    schedule, schedule_section = _lr_schedule(lr_scheduler)
    objects = LiveObjects(
        model=model,
        optimizer=optimizer,
        loss=loss,
        datasets=datasets,
        loaders=loaders,
        loss_step=loss_step,
        load_results=_listed(load_result, "load_result"),
        checkpoints=tuple(str(p) for p in _listed(checkpoint, "checkpoint")),
        lr_schedule=schedule,
        split_options=options,
        groups={str(k): v for k, v in (groups or {}).items()},
    )
    audit_section = _audit_section(audits, audit_options, registry)
    probe_batch = loaders["train"].batch_size if "train" in loaders else None
    if probe_batch and audit_section is not None and isinstance(audit_section.get("gradient_probe"), dict):
        audit_section["gradient_probe"].setdefault("batch_size", probe_batch)
    elif probe_batch and audit_section is None and "gradient_probe" in registry.audits:
        audit_section = {"gradient_probe": {"batch_size": probe_batch}}
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    path = base / LIVE_PATH_NAME
    raw: dict[str, Any] = {"version": version, "name": name}
    if pythonpath is not None:
        raw["pythonpath"] = list(pythonpath) if not isinstance(pythonpath, str) else pythonpath
    if task is not None:
        raw["task"] = _task(task)
    model_section = {
        key: value for key, value in (("pretrained", _plain(pretrained)), ("head", head)) if value is not None
    }
    if model is not None and model_section:
        raw["model"] = model_section
    if audit_section is not None:
        raw["audits"] = audit_section
    if schedule_section is not None:
        raw["lr_scheduler"] = schedule_section
    for key, value in (("report", report), ("scheduler", scheduler), ("call_timeout_s", call_timeout_s)):
        if value is not None:
            raw[key] = dict(value) if isinstance(value, Mapping) else value
    raw["fail_on"] = fail_on
    folders = [base / str(p) for p in raw.get("pythonpath") or [] if isinstance(p, str)]
    resolver = Resolver(path, folders, LineMap())
    external = [section for section in ("model", "optimizer", "loss", "data") if _given(objects, section)]
    manifest = manifest_from_mapping(raw, path, resolver, registry, external=external)
    if schedule_section is not None:
        from auditor.run.lr_schedule import from_section

        objects.lr_schedule = from_section(manifest.lr_scheduler, manifest.resolver)
    context = RunContext(
        manifest,
        registry,
        source=LiveSource(objects, registry, path, resolver),
        use_cache=cache_dir is not None,
        cache_dir=Path(cache_dir).resolve() if cache_dir is not None else None,
        progress=_progress(progress),
    )
    selection = _selection(audits, only, skip, select, ignore, static, fail_on)
    started_at = datetime.now(timezone.utc)
    with context.progress("auditing", len(select_audits(context, selection))) as bar:
        result = run_audits(context, selection, on_audit_done=lambda _: bar.advance())
    document = build_report(context, result, started_at)
    if report is not None and manifest.report.redact:
        from auditor.report._redact import redact

        document = redact(document, base)
    outcome = CheckResult(document, result.findings, registry)
    if report is not None and report_dir is None:
        report_dir = base / Path(manifest.report.dir).expanduser()
    if report is not None and formats is None:
        formats = manifest.report.formats
    if report_dir is not None:
        outcome.save(report_dir, formats)
    return outcome


def _listed(value: Any, keyword: str) -> tuple[Any, ...]:
    """One value or a list/tuple of them (``load_result=``, ``checkpoint=``), as a tuple."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)) and not hasattr(value, "missing_keys"):
        return tuple(value)  # _IncompatibleKeys is a namedtuple: one result, not a list of two
    if keyword == "load_result" and not hasattr(value, "missing_keys"):
        raise UsageError(
            f"auditor.check: load_result= expected what load_state_dict returned (with missing_keys and "
            f"unexpected_keys), found {type(value).__name__}; hint: result = model.load_state_dict(sd, "
            "strict=False), then load_result=result"
        )
    return (value,)


def _lr_schedule(value: Any) -> tuple[Any, dict[str, Any] | None]:
    """``(live schedule, None)`` for a scheduler object or Lightning's config; ``(None, section)`` for a factory."""
    if value is None:
        return None, None
    if isinstance(value, Mapping) and "factory" in value:
        return None, dict(value)  # validated by the manifest schema like the YAML key, built below
    from auditor.run.lr_schedule import from_live

    return from_live(value), None


def _given(objects: Any, section: str) -> bool:
    """True when the caller handed over the objects of ``section``."""
    if section == "data":
        return bool(objects.datasets)
    if section == "loss":
        return objects.loss is not None or objects.loss_step is not None
    return getattr(objects, section) is not None


def _selection(
    audits: Sequence[str] | Mapping[str, Any] | None,
    only: Sequence[str],
    skip: Sequence[str],
    select: Sequence[str],
    ignore: Sequence[str],
    static: bool,
    fail_on: str,
) -> Any:
    """The command line's selection; ``audits=`` as a list (or one name) selects like ``--only``."""
    from auditor.run.runner import Selection

    listed = (
        [audits]
        if isinstance(audits, str)
        else []
        if audits is None or isinstance(audits, Mapping)
        else list(audits)
    )
    if listed and only:
        raise UsageError(
            "auditor.check: audits= as a list selects audits like only=; found both; hint: pass one of them"
        )
    return Selection(
        only=[str(a) for a in listed] or list(only),
        skip=skip,
        select=select,
        ignore=ignore,
        static=static,
        fail_on=fail_on,
        only_by="auditor.check(audits=[...])" if listed else "only=",
        skip_by="skip=",
    )


#: parameter -> (test, what it must be)
_EXPECTED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model": (lambda v: callable(v) and hasattr(v, "named_parameters"), "a torch.nn.Module"),
    "optimizer": (
        lambda v: hasattr(v, "param_groups"),
        "a torch.optim.Optimizer over the model's parameters",
    ),
    "loss": (callable, "a callable loss such as torch.nn.CrossEntropyLoss()"),
    "loss_step": (callable, "a callable (model, batch, step) -> loss"),
}


def _require_types(**given: Any) -> None:
    """``TypeError`` naming the first parameter that holds the wrong kind of object (None is allowed)."""
    for name, value in given.items():
        if value is None:
            continue
        test, expected = _EXPECTED[name]
        if not test(value):
            shown = repr(value) if isinstance(value, (str, bytes, int, float)) else type(value).__name__
            hint = " (auditor.check takes the objects; a manifest's 'module:attr' goes to `auditor run`)"
            raise TypeError(
                f"auditor.check: {name}: expected {expected}, found {shown[:80]}"
                + (hint if isinstance(value, str) else "")
            )


#: Types a group id may have (numpy and torch scalars are read through ``.item()``).
_GROUP_ID_TYPES = (str, int, float, type(None))


def _require_groups(groups: Any, named: Mapping[str, Any]) -> None:
    """``TypeError`` naming ``groups`` (and the entry) when it is not a mapping of split name -> ids."""
    if groups is None:
        return
    if not isinstance(groups, Mapping):
        raise TypeError(
            f"auditor.check: groups: expected a mapping of split name -> one group id per sample, found "
            f"{type(groups).__name__}; hint: groups={{'train': train_ids, 'val': val_ids}}"
        )
    for split_name, ids in groups.items():
        if not isinstance(split_name, str) or split_name not in named:
            raise TypeError(
                f"auditor.check: groups: expected keys naming the splits given {sorted(named)}, found "
                f"{split_name!r}; hint: one entry per split, e.g. groups={{'train': train_ids, ...}}"
            )
        if isinstance(ids, (str, bytes, Mapping)) or (
            not isinstance(ids, Sequence) and not hasattr(ids, "tolist")
        ):
            raise TypeError(
                f"auditor.check: groups[{split_name!r}]: expected a sequence of group ids (one per sample), "
                f"found {type(ids).__name__}; hint: a list, tuple, numpy array or pandas Series of str/int"
            )
        values = ids.tolist() if hasattr(ids, "tolist") else ids
        for index, value in enumerate(values):
            if not isinstance(value, _GROUP_ID_TYPES) and not (
                hasattr(value, "item") and getattr(value, "ndim", 1) == 0
            ):
                raise TypeError(
                    f"auditor.check: groups[{split_name!r}][{index}]: expected a group id (str, int or None), "
                    f"found {type(value).__name__}; hint: ids[i] names the group (patient, video, ...) of "
                    "sample i"
                )


def _named_splits(
    train: Any, val: Any, splits: Mapping[str, Any] | None, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    named: dict[str, Any] = {}
    if train is not None:
        named["train"] = train
    if val is not None:
        named["val"] = val
    for keyword, given in (("splits", splits), ("data", data)):
        for split_name, value in dict(given or {}).items():
            if split_name in named:
                raise UsageError(
                    f"auditor.check: split {split_name!r} is given twice (as a keyword and in {keyword}=); "
                    "hint: pass it once"
                )
            named[str(split_name)] = value
    return named


def _audit_section(
    audits: Sequence[str] | Mapping[str, Any] | None, options: Mapping[str, Any], registry: Registry
) -> dict[str, Any] | None:
    """The manifest's ``audits`` mapping from the ``audits=`` keyword and per-audit option keywords."""
    unknown = [key for key in options if key not in registry.audits]
    if unknown:
        from auditor._util.suggest import did_you_mean

        hint = did_you_mean(unknown[0], registry.audits)
        raise TypeError(
            f"auditor.check() got an unexpected keyword {unknown[0]!r}: expected a parameter of check() or the "
            f"name of an installed audit {sorted(registry.audits)} (its options)"
            + (f"; hint: {hint}" if hint else "")
        )
    # A mapping configures (name: false disables); a list selects, like --only (see _selected).
    if isinstance(audits, Mapping):
        section = {str(k): (dict(v) if isinstance(v, Mapping) else v) for k, v in audits.items()}
    else:
        section = None if not options else {}
    for audit, value in options.items():
        if section is not None and section.get(audit) is False:
            raise UsageError(
                f"auditor.check: options for {audit!r} were given but audits= disables it ({audit!r}: False); "
                f"hint: drop one of the two"
            )
        assert section is not None
        section[audit] = dict(value) if isinstance(value, Mapping) else value
    return section


def _task(task: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if task is None:
        return None
    if isinstance(task, str):
        return {"type": task}
    return dict(task)


def _plain(value: Any) -> Any:
    """``pretrained`` as the manifest spells it: a torchvision weights enum becomes 'torchvision:Enum.MEMBER'."""
    if value is None or isinstance(value, (str, Mapping)):
        return dict(value) if isinstance(value, Mapping) else value
    if hasattr(value, "image_mean") and hasattr(value, "do_rescale"):
        return _processor_settings(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)  # a Hugging Face model folder
    enum_type = type(value).__name__
    member = getattr(value, "name", None)
    if member and type(value).__module__.startswith("torchvision"):
        return f"torchvision:{enum_type}.{member}"
    return value


def _processor_settings(processor: Any) -> dict[str, Any]:
    """A Hugging Face image processor as the manifest's pretrained mapping (its attributes, read as they are)."""
    kind = type(processor).__name__

    def numbers(attribute: str) -> list[float] | None:
        value = getattr(processor, attribute, None)
        if value is None:
            return None
        if isinstance(value, (int, float)):
            return [float(value)] * 3
        return [float(v) for v in value]

    mean, std = numbers("image_mean"), numbers("image_std")
    if mean is None or std is None:
        raise UsageError(
            f"auditor.check: pretrained= is a {kind} without image_mean/image_std; expected an image processor "
            "that says what the weights were trained on; hint: pass pretrained={'mean': [...], 'std': [...]}"
        )
    settings: dict[str, Any] = {
        "mean": mean,
        "std": std,
        "do_rescale": bool(getattr(processor, "do_rescale", True)),
        "do_normalize": bool(getattr(processor, "do_normalize", True)),
        "image_processor": kind,
    }
    factor = getattr(processor, "rescale_factor", None)
    if isinstance(factor, (int, float)) and factor > 0:
        settings["rescale_factor"] = float(factor)
    size = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
    size = size or getattr(processor, "size", None)
    height = width = None
    if isinstance(size, Mapping) or hasattr(size, "get"):
        height, width = size.get("height"), size.get("width")
    elif isinstance(size, int):
        height = width = size
    if isinstance(height, int) and isinstance(width, int):
        settings["input_size"] = [len(mean), height, width]
    return settings


def _progress(wanted: bool | None) -> Any:
    from auditor.live._notebook import in_notebook

    if wanted is False:
        return None
    if in_notebook():
        from auditor.live._notebook import NotebookProgress

        return NotebookProgress()
    import sys

    if wanted or sys.stderr.isatty():
        from auditor.report.console import make_console
        from auditor.run._progress import RichProgress

        return RichProgress(make_console(stderr=True))
    return None
