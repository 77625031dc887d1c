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
        "DL004",
        Severity.ERROR,
        "user code ended the process",
        """
**What it means.** A call into the run's own code — a factory, a module's top
level while it was imported, the model's `forward`, reading a dataset's item, a
transform — ended the process instead of returning: it called `sys.exit()` or
`os._exit()`, raised `KeyboardInterrupt` itself, or died of a signal (a
segmentation fault or `abort()` in C code, a kill from outside). The finding
names the call, how it ended (exit code or signal) and, where known, the line of
your code it was in. auditor ran the audits in a worker process, so the report
still holds every audit that finished; the audits that needed the same call are
skipped, pointing here.

**Why it breaks training.** The training script makes the same call and ends the
same way — often with exit code 0, so a job scheduler records a success that
trained nothing.

**How to fix it.** Go to the line named: a library must not call `sys.exit()` or
`os._exit()` (raise an exception instead; keep `sys.exit` in `if __name__ ==
"__main__":`). A signal points at C code: an extension built for another
torch or CUDA version, a bad pointer in `ctypes`, or a corrupt file a decoder
cannot take; reproduce the call alone (`python -c "import m; m.build()"`) to see
it without auditor.

**Example.** `def build(): ...; sys.exit(0)` left at the end of a model factory
after debugging it as a script.
""",
    ),
    CodeInfo(
        "DL005",
        Severity.ERROR,
        "a call into user code raised an exception",
        """
**What it means.** The run's own code raised an exception that stopped an audit:
a factory, a module's import, the model's `forward`, a dataset or a transform.
The finding names the call, the exception and the innermost line of your code on
its traceback (the user's frame); the traceback of your frames is in its
evidence. This is not auditor crashing: auditor's own failures are reported as
an `errored` audit.

**Why it breaks training.** Training makes the same call with the same objects
and stops with the same exception.

**How to fix it.** Fix the line named. When no line of yours is named and the
exception is a `TypeError` of the call itself, the manifest's `kwargs` do not fit
the callable's parameters.

**Example.** A model factory whose `nn.Linear(width, classes)` gets a `width` of
`None`: `TypeError: empty() received an invalid combination of arguments`.
""",
    ),
    CodeInfo(
        "DL006",
        Severity.ERROR,
        "user code passed the run's time or memory limit",
        """
**What it means.** A call into the run's own code did not return within
`call_timeout_s` (a module that hangs at import, a factory waiting on a lock, a
dataset item read from a FIFO, C code that never returns), or the process running
it grew past the run's memory limit (`auditor run --memory-limit`, default 80%
of the machine's memory). auditor stopped waiting for it (a hung call is
abandoned; a process above the limit is stopped) and wrote the report with every
audit that finished.

**Why it breaks training.** A call that hangs here hangs training: a job that
sits at 0% GPU until the scheduler kills it. An allocation past the limit ends
training with an out-of-memory kill, often after the first epoch's data is
cached.

**How to fix it.** For a hang, make the call return (the finding names it) or,
when it is merely slow, raise `call_timeout_s`. For memory, find what the call
allocates (a dataset that loads every image in `__init__`, a cache without a
bound) or raise `--memory-limit` on a machine that has the memory.

**Example.** A module that waits for a GPU lock at import time: `import m` never
returns, and `call_timeout_s: 8` stops the wait after 8 s.
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
    CodeInfo(
        "DL008",
        Severity.ERROR,
        "the model's tensors are on the meta device",
        """
**What it means.** The model the factory returned has parameters or buffers on
PyTorch's `meta` device: tensors with a shape and no data, as made by `with
torch.device("meta"):`, `init_empty_weights()` or a lazy loader that never
materialised them. Nothing can run on them: a forward pass raises
`NotImplementedError: Cannot copy out of meta tensor`.

**Why it breaks training.** Training would fail at its first step, or (after a
`to_empty()` without loading) train from uninitialised memory.

**How to fix it.** Materialise the model before returning it: `model =
model.to_empty(device="cpu")`, then load the weights
(`model.load_state_dict(state, assign=True)`) or re-initialise each module
(`reset_parameters()`).

**Example.** `with torch.device("meta"): model = resnet50()` returned as is from
the factory.
""",
    ),
    CodeInfo(
        "DL010",
        Severity.ERROR,
        "the training split and an evaluation split share one dataset object or one random transform",
        """
**What it means.** Two splits are views of one dataset object (`Subset`,
`random_split`, `ConcatDataset` over the same `ImageFolder`), so they read it
through its one `transform`; or two dataset objects hold one transform object
whose draws vary. The finding names both splits, how each reaches the shared
object, the pipeline, and what reading the same training sample a few times
showed.

**Why it breaks training.** `train, val = random_split(ImageFolder(root,
transform=train_tf), ...)` then `val.dataset.transform = eval_tf` changes
both splits: training now runs without augmentation (the draws of one training
sample are identical) and overfits sooner. Left the other way round, the
evaluation split is read through random crops and flips, and its metrics are
noisy and biased low.

**How to fix it.** One dataset object per pipeline, and split the indices, not
the object: `train_ds = ImageFolder(root, transform=train_tf)`, `val_ds =
ImageFolder(root, transform=eval_tf)`, `idx = torch.randperm(len(train_ds))`,
`Subset(train_ds, idx[:n])`, `Subset(val_ds, idx[n:])`. A bare dataset split by
index with a transform applied by a per-split wrapper is fine and not reported;
so is one deterministic pipeline held by two separate datasets. If you really
mean to train without augmentation on a shared object, the fix still makes that
explicit.

**Example.** `train` (`Subset of ImageFolder`) and `val` (`Subset of
ImageFolder`) are views of one ImageFolder with `Compose(Resize, CenterCrop,
ToTensor)`: 3 draws of train[0] are identical.
""",
    ),
    CodeInfo(
        "DL011",
        Severity.ERROR,
        "a WeightedRandomSampler whose weights are not one per sample",
        """
**What it means.** The training `WeightedRandomSampler` holds a different number
of weights than the training dataset has samples; most often one weight per
class (`1.0 / class_counts`) instead of one per sample.

**Why it breaks training.** The sampler draws indices `0 .. len(weights) - 1`:
with one weight per class it only ever yields indices 0 and 1 (two images,
repeated for the whole epoch); with more weights than samples it yields indices
past the end, and the DataLoader raises `IndexError` mid-epoch.

**How to fix it.** Index the class weights by each sample's target:
`class_weights = 1.0 / class_counts`, `WeightedRandomSampler(class_weights[targets],
num_samples=len(dataset))`.

**Example.** `WeightedRandomSampler(1.0 / torch.tensor([30, 3]), num_samples=33)` on
33 samples: 2 weights for 33 samples.
""",
    ),
    CodeInfo(
        "DL012",
        Severity.ERROR,
        "one pass of the training sampler reaches only a sliver of the data",
        """
**What it means.** One real pass of the training sampler (the DataLoader's, or the
one `data.train.sampler`'s factory builds) was drawn and counted: it reaches
fewer than 10% of the training samples (divided by the world size under a
`DistributedSampler`), draws nothing, or yields indices outside the dataset.
The finding gives the draws, the distinct samples reached and the classes drawn.

**Why it breaks training.** Every epoch trains on the same few samples: the
model memorises them and validation never improves; indices past the end raise
`IndexError`.

**How to fix it.** Check the sampler's weights (one per sample, all positive; see
DL011) and `num_samples` (`len(dataset)` for an epoch of the usual length); a
`SubsetRandomSampler` should get the training indices, not a handful.

**Example.** A `WeightedRandomSampler` with 2 weights over 33 samples draws 33
indices reaching 2 samples (6.1%).
""",
    ),
    CodeInfo(
        "DL013",
        Severity.WARNING,
        "the training sampler makes class balance worse",
        """
**What it means.** The training sampler draws the classes in proportions
further apart than the training data holds them (largest/smallest ratio 1.5
times the data's, and above 2), or never draws a class at all. For a
`WeightedRandomSampler` the shares are exact, from its weights; for any other
sampler they are counted over one real pass (200 draws at least).

**Why it breaks training.** A sampler is usually there to balance classes. Weights
inverted (class counts instead of their inverse) or attached to the wrong
samples oversample the majority class: the model sees the rare classes even
less than with plain shuffling and predicts the majority class.

**How to fix it.** Weight each sample by the inverse frequency of its class:
`weights = 1.0 / class_counts[targets]`; or drop the sampler and use
`shuffle=True` with a class-weighted loss.

**Example.** Data 60% / 40%; the sampler draws 95% / 5% because the weights are
`class_counts[targets]`.
""",
    ),
    CodeInfo(
        "DL014",
        Severity.WARNING,
        "a sampler and shuffle are both declared for the training split",
        """
**What it means.** The manifest's `data.train` declares a `sampler` and
`shuffle: true`.

**Why it breaks training.** `DataLoader(sampler=..., shuffle=True)` raises
`ValueError: sampler option is mutually exclusive with shuffle`; a script
that makes it run drops one of the two, and either loses the balancing the
sampler gave or reads the samples in the sampler's order.

**How to fix it.** Pass only the sampler (it decides the order; a
`WeightedRandomSampler` draws at random) and declare `shuffle: false`.

**Example.** `data.train: {sampler: weighted, shuffle: true}`.
""",
    ),
    CodeInfo(
        "DL015",
        Severity.ERROR,
        "the last training batch holds one sample and the model's BatchNorm cannot train on it",
        """
**What it means.** The training loader (its sampler's length per process, which
a `DistributedSampler` divides by the world size, its `batch_size` and
`drop_last=False`) ends each epoch with a batch of one sample, and a copy of
the model in train mode given one real sample raises "Expected more than 1
value per channel when training" in a BatchNorm layer (or the model has
`BatchNorm1d` layers in train mode and the forward could not be run).

**Why it breaks training.** A BatchNorm layer in train mode normalises with the
batch's statistics and refuses a batch with one value per channel (a
`BatchNorm1d` head after pooling). Training crashes at the end of the first
epoch, after a whole epoch of compute.

**How to fix it.** `DataLoader(..., drop_last=True)` for the training loader, or a
batch size that leaves no single sample over.

**Example.** 33 training samples, `batch_size=32`, `drop_last=False`, a head with
`BatchNorm1d`: the 2nd batch holds 1 sample.
""",
    ),
    CodeInfo(
        "DL016",
        Severity.WARNING,
        "DataLoader workers draw identical augmentations (a generator the dataset holds)",
        """
**What it means.** With `num_workers > 0`, the same training sample read once in
worker 0 and once in worker 1 came out identical, although two reads in one
process differ: the pipeline is random, but every worker draws the same numbers.
The finding names the dataset attribute holding the generator (e.g.
`self.rng = np.random.default_rng(0)`) when it finds one.

**Why it breaks training.** Each worker process gets a copy of the dataset in the
state it had when the workers started. torch reseeds its own generator (and
Python's `random`) in every worker, but not a generator the dataset keeps: all
workers draw the same crops and flips, and, as workers are started afresh
each epoch, every epoch repeats the last. Augmentation is far weaker than
declared.

**How to fix it.** Draw from torch's generator (`torch.rand`, torchvision's
random transforms), or reseed the dataset's generator in each worker:
`DataLoader(..., worker_init_fn=seed_worker)` with `def seed_worker(i):
info = torch.utils.data.get_worker_info(); info.dataset.rng =
np.random.default_rng(torch.initial_seed() % 2**32)`; or make a per-call
generator inside `__getitem__`.

**Example.** `self.rng = np.random.default_rng(0)` in `__init__` and
`self.rng.integers(...)` for the crop offset in `__getitem__`, `num_workers=4`.
""",
    ),
]
