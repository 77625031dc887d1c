"""transform_parity's finding codes: what each means, why it breaks training, how to fix it.

The same text is shown by ``auditor explain CODE`` and in docs/codes.md.
"""

from __future__ import annotations

from auditor import CodeInfo, Severity

__all__ = ["CODES"]

CODES = [
    CodeInfo(
        "TP001",
        Severity.ERROR,
        "normalization the pretrained weights expect is missing",
        """
**What it means.** `model.pretrained` says the backbone was trained on inputs
normalized with a mean and std (ImageNet: mean `[0.485, 0.456, 0.406]`, std
`[0.229, 0.224, 0.225]`), but a split's pipeline has no `Normalize` step, and the
measured samples confirm it: values lie in `[0, 1]`.

**Why it breaks training.** Every first-layer filter and every BatchNorm statistic
was learned for zero-centred inputs of unit scale. Unnormalized inputs shift all
activations, the pretrained features degrade to noise, and fine-tuning starts far
from a good solution: slow convergence, a plateau, or - when only evaluation lacks
it - a validation loss far above the training loss.

**How to fix it.** Add `Normalize(mean, std)` with the pretrained statistics right
after the `[0, 1]` scaling step (`ToTensor()`, or `v2.ToDtype(torch.float32,
scale=True)`) in every split. The finding's hint has the exact call.

**Example.** `eval_tf = Compose([Resize(256), CenterCrop(224), ToTensor()])` for
`ResNet50_Weights.IMAGENET1K_V2`: add
`Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])`.
""",
    ),
    CodeInfo(
        "TP002",
        Severity.ERROR,
        "normalization differs from the pretrained weights'",
        """
**What it means.** A pipeline normalizes, but with a mean or std other than the
pretrained weights' (difference above the `tolerance` option, default 0.01, per
channel), or normalizes twice, or with a channel count that does not fit.

**Why it breaks training.** The backbone sees inputs shifted and scaled differently
from everything it was trained on; the effect is the same as a missing
normalization, only smaller - or larger, for double normalization.

**How to fix it.** Use the exact statistics of the weights you load (torchvision:
`weights.transforms()`; timm: `timm.data.resolve_data_config(model=model)`), and
normalize once. A `Normalize` written in 0..255 units after `PILToTensor` is
recognised and is fine.

**Example.** `Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])` for a torchvision ResNet
(expects `[0.485, 0.456, 0.406]` / `[0.229, 0.224, 0.225]`): std off by 0.27.
""",
    ),
    CodeInfo(
        "TP003",
        Severity.ERROR,
        "train and evaluation pipelines normalize differently",
        """
**What it means.** The training split and an evaluation split normalize with
different statistics, or one normalizes and the other does not.

**Why it breaks training.** The model is evaluated on inputs distributed
differently from the ones it learned on: validation loss rises while training loss
falls, and model selection and early stopping follow a wrong signal.

**How to fix it.** Build both pipelines from the same constants (one `MEAN`/`STD`
pair used by both), ideally from one function that adds augmentation for training
only.

**Example.** `train_tf` ends with `Normalize(IMAGENET_MEAN, IMAGENET_STD)`;
`eval_tf` forgot it.
""",
    ),
    CodeInfo(
        "TP004",
        Severity.WARNING,
        "random augmentation in an evaluation pipeline",
        """
**What it means.** An evaluation split's pipeline contains random steps
(`RandomHorizontalFlip`, `RandomResizedCrop`, `ColorJitter`, `RandomApply`, ...),
or - for opaque steps - transforming the same image twice gave different outputs.

**Why it breaks training.** Validation metrics become noisy and pessimistic, so
they change between two evaluations of the same model; early stopping and
checkpoint selection then react to noise.

**How to fix it.** Keep evaluation deterministic: `Resize` + `CenterCrop`, scaling
and `Normalize` only. Test-time augmentation, if wanted, belongs in the evaluation
loop (averaging several fixed views), not in the dataset transform.

**Example.** `eval_tf = Compose([Resize(64), RandomHorizontalFlip(), ToTensor()])`.
""",
    ),
    CodeInfo(
        "TP005",
        Severity.WARNING,
        "input size differs from the pretrained size or between splits",
        """
**What it means.** The measured (or, where nothing could be measured, declared)
height x width of the transformed samples differs from the size the weights were
trained at, or between `train` and an evaluation split, or varies inside one split;
or the channel count does not fit the backbone's stem (grayscale into a 3-channel
network).

**Why it breaks training.** Convolutional features are scale-sensitive: small
inputs shrink objects below the receptive fields the backbone learned, and a
train/eval size gap shifts feature statistics at evaluation. Architectures with a
fixed input size (ViT) fail outright; varying sizes cannot be batched.

**How to fix it.** Train with `RandomResizedCrop(S)` and evaluate with
`Resize(round(S / crop_pct))` + `CenterCrop(S)`, where `S` is the pretrained input
size (224 for most ImageNet weights); convert images to RGB.

**Example.** `RandomResizedCrop(64)` for `ResNet18_Weights.IMAGENET1K_V1`
(224x224).
""",
    ),
    CodeInfo(
        "TP006",
        Severity.WARNING,
        "measured input statistics contradict the declared normalization",
        """
**What it means.** `samples` real samples were pushed through the pipeline and
their per-channel min/max/mean do not fit what the declared normalization can
produce from images scaled to `[0, 1]`: values up to 255, values far outside the
normalized range, or a declared `Normalize` whose output still lies in `[0, 1]`.

**Why it breaks training.** Static checks trust the pipeline's declaration; this is
what the model really receives. Inputs 255 times too large saturate activations and
BatchNorm statistics from the first step - the classic "loss is NaN / outputs are
identical for every input" failure.

**How to fix it.** Scale to `[0, 1]` exactly once, normalize exactly once, and look
at the opaque steps (`Lambda`, custom callables) the finding names: one of them
rescales.

**Example.** `Compose([ToTensor(), Lambda(lambda x: x * 255), Normalize(MEAN,
STD)])`: measured max around 1100.
""",
    ),
    CodeInfo(
        "TP007",
        Severity.ERROR,
        "the pipeline gives a channel count the model's first convolution cannot take",
        """
**What it means.** Samples of a split, measured after its pipeline, have a number of
channels other than the `in_channels` of the model's first convolution (e.g. 1 channel
after `Grayscale(1)`, 4 from RGBA files, for a 3-channel stem).

**Why it breaks training.** The first forward pass raises (`expected input to have 3
channels, but got 1`), or, for a stem that accepts it through broadcasting tricks, the
pretrained filters see inputs they were never trained on.

**How to fix it.** `Grayscale(num_output_channels=3)` keeps grayscale images usable by an
RGB stem; `.convert("RGB")` in the dataset fixes RGBA and palette files. Rebuilding the
stem for another channel count discards its pretrained weights.

**Example.** `Compose([Grayscale(1), ToTensor()])` into `resnet18`: 1-channel inputs,
`conv1` takes 3.
""",
    ),
    CodeInfo(
        "TP008",
        Severity.ERROR,
        "inputs are normalized twice",
        """
**What it means.** A split's pipeline normalizes every sample twice: two `Normalize`
steps, or a step that already normalizes (a torchvision weights preset from
`weights.transforms()`, an image processor with `do_normalize=True`) followed by the
recipe's own `Normalize`. The finding names both steps and, when measured, the
resulting statistics.

**Why it breaks training.** The second normalization shifts and stretches inputs that
were already centred: ImageNet statistics applied twice give a mean about -2 and values
from about -11 to 8, so the pretrained features see inputs far from anything they were
trained on (and train and evaluation often differ in exactly this step).

**How to fix it.** Keep one normalization: either the preset or image processor, or your
own `Normalize`, not both.

**Example.** `Compose([weights.transforms(), Normalize(IMAGENET_MEAN, IMAGENET_STD)])`.
""",
    ),
    CodeInfo(
        "TP010",
        Severity.ERROR,
        "an image processor rescales inputs already in [0, 1] (double rescaling)",
        """
**What it means.** The pretrained source is a Hugging Face image processor with
`do_rescale=True` (it multiplies by `rescale_factor`, 1/255), and the measured inputs
of a split span less than one such step in every channel: the processor was given
float tensors already scaled to [0, 1] (by `ToTensor()`), and scaled them again.
Transformers only logs "It looks like you are trying to rescale already rescaled
images".

**Why it breaks training.** Every pixel ends up within 1/255 of zero (after
normalization: within a hundredth of `-mean/std`): the images are practically
constant, the model cannot tell them apart, and accuracy stays at chance.

**How to fix it.** Rescale once: pass `do_rescale=False` to the processor when you
hand it float tensors in [0, 1], or hand it PIL images / uint8 arrays and drop
`ToTensor()`.

**Example.** `processor(images=ToTensor()(img), return_tensors="pt")` with a
`ViTImageProcessor()`: values from -1.0 to -0.992.
""",
    ),
    CodeInfo(
        "TP011",
        Severity.ERROR,
        "an image processor's do_normalize is off while the weights expect normalized inputs",
        """
**What it means.** The image processor named as the pretrained source carries the
`image_mean`/`image_std` the weights were trained with, but `do_normalize` is
`False`, so it never applies them: the model gets values in [0, 1].

**Why it breaks training.** The same as a missing normalization (TP001): the
pretrained features see inputs shifted and scaled away from everything they were
trained on.

**How to fix it.** Set `do_normalize=True` (or remove `do_normalize: false` from
`preprocessor_config.json`), or normalize in the pipeline with the processor's
`image_mean`/`image_std`.

**Example.** `AutoImageProcessor.from_pretrained(folder, do_normalize=False)` for a
ViT trained on inputs normalized with mean 0.5, std 0.5.
""",
    ),
]
