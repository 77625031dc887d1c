"""Every class of manifest error: exit 2, with file, key path, line, expected and found."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from auditor._util.paths import display_path
from auditor.errors import ManifestInvalid
from auditor.manifest.load import load_manifest
from auditor.run.registry import load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry(autoload=False)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "audit.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _errors(path: Path, registry, **kwargs) -> list:
    with pytest.raises(ManifestInvalid) as info:
        load_manifest(path, registry, **kwargs)
    return info.value.errors


@pytest.fixture
def data_dir(tmp_path: Path, image_folder) -> Path:
    image_folder(tmp_path / "data" / "train", {"a": 2, "b": 2})
    return tmp_path


VALID = """
version: 1
data:
  train:
    format: image_folder
    root: data/train
"""


def test_valid_manifest_loads_with_defaults(data_dir, registry):
    manifest = load_manifest(_write(data_dir, VALID), registry)
    assert manifest.fail_on == "error"
    assert manifest.audit_options["label_distribution"]["max_imbalance_ratio"] == 10
    assert manifest.disabled_audits == []


def test_missing_file(tmp_path, registry):
    (error,) = _errors(tmp_path / "nope.yaml", registry)
    assert "no such file" in error.render() and "nope.yaml" in error.render()


def test_yaml_syntax_error_names_line(tmp_path, registry):
    path = _write(tmp_path, "version: 1\ndata:\n  train: [unclosed\n")
    (error,) = _errors(path, registry)
    assert error.line is not None and "valid YAML" in error.render()


def test_top_level_must_be_mapping(tmp_path, registry):
    (error,) = _errors(_write(tmp_path, "- 1\n- 2\n"), registry)
    assert "mapping" in error.expected and "list" in error.found


def test_misspelt_key_gets_did_you_mean(data_dir, registry):
    path = _write(data_dir, VALID + "optimiser:\n  factory: torch.optim:SGD\n")
    (error,) = _errors(path, registry)
    text = error.render()
    assert error.key == "optimiser"
    assert error.line == 6
    assert "did you mean 'optimizer'" in text
    assert display_path(path) in text  # relative to the working folder when that is shorter


def test_wrong_version(data_dir, registry):
    path = _write(data_dir, VALID.replace("version: 1", "version: 2"))
    (error,) = _errors(path, registry)
    assert error.key == "version" and error.line == 1 and "2 (int)" in error.found


def test_wrong_type_names_expected_and_found(data_dir, registry):
    path = _write(data_dir, VALID + "fail_on: sometimes\n")
    (error,) = _errors(path, registry)
    assert error.key == "fail_on" and "'sometimes'" in error.found
    assert "error" in error.expected


def test_missing_required_key(tmp_path, registry):
    (error,) = _errors(_write(tmp_path, "version: 1\n"), registry)
    assert error.key == "data" and "present" in error.expected


def test_bad_reference_pattern(data_dir, registry):
    path = _write(data_dir, VALID + "model:\n  factory: mypkg.build\n")
    (error,) = _errors(path, registry)
    assert error.key == "model.factory" and error.line == 7 and "module:attr" in error.expected


def test_unknown_data_format(data_dir, registry):
    path = _write(data_dir, VALID.replace("image_folder", "image_foldr"))
    (error,) = _errors(path, registry)
    assert error.key == "data.train.format" and "did you mean 'image_folder'" in error.render()


def test_format_option_missing_and_unknown(data_dir, registry):
    path = _write(
        data_dir,
        """
        version: 1
        data:
          train:
            format: csv
            label_colum: y
        """,
    )
    errors = _errors(path, registry)
    keys = {e.key for e in errors}
    assert "data.train.path" in keys
    unknown = next(e for e in errors if e.key == "data.train.label_colum")
    assert "did you mean 'label_column'" in unknown.render() and unknown.line == 5


def test_unknown_audit_and_bad_audit_option(data_dir, registry):
    path = _write(
        data_dir,
        VALID
        + """
audits:
  label_distributon: {}
""",
    )
    (error,) = _errors(path, registry)
    assert "did you mean 'label_distribution'" in error.render()
    path = _write(
        data_dir,
        VALID
        + """
audits:
  label_distribution: {max_imbalance_ratio: high, min_sample_per_class: 3}
""",
    )
    errors = _errors(path, registry)
    rendered = "\n".join(e.render() for e in errors)
    assert "audits.label_distribution.max_imbalance_ratio" in rendered and "'high' (str)" in rendered
    assert "audits.label_distribution.min_sample_per_class" in rendered
    assert "did you mean 'min_samples_per_class'" in rendered
    assert all(e.line == 8 for e in errors)


def test_all_errors_reported_at_once(data_dir, registry):
    path = _write(data_dir, VALID + "fail_on: x\nnme: y\n")
    errors = _errors(path, registry)
    assert {e.key for e in errors} == {"fail_on", "nme"}


def test_static_import_check_without_importing(tmp_path, registry, image_folder):
    image_folder(tmp_path / "data" / "train", {"a": 1})
    (tmp_path / "src" / "proj").mkdir(parents=True)
    (tmp_path / "src" / "proj" / "__init__.py").write_text("")
    (tmp_path / "src" / "proj" / "model.py").write_text(
        "raise RuntimeError('validate must not import me')\ndef build():\n    pass\n"
    )
    path = _write(tmp_path, VALID + "pythonpath: [src]\nmodel:\n  factory: proj.model:build\n")
    load_manifest(path, registry, check_imports=True)  # exists statically: no import happened

    path = _write(tmp_path, VALID + "pythonpath: [src]\nmodel:\n  factory: proj.model:biuld\n")
    (error,) = _errors(path, registry, check_imports=True)
    assert error.key == "model.factory" and error.line == 8
    assert "defines no 'biuld'" in error.found and "did you mean 'build'" in error.render()

    path = _write(tmp_path, VALID + "pythonpath: [src]\nmodel:\n  factory: proj.modle:build\n")
    (error,) = _errors(path, registry, check_imports=True)
    assert "no module named 'proj.modle'" in error.found


def test_dynamic_exports_accepted_statically(data_dir, registry):
    # torch.nn re-exports with `from .modules import *`: cannot be checked without importing.
    path = _write(data_dir, VALID + "loss:\n  factory: torch.nn:CrossEntropyLoss\n")
    load_manifest(path, registry, check_imports=True)


def test_real_import_failure_names_string_line_and_cause(tmp_path, registry, image_folder):
    from auditor.errors import ManifestError

    image_folder(tmp_path / "data" / "train", {"a": 1})
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "broken.py").write_text("import not_a_real_module_xyz\ndef build():\n    pass\n")
    path = _write(tmp_path, VALID + "pythonpath: [src]\nmodel:\n  factory: broken:build\n")
    manifest = load_manifest(path, registry)
    with pytest.raises(ManifestError) as info:
        manifest.resolver.resolve("broken:build", "model.factory")
    text = info.value.render()
    assert "broken:build" in text and ":8:" in text and "not_a_real_module_xyz" in text


def test_transform_object_or_zero_arg_factory(tmp_path, registry, image_folder):
    image_folder(tmp_path / "data" / "train", {"a": 1})
    (tmp_path / "tfs.py").write_text(
        textwrap.dedent("""
        class Double:
            def __call__(self, x):
                return x * 2
        obj = Double()
        def factory():
            return Double()
        def plain(x):
            return x + 1
    """)
    )
    path = _write(tmp_path, VALID + "pythonpath: ['.']\n")
    resolver = load_manifest(path, registry).resolver
    assert resolver.resolve_transform("tfs:obj", "k")(3) == 6
    assert resolver.resolve_transform("tfs:factory", "k")(3) == 6
    assert resolver.resolve_transform("tfs:plain", "k")(3) == 4  # one-argument function is the transform


def test_yaml_is_loaded_safely(data_dir, registry):
    path = _write(data_dir, VALID + "name: !!python/object/apply:os.system ['echo pwned']\n")
    (error,) = _errors(path, registry)
    assert "valid YAML" in error.expected


def test_unknown_report_format_is_a_manifest_error_with_its_line(data_dir, registry):
    path = _write(data_dir, VALID + "report:\n  formats: [json, htlm]\n")
    (error,) = _errors(path, registry)
    assert (error.key, error.line, error.found) == ("report.formats", 7, "'htlm'")
    assert (
        "one of the installed report formats" in error.expected and "did you mean 'html'?" in error.render()
    )


def test_one_check_of_report_formats_for_manifest_command_line_and_rerender(data_dir, registry, tmp_path):
    from auditor.errors import UsageError
    from auditor.report.files import write_reports
    from auditor.run.api import run_manifest

    path = _write(data_dir, VALID)
    with pytest.raises(
        UsageError,
        match=r"^--format htlm: expected one of the installed report formats .*; "
        r"did you mean 'html'\?$",
    ):
        run_manifest(path, formats=["json", "htlm"], registry=registry)
    assert not (data_dir / "reports").exists(), "no audit may run before the formats are checked"
    with pytest.raises(
        UsageError,
        match=r"^report format pdf: expected one of the installed report formats .*; "
        r"`auditor list` shows the installed report formats$",
    ):
        write_reports({}, ["pdf"], tmp_path / "out", registry)


def test_validating_a_manifest_changes_nothing(data_dir, registry):
    import copy

    from auditor.manifest.load import audit_options, validate_manifest

    path = _write(
        data_dir, VALID + "audits:\n  label_distribution: {max_imbalance_ratio: 4}\n  gradient_probe:\n"
    )
    manifest = load_manifest(path, registry)
    schemas = {name: audit.options_schema for name, audit in registry.audits.items()}
    before = copy.deepcopy((manifest.as_written(), manifest.audit_options, schemas))
    assert validate_manifest(manifest, registry) == []
    assert validate_manifest(manifest, registry) == []
    assert (manifest.as_written(), manifest.audit_options, schemas) == before

    # An audit owns its options: changing them touches neither the manifest nor a schema default.
    options = audit_options(manifest, registry)
    assert options["label_distribution"]["max_imbalance_ratio"] == 4
    options["label_distribution"]["max_imbalance_ratio"] = 99
    options["gradient_probe"]["thresholds"]["loss_ratio"] = 1.0
    assert (manifest.as_written(), manifest.audit_options, schemas) == before
