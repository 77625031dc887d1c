"""frozen_coverage's finding codes: what each means, why it breaks training, how to fix it.

The same text is shown by ``auditor explain CODE`` and in docs/codes.md.
"""

from __future__ import annotations

from auditor import CodeInfo, Severity

__all__ = ["CODES"]

CODES = [
    CodeInfo(
        "FZ001",
        Severity.ERROR,
        "the model has no trainable parameters",
        """
**What it means.** Every parameter of the model has `requires_grad=False`.

**Why it breaks training.** Nothing can learn: the loss never moves, or the
optimizer refuses to start (`optimizer got an empty parameter list`). It usually
happens when a "freeze the backbone" loop runs *after* the new head was attached.

**How to fix it.** Freeze first, then replace the head (new modules are trainable),
or set `requires_grad=True` on the head's parameters explicitly.

**Example.**
`model.fc = nn.Linear(512, 3)` followed by `for p in model.parameters(): p.requires_grad = False`.
""",
    ),
    CodeInfo(
        "FZ002",
        Severity.ERROR,
        "trainable parameters that the optimizer will never update",
        """
**What it means.** Some parameters have `requires_grad=True` but are in no param
group of the optimizer (matched by identity, not value), or only in groups whose
learning rate is 0.

**Why it breaks training.** They receive gradients but never change. Typical
causes: the optimizer was built before the head was replaced (it holds the old
head's tensors), it was built over another model instance, or a param-group list
forgot a module. The new head then stays at its random initialisation and the
outputs look stuck.

**How to fix it.** Build the optimizer last, from the final model:
`optimizer = SGD([p for p in model.parameters() if p.requires_grad], lr=...)`, or
make sure the param groups together cover every trainable parameter. A group with
`lr=0` is only fine when a warm-up scheduler raises it later.

**Example.** `opt = Adam(model.parameters())`, then `model.fc = nn.Linear(2048, 10)`:
`fc.weight` and `fc.bias` are missing.
""",
    ),
    CodeInfo(
        "FZ003",
        Severity.INFO,
        "the whole pretrained backbone is frozen; only the head trains",
        """
**What it means.** Information: every parameter outside the head is frozen, so the run
is a linear probe of fixed features. A frozen backbone is a choice, not a mistake
(v0.3; it was a warning before): whether it works on this data is feature_fit's
verdict, FF001 (the frozen features barely separate the classes, an error) or FF004
(they separate them well). The message says when feature_fit cannot judge: a
random-init backbone, or feature_fit not run.

**Why it matters.** Fixed features can be too far from a new domain (medical images,
satellite photos, faint textures): accuracy then plateaus early, well below what
fine-tuning reaches. Fine when the features fit, or as a deliberate first stage.

**How to fix it.** Nothing to fix by itself. Read FF001/FF004; to fine-tune, unfreeze
the last block(s) of the backbone (the hint names them) with a learning rate about
10x lower than the head's, in a separate param group.

**Example.**
`SGD([{"params": model.layer4.parameters(), "lr": 1e-4}, {"params": model.fc.parameters(), "lr": 1e-3}])`.
""",
    ),
    CodeInfo(
        "FZ004",
        Severity.ERROR,
        "the classifier head is frozen",
        """
**What it means.** Parameters of the head (the manifest's `model.head`, else the
last Linear or 1x1-conv classifier) have `requires_grad=False`.

**Why it breaks training.** The new head starts random; frozen, it never learns the
new classes, so predictions stay near chance whatever happens to the backbone.

**How to fix it.** Set `requires_grad=True` on the head's parameters (or replace the
head after freezing), and check `model.head` names the right module.

**Example.** `model.fc.requires_grad_(False)` left over from a feature-extraction
script.
""",
    ),
    CodeInfo(
        "FZ005",
        Severity.WARNING,
        "frozen BatchNorm layers still update running statistics",
        """
**What it means.** After `model.train()` (called exactly as training does, custom
overrides respected), normalization layers with running statistics whose affine
parameters are frozen are in training mode: their running mean and variance are
overwritten by the new data's batch statistics.

**Why it breaks training.** "Frozen" backbone features then drift anyway, and with
small batches the running statistics become noisy; evaluation (which uses the
running statistics) disagrees with training, so validation loss rises while
training loss falls.

**How to fix it.** Override `train()` to put frozen norm layers back in eval mode:

```python
def train(self, mode=True):
    super().train(mode)
    for m in self.backbone.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return self
```

or unfreeze them if adapting the statistics to the new domain is intended.

**Example.** A ResNet with `requires_grad=False` on every backbone parameter: its
20 BatchNorm2d layers still have `training=True`.
""",
    ),
    CodeInfo(
        "FZ006",
        Severity.INFO,
        "the optimizer holds frozen parameters",
        """
**What it means.** Param groups contain parameters with `requires_grad=False`.

**Why it breaks training.** Usually harmless - torch optimizers skip parameters
without a gradient - but it is often a sign of confusion about what is frozen, and
with gradual unfreezing these parameters start training at the group's learning
rate the moment they are unfrozen.

**How to fix it.** Pass only trainable parameters
(`filter(lambda p: p.requires_grad, model.parameters())`), or keep them on purpose
for gradual unfreezing, with the learning rate you want them to have then.

**Example.** `SGD(model.parameters(), lr=0.01)` after freezing the backbone.
""",
    ),
    CodeInfo(
        "FZ007",
        Severity.ERROR,
        "head output size does not match the number of classes",
        """
**What it means.** The head produces a number of outputs different from the number
of classes in the data (`task.num_classes`, else the classes found in the splits).
One output for a binary task is fine.

**Why it breaks training.** Too few outputs make `CrossEntropyLoss` fail on
out-of-range labels (or, with one output, give a loss of exactly 0); too many leave
outputs that never see a positive example - typically the pretrained 1000-class
ImageNet head that was never replaced.

**How to fix it.** Replace the head with one sized to the data:
`model.fc = nn.Linear(model.fc.in_features, num_classes)`.

**Example.** `resnet50(weights=...)` used as is on a 37-class dataset: 1000 outputs.
""",
    ),
    CodeInfo(
        "FZ008",
        Severity.WARNING,
        "a parameter is listed in more than one param group",
        """
**What it means.** The same parameter tensor appears in two param groups (or twice
in one). torch's own optimizers refuse this; custom optimizers may not.

**Why it breaks training.** The parameter is updated twice per step, with two
learning rates and weight decays: its effective learning rate is not the one
planned, which destabilises discriminative fine-tuning.

**How to fix it.** Build the groups from disjoint modules, e.g. backbone params
as `[p for n, p in model.named_parameters() if not n.startswith("fc.")]` and head
params from `model.fc`.

**Example.** `[{"params": model.parameters()}, {"params": model.fc.parameters(), "lr": 1e-2}]`.
""",
    ),
    CodeInfo(
        "FZ010",
        Severity.ERROR,
        "a load_state_dict call filled few or none of the module's weights",
        """
**What it means.** While the model factory built the model, a `load_state_dict` call
(recorded for the duration of the build), or the load you reported to `auditor.check`
(`load_result=` or `checkpoint=`), filled less than `min_load_match` (default 50%) of
the module's keys. The message gives the share, the first unfilled names and the first
names of the file that fit nothing; the evidence has every load.

**Why it breaks training.** `load_state_dict(sd, strict=False)` raises nothing when the
keys do not fit. The module keeps its random initialisation and trains from scratch
while everything else (the normalization, the learning rate, a frozen backbone) was
chosen for pretrained weights: accuracy far below what the checkpoint promised, with
no error anywhere.

**How to fix it.** Make the keys fit and load with `strict=True`. A checkpoint saved from
`DataParallel` or `DistributedDataParallel` prefixes every key with `module.`:
`{k.removeprefix("module."): v for k, v in sd.items()}`. A checkpoint nested under
`"state_dict"` needs `sd["state_dict"]`. A backbone-only file goes into
`model.backbone`, not into the whole model.

**Example.** `model.load_state_dict(torch.load("ddp.pt"), strict=False)`: 0 of 62 keys
filled; the file's keys start with `module.`.
""",
    ),
    CodeInfo(
        "FZ011",
        Severity.ERROR,
        "modules that train are in eval() mode when training starts",
        """
**What it means.** Dropout, BatchNorm or drop-path modules (the ones whose `training`
flag changes what they compute) are in `eval()` mode although they, or the module
around them, have trainable parameters. The manifest's model is read after
`model.train()`; a model handed to `auditor.check` as it is; the Lightning callback
reads the module at the start of the fit and again after the first validation.

**Why it breaks training.** In `eval()` dropout and drop-path do nothing, so the
regularisation you configured is off, and BatchNorm normalizes with its stored running
statistics and never updates them: the model overfits, or fine-tunes against
statistics of another dataset. Nothing raises.

**How to fix it.** Call `model.train()` before the first step. Hugging Face
`from_pretrained` returns the model in `eval()`; Lightning 2.2+ no longer calls
`train()` on the whole module, it keeps each submodule's mode, so call
`self.model.train()` in `__init__` or `on_fit_start`. A frozen part may stay in `eval()`
on purpose: freeze its parameters too and it is not reported.

**Example.** A LightningModule holding `AutoModel.from_pretrained(...)`: 37 `Dropout`
modules in `eval()` at the first step.
""",
    ),
    CodeInfo(
        "FZ012",
        Severity.WARNING,
        "a weight load could not be checked",
        """
**What it means.** A checkpoint given as `auditor.check(checkpoint=...)` could not be
read as a state dict (`torch.load(path, weights_only=True)` failed, or the file holds
no mapping of names to tensors), so whether its weights fit the model is unknown.

**Why it breaks training.** It may not: the other checks then assume weights that were
never compared with the model.

**How to fix it.** Save the weights as `torch.save(model.state_dict(), path)` and pass
that file; or pass what your own `load_state_dict(...)` returned as `load_result=`.

**Example.** `checkpoint="model.pkl"` holding a pickled whole model, not a state dict.
""",
    ),
    CodeInfo(
        "FZ015",
        Severity.ERROR,
        "the new head of a PEFT (LoRA) model is frozen: it is not in modules_to_save",
        """
**What it means.** The model is a `peft` `PeftModel`: the base model is frozen and
small adapters (LoRA's `lora_A`/`lora_B`, ...) train, which is the intended setup.
But the new classification head, which starts from random weights, is frozen too:
it is neither trainable nor listed in the adapter config's `modules_to_save`.

**Why it breaks training.** The adapters can only nudge the backbone's features; the
head that maps them to your classes stays at its random initialisation, so accuracy
stays near chance however long you train. The loss barely falls.

**How to fix it.** List the head in the adapter config before `get_peft_model()`:
`LoraConfig(r=8, target_modules=["query", "value"], modules_to_save=["classifier"])`.
It then trains in full and is saved with the adapters.

**Example.** `get_peft_model(ViTForImageClassification(...), LoraConfig(target_modules=["query", "value"]))`
for a 10-class dataset: `base_model.model.classifier` (7,690 parameters) never changes.
""",
    ),
    CodeInfo(
        "FZ016",
        Severity.INFO,
        "the pretrained checkpoint's head was dropped and re-initialised (ignore_mismatched_sizes)",
        """
**What it means.** `model.pretrained` names a Hugging Face model folder whose weights
hold a tensor of another shape than the model's (the checkpoint's 1000-class
classifier against your 10-class head): `from_pretrained(...,
ignore_mismatched_sizes=True)` dropped it and initialised the model's own at random.
The finding names those tensors, and those the checkpoint does not have at all.

**Why it matters.** Expected for a new head, and it must then train (see FZ004 and
FZ015). Anywhere else (a backbone layer) it means pretrained weights were thrown away
without an error.

**How to fix it.** Nothing, when the named tensors are the new head. Otherwise load a
checkpoint whose architecture matches, or change the config option (image size,
number of channels) that changed the shape.

**Example.** `ViTForImageClassification.from_pretrained(folder, num_labels=10,
ignore_mismatched_sizes=True)` on a 1000-class checkpoint: `classifier.weight`
`[1000, 768]` -> `[10, 768]`.
""",
    ),
]
