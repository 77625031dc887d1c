"""Loading and validating a manifest (``audit.yaml``, ``version: 1``).

Validation runs in three layers, and every problem of every layer is reported
at once: the manifest's own JSON Schema, each split against its data format's
schema, each audit's options against the audit's schema. Every message names
the file, the key path and its line, what was expected and what was found.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from auditor._util.schemas import load_schema
from auditor._util.suggest import did_you_mean
from auditor.errors import ManifestError, ManifestInvalid
from auditor.manifest._read import locate_manifest, read_manifest_text
from auditor.manifest._yaml import MAX_DEPTH, MAX_EXPANDED, LineMap, YamlRefused, load_with_lines
from auditor.manifest.resolve import Resolver
from auditor.manifest.sections import (
    FactorySection,
    LRSchedulerSection,
    ManifestSections,
    ModelSection,
    ReportSection,
    TaskSection,
)
from auditor.report.format import unknown_report_formats

if TYPE_CHECKING:  # pragma: no cover
    from auditor.run.registry import Registry

__all__ = [
    "Manifest",
    "audit_options",
    "load_manifest",
    "manifest_from_mapping",
    "validate_against",
    "validate_manifest",
]

#: The manifest a folder stands for: `auditor run DIR` reads DIR/audit.yaml.
DEFAULT_NAME = "audit.yaml"
#: Keys whose values are ``module:attr`` strings; ``validate`` checks they exist.
_REF_KEYS = ("model.factory", "optimizer.factory", "loss.factory", "lr_scheduler.factory")


@dataclass
class Manifest:
    """A loaded manifest: typed sections (:attr:`sections`) built from the validated YAML.

    ``raw`` is the YAML as parsed; only this package reads it (validation words its errors
    from the shape as written). Everyone else reads the typed attributes.
    """

    path: Path
    raw: dict[str, Any]
    lines: LineMap
    resolver: Resolver
    audit_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Sections whose objects the caller hands over (``auditor.check``) instead of factories:
    #: validation asks for no factory there, and ``data`` need not be written.
    external: frozenset[str] = frozenset()

    @functools.cached_property
    def sections(self) -> ManifestSections:
        """Every top-level key, typed, defaults filled in (read only after validation)."""
        return ManifestSections.from_mapping(self.raw)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.sections.name or self.path.parent.name

    @property
    def model(self) -> ModelSection | None:
        return self.sections.model

    @property
    def optimizer(self) -> FactorySection | None:
        return self.sections.optimizer

    @property
    def loss(self) -> FactorySection | None:
        return self.sections.loss

    @property
    def lr_scheduler(self) -> LRSchedulerSection | None:
        return self.sections.lr_scheduler

    @property
    def task(self) -> TaskSection:
        return self.sections.task

    @property
    def data(self) -> dict[str, dict[str, Any]]:
        """Split name -> the split's options as written; a copy, so callers cannot change the manifest."""
        return {name: dict(split) for name, split in self.sections.data.items()}

    @property
    def disabled_audits(self) -> list[str]:
        """Audits the manifest turns off (``name: false``). ``audits:`` configures; it never selects."""
        audits = self.sections.audits or {}
        return [str(name) for name, value in audits.items() if value is False]

    @property
    def report(self) -> ReportSection:
        return self.sections.report

    @property
    def fail_on(self) -> str:
        return self.sections.fail_on

    @property
    def scheduler(self) -> str | None:
        """``scheduler``: ``local`` or a Dask scheduler address (``tcp://HOST:PORT``), or None."""
        return self.sections.scheduler

    @property
    def call_timeout_s(self) -> float:
        return self.sections.call_timeout_s

    def as_written(self) -> dict[str, Any]:
        """The manifest as parsed from YAML, a deep copy: for tools that show or compare it as written."""
        return copy.deepcopy(self.raw)

    def line(self, key: str) -> int | None:
        return self.lines.line(key)

    def error(self, key: str, expected: str, found: str, hint: str = "") -> ManifestError:
        return ManifestError(self.path, key, expected, found, line=self.line(key), hint=hint)


def manifest_file(given: Path | str) -> Path:
    """The file a manifest argument names: `auditor run DIR` means DIR/audit.yaml (SPEC v0.2)."""
    path = Path(given)
    try:
        return path / DEFAULT_NAME if path.is_dir() else path
    except OSError:  # a name too long, a loop: load_manifest words it
        return path


def load_manifest(path: Path | str, registry: Registry, *, check_imports: bool = False) -> Manifest:
    """Read, parse and validate ``path``; raise ManifestInvalid with every problem found."""
    path = locate_manifest(Path(path), DEFAULT_NAME)
    text = read_manifest_text(path)  # bounded; every OS error worded with the path
    path = path.resolve()
    try:
        raw, lines = load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ManifestInvalid(
            [
                ManifestError(
                    path,
                    "",
                    "valid YAML",
                    f"a syntax error: {getattr(exc, 'problem', exc)}",
                    line=(mark.line + 1) if mark else None,
                )
            ]
        ) from exc
    except YamlRefused as exc:
        raise ManifestInvalid(_refused(path, exc)) from exc
    except RecursionError as exc:  # a last guard: the bounded loader should have refused it
        raise ManifestInvalid(
            [ManifestError(path, "", f"nesting of at most {MAX_DEPTH} levels", "nesting too deep to read")]
        ) from exc
    if not isinstance(raw, dict):
        raise ManifestInvalid(
            [ManifestError(path, "", "a mapping with 'version: 1' at the top", _describe(raw), line=1)]
        )
    pythonpath = [path.parent / str(p) for p in raw.get("pythonpath") or [] if isinstance(p, str)]
    manifest = Manifest(path=path, raw=raw, lines=lines, resolver=Resolver(path, pythonpath, lines))
    errors = validate_manifest(manifest, registry)
    if check_imports:
        # One pass: the deeper checks run on every key the schema found sound, so a user sees
        # every problem at once instead of a few per round.
        bad = {error.key for error in errors}
        errors.extend(e for e in _check_imports(manifest) if not _under(e.key, bad))
        errors.extend(_check_data(manifest, registry, bad))
        errors.extend(_check_model(manifest, bad))
    if errors:
        raise ManifestInvalid(errors)
    manifest.audit_options = audit_options(manifest, registry)
    return manifest


def manifest_from_mapping(
    raw: dict[str, Any],
    path: Path,
    resolver: Resolver,
    registry: Registry,
    *,
    external: Iterable[str] = (),
) -> Manifest:
    """A manifest that exists only in memory (``auditor.check``), validated exactly as a file is.

    ``external``: sections (``model``, ``optimizer``, ``loss``, ``data``) whose objects the caller
    holds; their factories are not asked for, the rest of them is validated as written.
    """
    manifest = Manifest(path=path, raw=raw, lines=LineMap(), resolver=resolver, external=frozenset(external))
    errors = validate_manifest(manifest, registry)
    if errors:
        raise ManifestInvalid(errors)
    manifest.audit_options = audit_options(manifest, registry)
    return manifest


def _refused(path: Path, refused: YamlRefused) -> list[ManifestError]:
    errors = [
        ManifestError(
            path,
            ".".join(map(str, duplicate.path)),
            "each key once in a mapping",
            f"it twice, on lines {duplicate.first_line} and {duplicate.second_line}",
            line=duplicate.second_line,
            hint="YAML would silently keep only the last one; remove or rename one of them",
        )
        for duplicate in refused.duplicates
    ]
    if refused.expanded is not None:
        errors.append(
            ManifestError(
                path,
                "",
                f"aliases (*name) that expand to at most {MAX_EXPANDED} values",
                f"aliases nested so deep that they expand to more than {MAX_EXPANDED} (an alias bomb?)",
                hint="write the values out, or nest fewer aliases",
            )
        )
    if refused.depth_line is not None:
        how = "once its aliases are expanded" if refused.through_aliases else "as written"
        errors.append(
            ManifestError(
                path,
                "",
                f"values nested at most {MAX_DEPTH} levels deep",
                f"nesting deeper than that {how}",
                line=refused.depth_line,
                hint="a manifest is a few levels of keys; flatten the structure",
            )
        )
    return errors


def _key_types(manifest: Manifest) -> Iterable[ManifestError]:
    """Names that YAML read as numbers, booleans or null: later code names splits by strings."""
    for section in ("", "data", "audits"):
        mapping = manifest.raw if not section else manifest.raw.get(section)
        if not isinstance(mapping, Mapping):
            continue
        for key in mapping:
            if isinstance(key, str) and key:
                continue
            written = (
                {None: "null", True: "true", False: "false"}.get(key, str(key))
                if not isinstance(key, (int, float)) or isinstance(key, bool)
                else str(key)
            )
            where = ".".join(p for p in (section, written) if p)
            what = {"": "a top-level key", "data": "a split name", "audits": "an audit name"}[section]
            yield manifest.error(
                where,
                f"{what} that is a non-empty string",
                _describe(key),
                hint=f'YAML reads unquoted 1, 1.5, true, null and ~ as non-strings; quote it: "{written}":',
            )


def validate_manifest(manifest: Manifest, registry: Registry) -> list[ManifestError]:
    """Every problem of ``manifest`` against the schemas and the installed plugins, in one pass.

    Only reads: neither ``manifest`` nor any plugin's schema changes (a test compares deep copies),
    so validating twice, or validating and then running, sees the same manifest.
    """
    return list(_problems(manifest, registry))


def _non_finite(manifest: Manifest) -> Iterable[ManifestError]:
    """NaN and infinity anywhere (YAML's ``.nan``, ``.inf``): no setting means them.

    JSON Schema's ``minimum`` lets NaN through (every comparison with it is false), and an
    infinite ``call_timeout_s`` overflows the deadline clock; so both are refused by name here
    rather than crashing an audit later. A run without a practical limit writes a large number.
    """
    import math

    stack: list[tuple[str, Any]] = [("", manifest.raw)]
    seen: set[int] = set()  # an alias reused (or one that contains itself) is walked once
    while stack:
        key, value = stack.pop()
        if isinstance(value, (Mapping, list)):
            if id(value) in seen:
                continue
            seen.add(id(value))
        if isinstance(value, float) and not math.isfinite(value):
            written = ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
            yield manifest.error(
                key,
                "a finite number",
                written,
                hint="NaN and infinity are no setting; for no practical limit write a large number "
                "(e.g. call_timeout_s: 86400)",
            )
        elif isinstance(value, Mapping):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{key}.{i}", v) for i, v in enumerate(value))


def _problems(manifest: Manifest, registry: Registry) -> Iterable[ManifestError]:
    non_finite = list(_non_finite(manifest))
    if non_finite:
        yield from non_finite
        return  # every schema check below would compare with NaN and say nothing true
    key_problems = list(_key_types(manifest))
    if key_problems:
        yield from key_problems
        return  # the schema layers would only trip over the same keys
    yield from validate_against(_schema(manifest.external), manifest.raw, manifest, "")
    # The deeper layers run on whatever part of the shape is sound, so one pass reports all.
    formats = registry.data_formats
    data = manifest.raw.get("data")
    for split_name, split in data.items() if isinstance(data, Mapping) else ():
        key = f"data.{split_name}"
        if not isinstance(split, Mapping) or not isinstance(split.get("format"), str):
            continue  # already reported by the manifest schema
        fmt = formats.get(split["format"])
        if fmt is None:
            yield manifest.error(
                f"{key}.format",
                f"one of the installed data formats {sorted(formats)}",
                repr(split["format"]),
                hint=did_you_mean(split["format"], formats),
            )
            continue
        yield from validate_against(fmt.schema(), split, manifest, key)
    audits = registry.audits
    selected = manifest.raw.get("audits")
    for audit_name, options in selected.items() if isinstance(selected, Mapping) else ():
        key = f"audits.{audit_name}"
        audit = audits.get(audit_name)
        if audit is None:
            broken = next((b for b in registry.broken if b.name == audit_name), None)
            hint = (
                f"plugin {broken.name!r} from {broken.distribution!r} failed to load: {broken.error}"
                if broken
                else did_you_mean(audit_name, audits) or "`auditor list` shows installed audits"
            )
            yield manifest.error(
                key, f"one of the installed audits {sorted(audits)}", repr(audit_name), hint=hint
            )
            continue
        options = (
            {} if options is None or isinstance(options, bool) else options
        )  # false: off; true: defaults
        if not isinstance(options, Mapping):
            continue  # already reported by the manifest schema
        yield from validate_against(audit.options_schema, options, manifest, key)
    report = manifest.raw.get("report")
    formats = report.get("formats") if isinstance(report, Mapping) else None
    if isinstance(formats, list):
        names = [name for name in formats if isinstance(name, str)]  # others: reported by the schema
        for unknown in unknown_report_formats(names, registry.report_formats):
            yield manifest.error("report.formats", unknown.expected, repr(unknown.name), hint=unknown.hint)


def _schema(external: frozenset[str]) -> dict[str, Any]:
    """The manifest schema, minus the factories and the ``data`` key that ``external`` objects stand for."""
    schema = load_schema("manifest")
    if not external:
        return schema
    schema = copy.deepcopy(schema)
    schema["required"] = [key for key in schema.get("required", []) if key not in external]
    properties = schema["properties"]
    for key in external & {"model", "optimizer", "loss", "lr_scheduler"}:
        section = properties[key]
        if "$ref" in section:  # optimizer/loss share the factory definition: relax a copy of it
            name = section["$ref"].rsplit("/", 1)[-1]
            section = {**copy.deepcopy(schema["$defs"][name]), "description": section.get("description", "")}
        # A live scheduler may come without planned epochs: the dry run then says it could not plan.
        section["required"] = [r for r in section.get("required", []) if r not in ("factory", "epochs")]
        properties[key] = section
    return schema


def audit_options(manifest: Manifest, registry: Registry) -> dict[str, dict[str, Any]]:
    """Every installed audit's options: the manifest's (valid) ones with the schema's defaults filled in."""
    listed = manifest.raw.get("audits")
    listed = listed if isinstance(listed, Mapping) else {}
    return {
        name: with_defaults(audit.options_schema, _options(listed.get(name)))
        for name, audit in registry.audits.items()
    }


def _options(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}  # None, true and false: the defaults


def with_defaults(schema: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``options`` with the schema's top-level ``default`` values filled in.

    Copies, so an audit that changes its options changes neither the manifest nor the schema's defaults.
    """
    filled = copy.deepcopy(dict(options))
    for name, prop in (schema.get("properties") or {}).items():
        if name not in filled and isinstance(prop, Mapping) and "default" in prop:
            filled[name] = copy.deepcopy(prop["default"])
    return filled


def validate_against(
    schema: Mapping[str, Any], instance: Any, manifest: Manifest, prefix: str
) -> list[ManifestError]:
    """Validate ``instance`` (found at key ``prefix``) and word each error for people."""
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.validator)
    )
    return [_word(error, manifest, prefix) for error in _leaf_errors(errors)]


def _leaf_errors(errors: list[Any]) -> list[Any]:
    """For oneOf/anyOf failures, keep the most specific branch error."""
    result = []
    for error in errors:
        if error.validator in ("oneOf", "anyOf") and error.context:
            deepest = max(
                error.context, key=lambda e: (len(e.absolute_path), -e.relative_schema_path.__len__())
            )
            if len(deepest.absolute_path) > len(error.absolute_path):
                result.append(deepest)
                continue
        result.append(error)
    return result


def _word(error: Any, manifest: Manifest, prefix: str) -> ManifestError:
    path = [str(p) for p in error.absolute_path]
    key = ".".join(p for p in [prefix, *path] if p)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties":
        allowed = sorted((schema.get("properties") or {}).keys())
        unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, Mapping) else []
        bad = unknown[0] if unknown else "?"
        bad_key = ".".join(p for p in [key, bad] if p)
        return ManifestError(
            manifest.path,
            bad_key,
            f"one of the keys {allowed}",
            f"unknown key {bad!r}",
            line=manifest.line(bad_key),
            hint=did_you_mean(bad, allowed),
        )
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return ManifestError(
            manifest.path,
            ".".join(p for p in [key, missing] if p),
            "this key to be present",
            "it missing",
            line=manifest.line(key),
            hint=str(schema.get("properties", {}).get(missing, {}).get("description", "")),
        )
    expected = _expected(error.validator, error.validator_value, schema)
    if len(path) == 2 and path[0] == "ignore" and not prefix and isinstance(error.instance, str):
        # The migration of a bare code (the --ignore form) to an entry with its reason, in its own words.
        code = error.instance.strip()
        return ManifestError(
            manifest.path,
            key,
            "an entry {code, reason} (an accepted finding needs a reason)",
            _describe(error.instance),
            line=manifest.line(key),
            hint=f"write '- {{code: {code}, reason: why it is accepted}}'; to drop {code} without a "
            f"reason in one run only, pass --ignore {code} on the command line",
        )
    return ManifestError(
        manifest.path,
        key,
        expected,
        _describe(error.instance),
        line=manifest.line(key),
        hint=str(schema.get("description", ""))
        if error.validator != "enum"
        else did_you_mean(str(error.instance), [str(v) for v in error.validator_value]),
    )


def _expected(validator: str, value: Any, schema: Mapping[str, Any]) -> str:
    if validator == "type":
        return f"a value of type {value if isinstance(value, str) else ' or '.join(value)}"
    if validator == "enum":
        return f"one of {value}"
    if validator == "const":
        return repr(value)
    if validator == "pattern":
        return f"a string matching {value}" + (" (a 'module:attr' reference)" if ":" in value else "")
    if validator in ("minimum", "exclusiveMinimum"):
        return f"a number {'>=' if validator == 'minimum' else '>'} {value}"
    if validator in ("maximum", "exclusiveMaximum"):
        return f"a number {'<=' if validator == 'maximum' else '<'} {value}"
    if validator in ("minItems", "maxItems", "minLength"):
        return f"{validator} {value}"
    if validator in ("oneOf", "anyOf"):
        return str(schema.get("description") or "one of the documented forms")
    return f"{validator} {value!r}"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _section(manifest: Manifest, key: str) -> dict[str, Any]:
    """A section as written, for the checks that also run on manifests the schema rejected."""
    value = manifest.raw.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _under(key: str, bad: set[str]) -> bool:
    """True when ``key`` or a key above or below it already has a problem (reported once, not twice)."""
    return any(key == b or key.startswith(b + ".") or b.startswith(key + ".") for b in bad)


def _check_data(manifest: Manifest, registry: Registry, bad: set[str]) -> list[ManifestError]:
    """Each split's format checks what it can without reading a sample: folders, table headers."""
    from auditor.data._groups import check_group_keys
    from auditor.data.splits import SplitSpec

    errors: list[ManifestError] = []
    data = manifest.raw.get("data")
    for name, split in data.items() if isinstance(data, Mapping) else ():
        key = f"data.{name}"
        fmt = registry.data_formats.get(split.get("format")) if isinstance(split, Mapping) else None
        if fmt is None or _under(key, bad):
            continue
        spec = SplitSpec(
            name=name,
            config=dict(split),
            base_dir=manifest.base_dir,
            resolver=manifest.resolver,
            location=key,
        )
        errors.extend(check_group_keys(spec, fmt))  # group_pattern / group_column, whatever the format
        if fmt.check is None:
            continue
        try:
            errors.extend(fmt.check(spec))
        except Exception as exc:
            errors.append(
                manifest.error(
                    key,
                    f"data format {fmt.name!r} to check the split",
                    f"its check crashed: {type(exc).__name__}: {exc}",
                )
            )
    return errors


def _check_model(manifest: Manifest, bad: set[str]) -> list[ManifestError]:
    """``model.pretrained`` names that exist, and a ``model.head`` the architecture can have."""
    from auditor.manifest._head_names import check_head
    from auditor.manifest._pretrained_names import check_pretrained
    from auditor.manifest.resolve import split_ref

    model = _section(manifest, "model")
    pretrained = model.get("pretrained")
    if not isinstance(pretrained, str) or _under("model.pretrained", bad):
        return []
    errors = []
    from auditor.manifest._hf_pretrained import HFPretrainedProblem, is_hf_pretrained, read_hf_pretrained

    if is_hf_pretrained(pretrained):
        try:
            read_hf_pretrained(pretrained, manifest.base_dir)
        except HFPretrainedProblem as exc:
            errors.append(
                manifest.error(
                    "model.pretrained",
                    "a local Hugging Face model folder (or a hub id in the local cache), "
                    "torchvision:<WeightsEnum.member> or timm:<model name>",
                    exc.found,
                    hint=exc.hint,
                )
            )
        return errors
    problem = check_pretrained(pretrained)
    if problem is not None:
        errors.append(
            manifest.error(
                "model.pretrained",
                f"weights or a model that {pretrained.partition(':')[0]} provides",
                problem.found,
                hint=problem.hint,
            )
        )
    head = model.get("head")
    if not isinstance(head, str) or _under("model.head", bad):
        return errors
    factory = model.get("factory")
    source = None
    if isinstance(factory, str) and not _under("model.factory", bad):
        source = manifest.resolver.module_source(split_ref(factory)[0])
    pythonpath = [Path(p) for p in manifest.resolver.pythonpath]
    # A misspelt weights member still names its architecture (ResNet18_Weights: resnet.py).
    wrong = check_head(head, pretrained, source, pythonpath)
    if wrong is not None:
        errors.append(
            manifest.error(
                "model.head", "the name of the model's classifier submodule", wrong[0], hint=wrong[1]
            )
        )
    return errors


def _check_imports(manifest: Manifest) -> list[ManifestError]:
    errors = []
    refs: list[tuple[str, str]] = []
    for key in _REF_KEYS:
        section, _, leaf = key.partition(".")
        value = _section(manifest, section).get(leaf)
        if isinstance(value, str):
            refs.append((key, value))
    data = manifest.raw.get("data")
    for split_name, split in data.items() if isinstance(data, Mapping) else ():
        if not isinstance(split, Mapping):
            continue
        for leaf in ("transform", "factory", "collate_fn"):
            value = split.get(leaf)
            if isinstance(value, str) and ":" in value:
                refs.append((f"data.{split_name}.{leaf}", value))
    for key, ref in refs:
        problem = manifest.resolver.check(ref, key)
        if problem is not None:
            errors.append(problem)
    return errors
