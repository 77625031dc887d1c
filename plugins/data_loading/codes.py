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
]
