"""data_loading's finding codes: what each means, why it breaks training, how to fix it.

The same text is shown by ``auditor explain CODE`` and in docs/codes.md.
"""

from __future__ import annotations

from auditor import CodeInfo, Severity

__all__ = ["CODES"]

CODES = [
    CodeInfo(
        "DL001",
        Severity.ERROR,
        "samples of a split cannot be batched together",
        """
**What it means.** The samples of a split, as the manifest's transform produces them,
cannot be combined into one batch by the collate function the split's DataLoader
uses (`default_collate` unless `data.<split>.collate_fn` names another): their
shapes differ (different channel counts or sizes), they are not tensors (PIL
images from a pipeline without `ToTensor()`), or they mix types.

**Why it breaks training.** The DataLoader collates every batch before the model
sees it. The first batch that holds two incompatible samples stops training with
`RuntimeError: stack expects each tensor to be equal size` or `TypeError:
default_collate: batch must contain tensors ...` — minutes or hours into an epoch
when the odd samples are rare.

**How to fix it.** Follow the finding's hint: convert every image to RGB when
loading it (`Image.open(p).convert("RGB")`, as torchvision's default loader
does), end the pipeline with a fixed size (`Resize((H, W))` or `Resize(S)` +
`CenterCrop(S)`) and `ToTensor()`, or declare the padding `collate_fn` training
really uses in `data.<split>.collate_fn`.

**Example.** A `Dataset` that opens images with `Image.open(path)` and no
`.convert("RGB")`: one grayscale JPEG gives a `[1, 224, 224]` tensor among
`[3, 224, 224]` ones.
""",
    ),
    CodeInfo(
        "DL002",
        Severity.ERROR,
        "loading some samples fails",
        """
**What it means.** Reading some samples raised an exception: the file is missing
or unreadable, indexing the dataset (`dataset[i]`) failed, or the transform raised on it.
The finding names the split, the sample index and path and the exception.

**Why it breaks training.** A DataLoader does not skip a sample that raises: the
exception stops the epoch (with workers, re-raised in the main process). A
missing file listed in a CSV or a truncated JPEG crashes training when its index
comes up, possibly hours in.

**How to fix it.** Fix or drop the samples named (restore the file, re-encode the
image, remove the row from the table); when the transform raises, fix the step
the exception names (e.g. a crop larger than the image).

**Example.** A CSV that still lists `img/0042.jpg` after the file was deleted:
`FileNotFoundError: [Errno 2] No such file or directory: 'img/0042.jpg'`.
""",
    ),
    CodeInfo(
        "DL003",
        Severity.ERROR,
        "no sample of a split can be loaded",
        """
**What it means.** Every sample of the split that was checked failed to load
(and, for splits backed by files, possibly every file is missing): the split
cannot deliver a single batch.

**Why it breaks training.** Training (or evaluation on this split) crashes on its
first batch. Every other audit that reads this split sees nothing, so its
checks say nothing about it.

**How to fix it.** Check the split's paths: `root` of an image folder, the
`path` column and `root` of a table (relative paths are read relative to
`root`, default the table's folder), and the transform, which the finding
shows failing on the first samples.

**Example.** A CSV of paths relative to `data/images` declared without
`root: data/images`, so every path is looked up beside the CSV.
""",
    ),
    CodeInfo(
        "DL007",
        Severity.ERROR,
        "a symlinked folder leads back to a folder above it: ImageFolder would list it forever",
        """
**What it means.** Inside a class folder of an `image_folder` split, a symbolic link
points to a folder that contains it (itself, its class folder or one above). The
finding names the link, what it points to and the folder it leads back to.
auditor found it without following it: the listing left the link out.

**Why it breaks training.** torchvision's `ImageFolder` lists every class folder
with `os.walk(followlinks=True)`, which enters the link, finds the link again one
level deeper, and again: the path grows until the system refuses it, and two such
links double the listing at every level. Building the dataset hangs (or exhausts
memory) before the first epoch, and every image below the link is counted many
times over even when the walk does end.

**How to fix it.** Remove the link (`rm cat/loop`, never `rm -r`: that would follow
it), or point it at a folder outside the class folder; to share images between
classes, link the files, not a parent folder.

**Example.** `data/train/cat/more -> ..` (made by `ln -s .. more` in the wrong
folder): `data/train/cat/more/cat/more/cat/...` has no end.
""",
    ),
]
