"""The Hugging Face stack, with real transformers, datasets and peft objects (tiny configs, nothing downloaded).

The Trainer callback stops a real ``Trainer.train()`` before its first step; ``datasets.Dataset``
splits (in memory and saved to disk); image processors and local model folders as the pretrained
source (TP002, TP010, TP011); PEFT heads (FZ015); the config's labels (LD011, LD012) and a head
``ignore_mismatched_sizes`` re-initialised (FZ016).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may reach the hub; the tests build everything locally
pytest.importorskip("transformers")  # the `transformers` extra; `make test` installs it
pytest.importorskip("datasets")
pytest.importorskip("peft")

import torch
from conftest import REPO
from torchvision import transforms as T

import auditor

sys.path.insert(0, str(REPO / "examples" / "huggingface"))
import peft_example
import tiny
import trainer_example

PROBE = {"steps": 2, "overfit_steps": 3}
#: Normalized with ImageNet statistics, not the processor's 0.5/0.5 (a global: read as the pipeline).
imagenet_tf = T.Compose([T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
to_tensor = T.ToTensor()


def imagenet_transform(batch: dict) -> dict:
    batch["pixel_values"] = [imagenet_tf(image.convert("RGB")) for image in batch["image"]]
    return batch


def double_rescale_transform(batch: dict) -> dict:
    """ToTensor() and then the processor, which rescales by 1/255 again: the known pitfall."""
    tensors = [to_tensor(image.convert("RGB")) for image in batch["image"]]
    batch["pixel_values"] = list(tiny.processor()(images=tensors, return_tensors="pt")["pixel_values"])
    return batch


def _codes(result: auditor.CheckResult) -> set[str]:
    return {f.code for f in result.findings}


# -- the Trainer callback -----------------------------------------------------------------


@pytest.mark.slow
def test_trainer_with_a_frozen_head_stops_before_its_first_step_and_the_fixed_run_trains(tmp_path):
    from auditor.integrations.transformers import AuditStoppedTraining

    trainer, callback = trainer_example.build(
        tmp_path / "broken", fixed=False, audits={"feature_fit": False}, gradient_probe=PROBE
    )
    before = trainer.model.classifier.weight.detach().clone()
    with pytest.raises(AuditStoppedTraining) as stopped:
        trainer.train()
    text = str(stopped.value)
    assert "before the first optimizer step" in text and "'classifier'" in text and "FZ004" in text
    assert trainer.state.global_step == 0
    assert torch.equal(trainer.model.classifier.weight, before)
    report = Path(stopped.value.report_paths[0])
    assert report == tmp_path / "broken" / "auditor" / "report.json" and str(report) in text
    document = json.loads(report.read_text())
    assert {f["code"] for f in document["findings"]} >= {"FZ004"}
    # the probe ran the model's real forward on the collator's batches, with the Trainer's compute_loss
    probe = next(a for a in document["audits"] if a["name"] == "gradient_probe")
    assert probe["status"] in ("passed", "failed"), probe
    assert callback.result is not None and callback.result.exit_code == 1

    trainer, callback = trainer_example.build(
        tmp_path / "fixed", fixed=True, audits=["frozen_coverage", "label_distribution", "transform_parity"]
    )
    trainer.train()
    assert trainer.state.global_step == 2
    assert callback.result is not None and callback.result.exit_code == 0
    assert "FZ004" not in _codes(callback.result)


@pytest.mark.slow
def test_trainer_callback_judges_the_modes_its_steps_set_and_dry_runs_the_trainers_scheduler(tmp_path):
    """A model still in eval() (as from_pretrained returns it) is no FZ011: Trainer.training_step calls
    model.train(). A cosine sized in epochs but stepped per optimizer step is GP025 (issue 26)."""
    from transformers import Trainer, TrainingArguments

    from auditor.integrations.transformers import AuditCallback

    train = tiny.images(24, seed=0)
    train.set_transform(tiny.train_transform)
    model = tiny.vit()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1  # the tiny config's dropout is 0: give its dropout layers something to do
    model.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)  # a sane fine-tuning rate (no GP020)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2)  # 2 "epochs" of 8 steps
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        max_steps=8,
        remove_unused_columns=False,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    callback = AuditCallback(
        pretrained=tiny.processor(), audits=["frozen_coverage", "gradient_probe"], gradient_probe=PROBE
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=tiny.collate,
        callbacks=[callback],
        optimizers=(optimizer, scheduler),
    )
    trainer.train()  # warnings only: training goes on
    assert callback.result is not None
    codes = _codes(callback.result)
    assert "FZ011" not in codes and "GP025" in codes, codes
    assert trainer.state.global_step == 8


# -- PEFT ---------------------------------------------------------------------------------


def test_lora_head_outside_modules_to_save_is_fz015_and_modules_to_save_is_clean():
    broken = peft_example.audit(False, audits=["frozen_coverage"], progress=False)
    fz015 = [f for f in broken.findings if f.code == "FZ015"]
    assert len(fz015) == 1 and broken.exit_code == 1
    assert "base_model.model.classifier" in fz015[0].message
    assert 'modules_to_save=["classifier"]' in fz015[0].hint
    assert "FZ003" not in _codes(broken) and "FZ004" not in _codes(broken)  # adapters train: intended

    fixed = peft_example.audit(True, audits=["frozen_coverage"], progress=False)
    assert fixed.exit_code == 0 and not {"FZ001", "FZ003", "FZ004", "FZ015"} & _codes(fixed)
    audit = next(a for a in fixed.report["audits"] if a["name"] == "frozen_coverage")
    peft = audit["evidence"]["peft"]
    assert peft["base_parameters"]["trainable"] == 0 and peft["base_parameters"]["frozen"] > 0
    assert peft["adapter_parameters"]["trainable"] > 0
    assert peft["saved_module_parameters"]["trainable"] == audit["evidence"]["head"]["trainable"] > 0
    assert any("adapters" in note for note in audit.get("notes", []))


# -- image processors and datasets.Dataset splits --------------------------------------------


def test_processor_object_finds_a_mean_std_mismatch_and_double_rescaling():
    train = tiny.images(12, seed=0)
    train.set_transform(imagenet_transform)
    result = auditor.check(
        tiny.vit(), train=train, pretrained=tiny.processor(), audits=["transform_parity"], progress=False
    )
    tp002 = [f for f in result.findings if f.code == "TP002"]
    assert tp002 and "ViTImageProcessor" in tp002[0].message and "0.485" in tp002[0].message

    train.set_transform(double_rescale_transform)
    result = auditor.check(
        tiny.vit(), train=train, pretrained=tiny.processor(), audits=["transform_parity"], progress=False
    )
    assert "TP010" in _codes(result) and result.exit_code == 1

    train.set_transform(tiny.train_transform)
    clean = auditor.check(
        tiny.vit(), train=train, pretrained=tiny.processor(), audits=["transform_parity"], progress=False
    )
    assert not {"TP001", "TP002", "TP006", "TP010", "TP011"} & _codes(clean)

    off = tiny.processor()
    off.do_normalize = False
    result = auditor.check(
        tiny.vit(), train=train, pretrained=off, audits=["transform_parity"], progress=False
    )
    assert "TP011" in _codes(result)


def test_dataset_split_reads_classlabel_names_and_leaks_through_decoded_pixels(tmp_path):
    train, val = tiny.images(12, seed=0), tiny.images(6, seed=1)
    import datasets

    # val repeats two training images: split_leakage hashes the decoded pixels (no files exist)
    val = datasets.concatenate_datasets([val, train.select([0, 1])])
    before = sorted(os.listdir(tmp_path))
    model = tiny.vit()
    model.config.id2label = {0: "dog", 1: "cat", 2: "fox"}  # the data's ClassLabel says cat, dog, fox
    result = auditor.check(
        model,
        train=train,
        val=val,
        audits=["split_leakage", "label_distribution"],
        progress=False,
        base_dir=tmp_path,
    )
    assert sorted(os.listdir(tmp_path)) == before
    codes = _codes(result)
    assert "SL001" in codes
    ld012 = next(f for f in result.findings if f.code == "LD012")
    assert "'dog' in id2label, 'cat' in the data" in ld012.message
    counts = next(a for a in result.report["audits"] if a["name"] == "label_distribution")["evidence"][
        "counts"
    ]
    assert set(counts["train"]) == set(tiny.CLASSES)

    wrong = auditor.check(tiny.vit(num_labels=5), train=train, audits=["label_distribution"], progress=False)
    assert "LD011" in _codes(wrong)


def test_dataset_columns_given_with_the_split():
    train = tiny.images(6, seed=0).rename_columns({"image": "img", "label": "y"})
    result = auditor.check(
        tiny.vit(),
        train={"dataset": train, "image_column": "img", "label_column": "y"},
        audits=["label_distribution"],
        progress=False,
    )
    counts = result.report["audits"][0]["evidence"]["counts"]["train"]
    assert set(counts) == set(tiny.CLASSES)
    missing = auditor.check(
        tiny.vit(),
        train={"dataset": train, "image_column": "img"},
        audits=["label_distribution"],
        progress=False,
    )
    assert missing.exit_code == 2
    assert "data.train.label_column" in json.dumps(missing.report) and "'label'" in json.dumps(missing.report)


# -- a local model folder in a manifest ----------------------------------------------------

PROJECT = """
import sys
from torchvision import transforms as T

sys.path.insert(0, {examples!r})
import tiny

imagenet_tf = T.Compose([T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


def double_tf(image):
    return tiny.processor()(images=T.ToTensor()(image.convert("RGB")), return_tensors="pt")["pixel_values"][0]


def build():
    from transformers import ViTForImageClassification

    return ViTForImageClassification.from_pretrained(
        "vit-folder", num_labels=3, id2label={{0: "cat", 1: "dog", 2: "fox"}},
        label2id={{"cat": 0, "dog": 1, "fox": 2}}, ignore_mismatched_sizes=True,
    )
"""

MANIFEST = """
version: 1
pythonpath: ["."]
model:
  factory: project:build
  pretrained: {pretrained}
data:
  train: {{format: hf_dataset, path: data, split: train, transform: project:{transform}}}
  val: {{format: hf_dataset, path: data, split: test, transform: project:{transform}}}
report: {{formats: [json]}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder save_pretrained() wrote (10-class checkpoint), a DatasetDict on disk, the user's module."""
    folder = tmp_path_factory.mktemp("hf-project")
    tiny.vit(num_labels=10).save_pretrained(folder / "vit-folder")
    tiny.processor().save_pretrained(folder / "vit-folder")
    tiny.images(24, seed=0).train_test_split(test_size=0.25, seed=0).save_to_disk(str(folder / "data"))
    (folder / "project.py").write_text(PROJECT.format(examples=str(REPO / "examples" / "huggingface")))
    return folder


def _run(folder: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(folder / "hf-home")}
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args, name],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
def test_model_folder_gives_the_expected_normalization_and_the_reinitialised_head(project):
    (project / "mismatch.yaml").write_text(MANIFEST.format(pretrained="vit-folder", transform="imagenet_tf"))
    (project / "double.yaml").write_text(MANIFEST.format(pretrained="./vit-folder", transform="double_tf"))
    only = ["--only", "transform_parity", "--only", "frozen_coverage", "--only", "label_distribution"]
    done = _run(project, "mismatch.yaml", "run", *only, "--output-dir", "out-mismatch")
    assert done.returncode == 1, done.stdout + done.stderr
    findings = json.loads((project / "out-mismatch" / "report.json").read_text())["findings"]
    tp002 = [f for f in findings if f["code"] == "TP002"]
    assert (
        tp002 and "vit-folder (preprocessor_config.json) expects mean [0.5, 0.5, 0.5]" in tp002[0]["message"]
    )
    fz016 = next(f for f in findings if f["code"] == "FZ016")
    assert "classifier.weight [10, 32] -> [3, 32]" in fz016["message"]
    assert "LD012" not in {f["code"] for f in findings}

    done = _run(project, "double.yaml", "run", "--only", "transform_parity", "--output-dir", "out-double")
    assert done.returncode == 1, done.stdout + done.stderr
    findings = json.loads((project / "out-double" / "report.json").read_text())["findings"]
    assert {f["code"] for f in findings} >= {"TP010"}


def test_validate_refuses_an_uncached_hub_id_and_a_missing_column_without_importing_torch(project):
    manifest = MANIFEST.format(pretrained="google/vit-base-patch16-224", transform="imagenet_tf").replace(
        "split: test,", "split: test, label_column: labels,"
    )
    (project / "bad.yaml").write_text(manifest)
    done = _run(project, "bad.yaml", "validate")
    assert done.returncode == 2
    assert "not in the local cache" in done.stderr and "never downloads" in done.stderr
    assert "data.val.label_column" in done.stderr and "'labels'" in done.stderr
    probe = (
        "import sys, runpy; sys.argv=['auditor', 'validate', 'mismatch.yaml'];"
        "\ntry: runpy.run_module('auditor', run_name='__main__')"
        "\nexcept SystemExit: pass"
        "\nprint(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    (project / "mismatch.yaml").write_text(MANIFEST.format(pretrained="vit-folder", transform="imagenet_tf"))
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert out.stdout.strip().endswith("[]"), out.stdout + out.stderr


def test_hf_dataset_split_names_a_missing_datasetdict_split(project):
    (project / "nosplit.yaml").write_text(
        MANIFEST.format(pretrained="vit-folder", transform="imagenet_tf").replace(
            "split: test", "split: tset"
        )
    )
    done = _run(project, "nosplit.yaml", "validate")
    assert done.returncode == 2 and "data.val.split" in done.stderr and "'test'" in done.stderr


def test_a_model_folder_whose_processor_config_is_a_fifo_or_not_json_is_a_manifest_error(tmp_path):
    from auditor.kit import HFPretrainedProblem, read_hf_pretrained

    folder = tmp_path / "vit-folder"
    folder.mkdir()
    os.mkfifo(folder / "preprocessor_config.json")  # reading it would block forever
    with pytest.raises(HFPretrainedProblem, match="not a regular file"):
        read_hf_pretrained("vit-folder", tmp_path)
    (folder / "preprocessor_config.json").unlink()
    (folder / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(HFPretrainedProblem, match="cannot be read as JSON"):
        read_hf_pretrained("vit-folder", tmp_path)
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(HFPretrainedProblem, match="holds neither"):
        read_hf_pretrained("vit-folder", tmp_path)
    with pytest.raises(HFPretrainedProblem, match="no such folder"):
        read_hf_pretrained("./no-such-folder", tmp_path)
