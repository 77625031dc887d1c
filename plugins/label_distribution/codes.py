"""label_distribution's finding codes: what each means, why it breaks training, how to fix it.

The same text is shown by ``auditor explain CODE`` and in docs/codes.md.
"""

from __future__ import annotations

from auditor import CodeInfo, Severity

__all__ = ["CODES"]

CODES = [
    CodeInfo(
        "LD001",
        Severity.WARNING,
        "training classes are imbalanced",
        """
**What it means.** The largest training class has more than `max_imbalance_ratio`
(default 10) times as many samples as the smallest one.

**Why it breaks training.** With an unweighted loss the cheapest way to lower it is
to predict the majority class. A binary model then sits at the majority prior (or
near 0.5 for every minority sample), and accuracy looks fine while recall on the
rare class is close to zero.

**How to fix it.** Weight the loss by inverse class frequency
(`w_c = N / (C * n_c)`), or for a binary `BCEWithLogitsLoss` set
`pos_weight = n_negative / n_positive`; or draw batches with a
`WeightedRandomSampler`; or collect more minority samples. The finding's hint
gives the exact numbers for your data. Note that `BCELoss(weight=...)` rescales
each *element* of the batch, it is not a class weight.

**Example.** 900 `cat` and 60 `dog` images: ratio 15.0, weights
`[0.533, 8.0]`, so `CrossEntropyLoss(weight=torch.tensor([0.533, 8.0]))`.
""",
    ),
    CodeInfo(
        "LD002",
        Severity.ERROR,
        "evaluation class missing from train",
        """
**What it means.** A class has samples in an evaluation split but none in `train`.

**Why it breaks training.** The model can never predict a class it was not trained
on, so every such sample counts as an error. With one-folder-per-class datasets it is
worse: class indices are assigned per folder listing, so a missing class shifts the
index of every class after it, and the evaluation labels no longer mean what the
model's outputs mean.

**How to fix it.** Add training samples for the class, or remove it from the
evaluation split; make sure every split maps class names to the same indices
(for ImageFolder, the same set of sub-folders in every split).

**Example.** `val/zebra/` exists but `train/zebra/` does not: `val`'s `zebra` is
index 3 while the model's output 3 was trained as another class.
""",
    ),
    CodeInfo(
        "LD003",
        Severity.WARNING,
        "class proportions drift between splits",
        """
**What it means.** The class proportions of an evaluation split differ from those of
`train` by more than `max_label_drift` in total variation distance
(`TVD = 1/2 * sum_c |p_train(c) - p_eval(c)|`, between 0 and 1).

**Why it breaks training.** Validation loss and accuracy are then measured on a
different label prior than the one the model learns; they can rise or fall for
reasons that have nothing to do with the model, and early stopping or model
selection follows the wrong signal.

**How to fix it.** Split with stratification (e.g. scikit-learn's
`train_test_split(..., stratify=labels)`), or report per-class metrics and
re-weight the evaluation to the deployment prior.

**Example.** `train` is 50/50 cat/dog, `val` is 90/10: TVD 0.40.
""",
    ),
    CodeInfo(
        "LD004",
        Severity.WARNING,
        "imbalanced data with an unweighted loss",
        """
**What it means.** The training classes are imbalanced (see LD001), the loss has no
class weighting (`weight` for `CrossEntropyLoss`/`NLLLoss`, `pos_weight` for
`BCEWithLogitsLoss`) and the manifest declares no balancing sampler
(`data.train.sampler`).

**Why it breaks training.** Nothing counteracts the imbalance, so the optimum of
the loss leans to the majority class: the classic "outputs stuck at the prior /
0.5" symptom of fine-tuning on skewed data.

**How to fix it.** Pass the class weights from the hint to the loss, or declare
`sampler: weighted` when the training script uses a `WeightedRandomSampler`.
`BCELoss(weight=...)` does not count: that weight rescales batch elements.

**Example.** `loss: {factory: torch.nn:CrossEntropyLoss, kwargs: {weight: ...}}` is
built in code, e.g. `mypkg.train:make_loss` returning
`CrossEntropyLoss(weight=torch.tensor([0.53, 8.0]))`.
""",
    ),
    CodeInfo(
        "LD005",
        Severity.WARNING,
        "class with too few training samples",
        """
**What it means.** A training class has fewer than `min_samples_per_class`
(default 10) samples.

**Why it breaks training.** A handful of examples is too few for the head to learn
a decision boundary; the class is memorised or ignored, and its validation metrics
are noise.

**How to fix it.** Collect more samples, merge the class with a related one, or use
heavy augmentation and a balanced sampler for it.

**Example.** `train/otter/` holds 4 images.
""",
    ),
    CodeInfo(
        "LD006",
        Severity.ERROR,
        "empty split or single training class",
        """
**What it means.** A split has no samples at all, or `train` holds a single class.

**Why it breaks training.** An empty split crashes or silently skips evaluation; a
single training class gives a constant target, so the loss reaches zero by
predicting that class for every input and nothing is learned.

**How to fix it.** Check the split's path and format options (wrong `root`, wrong
column, image extensions the loader skips), and that the training data holds every
class.

**Example.** `data.val.root: data/valid` while the folder is `data/val`.
""",
    ),
    CodeInfo(
        "LD007",
        Severity.ERROR,
        "a class maps to different indices in different splits",
        """
**What it means.** The same class name has one index in `train` and another in an
evaluation split. torchvision's `ImageFolder`/`DatasetFolder` index the sorted class
folders *of each split separately*, and tables whose label names are factorized per
split do the same: when one split lacks a class (or has an extra one), every class
sorted after it shifts. auditor reads the index map from `class_to_idx` when a dataset
has one, else from the split's class list.

**Why it breaks training.** Evaluation scores every shifted class against the wrong
output: accuracy collapses for those classes (or looks like noise), although the model
may be fine. Nothing crashes.

**How to fix it.** Use train's map for every split: give every split the same class
folders, or build the map once from train and pass it to the others (override
`find_classes` of a `DatasetFolder` subclass to return train's `classes` and
`class_to_idx`); for tables, map label names with one dictionary built from train.

**Example.** `train/` holds `cat/ dog/ fox/`, `val/` only `cat/ fox/`: `fox` is 2 in
train but 1 in val.
""",
    ),
    CodeInfo(
        "LD008",
        Severity.ERROR,
        "blank, NaN or unparsable class labels",
        """
**What it means.** Some rows of a table (CSV or Parquet) have a label cell that is blank,
NaN, not a whole number in an integer label column, or negative. auditor leaves these
rows out of its checks and lists how many there are and the first of them (with their
line in the CSV).

**Why it breaks training.** Training code turns them into something: `int(nan)` crashes,
`astype(str)` makes a class named `'nan'`, a factorize makes class `-1` (an index
`CrossEntropyLoss` rejects, or on CUDA a device-side assert), and one blank cell makes
pandas read an integer column as floats, so labels become `'0.0'`, `'1.0'` and are
mapped to the wrong indices when treated as names.

**How to fix it.** Fill in or drop the rows listed; keep integer labels as whole
numbers `0..C-1`; when reading with pandas, check `df[label].isna().sum() == 0` before
training.

**Example.** `img/0007.jpg,` (empty label) in a CSV whose other labels are `0`, `1`, `2`.
""",
    ),
    CodeInfo(
        "LD009",
        Severity.ERROR,
        "the loss's class weights do not fit the training classes",
        """
**What it means.** The loss carries a class weighting (`weight` of `CrossEntropyLoss` or
`NLLLoss`, `pos_weight` of `BCEWithLogitsLoss`) that does not fit the training data: its
length differs from the number of classes (labels), or it weights the larger classes
more than the smaller ones. The finding shows the class-index mapping training uses
and the corrected vector computed from the real counts.

**Why it breaks training.** A weight vector is read by class index. Weights computed in
the order the classes were listed (not the order of `class_to_idx`, alphabetical for an
ImageFolder) land on the wrong classes and make the imbalance worse; a vector of the
wrong length raises on the first step (or silently weights only some classes).

**How to fix it.** Compute the weights from the dataset's own mapping:
`counts[idx]` for `idx in range(num_classes)` with `class_to_idx`, e.g. inverse class
frequency `N / (C * n_c)`, and for `BCEWithLogitsLoss` `pos_weight = neg / pos` of the
class with index 1.

**Example.** Classes listed as `normal, benign, malignant` (400, 60, 20 images), weights
`[1.2, 8, 24]`; ImageFolder's indices are `benign=0, malignant=1, normal=2`, so `normal`
gets 24 and `malignant` 8.
""",
    ),
    CodeInfo(
        "LD010",
        Severity.WARNING,
        "the training loader reads label-ordered data in order",
        """
**What it means.** Training reads `train` without shuffling (a DataLoader with a
`SequentialSampler`, `shuffle=False`; or `shuffle: false` for the split in the manifest)
and the samples are stored sorted by label (an ImageFolder lists them class by class),
so at least half the batches hold a single class. The evidence gives the batch size and
the count of single-class batches.

**Why it breaks training.** Every step pulls the model towards one class, the next
steps towards another: the loss oscillates, BatchNorm statistics follow the current
class, and the model ends each epoch biased to the last classes it saw.

**How to fix it.** `DataLoader(train, batch_size=..., shuffle=True)` (or a sampler that
draws in random order); keep `shuffle: true` for the training split in the manifest.

**Example.** `DataLoader(ImageFolder("train"), batch_size=32)` over 3 classes of 400
images: 36 of 38 batches hold one class.
""",
    ),
    CodeInfo(
        "LD011",
        Severity.ERROR,
        "the model's config.num_labels differs from the number of classes in the data",
        """
**What it means.** The model is a Hugging Face model whose `config.num_labels` (and
`id2label`) counts another number of classes than the data's class names (a
`ClassLabel`'s `names`, the folders, the table's labels).

**Why it breaks training.** The head is built from `num_labels`: with fewer outputs
than classes some labels are out of range (a CUDA assert, or a silently wrong loss);
with more, outputs that no label ever trains, and predictions among them.

**How to fix it.** Build the model from the dataset's labels:
`from_pretrained(folder, num_labels=len(names), id2label=dict(enumerate(names)),
label2id={n: i for i, n in enumerate(names)}, ignore_mismatched_sizes=True)`.

**Example.** A checkpoint's 1000 ImageNet labels kept for a 10-class `ClassLabel`.
""",
    ),
    CodeInfo(
        "LD012",
        Severity.ERROR,
        "the model's id2label names the classes in another order (or other names) than the data",
        """
**What it means.** The model's `config.id2label` and the data's class names have the
same count, but index `i` names another class in each (a different order, or other
names), so the label the model is trained to predict at output `i` is not the one its
config calls it.

**Why it breaks training.** Training itself is unaffected, but everything that reads
`id2label` afterwards is wrong: pipelines, the hub widget, confusion matrices and any
inference code print the wrong class for every prediction.

**How to fix it.** Derive both maps from the dataset's `ClassLabel`:
`id2label = dict(enumerate(ds.features["label"].names))`,
`label2id = {n: i for i, n in id2label.items()}`.

**Example.** `id2label={0: "dog", 1: "cat"}` for `ClassLabel(names=["cat", "dog"])`.
""",
    ),
]
