"""feature_fit and the probe's watch on pretrained layers (FF001-FF005, GP020), on real pretrained weights.

No download is possible here, so the module pretrains a small BatchNorm CNN for a few
seconds on a generated ``colour`` domain (tests/_transfer_domains.py), saves its state
dict, and the model factory loads it. Each verdict is triggered on a setup where it is
true (features that do not fit the ``texture`` domain, an evaluation split shot under a warm light,
SGD(lr=0.1) on the pretrained blocks, a full fine-tune on ten images per class) and
not triggered on its clean counterpart, through ``auditor run`` and ``auditor.check``.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import load_json_report, run_cli

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The domain module (imported from a copy) and the path of the pretrained weights."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(HERE / "_transfer_domains.py", src / "transfer_domains.py")
    sys.path.insert(0, str(src))
    try:
        module = importlib.import_module("transfer_domains")
        weights = Path(module.pretrain(str(src / "pretrained.pt")))
        yield module, weights
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("transfer_domains", None)


def _project(
    root: Path,
    domains: tuple[Any, Path],
    *,
    train: dict,
    val: dict,
    model: dict,
    optimizer: dict,
    audits: dict,
) -> Path:
    module, weights = domains
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(module.__file__, root / "transfer_domains.py")
    manifest = {
        "version": 1,
        "pythonpath": ["."],
        "model": {"factory": "transfer_domains:make_model", "kwargs": {"weights": str(weights), **model}},
        "optimizer": optimizer,
        "loss": {"factory": "torch.nn:CrossEntropyLoss"},
        "data": {
            "train": {"format": "callable", "factory": "transfer_domains:make_dataset", "kwargs": train},
            "val": {"format": "callable", "factory": "transfer_domains:make_dataset", "kwargs": val},
        },
        "audits": audits,
    }
    path = root / "audit.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


def _by_code(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in report["findings"]}


def _audit(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in report["audits"] if a["name"] == name)


@pytest.mark.slow
def test_head_on_features_that_do_not_fit_is_an_error_with_numbers_through_the_cli(tmp_path, domains):
    manifest = _project(
        tmp_path / "texture",
        domains,
        train={"domain": "texture", "per_class": 40, "seed": 1},
        val={"domain": "texture", "per_class": 25, "seed": 2, "lighting": [1.4, 1.0, 0.5]},
        model={"freeze": True},
        optimizer={"factory": "transfer_domains:head_adam"},
        audits={"feature_fit": {}, "frozen_coverage": {}},
    )
    done = run_cli(
        "run", manifest, "--only", "feature_fit,frozen_coverage", "--format", "json,html", cwd=manifest.parent
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = load_json_report(manifest.parent / "reports")
    found = _by_code(report)
    ff001 = found["FF001"]
    assert ff001["severity"] == "error"
    evidence = ff001["evidence"]
    assert evidence["knn"]["ci95"][1] < evidence["bar"]
    assert evidence["chance"] == pytest.approx(0.25)
    assert evidence["logme"] < 0
    assert "5-NN accuracy" in ff001["message"] and "chance 25%" in ff001["message"]
    assert "`layer" in ff001["hint"]  # names the blocks to unfreeze
    # The warm-lit evaluation split is told apart from train within each class.
    ff003 = found["FF003"]
    assert ff003["location"] == "data.val" and ff003["evidence"]["ci95"][0] > 0.6
    assert "texture" in ff003["message"]
    # The domain gap is deep: layers of the later blocks, plotted in the HTML report.
    ff002 = found["FF002"]
    assert ff002["evidence"]["deep_gap"] and not ff002["evidence"]["input_only"]
    html = (manifest.parent / "reports" / "report.html").read_text(encoding="utf-8")
    assert "BatchNorm divergence per layer" in html
    # FZ003 is an info now, and says whose verdict the frozen backbone is.
    fz003 = found["FZ003"]
    assert fz003["severity"] == "info" and "feature_fit" in fz003["message"]


@pytest.mark.slow
def test_features_that_fit_give_an_info_and_nothing_worse(tmp_path, domains):
    manifest = _project(
        tmp_path / "colour",
        domains,
        train={"domain": "colour", "per_class": 40, "seed": 1},
        val={"domain": "colour", "per_class": 25, "seed": 2},
        model={"freeze": True},
        optimizer={"factory": "transfer_domains:head_adam"},
        audits={"feature_fit": {}, "frozen_coverage": {}},
    )
    done = run_cli("run", manifest, "--only", "feature_fit,frozen_coverage", cwd=manifest.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    report = load_json_report(manifest.parent / "reports")
    found = _by_code(report)
    assert found["FF004"]["severity"] == "info"
    assert found["FF004"]["evidence"]["knn"]["ci95"][0] >= found["FF004"]["evidence"]["bar"]
    assert not [f for f in report["findings"] if f["audit"] == "feature_fit" and f["severity"] != "info"]
    assert _audit(report, "feature_fit")["status"] == "passed"


def _live(domains: tuple[Any, Path], optimizer: Any, *, per_class: int, **options: Any) -> Any:
    import auditor

    module, weights = domains
    model = module.make_model(str(weights))
    return auditor.check(
        model=model,
        optimizer=optimizer(model),
        loss=__import__("torch").nn.CrossEntropyLoss(),
        train=module.make_dataset("colour", per_class, seed=3),
        val=module.make_dataset("colour", per_class, seed=4),
        only=["feature_fit", "gradient_probe"],
        gradient_probe={"steps": 20, "batch_size": 8, "overfit_steps": 0},
        feature_fit={"thresholds": {"many_parameters": 100_000}},
        **options,
    )


@pytest.mark.slow
def test_a_learning_rate_that_erases_the_pretraining_is_gp020_and_a_full_fine_tune_on_few_samples_ff005(
    domains,
):
    result = _live(domains, lambda m: domains[0].sgd(m, lr=0.1, momentum=0.9), per_class=10)
    found = {f.code: f for f in result.findings}
    gp020 = found["GP020"]
    assert gp020.severity == "error"
    assert gp020.evidence["suggested_lr"] and gp020.evidence["suggested_lr"] < 0.1
    fast = [
        b for b in gp020.evidence["blocks"] if b["median_ratio"] > gp020.evidence["update_ratio_threshold"]
    ]
    assert {b["name"] for b in fast} & {"layer1", "layer2", "layer3"}
    assert "param group 0 (lr 0.1)" in gp020.message
    ff005 = found["FF005"]
    assert ff005.severity == "warning" and ff005.evidence["samples_per_class"] == 10
    assert ff005.evidence["random_augmentation"] is False and ff005.evidence["weight_decay"] is False
    assert result.exit_code == 1


@pytest.mark.slow
def test_a_backbone_rate_ten_times_lower_with_weight_decay_stays_clean(domains):
    result = _live(
        domains,
        lambda m: domains[0].split_adam(m, lr=1e-3, backbone_factor=0.1, weight_decay=1e-4),
        per_class=10,
    )
    codes = {f.code for f in result.findings}
    assert not codes & {"GP020", "FF001", "FF002", "FF003", "FF005"}, result.findings
    watch = next(a for a in result.report["audits"] if a["name"] == "gradient_probe")["evidence"][
        "pretrained_watch"
    ]
    assert watch["cka"] > 0.8 and watch["steps"] == 20


def test_random_weights_are_skipped_with_the_reason_and_fz003_says_so(tmp_path, domains):
    import auditor

    module, _ = domains
    model = module.make_model(None, freeze=True)
    result = auditor.check(
        model=model,
        optimizer=module.head_adam(model),
        loss=__import__("torch").nn.CrossEntropyLoss(),
        train=module.make_dataset("colour", 6, seed=3),
        only=["feature_fit", "frozen_coverage"],
    )
    audit = next(a for a in result.report["audits"] if a["name"] == "feature_fit")
    assert audit["status"] == "skipped"
    assert "initial running statistics" in audit["reason"]
    fz003 = next(f for f in result.findings if f.code == "FZ003")
    assert fz003.severity == "info" and "feature_fit cannot judge" in fz003.message


# -- the numbers behind the verdicts -------------------------------------------------------


def test_knn_and_logme_rank_separable_features_above_shuffled_labels():
    import torch

    from auditor_plugins.feature_fit.scores import knn_accuracy, logme, wilson

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(30)
    centres = torch.randn(4, 16, generator=g) * 3
    features = centres[labels] + torch.randn(120, 16, generator=g)
    shuffled = labels[torch.randperm(120, generator=g)]
    good, bad = knn_accuracy(features, labels), knn_accuracy(features, shuffled)
    assert good.low > 0.9 and bad.high < 0.45
    assert logme(features, labels) > logme(features, shuffled)
    low, high = wilson(30, 120)
    assert low < 0.25 < high and 0 < low < high < 1


def test_bn_divergence_is_zero_on_the_stored_statistics_and_grows_with_the_shift():
    import torch

    from auditor_plugins.common.similarity import linear_cka
    from auditor_plugins.feature_fit.scores import bn_divergence

    mean, var = torch.zeros(8), torch.ones(8)
    assert bn_divergence(mean, var, mean, var, 1e-5) == pytest.approx(0, abs=1e-9)
    assert bn_divergence(mean + 1, var, mean, var, 1e-5) == pytest.approx(0.5, rel=1e-3)
    assert bn_divergence(mean + 2, var * 4, mean, var, 1e-5) > bn_divergence(mean + 1, var, mean, var, 1e-5)
    x = torch.randn(32, 10)
    assert linear_cka(x, 3 * x + 1) == pytest.approx(1.0)
    assert linear_cka(x, torch.randn(32, 10)) < 0.7


def test_weights_loaded_by_a_factory_without_batchnorm_count_as_pretrained(tmp_path):
    """Two builds with different seeds: identical (loaded) weights are pretrained, differing ones are not."""
    import torch

    from auditor.manifest.load import load_manifest
    from auditor.run.context import RunContext
    from auditor.run.registry import load_registry
    from auditor_plugins.common.pretrained_weights import weights_origin

    trained = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        trained[0].weight.mul_(5)  # training leaves the default initialisation range
    torch.save(trained.state_dict(), tmp_path / "mlp.pt")
    (tmp_path / "mlps.py").write_text(
        "import torch\n"
        "def build(weights=None):\n"
        "    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))\n"
        "    if weights:\n"
        "        state = torch.load(weights, weights_only=True)\n"
        "        model.load_state_dict({k: v for k, v in state.items() if not k.startswith('2.')}, strict=False)\n"
        "    return model\n",
        encoding="utf-8",
    )
    registry = load_registry()
    origins = {}
    for name, kwargs in {"loaded": {"weights": str(tmp_path / "mlp.pt")}, "random": {}}.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "pythonpath": ["."],
                    "model": {"factory": "mlps:build", "kwargs": kwargs},
                    "data": {"train": {"format": "callable", "factory": "mlps:build"}},
                }
            ),
            encoding="utf-8",
        )
        origins[name] = weights_origin(RunContext(load_manifest(path, registry), registry))
    assert origins["loaded"].pretrained is True and origins["loaded"].loaded == {"0.weight", "0.bias"}
    assert origins["random"].pretrained is False and "different weights" in origins["random"].reason
