"""`auditor validate` catches, in one pass and each once, what `auditor run` would reject, without torch."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART

from auditor.testing import run_cli


def _project(tmp_path: Path, **changes: object) -> Path:
    """A copy of the quickstart with ``changes`` (dotted keys) applied to its manifest."""
    project = tmp_path / "project"
    shutil.copytree(
        QUICKSTART, project, ignore=shutil.ignore_patterns("reports", ".auditor-cache", "__pycache__")
    )
    manifest = yaml.safe_load((project / "audit.yaml").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = manifest
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    (project / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return project


def _validate(project: Path) -> tuple[int, str]:
    done = run_cli("validate", "audit.yaml", cwd=project)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def _write_table(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def test_the_quickstart_is_valid(tmp_path):
    code, out = _validate(_project(tmp_path))
    assert code == 0, out
    assert out.startswith("ok ")


def test_every_mistake_in_one_pass_each_once(tmp_path):
    """The user's three rounds of validate/run collapse into one validate that lists them all."""
    project = _project(
        tmp_path,
        **{
            "model.pretrained": "torchvision:ResNet18_Weights.IMAGENET1K_V2",
            "model.head": "classifier",
            "optimizer.factory": "quickstart.train:make_optimiser",
            "data.train.root": "data/trian",
            "data.val": {"format": "csv", "path": "val.csv", "label_column": "lable"},
            "audits.label_distribution": {"max_imbalance": 3},
        },
    )
    _write_table(project / "val.csv", "path,label", ["data/val/cat/a.jpg,cat"])
    code, out = _validate(project)
    assert code == 2
    problems = {
        "model.pretrained": "ResNet18_Weights has no member 'IMAGENET1K_V2'",
        "model.head": "no submodule 'classifier'",
        "optimizer.factory": "did you mean 'make_optimizer'",
        "data.train.root": "data/trian does not exist",
        "data.val.label_column": "'lable' is not among its columns ['path', 'label']",
        "audits.label_distribution.max_imbalance": "unknown key 'max_imbalance'",
    }
    for key, words in problems.items():
        assert out.count(f": {key}: ") == 1, (key, out)
        assert words in out, (key, out)
    assert out.count("error:") == len(problems), out


def test_wrong_csv_column_names_the_key_the_columns_and_the_default(tmp_path):
    project = _project(tmp_path, **{"data.val": {"format": "csv", "path": "tables/val.csv"}})
    _write_table(project / "tables" / "val.csv", "file,class", ["a.jpg,cat"])
    code, out = _validate(project)
    assert code == 2
    assert "data.val.path_column: expected a column of tables/val.csv" in out
    assert "'path' (the default) is not among its columns ['file', 'class']" in out
    assert "data.val.label_column:" in out and "set label_column" in out
    assert "pandas" not in out.lower()


def test_parquet_header_is_read_from_its_schema(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    project = _project(
        tmp_path, **{"data.val": {"format": "csv", "path": "val.parquet", "label_column": "y"}}
    )
    pq.write_table(pa.table({"path": ["a.jpg"], "label": ["cat"]}), project / "val.parquet")
    code, out = _validate(project)
    assert code == 2
    assert "data.val.label_column" in out and "'y' is not among its columns ['path', 'label']" in out
    assert "did you mean 'label'" not in out or "'y'" in out


def test_missing_table_and_root(tmp_path):
    project = _project(tmp_path, **{"data.val": {"format": "csv", "path": "nope.csv", "root": "imgs"}})
    code, out = _validate(project)
    assert code == 2
    assert "data.val.path: expected a CSV or Parquet file, found nope.csv does not exist" in out
    assert "data.val.root: expected a folder" in out


def test_url_roots_are_left_to_the_data_format(tmp_path):
    """fsspec URLs (s3://, gs://, ...) cannot be checked offline; validate must not call them missing."""
    project = _project(tmp_path, **{"data.val.root": "s3://bucket/val"})
    _, out = _validate(project)
    assert "does not exist" not in out, out


@pytest.mark.parametrize(
    ("pretrained", "words"),
    [
        ("torchvision:ResNet18_Weight.IMAGENET1K_V1", "did you mean torchvision:ResNet18_Weights."),
        ("torchvision:resnt18", "did you mean torchvision:resnet18"),
        ("timm:resnet5o", "did you mean timm:resnet50"),
        ("timm:resnet50.a9_in1k", "no pretrained tag 'a9_in1k'"),
    ],
)
def test_wrong_pretrained_names(tmp_path, pretrained, words):
    pytest.importorskip("timm") if pretrained.startswith("timm") else None
    code, out = _validate(_project(tmp_path, **{"model.pretrained": pretrained}))
    assert code == 2 and "model.pretrained" in out and words in out, out


@pytest.mark.parametrize(
    "pretrained",
    [
        "torchvision:resnet18",
        "torchvision:ResNet18_Weights.DEFAULT",
        "timm:resnet18",
        "timm:resnet18.a1_in1k",
    ],
)
def test_right_pretrained_names_pass(tmp_path, pretrained):
    code, out = _validate(_project(tmp_path, **{"model.pretrained": pretrained}))
    assert code == 0, out


def test_head_defined_in_the_users_code_passes(tmp_path):
    project = _project(tmp_path, **{"model.head": "classifier"})
    model = project / "src" / "quickstart" / "model.py"
    model.write_text(model.read_text().replace("model.fc = ", "model.classifier = "), encoding="utf-8")
    code, out = _validate(project)
    assert code == 0, out


def test_head_attached_by_a_helper_module_passes(tmp_path):
    """The factory module never names the head; a helper module beside it attaches it: no false alarm."""
    project = _project(
        tmp_path,
        **{"model.head": "classifier", "model.factory": "vendored.zoo:build", "pythonpath": ["src", "lib"]},
    )
    package = project / "lib" / "vendored"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "zoo.py").write_text("from .heads import attach\n\ndef build():\n    return attach(None)\n")
    (package / "heads.py").write_text("def attach(model):\n    model.classifier = None\n    return model\n")
    code, out = _validate(project)
    assert code == 0, out


def test_pretrained_index_matches_the_installed_libraries():
    """The source-read names are exactly what torchvision (and timm) answer once imported."""
    from torchvision import models

    from auditor.manifest._pretrained_names import timm_index, torchvision_index

    index = torchvision_index()
    assert index is not None
    assert index.models == {name.lower() for name in models.list_models()}
    real: dict[str, list[str]] = {}
    for name in models.list_models():
        try:
            enum = models.get_model_weights(name)
        except ValueError:
            continue
        real[enum.__name__] = sorted([*enum.__members__])
    for enum, members in real.items():
        assert sorted(index.enums[enum]) == members, enum
    timm = pytest.importorskip("timm")
    tindex = timm_index()
    assert tindex is not None and set(timm.list_models()) <= tindex.models | set(tindex.tags)
    for name in timm.list_pretrained():
        arch, _, tag = name.partition(".")
        assert tag in tindex.tags.get(arch, set()) or arch not in tindex.tags, name


def test_validate_stays_without_torch_on_a_project_with_every_check(tmp_path):
    import subprocess
    import sys

    project = _project(
        tmp_path,
        **{"data.val": {"format": "csv", "path": "val.csv"}, "model.pretrained": "timm:resnet50.a1_in1k"},
    )
    _write_table(project / "val.csv", "path,label", ["data/val/cat/a.jpg,cat"])
    code = (
        "import sys; from auditor.cli.app import main; rc = main(['validate', 'audit.yaml']); "
        "print(sorted(m for m in ('torch', 'torchvision', 'timm', 'pandas', 'PIL', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=False
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    assert re.search(r"^ok ", done.stdout, re.MULTILINE), done.stdout + done.stderr
