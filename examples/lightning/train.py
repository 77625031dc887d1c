"""Fine-tune with Lightning; auditor audits the fit before the first step.

python examples/lightning/train.py                  # a clean setup: audits, then trains one epoch
python examples/lightning/train.py --forgot-softmax # the planted bug: the audit stops the fit
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))

import lightning as L
from lit_example.data import loaders
from lit_example.module import Classifier

from auditor import AuditFailed
from auditor.integrations.lightning import AuditCallback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--forgot-softmax", action="store_true", help="plant the log-of-logits bug")
    args = parser.parse_args(argv)
    audit = AuditCallback(
        fail_on="error", report_dir=HERE / "reports", gradient_probe={"steps": 5, "overfit_steps": 5}
    )
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        callbacks=[audit],
        default_root_dir=HERE,
    )
    train, val = loaders()
    try:
        trainer.fit(Classifier(forgot_softmax=args.forgot_softmax), train, val)
    except AuditFailed as failed:
        print(f"\nthe fit was stopped before training:\n{failed}", file=sys.stderr)
        return 1
    print(f"\naudited and trained; reports in {HERE / 'reports'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
