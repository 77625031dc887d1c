"""The issue-26 cases of the loop's data-side objects (items 1, 2, 3, 7), triggered and clean: what auditor says.

Prints one row per case: the codes at warning or above, the gradient probe's status where it runs,
and the exit code. Run it with a checkout's interpreter to compare two versions:

    .venv/bin/python benchmarks/loop_cases.py
"""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset, WeightedRandomSampler, random_split
from torchvision import transforms
from torchvision.datasets import ImageFolder

import auditor
from auditor.testing import Project, make_image_folder, run_in_process

TRAIN_TF = transforms.Compose(
    [transforms.RandomResizedCrop(8), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
)
EVAL_TF = transforms.Compose([transforms.Resize(8), transforms.CenterCrop(8), transforms.ToTensor()])


class HeldGenerator(Dataset):
    def __init__(self) -> None:
        self.images = torch.arange(8 * 256, dtype=torch.float32).reshape(8, 1, 16, 16)
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> Any:
        top, left = (int(v) for v in self.rng.integers(0, 8, size=2))
        return self.images[index][:, top : top + 8, left : left + 8], index % 2


class TorchRandom(HeldGenerator):
    def __getitem__(self, index: int) -> Any:
        top, left = (int(v) for v in torch.randint(0, 8, (2,)))
        return self.images[index][:, top : top + 8, left : left + 8], index % 2


def _row(result: Any) -> str:
    report = result.report
    loud = sorted({f["code"] for f in report["findings"] if f["severity"] in ("warning", "error")})
    probe = [
        a["status"] for a in report["audits"] if a["name"] == "gradient_probe" and a["status"] != "disabled"
    ]
    return f"{', '.join(loud) or '-'}{' | probe ' + probe[0] if probe else ''} | exit {report['exit_code']}"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="loop-cases-"))
    folder = tmp / "images"
    make_image_folder(folder, {"cat": 12, "dog": 12}, size=16)
    cases: list[tuple[str, Callable[[], Any]]] = []

    def shared() -> Any:
        train, val = random_split(ImageFolder(str(folder), transform=TRAIN_TF), [18, 6])
        val.dataset.transform = EVAL_TF
        return auditor.check(train=train, val=val, audits=["data_loading"])

    def separate() -> Any:
        order = torch.randperm(24).tolist()
        train = Subset(ImageFolder(str(folder), transform=TRAIN_TF), order[:18])
        val = Subset(ImageFolder(str(folder), transform=EVAL_TF), order[18:])
        return auditor.check(train=train, val=val, audits=["data_loading"])

    targets = torch.tensor([0] * 30 + [1] * 3)
    data = TensorDataset(torch.randn(33, 4), targets)
    counts = torch.bincount(targets).double()

    def per_class() -> Any:
        sampler = WeightedRandomSampler(1.0 / counts, num_samples=33)
        return auditor.check(train=DataLoader(data, batch_size=8, sampler=sampler), audits=["data_loading"])

    def per_sample() -> Any:
        sampler = WeightedRandomSampler((1.0 / counts)[targets], num_samples=33)
        return auditor.check(train=DataLoader(data, batch_size=8, sampler=sampler), audits=["data_loading"])

    def last_batch(drop_last: bool) -> Callable[[], Any]:
        def run() -> Any:
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
            loader = DataLoader(data, batch_size=32, shuffle=True, drop_last=drop_last)
            return auditor.check(
                model,
                torch.optim.SGD(model.parameters(), lr=0.1),
                nn.CrossEntropyLoss(),
                train=loader,
                audits=["data_loading", "gradient_probe"],
                gradient_probe={"steps": 3},
            )

        return run

    def workers(dataset: Dataset) -> Callable[[], Any]:
        return lambda: auditor.check(
            train=DataLoader(dataset, batch_size=4, shuffle=True, num_workers=2), audits=["data_loading"]
        )

    def manifest_sampler(per_sample: bool) -> Callable[[], Any]:
        def run() -> Any:
            project = Project(tmp / f"sampler-{per_sample}")
            project.image_folder("data/train", {"cat": 20, "dog": 4}, size=8)
            module = f"loop_case_sampler_{str(per_sample).lower()}"
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
            split = {"format": "image_folder", "root": "data/train", "sampler": f"{module}:balanced"}
            return run_in_process(
                project.manifest({"train": split}, audits={"data_loading": {}}, pythonpath=["."])
            )

        return run

    cases = [
        ("1 random_split + val.dataset.transform = eval_tf (check)", shared),
        ("1 clean: one ImageFolder per transform (check)", separate),
        ("2 WeightedRandomSampler(1/class_counts), 33 samples (check)", per_class),
        ("2 clean: weights per sample (check)", per_sample),
        ("2 data.train.sampler factory, per-class weights (run)", manifest_sampler(False)),
        ("2 clean: factory with per-sample weights (run)", manifest_sampler(True)),
        ("3 33 samples, batch 32, BatchNorm1d head (check + probe)", last_batch(False)),
        ("3 clean: drop_last=True (check + probe)", last_batch(True)),
        ("7 self.rng = default_rng(0), num_workers=2 (check)", workers(HeldGenerator())),
        ("7 clean: torch.randint, num_workers=2 (check)", workers(TorchRandom())),
    ]
    for name, case in cases:
        try:
            row = _row(case())
        except Exception as exc:  # an old version may refuse a case outright
            row = f"raised {type(exc).__name__}: {exc}"[:120]
        print(f"{name:62} {row}")


if __name__ == "__main__":
    main()
