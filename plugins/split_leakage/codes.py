"""split_leakage's finding codes: what each means, why it breaks training, how to fix it.

The same text is shown by ``auditor explain CODE`` and in docs/codes.md.
"""

from __future__ import annotations

from auditor import CodeInfo, Severity

__all__ = ["CODES"]

CODES = [
    CodeInfo(
        "SL001",
        Severity.ERROR,
        "identical samples in two splits",
        """
**What it means.** A sample of one split is byte-for-byte the same file as a sample
of another split (xxh3-128 of the file bytes), or, for datasets without files, the
same decoded tensor/array (dtype, shape and values) or the same PIL pixels.

**Why it breaks training.** Evaluation on data the model has trained on measures
memorisation, not generalisation: validation loss looks healthy while the model
overfits, early stopping and model selection follow a flattering signal, and the
test score overstates what the model will do on new data.

**How to fix it.** Deduplicate before splitting (hash the files, keep one copy per
hash), then split; or delete the copies from the evaluation split. The finding's
evidence lists the pairs (capped at `max_pairs`), its `count` gives the total.

**Example.** `val/cat/leak_01.jpg` is a copy of `train/cat/0981.jpg`, made when the
dataset was re-split by copying files instead of moving them.
""",
    ),
    CodeInfo(
        "SL002",
        Severity.WARNING,
        "near-duplicate samples in two splits",
        """
**What it means.** A sample of one split is a re-encoded, resized, lightly edited
(brightness, contrast) or horizontally flipped copy of a sample in another split:
their 64-bit perceptual hashes differ in at most `max_distance` bits (default 8) and
their 8x8 thumbnails correlate at `min_similarity` (default 0.97) or more. Mirrored
copies are matched through the hash of the mirrored thumbnail. On the benchmark
(benchmarks/leakage.py: 22,000 JPEGs, 100 planted near copies, 20 of them mirrored)
these defaults found every copy (recall 100 %) with no false-positive pair
(precision 100 %); crops, rotations and quarter turns are SL007's.

**Why it breaks training.** The model sees the evaluation image during training up
to augmentation it was trained to ignore (resizing, flips, colour jitter), so the
evaluation score is inflated exactly as with identical copies (SL001), but no
byte comparison can see it.

**How to fix it.** Group near duplicates before splitting (e.g. put each group's
members in the same split), or remove the copies from the evaluation split. Lower
`max_distance` or raise `min_similarity` if a reported pair is not a copy; set
`near_duplicates: false` to check identical samples only.

**Example.** `val/dog/img_77.jpg` is `train/dog/img_12.jpg` mirrored and saved
again at JPEG quality 70: distance 2, mirrored, similarity 0.996.
""",
    ),
    CodeInfo(
        "SL003",
        Severity.WARNING,
        "duplicates in one split with different labels",
        """
**What it means.** Inside one split, copies of the same sample (same file listed
twice, identical bytes, or near duplicates as in SL002) carry different labels.

**Why it breaks training.** The same input is asked to produce two answers: the loss
cannot reach zero on those samples, gradients pull in opposite directions, and in
an evaluation split at least one of the copies is always counted wrong. It usually
means a labelling error or an image filed into two class folders.

**How to fix it.** Decide the correct label, keep one copy, and check how the copy
happened (a scraper saving the same image under two queries, a merge of two
datasets with different class names).

**Example.** `train/cat/123.jpg` and `train/dog/456.jpg` are the same photo.
""",
    ),
    CodeInfo(
        "SL004",
        Severity.INFO,
        "duplicates in one split with the same label",
        """
**What it means.** Inside one split, several copies of the same sample (identical,
or near duplicates as in SL002) carry the same label.

**Why it breaks training.** Not an error, but duplicates weigh those images more
than the others (an implicit over-sampling), and in an evaluation split they count
the same answer several times. Many duplicates shrink the effective data set.

**How to fix it.** Keep one copy of each group unless the repetition is deliberate
(e.g. oversampling a rare class, which a weighted sampler does more cleanly).

**Example.** `train/cat/0001.jpg` and `train/cat/0001 (1).jpg`, a download saved twice.
""",
    ),
    CodeInfo(
        "SL005",
        Severity.ERROR,
        "the same file listed in two splits",
        """
**What it means.** Two splits list the same file (after resolving `..`, symlinks and
relative roots), typically two CSV files that were not split disjointly.

**Why it breaks training.** Every such sample is trained on and evaluated on: the
evaluation score partly measures memorisation (see SL001).

**How to fix it.** Make the listings disjoint, e.g. split the table once with a
fixed seed and write each part out, or split by a group key (patient, video, user).

**Example.** `train.csv` and `val.csv` both contain `images/0042.jpg`.
""",
    ),
    CodeInfo(
        "SL006",
        Severity.INFO,
        "files that cannot be read or decoded",
        """
**What it means.** Some files of a split are missing, unreadable, empty, truncated,
corrupt or not images PIL can open (for datasets without files: samples that fail
to load or have no hashable type). They are still compared by content hash where
their bytes could be read, but not for near duplicates.

**Why it breaks training.** The training loader will raise on them in the middle of
an epoch (or a `try/except` in a dataset silently skips them, changing the data).

**How to fix it.** Delete or re-download the files, or fix the paths in the listing;
`PIL.Image.open(path).load()` reproduces the error. The evidence lists the files.

**Example.** `train/cat/0007.jpg` ends after 4 KB (an interrupted download):
"cannot decode: OSError: image file is truncated".
""",
    ),
    CodeInfo(
        "SL007",
        Severity.WARNING,
        "cropped, rotated or turned copies in two splits",
        """
**What it means.** A sample of an evaluation split shows a sample of an earlier split
cropped (keeping at least about 70% of each side, anywhere in the picture), rotated
by up to about 10 degrees (and cropped around its centre to hide the corners), or
turned by a quarter turn (90, 180 or 270 degrees, with or without a mirror) -- also
when only its EXIF orientation tag turns it back, so that an image viewer shows the
training picture while torchvision's loader (which ignores the tag) sees turned
pixels. Any of these may also be resized, re-encoded, grayscale or colour-changed. A
perceptual hash of the whole picture cannot see these copies. Each pair was checked
pixel by pixel before it was reported: the matched region of the training picture is
resampled, and its edges (band-pass, score >= 0.8), its brightness (>= 0.8) and, when
both pictures have colour, its hues (>= 0.8) must agree with the evaluation
sample's; without colour, the edges must score >= 0.9 and agree in a finer band at
twice the resolution (>= 0.9) too. The evidence says how the copy relates ("cropped to 49% of the area at
x=12%, y=20%", "rotated by about 7 degrees clockwise", "turned 90 degrees
clockwise") and gives the region of the training sample it shows (the HTML report
outlines it).

**Why it breaks training.** Random crops, small rotations and flips are exactly the
augmentations training applies: the model has been trained on the evaluation picture
up to the changes it was taught to ignore, so the evaluation score is inflated as
with an identical copy (SL001).

**How to fix it.** Remove the copies from the evaluation split, or group each
picture with its edited versions before splitting (e.g. by source id). Set
`geometric: false` to skip this search.

**Example.** `val/dog/IMG_2041_crop.jpg` is `train/dog/IMG_2041.jpg` cropped to 52%
of the area at x=20%, y=8% (score 0.93).
""",
    ),
    CodeInfo(
        "SL008",
        Severity.ERROR,
        "the same group (subject) in train and an evaluation split",
        """
**What it means.** Samples of an evaluation split (every split but `train`) belong
to a group that also has samples in `train`: the same patient, video, product or
user, as the split's declared group ids say (`group_pattern` over each sample's path
relative to the split's root, a table's `group_column`, `auditor.check(groups=...)`
or a dataset's `auditor_groups`). The images differ, so no hash finds them; the
evidence lists the shared groups (capped at `max_pairs`) with their samples on both
sides, and `count` gives the number of shared groups.

**Why it breaks training.** Samples of one subject share far more than the label:
the patient's anatomy, the scanner, the video's background, the product's packaging.
A model can learn to recognise the subject instead of the class, and evaluation on
other samples of subjects it trained on rewards exactly that. Validation accuracy
then overstates what the model does on new subjects, often by a wide margin, and
early stopping and model selection follow the inflated number.

**How to fix it.** Split by group, not by sample, so that each subject lies in one
split only: scikit-learn's `GroupShuffleSplit(n_splits=1, test_size=0.2)
.split(X, y, groups=ids)` for one split, `GroupKFold` (or `StratifiedGroupKFold` to
keep class proportions) for cross-validation; then write the splits out again. If
the ids are wrong (the pattern captures the wrong part of the path), fix
`group_pattern`.

**Example.** `data/train/pneumonia/patient_0042/scan_03.png` and
`data/val/pneumonia/patient_0042/scan_07.png` with `group_pattern: 'patient_(\\d+)/'`:
patient 0042 is in both splits; 37 such patients hold 212 of val's 800 scans.
""",
    ),
    CodeInfo(
        "SL009",
        Severity.WARNING,
        "samples without a group id",
        """
**What it means.** The split declares group ids, but some of its samples have none:
`group_pattern` does not match their path relative to the split's root (or its
group matched an empty string), or their `group_column` cell (or `groups=` entry)
is blank, NaN or `None`. They were not checked for group leakage (SL008); the
evidence lists the first of them (capped at `max_pairs`) and `count` all of them.

**Why it breaks training.** A subject whose samples have no id can sit in train and
in an evaluation split unseen, so a run without SL008 says less than it seems.
Samples that do not fit the pattern are often the ones filed differently (another
site's naming, a folder level more), which is where leaks hide.

**How to fix it.** Make the pattern match every relative path (test it with
`re.search(pattern, path).group(1)` on the paths listed), or fill in the missing
ids; leave samples without a known subject out of the evaluation split.

**Example.** `group_pattern: 'patient_(\\d+)/'` over a val folder where one site
wrote `Patient-17/scan.png`: 40 samples have no id.
""",
    ),
]
