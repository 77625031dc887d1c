"""LoRA on the tiny ViT: without ``modules_to_save`` the new head stays frozen (FZ015).

    python examples/huggingface/peft_example.py          # LoraConfig without modules_to_save
    python examples/huggingface/peft_example.py --fixed  # modules_to_save=["classifier"]

A frozen base with trainable LoRA adapters is the intended setup and is not a finding;
the head that starts from random weights must train in full, which peft does only for
the modules in ``modules_to_save``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiny

#: LoRA on the attention projections (named query/value before transformers 5, q_proj/v_proj since).
TARGETS = r".*\.(q_proj|v_proj|query|value)$"


def lora_model(fixed: bool) -> Any:
    from peft import LoraConfig, get_peft_model

    extra = {"modules_to_save": ["classifier"]} if fixed else {}
    return get_peft_model(tiny.vit(), LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, **extra))


def audit(fixed: bool, **check_options: Any) -> Any:
    import torch

    import auditor

    model = lora_model(fixed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    train = tiny.images(24, seed=0)
    train.set_transform(tiny.train_transform)
    loader = torch.utils.data.DataLoader(train, batch_size=8, shuffle=True, collate_fn=tiny.collate)
    # the model computes its own loss from the labels in the batch, as under the Trainer
    return auditor.check(
        model, optimizer, train=loader, loss_step=lambda m, batch, _: m(**batch).loss, **check_options
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixed", action="store_true", help="list the head in modules_to_save (the fix)")
    options = parser.parse_args(argv)
    result = audit(options.fixed, audits=["frozen_coverage"], progress=False)
    for finding in result.findings:
        print(f"{finding.code} {finding.severity}: {finding.message}")
    print(f"exit code {result.exit_code}")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
