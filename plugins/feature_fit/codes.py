"""feature_fit's finding codes: what each means, why it breaks training, how to fix it.

The same text is shown by ``auditor explain CODE`` and in docs/codes.md.
"""

from __future__ import annotations

from auditor import CodeInfo, Severity

__all__ = ["CODES"]

CODES = [
    CodeInfo(
        "FF001",
        Severity.ERROR,
        "only the head trains, and the frozen features barely separate the classes",
        """
**What it means.** The whole backbone is frozen, and its features (the head's input)
on a sample of `train` barely separate your classes: the leave-one-out k-NN accuracy
on them, with its 95% interval, stays below the bar halfway from chance to 100%
(`separable_lift`, default 0.5). LogME, a transferability score, is in the evidence.

**Why it breaks training.** A linear head can only draw lines through the features it
is given. When the classes overlap in that space (a domain gap: medical scans,
satellite tiles, faint textures against an ImageNet backbone), the head plateaus near
chance however long it trains.

**How to fix it.** Unfreeze the blocks the hint names (the last ones, more when the
features separate less, no more than two on few samples per class), with a learning
rate about 10x lower than the head's in its own param group; or pick a backbone
pretrained on data closer to yours.

**Example.** `frozen features reach 31% 5-NN accuracy (95% CI 24%-39%) on 4 classes,
chance 25%: unfreeze layer3, layer4`.
""",
    ),
    CodeInfo(
        "FF002",
        Severity.WARNING,
        "domain gap: the data's statistics at BatchNorm inputs are far from the stored running statistics",
        """
**What it means.** At BatchNorm layers the per-channel mean and variance of your data
(on a sample of `train`, the model in `eval()` mode) are far from the running
statistics stored in the pretrained weights: the mean per-channel KL divergence is
above `bn_divergence` (default 0.5). The evidence lists the divergence of every
BatchNorm layer by depth; the HTML report plots it. A gap in the first layers is the
input's scale or normalization (see TP001, TP002, TP006); a gap deep in the network is
a domain gap (AdaBN, Li et al. 2016, uses these statistics as a domain's description).

**Why it breaks training.** Frozen BatchNorm layers normalise your data with another
domain's statistics: activations come out shifted and scaled, the features the head
sees are distorted, and a frozen backbone underperforms or a fine-tune starts far off.

**How to fix it.** Normalize inputs as the weights expect (early gap). For a deep gap,
train the named blocks with a lower learning rate and let their BatchNorm layers
re-estimate statistics in train mode; with a frozen backbone, at least recompute the
running statistics on your training data before training the head.

**Example.** Grayscale X-rays through an ImageNet ResNet: `layer3.*.bn*` and
`layer4.*.bn*` divergences of 2-8 while `bn1` is 0.1.
""",
    ),
    CodeInfo(
        "FF003",
        Severity.WARNING,
        "an evaluation split differs from train in feature space",
        """
**What it means.** Within each class, a k-NN domain classifier on the frozen features
tells the evaluation split's samples from `train`'s better than `shift_accuracy`
(default 70%, lower bound of its 95% interval; 50% is indistinguishable). The
message names the classes that differ most. Comparing within classes keeps a mere
difference in class proportions (LD003) out of it.

**Why it breaks training.** The model is selected and judged on data it was not
trained on: validation loss climbs while training loss falls, and the reported
accuracy does not predict either split.

**How to fix it.** Check how the split was collected and preprocessed (another camera,
resolution, colour space, transform); add training data like it, or evaluate on a
split drawn like train. TP003 catches a transform difference directly.

**Example.** `val` photographed under other lighting: 94% (95% CI 88%-97%), most
different classes `'cat'` (100%), `'dog'` (92%).
""",
    ),
    CodeInfo(
        "FF004",
        Severity.INFO,
        "the frozen features separate the classes well: training only the head is a sound first stage",
        """
**What it means.** Information: only the head trains, and the frozen features already
separate the classes well (k-NN accuracy, lower end of its 95% interval, at or above
the bar halfway from chance to 100%).

**Why it matters.** A linear probe on these features is a sound first stage: cheap,
stable, hard to overfit. The numbers are a baseline for the trained head.

**How to fix it.** Nothing to fix. If accuracy plateaus, unfreeze the last block with
a 10x lower learning rate.

**Example.** `frozen features reach 96% 5-NN accuracy (95% CI 91%-98%) on 4 classes,
chance 25%`.
""",
    ),
    CodeInfo(
        "FF005",
        Severity.WARNING,
        "a full fine-tune of many parameters on few samples per class, with no augmentation or weight decay",
        """
**What it means.** The whole backbone trains (at least `many_parameters`, default one
million, trainable), the training split has fewer than `few_samples_per_class`
(default 50, median over classes) samples per class, the training transform is
deterministic (applied twice to one image it gives the same tensor) and no param
group has weight decay.

**Why it breaks training.** Millions of free parameters memorise a few dozen images
per class within a few epochs: training loss goes to zero while validation loss
climbs, and the pretrained features are overwritten to fit noise.

**How to fix it.** Train only the last blocks and the head; add random augmentation
(`RandomResizedCrop`, `RandomHorizontalFlip`) and weight decay
(`AdamW(weight_decay=0.05)`); stop on validation loss.

**Example.** ResNet-50, all 23.5M parameters trainable, 30 images per class,
`Resize + ToTensor + Normalize`, `Adam(lr=1e-4)`.
""",
    ),
]
