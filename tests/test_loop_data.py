"""The objects the training loop iterates (issue 26 items 1, 2, 3, 7): DL010-DL016 on real torch objects.

Each case is triggered and clean: real ImageFolder/TensorDataset, real DataLoader and samplers,
real worker processes; through ``auditor.check`` and, where the manifest can say it, ``auditor run``.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    random_split,
)
from torchvision import transforms
from torchvision.datasets import ImageFolder

import auditor
from auditor.testing import Project, make_image_folder, run_cli, run_in_process

WARNING_OR_ABOVE = ("warning", "error")


def _codes(result, prefix="DL01"):
    return {f.code for f in result.findings if f.code.startswith(prefix)}


def _one(result, code):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, [(f.code, f.message) for f in result.findings]
    return found[0]


def _loud(result):
    return [(f.code, f.message) for f in result.findings if f.severity.value in WARNING_OR_ABOVE]


TRAIN_TF = transforms.Compose(
    [
        transforms.RandomResizedCrop(8, scale=(0.3, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
    ]
)
EVAL_TF = transforms.Compose([transforms.Resize(8), transforms.CenterCrop(8), transforms.ToTensor()])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop") / "images"
    make_image_folder(root, {"cat": 12, "dog": 12}, size=16)
    return root


# -- 1. shared datasets -------------------------------------------------------------------------


def test_random_split_then_val_transform_replaced_is_dl010_without_augmentation(folder):
    full = ImageFolder(str(folder), transform=TRAIN_TF)
    train, val = random_split(full, [18, 6], generator=torch.Generator().manual_seed(0))
    val.dataset.transform = EVAL_TF  # the documented mistake: train loses its augmentation too
    result = auditor.check(train=train, val=val, audits=["data_loading"])
    finding = _one(result, "DL010")
    assert finding.severity.value == "error"
    assert (
        "'train' (Subset of ImageFolder) and 'val' (Subset of ImageFolder) are views of one ImageFolder"
        in (finding.message)
    )
    assert "Compose(Resize, CenterCrop, ToTensor)" in finding.message
    assert "3 draws of train[0] are identical: training runs without augmentation" in finding.message
    assert "one dataset object per pipeline" in finding.hint
    assert finding.evidence["draws_vary"] is False and finding.evidence["splits"] == ["train", "val"]


def test_random_split_with_the_training_pipeline_is_dl010_val_augmented(folder):
    train, val = random_split(ImageFolder(str(folder), transform=TRAIN_TF), [18, 6])
    finding = _one(auditor.check(train=train, val=val, audits=["data_loading"]), "DL010")
    assert "draws of train[0] differ (RandomResizedCrop, RandomHorizontalFlip)" in finding.message
    assert "'val' is evaluated through the random training pipeline" in finding.message


def test_two_dataset_objects_one_per_pipeline_are_clean(folder):
    train_ds = ImageFolder(str(folder), transform=TRAIN_TF)
    val_ds = ImageFolder(str(folder), transform=EVAL_TF)
    order = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(0)).tolist()
    result = auditor.check(
        train=Subset(train_ds, order[:18]), val=Subset(val_ds, order[18:]), audits=["data_loading"]
    )
    assert not _loud(result)


def test_views_of_a_bare_tensor_dataset_are_clean():
    data = TensorDataset(torch.randn(40, 3), torch.arange(40) % 2)
    train, val = random_split(data, [30, 10])
    assert not _loud(auditor.check(train=train, val=val, audits=["data_loading"]))


def test_two_datasets_holding_one_random_transform_object_is_dl010(folder):
    shared = TRAIN_TF
    train = ImageFolder(str(folder), transform=shared)
    val = ImageFolder(str(folder), transform=shared)
    finding = _one(auditor.check(train=train, val=val, audits=["data_loading"]), "DL010")
    assert "hold one transform object" in finding.message and finding.evidence["shared"] == "transform"
    # One deterministic pipeline for both splits is a valid choice.
    same_eval = ImageFolder(str(folder), transform=EVAL_TF), ImageFolder(str(folder), transform=EVAL_TF)
    assert not _loud(auditor.check(train=same_eval[0], val=same_eval[1], audits=["data_loading"]))


def _shared_split_project(tmp_path, replaced: bool) -> Project:
    project = Project(tmp_path / f"shared-{replaced}")
    root = project.image_folder("data/images", {"cat": 10, "dog": 10}, size=16)
    module = f"shared_splits_{replaced}".lower()  # one module name per project: runs share sys.modules
    project.write(
        f"{module}.py",
        textwrap.dedent(
            f"""
            import torch
            from torch.utils.data import Subset, random_split
            from torchvision import transforms
            from torchvision.datasets import ImageFolder

            TRAIN_TF = transforms.Compose([transforms.RandomResizedCrop(8), transforms.ToTensor()])
            EVAL_TF = transforms.Compose([transforms.Resize(8), transforms.CenterCrop(8), transforms.ToTensor()])
            ROOT = {str(root)!r}

            if {replaced}:
                _train, _val = random_split(ImageFolder(ROOT, transform=TRAIN_TF), [15, 5],
                                            generator=torch.Generator().manual_seed(0))
                _val.dataset.transform = EVAL_TF
            else:
                _order = torch.randperm(20, generator=torch.Generator().manual_seed(0)).tolist()
                _train = Subset(ImageFolder(ROOT, transform=TRAIN_TF), _order[:15])
                _val = Subset(ImageFolder(ROOT, transform=EVAL_TF), _order[15:])

            def train():
                return _train

            def val():
                return _val
            """
        ),
    )
    project.manifest(
        {
            "train": {"format": "callable", "factory": f"{module}:train"},
            "val": {"format": "callable", "factory": f"{module}:val"},
        },
        audits={"data_loading": {}},
        pythonpath=["."],
    )
    return project


def test_manifest_callable_splits_sharing_one_dataset(tmp_path):
    triggered = run_in_process(_shared_split_project(tmp_path, True).path("audit.yaml"))
    (finding,) = triggered.findings_for("DL010")
    assert "training runs without augmentation" in finding["message"] and finding["location"] == "data.train"
    assert triggered.exit_code == 1
    clean = run_in_process(_shared_split_project(tmp_path, False).path("audit.yaml"))
    clean.assert_no_codes("DL010")
    assert clean.exit_code == 0


# -- 2. samplers ----------------------------------------------------------------------------------


def _imbalanced(n_major=30, n_minor=3):
    targets = torch.tensor([0] * n_major + [1] * n_minor)
    dataset = TensorDataset(torch.randn(len(targets), 4), targets)
    dataset.targets = targets.tolist()
    return dataset, targets


def test_one_weight_per_class_is_dl011_and_the_pass_reaches_two_samples():
    dataset, targets = _imbalanced()
    counts = torch.bincount(targets).double()
    generator = torch.Generator().manual_seed(0)
    sampler = WeightedRandomSampler(1.0 / counts, num_samples=len(dataset), generator=generator)
    state = generator.get_state()
    result = auditor.check(train=DataLoader(dataset, batch_size=8, sampler=sampler), audits=["data_loading"])
    assert torch.equal(generator.get_state(), state)  # the user's sampler draws as if auditor never ran
    dl011 = _one(result, "DL011")
    assert dl011.severity.value == "error"
    assert (
        "has 2 weights for the 33 samples of 'train' (one weight per class, not per sample)" in dl011.message
    )
    assert "it only ever draws indices 0-1" in dl011.message and "class_weights[targets]" in dl011.hint
    dl012 = _one(result, "DL012")
    assert "draws 33 indices reaching 1 of the 33 samples of 'train' (3.0%)" in dl012.message
    assert dl012.evidence["unique"] == 1 and dl012.caused_by == dl011.id


def test_one_weight_per_sample_is_clean():
    dataset, targets = _imbalanced()
    counts = torch.bincount(targets).double()
    sampler = WeightedRandomSampler((1.0 / counts)[targets], num_samples=len(dataset))
    result = auditor.check(train=DataLoader(dataset, batch_size=8, sampler=sampler), audits=["data_loading"])
    assert not _loud(result)
    audit = next(a for a in result.report["audits"] if a["name"] == "data_loading")
    assert audit["evidence"]["sampler"]["train"]["unique"] > 3


def test_weights_by_class_count_make_balance_worse_dl013():
    dataset, targets = _imbalanced(60, 40)
    counts = torch.bincount(targets).double()
    sampler = WeightedRandomSampler(counts[targets] ** 3, num_samples=len(dataset))  # inverted, and then some
    finding = _one(
        auditor.check(train=DataLoader(dataset, batch_size=8, sampler=sampler), audits=["data_loading"]),
        "DL013",
    )
    assert finding.severity.value == "warning"
    assert "makes class balance worse on 'train'" in finding.message and "(data 60%)" in finding.message


def test_a_subset_sampler_over_a_sliver_is_dl012():
    dataset, _ = _imbalanced(90, 10)
    loader = DataLoader(dataset, batch_size=4, sampler=SubsetRandomSampler([0, 1, 2, 3, 4]))
    finding = _one(auditor.check(train=loader, audits=["data_loading"]), "DL012")
    assert "reaching 5 of the 100 samples of 'train' (5.0%)" in finding.message


def _sampler_project(tmp_path, per_sample: bool, **extra) -> Project:
    project = Project(tmp_path / f"sampler-{per_sample}-{len(extra)}")
    project.image_folder("data/train", {"cat": 20, "dog": 4}, size=8)
    module = f"samplers_{per_sample}_{len(extra)}".lower()  # in-process runs share sys.modules
    project.write(
        f"{module}.py",
        textwrap.dedent(
            f"""
            import torch
            from torch.utils.data import WeightedRandomSampler

            def balanced(dataset):
                targets = torch.tensor(dataset.targets)
                weights = 1.0 / torch.bincount(targets).double()
                return WeightedRandomSampler(weights[targets] if {per_sample} else weights, len(dataset))
            """
        ),
    )
    split = {"format": "image_folder", "root": "data/train", "sampler": f"{module}:balanced", **extra}
    project.manifest({"train": split}, audits={"data_loading": {}}, pythonpath=["."])
    return project


def test_manifest_sampler_factory_is_drawn(tmp_path):
    triggered = run_cli("run", "audit.yaml", cwd=_sampler_project(tmp_path, False).root)
    (dl011,) = triggered.findings_for("DL011")
    assert (
        "data.train.sampler (samplers_false_0:balanced -> WeightedRandomSampler) has 2 weights for the 24"
        in (dl011["message"])
    )
    assert triggered.findings_for("DL012") and triggered.returncode == 1
    clean = run_in_process(_sampler_project(tmp_path, True).path("audit.yaml"))
    assert not clean.findings_for("DL011") and not clean.findings_for("DL012") and clean.exit_code == 0


def test_manifest_sampler_and_shuffle_is_dl014(tmp_path):
    run = run_in_process(_sampler_project(tmp_path, True, shuffle=True).path("audit.yaml"))
    (finding,) = run.findings_for("DL014")
    assert "declares both sampler: samplers_true_1:balanced and shuffle: true" in finding["message"]
    assert finding["location"] == "data.train.shuffle"


# -- 3. the last batch ----------------------------------------------------------------------------


def _bn_head():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()


def _tensors(n):
    return TensorDataset(torch.randn(n, 4), torch.arange(n) % 2)


def test_a_last_batch_of_one_into_batchnorm1d_is_dl015_and_the_probe_does_not_crash():
    model, optimizer, loss = _bn_head()
    loader = DataLoader(_tensors(33), batch_size=32, shuffle=True)
    result = auditor.check(
        model,
        optimizer,
        loss,
        train=loader,
        audits=["data_loading", "gradient_probe"],
        gradient_probe={"steps": 3},
    )
    finding = _one(result, "DL015")
    assert finding.severity.value == "error"
    assert (
        "'train' gives 33 samples an epoch in batches of 32 with drop_last=False: the last batch holds 1"
        in (finding.message)
    )
    assert "Expected more than 1 value per channel" in finding.message
    assert "drop_last=True" in finding.hint
    probe = next(a for a in result.report["audits"] if a["name"] == "gradient_probe")
    assert probe["status"] != "errored", probe
    assert any("ends on a batch of one sample" in note for note in probe.get("notes", []))


def test_drop_last_or_an_even_split_is_clean():
    model, optimizer, loss = _bn_head()
    for loader in (
        DataLoader(_tensors(33), batch_size=32, shuffle=True, drop_last=True),
        DataLoader(_tensors(34), batch_size=32, shuffle=True),
    ):
        result = auditor.check(model, optimizer, loss, train=loader, audits=["data_loading"])
        assert not _loud(result)


def test_a_model_without_batchnorm_takes_a_batch_of_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    loader = DataLoader(_tensors(33), batch_size=32)
    result = auditor.check(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        train=loader,
        audits=["data_loading"],
    )
    assert "DL015" not in _codes(result)


def test_the_world_size_of_a_distributed_sampler_counts():
    model, optimizer, loss = _bn_head()
    data = _tensors(65)  # 2 processes: 33 samples each, batches of 32
    sampler = DistributedSampler(data, num_replicas=2, rank=0, shuffle=True)
    result = auditor.check(
        model,
        optimizer,
        loss,
        train=DataLoader(data, batch_size=32, sampler=sampler),
        audits=["data_loading"],
    )
    finding = _one(result, "DL015")
    assert "33 samples an epoch per process (2 processes, DistributedSampler)" in finding.message
    assert "DL012" not in _codes(result)  # half the data per process is what a DistributedSampler does


# -- 7. per-worker randomness ---------------------------------------------------------------------


class HeldGenerator(Dataset):
    """Crops with a generator the dataset holds: every worker gets a copy in the same state."""

    def __init__(self) -> None:
        self.images = torch.arange(8 * 16 * 16, dtype=torch.float32).reshape(8, 1, 16, 16)
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        top, left = (int(v) for v in self.rng.integers(0, 8, size=2))
        return self.images[index][:, top : top + 8, left : left + 8], index % 2


class TorchRandom(HeldGenerator):
    def __getitem__(self, index):
        top, left = (int(v) for v in torch.randint(0, 8, (2,)))
        return self.images[index][:, top : top + 8, left : left + 8], index % 2


def test_workers_copying_a_held_generator_is_dl016():
    loader = DataLoader(HeldGenerator(), batch_size=4, shuffle=True, num_workers=2)
    finding = _one(auditor.check(train=loader, audits=["data_loading"]), "DL016")
    assert finding.severity.value == "warning"
    assert (
        "workers 0 and 1 of the training DataLoader (num_workers=2) return identical augmented outputs"
        in (finding.message)
    )
    assert "HeldGenerator.rng (numpy.random._generator.Generator)" in finding.message
    assert "worker_init_fn" in finding.hint


def test_workers_drawing_from_torch_are_clean():
    loader = DataLoader(TorchRandom(), batch_size=4, shuffle=True, num_workers=2)
    assert not _loud(auditor.check(train=loader, audits=["data_loading"]))


class Endless(torch.utils.data.Sampler):
    """A sampler that never ends (as some "infinite" training samplers do): the pass is cut, not hung."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __iter__(self):
        while True:
            yield from range(self.size + 2)  # two indices past the end, every round


def test_an_endless_sampler_with_indices_past_the_end_is_cut_and_reported():
    dataset, _ = _imbalanced(30, 10)
    finding = _one(
        auditor.check(train=DataLoader(dataset, sampler=Endless(40)), audits=["data_loading"]), "DL012"
    )
    assert "2 distinct indices are outside the dataset (first 40): the DataLoader raises IndexError" in (
        finding.message
    )
    assert finding.evidence["draws"] == 1_000_000


class Stuck(torch.utils.data.Sampler):
    def __init__(self) -> None:
        import threading

        self.never = threading.Event()

    def __iter__(self):
        self.never.wait()  # a sampler waiting on something that never comes
        yield 0


def test_a_sampler_that_hangs_is_stopped_by_the_call_deadline():
    dataset, _ = _imbalanced(30, 10)
    sampler = Stuck()
    try:
        result = auditor.check(
            train=DataLoader(dataset, sampler=sampler), audits=["data_loading"], call_timeout_s=1
        )
    finally:
        sampler.never.set()  # let the abandoned thread finish
    audit = next(a for a in result.report["audits"] if a["name"] == "data_loading")
    # A call into user code past its deadline is the user's problem, worded as DL006 (never a pass).
    assert audit["status"] == "failed"
    hung = [f for f in result.report["findings"] if f["code"] == "DL006"]
    assert hung and "one pass of the training DataLoader's sampler (Stuck)" in hung[0]["message"]


def test_a_concat_dataset_holding_the_evaluation_split_is_dl010(folder):
    base = ImageFolder(str(folder), transform=TRAIN_TF)
    extra = TensorDataset(torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))
    val = Subset(base, [0, 1, 2])
    train = torch.utils.data.ConcatDataset([extra, val])
    finding = _one(auditor.check(train=train, val=val, audits=["data_loading"]), "DL010")
    assert (
        "'train' (ConcatDataset[1] of Subset of ImageFolder) and 'val' (Subset of ImageFolder)"
        in finding.message
    )


class Hostile(Dataset):
    """A dataset whose transform property raises and whose __getattr__ answers every name."""

    def __init__(self) -> None:
        self.data = torch.randn(20, 3)

    def __len__(self) -> int:
        return 20

    def __getitem__(self, index):
        return self.data[index], index % 2

    @property
    def transform(self):
        raise RuntimeError("no transform here")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return f"<script>{name}</script>"


def test_a_hostile_dataset_object_does_not_crash_the_checks():
    base = Hostile()
    train, val = random_split(base, [15, 5])
    result = auditor.check(train=train, val=val, audits=["data_loading"])
    audit = next(a for a in result.report["audits"] if a["name"] == "data_loading")
    assert audit["status"] == "passed" and not _loud(result)
