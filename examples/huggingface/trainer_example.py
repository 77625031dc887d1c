"""A Trainer fine-tune audited by ``AuditCallback``: the planted mistake stops it before its first step.

    python examples/huggingface/trainer_example.py          # the mistake: the new head is frozen
    python examples/huggingface/trainer_example.py --fixed  # the same run with the head trainable

The mistake is a classic: the backbone is frozen with ``requires_grad_(False)`` on the
whole model, the last encoder block unfrozen, and the new classifier forgotten. The
callback audits at ``on_train_begin`` and raises ``AuditStoppedTraining`` naming the
head (FZ004) before the Trainer takes a step. Nothing is downloaded.
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


def build(output_dir: str | Path, fixed: bool, **callback_options: Any) -> tuple[Any, Any]:
    """``(trainer, callback)`` for the tiny fine-tune; ``fixed`` unfreezes the head."""
    from transformers import Trainer, TrainingArguments

    from auditor.integrations.transformers import AuditCallback

    train, val = tiny.images(24, seed=0), tiny.images(12, seed=1)
    train.set_transform(tiny.train_transform)
    val.set_transform(tiny.eval_transform)
    model = tiny.vit()
    model.requires_grad_(False)  # freeze the backbone ...
    model.vit.layernorm.requires_grad_(True)  # ... but fine-tune its last norm layer
    if fixed:
        model.classifier.requires_grad_(True)  # the line the mistake forgot
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        max_steps=2,
        learning_rate=1e-3,
        remove_unused_columns=False,  # set_transform needs the image column
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    callback = AuditCallback(pretrained=tiny.processor(), **callback_options)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=tiny.collate,
        callbacks=[callback],
    )
    return trainer, callback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixed", action="store_true", help="unfreeze the head (the fix)")
    parser.add_argument("--output-dir", default="hf-trainer-out")
    options = parser.parse_args(argv)
    from auditor.integrations.transformers import AuditStoppedTraining

    trainer, _ = build(options.output_dir, options.fixed)
    try:
        trainer.train()
    except AuditStoppedTraining as stopped:
        print(stopped)
        print(f"optimizer steps taken: {trainer.state.global_step}")
        return 1
    print(f"trained {trainer.state.global_step} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
