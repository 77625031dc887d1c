"""gradient_probe's finding codes: what each means, why it breaks training, how to fix it.

The same text is shown by ``auditor explain CODE`` and in docs/codes.md.
"""

from __future__ import annotations

from auditor import CodeInfo, Severity

__all__ = ["CODES"]

CODES = [
    CodeInfo(
        "GP001",
        Severity.ERROR,
        "loss or gradients become NaN or infinite",
        """
**What it means.** During the probe's training steps the loss or a gradient became
NaN or infinite, or the loss rose above `loss_explosion_factor` (default 10) times
its reference (the larger of the first loss and the loss of uniform predictions).

**Why it breaks training.** One non-finite gradient turns every weight it touches
into NaN on the next optimizer step; from then on the model outputs NaN and nothing
can recover it. An exploding loss is the step before.

**How to fix it.** Lower the learning rate (start 10x lower), add warm-up and
`torch.nn.utils.clip_grad_norm_`, normalise the inputs, and never take `log` of a
probability yourself: use `CrossEntropyLoss` / `BCEWithLogitsLoss` on logits.

**Example.** `SGD(lr=10)` on a fresh head: loss 1.1, 85, 3e7, nan.
""",
    ),
    CodeInfo(
        "GP002",
        Severity.ERROR,
        "trainable parameters receive exactly zero gradient",
        """
**What it means.** Parameters with `requires_grad=True` got a gradient of exactly zero
(or none at all) on every probe step. Dead-ReLU layers found on the way are named in
the evidence.

**Why it breaks training.** These weights never move although you pay for them:
either they are not used in `forward`, something detaches the graph (`.detach()`,
`.data`, `torch.no_grad()`, a NumPy round trip), or a layer such as a ReLU whose
inputs are all negative ("dead ReLU") blocks every gradient below it.

**How to fix it.** Use the parameters in `forward` or freeze them; remove the
detaching code; for dead ReLUs fix the initialisation or bias of the layer feeding
it, lower the learning rate, or use LeakyReLU/GELU.

**Example.** A bottleneck `Linear(64, 8)` whose bias was initialised to -100: its
ReLU outputs 0 for every input, so nothing before it learns.
""",
    ),
    CodeInfo(
        "GP003",
        Severity.WARNING,
        "vanishing or exploding gradients in some layers",
        """
**What it means.** For a weight tensor the ratio of gradient norm to weight norm is
below `vanishing_ratio` (default 1e-7, mean over steps) or above `exploding_ratio`
(default 100, largest step). Biases and zero-initialised tensors are not judged.

**Why it breaks training.** Below float32's resolution (about 1.2e-7 relative) an
update with any sane learning rate is rounded away: the layer does not learn.
Above 100, one SGD step at learning rate 0.01 (the top of the usual fine-tuning
range) moves the weight by more than its own size, which makes training unstable.

**How to fix it.** Vanishing: residual connections, normalisation layers, ReLU-family
activations instead of stacked sigmoids/tanh, Kaiming/Xavier initialisation.
Exploding: lower the learning rate, clip gradients, normalise the inputs.

**Example.** Twelve stacked `Linear + Sigmoid` layers: the first layer's ratio is
about 1e-9.
""",
    ),
    CodeInfo(
        "GP004",
        Severity.ERROR,
        "(near) identical predictions for different inputs",
        """
**What it means.** After the probe's steps the outputs for the different inputs of a
batch are (nearly) the same: their spread across the batch is below
`collapse_relative_spread` (default 1e-3) of the output magnitude. It is checked at
the start and the end; a collapse only at the start (a zero-initialised head) is a
note, not a finding.

**Why it breaks training.** The model ignores its input, so it can at best learn the
label prior: every image gets the same prediction and accuracy equals the majority
share.

**How to fix it.** Look for the layer that erases the input: dead ReLUs (see GP002),
saturated sigmoid/tanh, a normalisation over a dimension of size 1, or inputs that
are constant after the transform; lower the learning rate.

**Example.** A network whose bottleneck ReLU is dead outputs its head's bias for
every image.
""",
    ),
    CodeInfo(
        "GP005",
        Severity.WARNING,
        "probability outputs stuck near 0.5 / uniform",
        """
**What it means.** After the probe's steps the predicted probabilities (sigmoid of the
logits for BCE losses, softmax for cross-entropy) are still close to uniform: the
median of `2|p - 0.5|` (sigmoid) or `C * max_c p - 1` (softmax) is below
`stuck_margin` (default 0.1, i.e. within 0.05 of 0.5 for a binary output) and did
not move away from uniform by at least half that margin during the probe.

**Why it breaks training.** This is the "outputs stuck at 0.5" symptom: the model is
not becoming confident about anything, so the loss plateaus near its starting value
and predictions are a coin flip.

**How to fix it.** Check the related findings first: a head that gets no gradient
(GP002), outputs already squashed before the loss (GP009), a learning rate far too
low (GP006). Also check class balance: a model that only learns the prior predicts
it for every input.

**Example.** `Sigmoid` inside the model plus `BCEWithLogitsLoss`: the loss applies a
second sigmoid and every probability lands in 0.5-0.73.
""",
    ),
    CodeInfo(
        "GP006",
        Severity.WARNING,
        "the loss does not fall when overfitting one batch",
        """
**What it means.** A fresh copy of the model trained with the manifest's optimizer on
one batch for `overfit_steps` steps (default 20) did not bring the loss down by
`overfit_min_drop` (default 0.3, i.e. to 70 % of its start). The message says which
cause the curve points to: learning rate too high (loss rises or oscillates), too
low (loss barely moves and the weights change by less than 1e-3 of their norm per
step), or no gradient flow (most weights got no gradient).

**Why it breaks training.** Any working setup can memorise a handful of samples. If it
cannot, full training will not work either, whatever the data.

**How to fix it.** Change the learning rate by 10x in the direction the message
gives, or fix the gradient flow (GP002, frozen layers).

**Example.** `SGD(lr=1e-7)`: loss 1.10 -> 1.10 after 20 steps.
""",
    ),
    CodeInfo(
        "GP007",
        Severity.WARNING,
        "initial loss far from what a fresh head gives",
        """
**What it means.** The loss of the first batch is more than `initial_loss_tolerance`
(default 0.5, i.e. 1.5x) above the loss of uniform predictions on the same batch
(`ln C` for balanced multiclass cross-entropy, `ln 2` for BCE), or below half of the
loss of predicting the training label prior (the prior's entropy).

**Why it breaks training.** A freshly initialised head should be unsure. A much larger
loss means huge logits at initialisation (unnormalised inputs, a bad init scale):
the first steps are spent undoing that, often with exploding gradients. A much
smaller one means the head is not fresh, or the label leaks into the input.

**How to fix it.** Normalise the inputs as the pretrained weights expect, initialise
the head with small weights (optionally its bias to the log prior); for a low loss,
check where the head's weights come from and whether the input encodes the label.

**Example.** Inputs in 0..255 (ToTensor forgotten, `PILToTensor().float()` used):
initial loss 180 for 3 classes, where `ln 3 = 1.10`.
""",
    ),
    CodeInfo(
        "GP008",
        Severity.ERROR,
        "frozen parameters changed during the steps",
        """
**What it means.** Snapshots taken before and after the probe's steps differ for a
parameter with `requires_grad=False`, or for the running statistics of a BatchNorm
layer whose own parameters are all frozen (compared bit for bit with `torch.equal`).

**Why it breaks training.** Freezing is meant to keep pretrained features exactly as
they are. BatchNorm layers in train mode keep updating `running_mean`/`running_var`
from your (small, differently distributed) batches even when frozen, so the
"frozen" backbone drifts and evaluation uses statistics it was never trained with.

**How to fix it.** Put frozen BatchNorm layers in eval mode after every
`model.train()` (override `train()`), or build them with
`track_running_stats=False`; find any code that writes into frozen weights (in-place
updates in `forward`, an optimizer stepping on a stale `.grad`). PyTorch optimizers
skip parameters whose `.grad` is None, so weight decay alone does not move them.

**Example.** A ResNet with every backbone parameter frozen and `model.train()` called:
20 BatchNorm layers change their running statistics.
""",
    ),
    CodeInfo(
        "GP009",
        Severity.WARNING,
        "outputs are already probabilities but the loss expects logits",
        """
**What it means.** The loss applies softmax/sigmoid itself (`CrossEntropyLoss`,
`BCEWithLogitsLoss`) or expects log-probabilities (`NLLLoss`), but the model's
outputs are already probabilities: the last module run is `Softmax`/`Sigmoid`, or
the output rows are non-negative and sum to 1, or every output lies in [0, 1].

**Why it breaks training.** The loss squashes a second time. Softmax of probabilities
is nearly uniform and sigmoid of values in [0, 1] lies in 0.5-0.73, so gradients
are tiny, the loss plateaus and predictions stick near 0.5/uniform (GP005).

**How to fix it.** Remove the final Softmax/Sigmoid from the model and apply it only at
inference; or keep a Sigmoid and use `BCELoss`; for `NLLLoss` end with `LogSoftmax`.

**Example.** `nn.Sequential(backbone, nn.Linear(512, 3), nn.Softmax(dim=1))` trained
with `CrossEntropyLoss`.
""",
    ),
    CodeInfo(
        "GP010",
        Severity.ERROR,
        "model output shape does not fit the labels",
        """
**What it means.** The output of the first batch cannot be matched with its targets
before any training step: the number of outputs differs from the number of classes,
a label lies outside the output range, or the loss rejects the pair. The message
names both shapes. When no loss can be computed the probe stops here.

**Why it breaks training.** Out-of-range labels crash training (on CUDA as an opaque
device-side assert); an output wider than the classes wastes probability mass on
classes that do not exist, and a 1000-way ImageNet head that was never replaced
trains on the wrong task without any error.

**How to fix it.** Replace the head with one output per class (one per label for
multilabel, one logit for binary BCE), and keep labels in `0..C-1`.

**Example.** `resnet18()` keeps its 1000-way `fc` on a 3-class dataset: output
`[8, 1000]`, targets `[8]` with labels 0..2.
""",
    ),
    CodeInfo(
        "GP011",
        Severity.INFO,
        "measured step time and peak memory",
        """
**What it means.** Information, not a problem: the median time of one training step
(with the share spent loading data), peak memory (CUDA max allocated, or the
process's peak resident memory on CPU) and the projected time of one epoch of
`train` at the probe's batch size.

**Why it matters.** It tells you before launching whether an epoch takes minutes or
days, and whether data loading is the bottleneck.

**How to fix it.** Nothing to fix; raise `num_workers` when data loading dominates.

**Example.** `0.21 s per step (data 0.01 s) at batch 8 on cuda:0; one epoch of train
(10,000 samples, 1,250 steps) takes about 4.4 min`.
""",
    ),
    CodeInfo(
        "GP012",
        Severity.ERROR,
        "the probe could not train: training batches cannot be loaded",
        """
**What it means.** The probe stopped before its steps were done because the training
DataLoader could not deliver a batch: a batch could not be collated (samples of
different shapes, PIL images without `ToTensor()`, mixed types), or no sample of
several consecutive batches loaded. The message names the split, the samples
(index and path), what they look like and the number of steps trained; none of the
probe's other checks judged anything past that point.

**Why it breaks training.** Training uses the same DataLoader: it stops with the same
error at the same kind of batch, usually within the first epoch.

**How to fix it.** Follow the hint (convert images to RGB, a fixed final size,
`ToTensor()`, or declare the padding `collate_fn` training uses in
`data.train.collate_fn`); DL001-DL003 (data_loading) name the samples of every split.

**Example.** A `Dataset` that skips `.convert("RGB")`: `stack expects each tensor to
be equal size, but got [3, 224, 224] at entry 0 and [1, 224, 224] at entry 5`;
the probe trained 0 of 20 steps.
""",
    ),
    CodeInfo(
        "GP013",
        Severity.ERROR,
        "the first real training step fails in the loss",
        """
**What it means.** The loss raised when given the model's output and the targets of
the first training batch exactly as your dataset and collate function produce them
(dtype, shape and device unchanged). The message quotes the exception and both
dtypes and shapes.

**Why it breaks training.** Training calls the same loss on the same batch: it crashes
on its first step. auditor never casts, squeezes or one-hot-encodes targets for you,
so a probe that passes means the real step works.

**How to fix it.** Follow the hint: class indices as integers for
`CrossEntropyLoss`/`NLLLoss`; float targets shaped like the output for
`BCEWithLogitsLoss`/`BCELoss`; `float32` rather than `float64` (Python floats collate to
`float64`).

**Example.** A dataset that returns labels read from a CSV as `1.0`:
`CrossEntropyLoss` raises `expected scalar type Long but found Double`.
""",
    ),
    CodeInfo(
        "GP014",
        Severity.ERROR,
        "the model's outputs are not what the loss reads them as",
        """
**What it means.** On the first real batch, before any optimizer step: `NLLLoss` gets
outputs that are not log-probabilities (the `exp` of each row does not sum to 1), or
`BCELoss` gets outputs outside `[0, 1]`. (Probabilities given to a loss that expects
logits are GP009.)

**Why it breaks training.** `NLLLoss` on raw logits only picks the target's logit and
negates it: the loss falls below 0 without bound by making every logit larger, and
nothing learns to separate the classes. `BCELoss` raises on values outside `[0, 1]`.

**How to fix it.** End the model with `nn.LogSoftmax(dim=1)`, or keep raw logits and use
`nn.CrossEntropyLoss()`; for `BCELoss` use `nn.BCEWithLogitsLoss()` on raw outputs.

**Example.** `resnet18` with a new `fc` and `NLLLoss()`: row sums of `exp` 3.1..9.8,
loss -0.2 after three steps.
""",
    ),
    CodeInfo(
        "GP015",
        Severity.ERROR,
        "a regression loss compares outputs and targets of different shapes",
        """
**What it means.** `MSELoss`, `L1Loss`, `SmoothL1Loss` or `HuberLoss` got an output and
targets whose shapes differ but broadcast (`[B, 1]` and `[B]` become `[B, B]`). torch
computes a value and only emits a `UserWarning`.

**Why it breaks training.** Every output is compared with every target of the batch,
so the best the model can do is predict the batch mean: training runs, the loss
falls a little, and the model learns nothing about its inputs.

**How to fix it.** Give the targets the output's shape (`target.float().view_as(output)`)
or squeeze the output (`output.squeeze(1)`) in the training step.

**Example.** A one-output regression head, `MSELoss()`, targets `[8]`: the loss is
computed over `[8, 8]` pairs.
""",
    ),
    CodeInfo(
        "GP016",
        Severity.ERROR,
        "the targets break the loss's contract although it computes a value",
        """
**What it means.** On the first real batch the targets are not what the loss means:
`BCEWithLogitsLoss`/`BCELoss` targets outside `[0, 1]` (class indices given to a binary
loss), or float `CrossEntropyLoss` targets read as class probabilities whose rows do
not sum to 1 (multi-hot multilabel rows given to a softmax loss).

**Why it breaks training.** torch accepts both and returns a number, so training runs,
but it optimises a different objective: targets of 2 push a sigmoid beyond 1, and
multi-hot rows under softmax make labels compete that should not.

**How to fix it.** One label out of several classes: `CrossEntropyLoss` with integer
class indices. Several labels per sample: `BCEWithLogitsLoss` with multi-hot rows of 0/1.

**Example.** Three classes given as 0/1/2 to `BCEWithLogitsLoss` on a one-logit head.
""",
    ),
    CodeInfo(
        "GP017",
        Severity.WARNING,
        "torch or your code warned during a training step",
        """
**What it means.** A warning was emitted during the probe's forward pass, loss or
backward pass (by torch or by your model, loss or dataset code). The finding quotes
its category, message and source line; each distinct warning is reported once, with
how often it came.

**Why it breaks training.** torch warns where it does something other than what you
probably meant (broadcasting in a loss, a non-contiguous gradient, an implicit
dimension choice). In a training log these scroll past once and are lost.

**How to fix it.** Fix the cause the message names rather than filtering the warning.

**Example.** `UserWarning: Using a target size (torch.Size([8])) that is different to
the input size (torch.Size([8, 1]))` from `MSELoss` (see GP015).
""",
    ),
    CodeInfo(
        "GP018",
        Severity.INFO,
        "a deprecation warning during a training step",
        """
**What it means.** A `DeprecationWarning`, `PendingDeprecationWarning` or `FutureWarning`
was emitted during the probe's forward pass, loss or backward pass.

**Why it matters.** The code still works with this torch version; the next one may
change its behaviour or remove it, and a training job that worked starts failing.

**How to fix it.** Move to the replacement the message names.

**Example.** `FutureWarning: torch.cuda.amp.autocast(args...) is deprecated`.
""",
    ),
    CodeInfo(
        "GP019",
        Severity.ERROR,
        "a forward or backward pass raises on a real training batch",
        """
**What it means.** The model's forward pass or `loss.backward()` raised on a training
batch. For a forward pass the probe replays it with a hook on every module and names
the innermost layer that raised, its input shapes and what it expected (input
channels of a convolution, input features of a linear layer).

**Why it breaks training.** Training runs the same step on the same kind of batch: it
crashes on its first step.

**How to fix it.** Follow the hint: a `Grayscale(1)` transform before a 3-channel stem
needs `Grayscale(num_output_channels=3)`; a head sized for another input resolution
needs the input resized (or an adaptive pooling layer); a backward that finds no
gradient means every parameter is frozen or the graph is detached.

**Example.** `resnet18` after `Grayscale(1)`: the first conv `conv1` expects 3 input
channels, the batch has 1.
""",
    ),
    CodeInfo(
        "GP020",
        Severity.ERROR,
        "the learning rate overwrites the pretrained layers",
        """
**What it means.** During the probe, the pretrained backbone blocks (weights loaded, not
the new head) moved faster than fine-tuning should: the median per-step update of a
block, `||w_after - w_before|| / ||w_before||`, is above `pretrained_update_ratio`
(default 2% per step). How far the backbone's features on a fixed batch of training
inputs (the head's input, in eval mode, with the start's BatchNorm statistics) moved is
measured too (linear CKA with their start) and quoted when below `pretrained_min_cka`
(default 0.8); features that move at a sane rate are only a note, since they must move
where the pretrained features do not fit the data. The message names the blocks, the param groups with
their learning rates, and the loss, which often still falls: the head learns while the
features it needs are destroyed. Per-block and per-group ratios are in the evidence.

**Why it breaks training.** A from-scratch learning rate (ImageNet's `SGD(lr=0.1)`)
rewrites pretrained filters within the first hundred steps. Training loss falls
(the network memorises the batch), held-out accuracy collapses towards chance, and
the benefit of pretraining is gone before the first validation.

**How to fix it.** Put the backbone in its own param group with a learning rate about
10x lower than the head's (the hint suggests one from the measured ratio), add a
warm-up, or keep the backbone frozen until the head has converged.

**Example.** `SGD(model.parameters(), lr=0.1, momentum=0.9)` on a pretrained CNN:
`layer1` moves 7.4% of its norm per step, features at CKA 0.62 after 20 steps;
`Adam([{"params": backbone, "lr": 1e-4}, {"params": head, "lr": 1e-3}])` stays at 0.1%.
""",
    ),
    CodeInfo(
        "GP025",
        Severity.WARNING,
        "the learning rate falls to ~0 before the middle of training",
        """
**What it means.** The learning-rate schedule (manifest `lr_scheduler`,
`auditor.check(lr_scheduler=...)` or the Lightning module's) was stepped on a copy over
the planned steps (`epochs` x steps per epoch, stepped per `interval`): after its peak
the rate falls below 1% of its base before the run's midpoint. The HTML report draws
the curve; the message gives the step and the scheduler's length.

**Why it breaks training.** From that step on the model barely learns: most of the
planned epochs are spent at a rate of ~0, and a periodic schedule (cosine) then climbs
back up and down again, far from what was planned.

**How to fix it.** Give the schedule's length in the unit it is stepped in: a cosine
`T_max` in epochs is stepped per epoch (`interval: epoch`); stepped every batch it needs
`T_max = epochs * steps_per_epoch`.

**Example.** `CosineAnnealingLR(opt, T_max=10)` with 10 epochs of 100 batches, stepped per
batch: the rate is 0.1% of its base at step 9.
""",
    ),
    CodeInfo(
        "GP026",
        Severity.WARNING,
        "the learning-rate schedule barely moves over the planned run",
        """
**What it means.** Over the planned run the schedule is stepped far fewer times than its
own length (less than 25% of `total_steps`, `T_max`, `total_iters`), or the rate never
changes at all: the learning rate stays where the schedule starts.

**Why it breaks training.** A warm-up schedule that is never stepped past its first
steps trains the whole run at the warm-up rate (OneCycleLR starts at `max_lr / 25`):
training is slow and converges to a worse model, with no error.

**How to fix it.** Step the scheduler in the unit its length is given in. Lightning's
default `interval` is `"epoch"`: a per-step schedule such as `OneCycleLR(total_steps=...)`
needs `{"scheduler": s, "interval": "step"}` in `configure_optimizers`; in the manifest
`lr_scheduler.interval: step`.

**Example.** `OneCycleLR(opt, max_lr=0.1, total_steps=1000)` returned from
`configure_optimizers` without `"interval": "step"`: 10 epochs step it 10 times, the rate
stays at 0.004.
""",
    ),
    CodeInfo(
        "GP027",
        Severity.WARNING,
        "the learning rate exceeds the schedule's declared peak",
        """
**What it means.** In the dry run the rate rises above its base (the optimizer's `lr`)
by more than the schedule declares: above `max_lr` for OneCycleLR/CyclicLR, above the
base for every other schedule.

**Why it breaks training.** A multiplier that keeps growing (a warm-up lambda that never
stops at 1, `LambdaLR(opt, lambda s: s / 10)`) drives the rate far past anything tuned:
the loss diverges part-way through training.

**How to fix it.** End warm-up factors at 1 (`lambda s: min(1.0, (s + 1) / warmup)`) and
set the peak with the optimizer's `lr` or `max_lr`.

**Example.** `LambdaLR(opt, lambda step: step / 100)` over 1,000 steps: the rate reaches 10x
its base.
""",
    ),
    CodeInfo(
        "GP028",
        Severity.ERROR,
        "the learning-rate scheduler fails within the planned run",
        """
**What it means.** Building the scheduler on a copy of the optimizer, or calling its
`step()` as often as the planned run will, raised. The message gives the scheduler step,
the optimizer step and epoch, and the exception.

**Why it breaks training.** Training raises the same exception at that step, after
hours of work, often in the last epoch.

**How to fix it.** Size the schedule to the planned run: `OneCycleLR(total_steps=...)`
must be at least `epochs * steps_per_epoch` when stepped per batch (or pass
`epochs=` and `steps_per_epoch=`). For a factory, make it take the optimizer first and
return the scheduler.

**Example.** `OneCycleLR(opt, max_lr=0.1, total_steps=500)` stepped per batch for 10
epochs of 100 batches: `ValueError: Tried to step 502 times` at epoch 6.
""",
    ),
]
