"""split_leakage on a Dask cluster and over S3: a real LocalCluster and a real S3 server (moto).

One ``distributed.LocalCluster`` (2 worker processes) and one moto S3 server on
127.0.0.1 serve the whole module; both are shut down by their fixtures. The data
is a generated image folder with planted exact and near duplicates (across and
within splits), uploaded to a bucket as well: every run must give the findings a
plain local run gives on the same files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageEnhance, ImageOps

from auditor.testing import make_image_folder, run_cli, write_manifest

distributed = pytest.importorskip("distributed", reason="needs the distributed extra (pip install '.[test]')")
pytest.importorskip("s3fs", reason="needs s3fs (pip install '.[test]')")
moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server", reason="needs moto[server]")

pytestmark = pytest.mark.slow

BUCKET = "auditor-data"
CREDENTIALS = {"key": "testing", "secret": "testing"}


# -- the data -----------------------------------------------------------------------------


def _edit(source: Path, target: Path, edit: Any, quality: int = 70) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        edit(image.convert("RGB")).save(target, quality=quality)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``data/{train,val}/{cat,dog}``: 39 JPEGs with planted duplicates of every kind."""
    root = tmp_path_factory.mktemp("scale") / "data"
    make_image_folder(root / "train", {"cat": 10, "dog": 10}, size=64, seed=1, ext=".jpg")
    make_image_folder(root / "val", {"cat": 6, "dog": 6}, size=64, seed=2, ext=".jpg")
    train = root / "train"
    (root / "val/dog/exact.jpg").write_bytes((train / "cat/0003.jpg").read_bytes())  # SL001, other label
    _edit(train / "cat/0000.jpg", root / "val/cat/reencoded.jpg", lambda im: im, quality=60)  # SL002
    _edit(train / "dog/0001.jpg", root / "val/dog/mirrored.jpg", ImageOps.mirror)  # SL002 mirrored
    _edit(
        train / "cat/0002.jpg",
        root / "val/cat/brighter.jpg",
        lambda im: ImageEnhance.Brightness(im).enhance(1.1),
    )  # SL002
    _edit(
        train / "dog/0002.jpg",
        root / "val/dog/turned.jpg",
        lambda im: im.transpose(Image.Transpose.ROTATE_90),
    )  # SL007: the geometric stage runs on the driver, from grids the workers sent back
    (root / "train/dog/0009_copy.jpg").write_bytes((train / "cat/0005.jpg").read_bytes())  # SL003
    (root / "val/broken.txt").write_text("not an image")  # no image extension: not listed
    (root / "val/cat/truncated.jpg").write_bytes((train / "dog/0004.jpg").read_bytes()[:200])  # unreadable
    return root


def _manifest(
    folder: Path,
    roots: dict[str, str],
    options: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    splits = {
        name: {"format": "image_folder", "root": root, **({"storage_options": storage} if storage else {})}
        for name, root in roots.items()
    }
    return write_manifest(
        folder,
        {
            "version": 1,
            "data": splits,
            "audits": {"split_leakage": {"batch_files": 4, **(options or {})}},
            **extra,
        },
    )


def _local_roots(data: Path) -> dict[str, str]:
    return {"train": str(data / "train"), "val": str(data / "val")}


def _s3_roots() -> dict[str, str]:
    return {"train": f"s3://{BUCKET}/data/train", "val": f"s3://{BUCKET}/data/val"}


def _run(manifest: Path, **kwargs: Any) -> Any:
    from auditor.report.document import validate_report
    from auditor.run.api import run_manifest

    kwargs.setdefault("formats", ["json"])
    outcome = run_manifest(manifest, only=["split_leakage"], **kwargs)
    validate_report(outcome.report)
    return outcome


def _audit(outcome: Any) -> dict[str, Any]:
    return next(a for a in outcome.report["audits"] if a["name"] == "split_leakage")


def _comparable(outcome: Any, data: Path) -> str:
    """The findings as JSON, with every file spelt relative to the data folder (local or s3)."""
    text = json.dumps(outcome.report["findings"], sort_keys=True)
    for prefix in (f"s3://{BUCKET}/data/", f"{data}/"):
        text = text.replace(prefix, "DATA/")
    return text


@pytest.fixture(scope="module")
def local_run(data: Path) -> Any:
    """The reference: a plain local run (process pool or in-process) on the local files."""
    outcome = _run(_manifest(data.parent / "reference", _local_roots(data)), use_cache=False)
    codes = {f["code"] for f in outcome.report["findings"]}
    assert {"SL001", "SL002", "SL003", "SL006", "SL007"} <= codes, (
        codes
    )  # the planted duplicates are all found
    return outcome


# -- the real components ----------------------------------------------------------------------


class _CountingMotoServer(moto_server.ThreadedMotoServer):  # type: ignore[name-defined,misc]
    """moto's S3 server, counting the requests that read an object's body (GET of a key)."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.object_reads = 0
        self._lock = threading.Lock()

    def _server_entry(self) -> None:  # the parent's, with a counting WSGI layer
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            # Path-style addressing: /bucket is a listing, /bucket/key an object.
            key = environ.get("PATH_INFO", "").lstrip("/").partition("/")[2]
            if environ.get("REQUEST_METHOD") == "GET" and key:
                with self._lock:
                    self.object_reads += 1
            return app(environ, start_response)

        self._server = make_server(
            self._ip_address, self._port, counting, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@pytest.fixture(scope="module")
def s3(data: Path) -> Iterator[tuple[_CountingMotoServer, dict[str, Any]]]:
    import s3fs

    server = _CountingMotoServer()
    server.start()
    try:
        host, port = server.get_host_and_port()
        storage = {
            **CREDENTIALS,
            "client_kwargs": {"endpoint_url": f"http://{host}:{port}", "region_name": "us-east-1"},
        }
        fs = s3fs.S3FileSystem(**storage, skip_instance_cache=True)
        fs.call_s3("create_bucket", Bucket=BUCKET)  # us-east-1: no LocationConstraint
        for path in sorted(data.rglob("*")):
            if path.is_file():
                fs.pipe_file(f"{BUCKET}/data/{path.relative_to(data).as_posix()}", path.read_bytes())
        yield server, storage
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import logging

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="1GiB",
            dashboard_address=None,
            host="127.0.0.1",
            silence_logs=logging.ERROR,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


def _worker_pids(client: Any) -> dict[str, int]:
    return client.run(os.getpid)


# -- findings identical to a local run -------------------------------------------------------------


def test_cluster_run_on_local_files_gives_the_local_findings(
    data: Path, local_run: Any, cluster: Any
) -> None:
    local, _ = cluster
    outcome = _run(
        _manifest(data.parent / "on_cluster", _local_roots(data)),
        use_cache=False,
        scheduler=local.scheduler_address,
    )
    audit = _audit(outcome)
    assert audit["evidence"]["scheduler"] == local.scheduler_address
    assert audit["evidence"]["files_hashed"] == _audit(local_run)["evidence"]["files_hashed"]
    assert (
        outcome.report["findings"] == local_run.report["findings"]
    )  # messages, counts, pairs, evidence: all of it


def test_s3_bucket_on_the_cluster_gives_the_local_findings_and_a_warm_run_reads_no_object(
    data: Path, local_run: Any, cluster: Any, s3: Any
) -> None:
    local, _ = cluster
    server, storage = s3
    manifest = _manifest(data.parent / "s3_cluster", _s3_roots(), storage=storage)
    before = server.object_reads
    cold = _run(manifest, scheduler=local.scheduler_address)
    assert _comparable(cold, data) == _comparable(local_run, data)
    evidence = _audit(cold)["evidence"]
    assert evidence["files_hashed"] == evidence["samples"] == _audit(local_run)["evidence"]["samples"]
    # Each image read once by the workers; the geometric stage reads only the training images
    # it checks a candidate against (the evaluation grids come back with their hashes).
    assert server.object_reads - before == evidence["samples"] + evidence["geometric"]["files_read"]

    before = server.object_reads
    warm = _run(manifest, scheduler=local.scheduler_address)
    assert server.object_reads == before  # listings only: the cache key is size + ETag
    evidence = _audit(warm)["evidence"]
    assert evidence["files_hashed"] == 0 and evidence["cache_hits"] == evidence["samples"]
    assert _comparable(warm, data) == _comparable(local_run, data)


def test_s3_without_a_cluster_and_a_changed_object_is_read_again(
    data: Path, local_run: Any, s3: Any, tmp_path: Path
) -> None:
    import s3fs

    server, storage = s3
    manifest = _manifest(tmp_path, _s3_roots(), storage=storage)
    assert _comparable(_run(manifest), data) == _comparable(local_run, data)
    fs = s3fs.S3FileSystem(**storage, skip_instance_cache=True)
    target = f"{BUCKET}/data/val/cat/0001.jpg"
    original = fs.cat_file(target)
    try:
        # Same size, other bytes: only the ETag tells the change.
        fs.pipe_file(
            target, (data / "train/cat/0004.jpg").read_bytes()[: len(original)].ljust(len(original), b"\0")
        )
        before = server.object_reads
        changed = _run(manifest)
        evidence = _audit(changed)["evidence"]
        # The changed object, and what the geometric stage checks its new content against (it
        # searches that sample alone: the others' results are memoised by their digests).
        assert evidence["geometric"]["searched"] <= 1
        assert server.object_reads - before == 1 + evidence["geometric"]["files_read"]
        assert evidence["files_hashed"] == 1 and evidence["cache_hits"] == evidence["samples"] - 1
    finally:
        fs.pipe_file(target, original)


def test_csv_table_and_images_in_the_bucket(data: Path, s3: Any, tmp_path: Path) -> None:
    import s3fs

    _, storage = s3
    fs = s3fs.S3FileSystem(**storage, skip_instance_cache=True)
    rows = ["path,label", "cat/0000.jpg,cat", "cat/0001.jpg,cat", "dog/0000.jpg,dog", "dog/missing.jpg,dog"]
    fs.pipe_file(f"{BUCKET}/data/train.csv", "\n".join(rows).encode())
    manifest = write_manifest(
        tmp_path,
        {
            "version": 1,
            "data": {
                "train": {
                    "format": "csv",
                    "path": f"s3://{BUCKET}/data/train.csv",
                    "root": f"s3://{BUCKET}/data/train",
                    "storage_options": storage,
                },
                "val": {
                    "format": "image_folder",
                    "root": f"s3://{BUCKET}/data/val",
                    "storage_options": storage,
                },
            },
            "audits": {"split_leakage": {}},
        },
    )
    outcome = _run(manifest)
    evidence = _audit(outcome)["evidence"]
    assert evidence["per_split"]["train"] == {
        "samples": 4,
        "unreadable": 1,
        "leaked": 0,
        "duplicate_groups": 0,
    }
    near = [p for f in outcome.report["findings"] if f["code"] == "SL002" for p in f["evidence"]["pairs"]]
    assert {p["a"]["path"] for p in near} >= {f"s3://{BUCKET}/data/train/cat/0000.jpg"}
    (missing,) = [
        f for f in outcome.report["findings"] if f["code"] == "SL006" and f["location"] == "data.train"
    ]
    assert "no such file" in json.dumps(missing["evidence"])


# -- failures on the cluster ----------------------------------------------------------------------------


class _Progress:
    """A real progress sink that does something at the first finished batch."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self.done = 0  # files hashed (the "hashing files" task; later stages have tasks of their own)
        self.acted = False
        self.hashing = False

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        self.hashing = "hashing files" in description
        yield self

    def advance(self, amount: int = 1) -> None:
        if not self.hashing:
            return
        self.done += amount
        if not self.acted:
            self.acted = True
            self.action()


def test_a_worker_killed_mid_run_still_gives_the_local_findings(
    data: Path, local_run: Any, cluster: Any
) -> None:
    local, client = cluster
    before = _worker_pids(client)
    victim = max(before.values())

    progress = _Progress(lambda: os.kill(victim, signal.SIGKILL))
    outcome = _run(
        _manifest(data.parent / "killed", _local_roots(data), {"batch_files": 2}),
        use_cache=False,
        scheduler=local.scheduler_address,
        progress=progress,
    )
    assert progress.acted and progress.done == _audit(local_run)["evidence"]["files_hashed"]
    assert _audit(outcome)["status"] == _audit(local_run)["status"]
    assert outcome.report["findings"] == local_run.report["findings"]
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    assert victim not in _worker_pids(client).values()


def test_ctrl_c_cancels_the_futures_and_keeps_only_whole_cache_rows(
    data: Path, cluster: Any, tmp_path: Path
) -> None:
    import sqlite3

    local, client = cluster

    def interrupt() -> None:
        raise KeyboardInterrupt

    manifest = _manifest(tmp_path, _local_roots(data), {"batch_files": 2})
    with pytest.raises(KeyboardInterrupt):
        _run(manifest, scheduler=local.scheduler_address, progress=_Progress(interrupt))
    deadline = time.monotonic() + 30
    while (
        client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert (
        client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0
    )  # nothing left running
    with sqlite3.connect(tmp_path / ".auditor-cache" / "split_leakage.sqlite") as db:
        rows = db.execute("SELECT path, size, digest, error FROM file_hashes").fetchall()
    assert 0 < len(rows) < 39  # the batch recorded before the interrupt, not the rest
    for path, size, digest, _error in rows:
        assert size == os.path.getsize(path) and len(digest) == 16  # whole rows only
    # The next run finishes the job and agrees with itself.
    warm = _run(manifest, scheduler=local.scheduler_address)
    assert _audit(warm)["evidence"]["cache_hits"] == len(rows)


# -- the command line --------------------------------------------------------------------------------------


def test_cli_scheduler_address_and_manifest_key(
    data: Path, local_run: Any, cluster: Any, tmp_path: Path
) -> None:
    local, _ = cluster
    manifest = _manifest(tmp_path, _local_roots(data), scheduler=local.scheduler_address)
    result = run_cli("run", manifest, "--no-cache", "--output-dir", tmp_path / "out", timeout=300)
    assert result.returncode == 1, result.stderr  # SL001 is an error
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["findings"] == local_run.report["findings"]
    audit = next(a for a in report["audits"] if a["name"] == "split_leakage")
    assert audit["evidence"]["scheduler"] == local.scheduler_address

    bad = run_cli("run", manifest, "--scheduler", "localhost:8786", timeout=120)
    assert bad.returncode == 2 and "--scheduler: expected 'local' or a Dask scheduler address" in bad.stderr


def _blocked_run(args: list[str], blocked: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter where ``blocked`` cannot be imported (as without the extra)."""
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from auditor.cli.app import main\n"
        f"sys.exit(main({args!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1"},
    )


def test_without_the_extra_a_url_root_or_scheduler_is_a_one_line_error(data: Path, tmp_path: Path) -> None:
    local = _manifest(tmp_path / "local", _local_roots(data))
    result = _blocked_run(["run", str(local), "--scheduler", "local"], "distributed")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--scheduler local needs the optional dependency 'distributed'" in result.stderr
    assert "pip install 'auditor[distributed]'" in result.stderr

    remote = _manifest(tmp_path / "remote", _s3_roots())
    result = _blocked_run(["run", str(remote)], "fsspec")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert (
        f"data.train.root (s3://{BUCKET}/data/train) needs the optional dependency 'fsspec'" in result.stderr
    )


def test_validate_accepts_urls_and_scheduler_without_importing_dask_fsspec_or_torch(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, _s3_roots(), storage={"anon": True}, scheduler="tcp://10.0.0.5:8786")
    code = (
        "import sys\nfrom auditor.cli.app import main\n"
        f"status = main(['validate', {str(manifest)!r}])\n"
        "heavy = sorted(m for m in ('dask', 'distributed', 'fsspec', 's3fs', 'torch') if m in sys.modules)\n"
        "print('HEAVY', heavy)\nsys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
