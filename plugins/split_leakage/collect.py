"""Gathering split_leakage hashes for every sample of every split.

File-backed splits (``split.paths()``) are hashed from their files: each file is
``lstat``-ed once, looked up in the SQLite cache, and only the misses are read,
in chunks spread over worker processes (in-process for small jobs, where starting
workers would cost more than it saves). A file listed several times, in one split
or in several, is hashed once. Splits without files (callable datasets) are
hashed from their decoded samples in this process: their datasets need not be
picklable.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from auditor.kit import DeadlineExceeded, RemoteFiles, is_url
from auditor_plugins.split_leakage import hashing
from auditor_plugins.split_leakage._pool import init_worker, stop_pool
from auditor_plugins.split_leakage.cache import HashCache, file_key

__all__ = ["Samples", "collect", "default_workers", "label_names"]

#: Files per worker task: large enough that IPC is negligible, small enough that the
#: progress bar moves and an interrupted run loses little work.
_CHUNK = 128
#: Below this many files to hash, workers cost more to start than they save.
_IN_PROCESS_BELOW = 400
#: In-memory samples whose 64x64 grid is kept for the geometric stage (4 KB each); the
#: stage notes the samples beyond it as not searched for crops and rotations.
GRIDS_KEPT = 50_000
#: Cache rows written per transaction.
_ROWS_PER_WRITE = 4096
#: Files per Dask task: a task costs the scheduler about a millisecond, so a few hundred
#: files (tens of milliseconds of work each) keep its overhead small.
_CLUSTER_BATCH = 256


@dataclass
class Samples:
    """Every sample of every split, flattened: sample ``i`` is ``index[i]`` of ``split[i]``."""

    split_names: list[str]
    split: list[int] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    path: list[str | None] = field(default_factory=list)
    resolved: list[str | None] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    digest: list[bytes] = field(default_factory=list)
    phash: list[int | None] = field(default_factory=list)
    mirror: list[int | None] = field(default_factory=list)
    thumb: list[bytes | None] = field(default_factory=list)
    error: list[str | None] = field(default_factory=list)
    anchors: list[bytes | None] = field(default_factory=list)  # windows.anchor_codes
    #: 64x64 uint8 grids of in-memory samples (files are decoded again when needed).
    grid: dict[int, bytes] = field(default_factory=dict)
    #: URL -> its split's listing and storage options (files behind fsspec URLs).
    remote: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.split)

    def extend(self, split: int, paths: Sequence[str | None], labels: Sequence[str]) -> range:
        """Add every sample of one split (unhashed yet); returns their sample ids."""
        first, count = len(self.split), len(paths)
        self.split.extend([split] * count)
        self.index.extend(range(count))
        self.path.extend(paths)
        self.label.extend(labels)
        for column in (self.resolved, self.phash, self.mirror, self.thumb, self.error, self.anchors):
            column.extend([None] * count)
        self.digest.extend([b""] * count)
        return range(first, first + count)

    def set_hash(
        self,
        sample: int,
        digest: bytes,
        phash: int | None,
        mirror: int | None,
        thumb: bytes | None,
        error: str | None,
        anchors: bytes | None = None,
    ) -> None:
        self.digest[sample] = digest
        self.phash[sample] = phash
        self.mirror[sample] = mirror
        self.thumb[sample] = thumb
        self.error[sample] = error
        self.anchors[sample] = anchors


def label_names(split: Any) -> list[str]:
    """Each sample's label as a class name (multilabel: names joined with '|')."""
    names = split.classes()

    def name(target: int) -> str:
        return names[target] if 0 <= target < len(names) else str(target)

    out = []
    for target in split.targets():
        if isinstance(target, (list, tuple)):
            out.append("|".join(sorted(name(int(t)) for t in target)))
        else:
            out.append(name(int(target)))
    return out


def collect(
    splits: dict[str, Any],
    *,
    cache: HashCache | None,
    workers: int,
    progress: Callable[[str, int | None], Any],
    scheduler: str | None = None,
    batch_files: int = _CLUSTER_BATCH,
) -> Samples:
    """Hash every sample of ``splits`` (name -> Split).

    With ``scheduler`` (``local`` or a Dask scheduler address) the files are hashed
    as Dask tasks of ``batch_files`` files each; the results are the same.
    """
    started = time.perf_counter()
    samples = Samples(list(splits))
    # Files: path string -> sample ids listing it (a path may appear in several splits).
    by_path: dict[str, list[int]] = {}
    remote_of: dict[str, RemoteFiles] = {}  # URL -> its split's listing and storage options
    in_memory: list[tuple[Any, list[int]]] = []
    for split_number, (_name, split) in enumerate(splits.items()):
        labels = label_names(split) if len(split) else []
        paths = split.path_strings()
        if paths is None:
            in_memory.append((split, list(samples.extend(split_number, [None] * len(split), labels))))
            continue
        remote = split.remote_files()
        for sample, path in zip(samples.extend(split_number, paths, labels), paths, strict=False):
            by_path.setdefault(path, []).append(sample)
            if remote is not None and is_url(path):
                remote_of.setdefault(path, remote)
    samples.remote = remote_of
    runner = _Runner(workers, scheduler, batch_files)
    hashed, hits = _hash_files(samples, by_path, remote_of, cache, runner, progress)
    for split, ids in in_memory:
        _hash_in_memory(samples, split, ids, progress)
    samples.stats = {
        "files": hits + hashed,
        "files_hashed": hashed,
        "cache_hits": hits,
        "in_memory_samples": sum(len(ids) for _, ids in in_memory),
        "hash_seconds": round(time.perf_counter() - started, 3),
    }
    return samples


@dataclass
class _Job:
    """One task: a few files of one store, the key positions they fill, and how to read them."""

    positions: list[int]
    function: Callable[..., list[hashing.FileHash]]
    arguments: tuple[Any, ...]

    def __call__(self) -> list[hashing.FileHash]:
        return self.function(*self.arguments)


@dataclass
class _Runner:
    workers: int
    scheduler: str | None
    batch_files: int

    def run(
        self,
        jobs: list[_Job],
        todo: int,
        record: Callable[[_Job, Sequence[hashing.FileHash]], None],
        bar: Any,
    ) -> None:
        if self.scheduler is not None:
            from auditor_plugins.split_leakage.distributed import run_on_cluster

            run_on_cluster(self.scheduler, self.workers, jobs, record, bar)
        elif self.workers <= 1 or todo < _IN_PROCESS_BELOW:
            for job in jobs:
                record(job, job())
                bar.advance(len(job.positions))
        else:
            _run_pool(jobs, self.workers, record, bar)


def _hash_files(
    samples: Samples,
    by_path: dict[str, list[int]],
    remote_of: dict[str, RemoteFiles],
    cache: HashCache | None,
    runner: _Runner,
    progress: Callable[[str, int | None], Any],
) -> tuple[int, int]:
    resolved_dirs: dict[str, str] = {}
    keys: list[tuple[str, int, int]] = []
    key_paths: list[str] = []  # a path to read for each key
    owners: list[list[int]] = []  # samples listing each key's file
    position_of: dict[str, int] = {}  # resolved path -> key: spellings of one file share it
    uncacheable: set[int] = set()  # remote files whose store gives no version token
    for text, ids in by_path.items():
        remote = remote_of.get(text)
        key: tuple[str, int, int] | str
        if remote is None:
            key = file_key(text, resolved_dirs)
        else:
            found = remote.key(text)
            key = found if isinstance(found, str) else (text, found[0], -1 if found[1] is None else found[1])
        if isinstance(key, str):  # missing, unreadable or not a file
            for sample in ids:
                samples.resolved[sample] = text if remote is not None else os.path.realpath(text)
                samples.set_hash(sample, b"", None, None, None, key)
            continue
        for sample in ids:
            samples.resolved[sample] = key[0]
        position = position_of.setdefault(key[0], len(keys))
        if position == len(keys):
            keys.append(key)
            key_paths.append(text)
            owners.append([])
            if key[2] < 0:
                uncacheable.add(position)
        owners[position].extend(ids)
    cached: dict[int, Any] = {}
    if cache is not None:
        cacheable = [i for i in range(len(keys)) if i not in uncacheable]
        if len(cacheable) == len(keys):
            cached = cache.lookup(keys)
        else:
            cached = {cacheable[i]: row for i, row in cache.lookup([keys[i] for i in cacheable]).items()}
    for position, row in cached.items():
        for sample in owners[position]:
            samples.set_hash(sample, row.digest, row.phash, row.mirror, row.thumb, row.error, row.anchors)
    todo = [i for i in range(len(keys)) if i not in cached]
    if not todo:
        return 0, len(cached)

    pending_rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        if cache is not None and pending_rows:
            cache.store(pending_rows)
        pending_rows.clear()

    def record(job: _Job, results: Sequence[hashing.FileHash]) -> None:
        rows = pending_rows
        for position, result in zip(job.positions, results, strict=False):
            for sample in owners[position]:
                samples.set_hash(
                    sample,
                    result.digest,
                    result.phash,
                    result.mirror,
                    result.thumb,
                    result.error,
                    result.anchors,
                )
                if result.grid is not None:
                    samples.grid[sample] = result.grid
            # Cache under the key stat-ed (or listed) before reading: if the file changed in
            # between, the size/version differ from the bytes hashed and no row is written.
            if (result.size, result.mtime_ns) == keys[position][1:] and position not in uncacheable:
                rows.append(
                    (
                        keys[position][0],
                        result.size,
                        result.mtime_ns,
                        result.digest,
                        result.phash,
                        result.mirror,
                        result.thumb,
                        result.error,
                        result.anchors,
                        result.grid,
                    )
                )
        # One transaction per few thousand rows: commits are what costs, and this process
        # shares the cores with the workers. An interruption loses at most one batch.
        if len(rows) >= _ROWS_PER_WRITE:
            flush()

    # Files of every split but the first are searched by the geometric stage: their grids
    # come back with their hashes (up to GRIDS_KEPT), so they are not read a second time.
    keep = {position for position in todo if any(samples.split[s] > 0 for s in owners[position])}
    if len(keep) > GRIDS_KEPT:
        keep = set(sorted(keep)[:GRIDS_KEPT])
    jobs = _jobs(todo, key_paths, keys, remote_of, runner, keep)
    try:
        with progress("hashing files", len(todo)) as bar:
            runner.run(jobs, len(todo), record, bar)
    finally:
        flush()  # also on Ctrl-C: what was hashed is kept
    return len(todo), len(cached)


def _jobs(
    todo: list[int],
    key_paths: list[str],
    keys: list[tuple[str, int, int]],
    remote_of: dict[str, RemoteFiles],
    runner: _Runner,
    keep: set[int],
) -> list[_Job]:
    """Tasks of one store each: local files, or URLs sharing storage options."""
    groups: dict[str, list[int]] = {}
    options: dict[str, dict[str, Any]] = {}
    for position in todo:
        remote = remote_of.get(key_paths[position])
        group = "" if remote is None else json.dumps(remote.storage_options, sort_keys=True, default=repr)
        groups.setdefault(group, []).append(position)
        if remote is not None:
            options.setdefault(group, remote.storage_options)
    size = runner.batch_files if runner.scheduler is not None else _CHUNK
    jobs = []
    for group, positions in groups.items():
        for first in range(0, len(positions), size):
            chunk = positions[first : first + size]
            paths = [key_paths[i] for i in chunk]
            kept = [i in keep for i in chunk]
            if not group:
                jobs.append(_Job(chunk, hashing.hash_files, (paths, kept)))
            else:
                expected = [(keys[i][1], None if keys[i][2] < 0 else keys[i][2]) for i in chunk]
                jobs.append(_Job(chunk, hashing.hash_urls, (paths, expected, options[group], kept)))
    return jobs


def _run_pool(
    jobs: list[_Job], workers: int, record: Callable[[_Job, Sequence[hashing.FileHash]], None], bar: Any
) -> None:
    import multiprocessing
    import warnings

    # fork: workers start instantly and do not re-import the caller's __main__ (which
    # spawn/forkserver do, re-running an unguarded script). The children only read
    # files, decode with PIL and do small numpy maths -- none of the locks that other
    # threads of this process (torch, a progress bar) may hold at fork time.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    failed: list[_Job] = []
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=context,
        initializer=init_worker,
        initargs=(os.getpid(),),
    )
    pending: dict[Any, _Job] = {}
    try:
        with warnings.catch_warnings():  # Python >= 3.12 warns about fork with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            pending = {pool.submit(job.function, *job.arguments): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    results = future.result()
                except Exception:
                    failed.append(job)
                    continue
                record(job, results)
                bar.advance(len(job.positions))
    except BaseException:
        # Ctrl-C (or any escape): keep the chunks that finished, drop the queue, end the workers
        # now. Leaving the `with` of the executor instead would run every queued chunk first.
        for future, job in pending.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                record(job, future.result())
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    # A broken pool fails every job still queued: finish those here, one by one.
    for job in failed:
        record(job, job())
        bar.advance(len(job.positions))


def _hash_in_memory(
    samples: Samples, split: Any, ids: list[int], progress: Callable[[str, int | None], Any]
) -> None:
    step = 64
    hung = ""
    with progress(f"hashing samples of '{split.name}'", len(ids)) as bar:
        for first in range(0, len(ids), step):
            for sample in ids[first : first + step]:
                if hung:
                    samples.set_hash(sample, b"", None, None, None, f"not read: {hung}")
                    continue
                try:
                    value = split.raw(samples.index[sample])
                except DeadlineExceeded as exc:
                    # Each further sample could wait as long again: leave the rest unread.
                    hung = f"an earlier sample did not return ({exc.what})"
                    samples.set_hash(sample, b"", None, None, None, f"cannot load sample: {exc}")
                    continue
                except Exception as exc:
                    samples.set_hash(
                        sample, b"", None, None, None, f"cannot load sample: {type(exc).__name__}: {exc}"
                    )
                    continue
                hashed = hashing.hash_sample(value)
                samples.set_hash(sample, *hashed[:6])
                if hashed.grid is not None and len(samples.grid) < GRIDS_KEPT:
                    samples.grid[sample] = hashed.grid
            bar.advance(len(ids[first : first + step]))


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)
