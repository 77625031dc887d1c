"""split_leakage hashing as Dask tasks (``auditor run --scheduler local|tcp://HOST:PORT``).

Only the hashing is distributed: each task reads and hashes a batch of a few hundred
files (local paths the workers can see, or fsspec URLs) with the very functions the
local pool runs, and returns their hashes. The driver gathers them as tasks finish
(this is what moves the progress bar), writes them to its SQLite cache and runs the
search itself, so findings, counts and evidence are those of a local run.

Failure handling is Dask's own: a worker that dies has its tasks re-run on the
others (up to ``distributed.scheduler.allowed-failures`` deaths per task), and a
task that raises is retried twice. A batch that still fails is hashed here on the
driver, as the local pool does with a broken pool. Ctrl-C cancels every pending
future before the interrupt propagates; results are recorded only as whole batches,
so the cache never holds a partial row.

The driver holds every hash (about 130 bytes per file cross the wire) and runs the
analysis: about 1.7 KB per file at its peak, so 10 million files need a driver of
about 16 GB (measured by benchmarks/scale.py; see docs/scale.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from auditor.kit import missing_extra

__all__ = ["run_on_cluster", "scheduler_client"]

#: Times a task that raised is submitted again (a worker's death is not counted here).
_RETRIES = 2


@contextmanager
def scheduler_client(scheduler: str, workers: int) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler``; a ``LocalCluster`` for ``local``, closed after."""
    try:
        import distributed
    except ImportError as exc:
        raise missing_extra(f"--scheduler {scheduler}", "distributed") from exc
    cluster = None
    try:
        if scheduler == "local":
            # One single-threaded worker process per core: hashing holds the GIL in PIL and
            # numpy for part of each file, so threads would not add throughput.
            cluster = distributed.LocalCluster(
                n_workers=max(1, workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster)
        else:
            try:
                client = distributed.Client(scheduler, timeout="20s")
            except OSError as exc:
                raise RuntimeError(
                    f"cannot reach the Dask scheduler at {scheduler} ({exc}); expected a running "
                    f"scheduler (`dask scheduler`, then `dask worker {scheduler}`) whose workers have "
                    f"auditor installed, or use --scheduler local"
                ) from exc
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def run_on_cluster(
    scheduler: str, workers: int, jobs: Sequence[Any], record: Callable[[Any, Sequence[Any]], None], bar: Any
) -> None:
    """Run every job (``function(*arguments)``) on the cluster; ``record`` each result as it lands."""
    from distributed import as_completed

    with scheduler_client(scheduler, workers) as client:
        futures: dict[Any, Any] = {}
        try:
            for job in jobs:
                # pure=False: the same batch submitted twice (two runs on one cluster) is
                # hashed again rather than served from a stale result on the scheduler.
                future = client.submit(job.function, *job.arguments, retries=_RETRIES, pure=False)
                futures[future] = job
            failed = []
            for future in as_completed(list(futures)):
                job = futures[future]
                try:
                    results = future.result()
                except Exception:
                    failed.append(job)
                    continue
                finally:
                    future.release()
                record(job, results)
                bar.advance(len(job.positions))
            for job in failed:
                record(job, job())
                bar.advance(len(job.positions))
        except BaseException:
            # Ctrl-C (or any error here): stop the cluster's work before propagating.
            client.cancel(list(futures), force=True)
            raise
