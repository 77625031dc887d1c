"""Every parser has bounds; every path that cannot be opened is exit 2 in words (issue 23 items 3-4).

Big inputs run the real CLI in a child whose peak memory is measured (``RUSAGE_CHILDREN`` of a
wrapper process, so earlier children of the test process do not count). The bounds asserted are
generous: they catch a parser that reads a whole file or an expanding listing, not noise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.testing import make_image_folder, write_manifest
from hostile._corpus import run, snapshot

#: Runs ``python -m auditor ARGS`` and prints the child's exit code and peak RSS in KiB.
_MEASURED = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "auditor", *sys.argv[1:]], capture_output=True, text=True,
                      timeout=300)
sys.stdout.write(done.stdout + done.stderr)
print(f"RC={done.returncode} RSS_KIB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
"""
GIB = 1024 * 1024  # in KiB, as ru_maxrss counts


def _measured(*args: str | Path, cwd: Path) -> tuple[int, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=400,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    tail = done.stdout.strip().splitlines()[-1]
    rc, rss = (int(part.split("=")[1]) for part in tail.split())
    return rc, rss, done.stdout


# -- manifests ---------------------------------------------------------------------------------


def test_a_huge_manifest_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    comments = tmp_path / "comments.yaml"
    with comments.open("w", encoding="utf-8") as out:
        out.write("version: 1\n")
        out.write(("# " + "c" * 97 + "\n") * 200_000)  # 20 MB of comments
    strings = tmp_path / "strings.yaml"
    strings.write_text(
        "version: 1\nunknown_key:\n" + "".join(f"  - s{i}\n" for i in range(800_000)), encoding="utf-8"
    )
    for path, size in ((comments, "19.1 MiB"), (strings, "9.0 MiB")):
        rc, peak, output = _measured("validate", path, cwd=tmp_path)
        assert rc == 2, output
        assert f"expected a manifest of at most 256 KiB, found {size}" in output, output
        assert "alias" not in output and "Traceback" not in output
        assert peak < GIB // 2, peak  # the file is never read whole


def test_a_long_list_under_an_unknown_key_is_named_as_the_unknown_key(tmp_path: Path) -> None:
    from auditor.errors import ManifestInvalid
    from auditor.manifest.load import load_manifest
    from auditor.run.registry import load_registry

    path = tmp_path / "audit.yaml"
    path.write_text(
        "version: 1\nunknown_key:\n" + "".join(f"  - s{i}\n" for i in range(20_000)), encoding="utf-8"
    )
    assert path.stat().st_size < 256 * 1024
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(path, load_registry())
    text = "\n".join(error.render() for error in caught.value.errors)
    assert "found unknown key 'unknown_key'" in text, text
    assert "alias" not in text


@pytest.mark.parametrize("command", ["validate", "run"])
def test_yaml_nested_thousands_deep_is_a_manifest_error(tmp_path: Path, command: str) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text("version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    done = run(command, path, cwd=tmp_path)
    assert done.exit_code == 2, done.output
    assert "expected values nested at most 64 levels deep, found nesting deeper than that as written" in (
        done.stderr
    ), done.stderr
    assert "Traceback" not in done.output and "RecursionError" not in done.output


def test_nesting_built_from_aliases_is_bounded_too() -> None:
    from auditor.manifest._yaml import YamlRefused, load_with_lines

    level = "[" * 40 + "1" + "]" * 40
    chained = f"a: &a {level}\nb: &b {'[' * 40}*a{']' * 40}\nc: *b\n"
    with pytest.raises(YamlRefused) as caught:
        load_with_lines(chained)
    assert caught.value.depth_line is not None and caught.value.through_aliases
    # A recursive alias is no bomb and no endless walk.
    data, _ = load_with_lines("a: &a [1, *a]\n")
    assert data["a"][1] is data["a"]


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_nan_and_infinity_are_refused_by_validation(tmp_path: Path, value: str) -> None:
    from auditor.errors import ManifestInvalid
    from auditor.manifest.load import load_manifest
    from auditor.run.registry import load_registry

    path = tmp_path / "audit.yaml"
    path.write_text(
        f"version: 1\ncall_timeout_s: {value}\ndata: {{train: {{format: image_folder, root: d}}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(path, load_registry())
    rendered = caught.value.errors[0].render()
    assert "call_timeout_s: expected a finite number, found" in rendered, rendered
    assert "hint:" in rendered


def test_nan_in_an_audit_option_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(
        "version: 1\ndata: {train: {format: image_folder, root: d}}\naudits:\n  split_leakage:\n"
        "    min_similarity: .nan\n",
        encoding="utf-8",
    )
    done = run("validate", path, cwd=tmp_path)
    assert done.exit_code == 2
    assert "audits.split_leakage.min_similarity: expected a finite number, found .nan" in done.stderr


def test_paths_that_cannot_be_opened_are_exit_2_with_the_path_and_the_reason(tmp_path: Path) -> None:
    long_name = tmp_path / ("x" * 5000 + ".yaml")
    (tmp_path / "l1.yaml").symlink_to(tmp_path / "l2.yaml")
    (tmp_path / "l2.yaml").symlink_to(tmp_path / "l1.yaml")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    cases = [
        (long_name, "the name is too long for the file system [ENAMETOOLONG]"),
        (tmp_path / "l1.yaml", "a loop of symbolic links [ELOOP]"),
        (fifo, "not a regular file"),
    ]
    for path, reason in cases:
        for command in ("validate", "run"):
            done = run(command, path, cwd=tmp_path, timeout=60)
            assert done.exit_code == 2, (command, path, done.output)
            assert reason in done.stderr, done.stderr
            assert "Traceback" not in done.output
    shortened = run("validate", long_name, cwd=tmp_path)
    assert "(5005 characters)" in shortened.stderr  # the path is named, its middle cut out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_an_unreadable_manifest_is_exit_2_naming_permission(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text("version: 1\n", encoding="utf-8")
    path.chmod(0)
    done = run("validate", path, cwd=tmp_path)
    assert done.exit_code == 2
    assert "permission denied [EACCES]" in done.stderr and "chmod u+r" in done.stderr
    assert "Traceback" not in done.output


def test_terminal_escapes_in_a_missing_root_are_printed_escaped(tmp_path: Path) -> None:
    osc = "data/\x1b]0;PWNED\x07"
    path = write_manifest(
        tmp_path / "audit.yaml", {"version": 1, "data": {"train": {"format": "image_folder", "root": osc}}}
    )
    for command in ("validate", "run"):
        done = run(command, path, cwd=tmp_path)
        assert "\x1b" not in done.output and "\x07" not in done.output, repr(done.output)
        assert "data/\\x1b]0;PWNED\\x07" in done.output, done.output
    missing = run("run", tmp_path / "mis\x1b]0;PWNED\x07sing.yaml", cwd=tmp_path)
    assert missing.exit_code == 2
    assert "\x1b" not in missing.output and "mis\\x1b]0;PWNED\\x07sing.yaml" in missing.output


# -- reports -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [200, 100_000])
def test_a_deeply_nested_report_is_refused_in_words(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"schema_version": "1.0", "x": ' + "[" * depth + "]" * depth + "}", encoding="utf-8")
    before = snapshot(tmp_path)
    done = run("report", path, "--format", "markdown", cwd=tmp_path)
    assert done.exit_code == 2, done.output
    assert "nested" in done.stderr and "Traceback" not in done.output, done.output
    assert snapshot(tmp_path) == before


# -- tables ------------------------------------------------------------------------------------


def _table_manifest(root: Path, table: str) -> Path:
    return write_manifest(
        root / "audit.yaml", {"version": 1, "data": {"train": {"format": "csv", "path": table}}}
    )


def test_a_sparse_gigabyte_csv_is_refused_in_words_within_little_memory(tmp_path: Path) -> None:
    with (tmp_path / "sparse.csv").open("wb") as out:
        out.truncate(1 << 30)  # 1 GiB of NUL bytes, no disk used
    manifest = _table_manifest(tmp_path, "sparse.csv")
    for command in ("validate", "run"):
        rc, peak, output = _measured(command, manifest, cwd=tmp_path)
        assert rc == 2, output
        assert "sparse.csv: 1024.0 MiB (a sparse file), more than the 512.0 MiB a table may have" in output
        assert "Traceback" not in output
        assert peak < 2 * GIB, peak


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"path,label\n" + b"\0" * (3 << 20), "a NUL byte at offset 11 (line 2)"),
        (b"path,label\na.png,cat\n" + b"x" * (2 << 20) + b",dog\n", "line 3 longer than 1.0 MiB"),
        (b"x" * (2 << 20), "line 1 longer than 1.0 MiB"),
    ],
)
def test_nul_bytes_and_giant_lines_are_refused_naming_where(
    tmp_path: Path, content: bytes, words: str
) -> None:
    (tmp_path / "t.csv").write_bytes(content)
    done = run("validate", _table_manifest(tmp_path, "t.csv"), cwd=tmp_path)
    assert done.exit_code == 2, done.output
    assert f"t.csv: {words}" in done.stderr, done.stderr
    assert "Traceback" not in done.output


def test_the_table_scan_counts_rows_and_passes_a_normal_table(tmp_path: Path, monkeypatch) -> None:
    from auditor_plugins.formats import _table_bounds

    table = tmp_path / "t.csv"
    table.write_bytes(b"path,label\n" + b"".join(b"img/%d.png,cat\n" % i for i in range(300_000)))
    assert _table_bounds.csv_problem(table) is None
    monkeypatch.setattr(_table_bounds, "MAX_ROWS", 100_000)  # the limit itself: 10 million lines
    assert "more than 100,000 lines" in (_table_bounds.csv_problem(table) or "")


# -- symlink loops -----------------------------------------------------------------------------


def test_walk_lists_each_file_once_and_records_links_back_up(tmp_path: Path) -> None:
    from auditor_plugins.formats._listing import walk_following_links

    make_image_folder(tmp_path / "train", {"cat": 3}, size=8)
    cat = tmp_path / "train" / "cat"
    (cat / "a").symlink_to(".")
    (cat / "b").symlink_to(".")
    (cat / "sub").mkdir()
    (cat / "sub" / "up").symlink_to("../..")  # to train/, above the class folder
    outside = tmp_path / "more"
    make_image_folder(outside, {"x": 2}, size=8)
    (cat / "shared").symlink_to(outside / "x")  # not a loop: ImageFolder lists these too

    loops: list = []
    listed = [
        (os.path.relpath(folder, cat), files) for folder, files in walk_following_links(str(cat), loops)
    ]

    images = sorted(n for n in os.listdir(cat) if n.endswith(".png"))
    shared = sorted(os.listdir(outside / "x"))
    assert listed == [(".", images), ("shared", shared), ("sub", [])]
    assert sorted((os.path.relpath(loop.link, cat), loop.target) for loop in loops) == [
        ("a", "."),
        ("b", "."),
        ("sub/up", "../.."),
    ]
    revisits = {
        os.path.relpath(loop.link, cat): os.path.relpath(os.path.realpath(loop.revisits), tmp_path.resolve())
        for loop in loops
    }
    assert revisits == {"a": "train/cat", "b": "train/cat", "sub/up": "train"}


def test_a_class_folder_with_self_links_is_dl007_within_bounded_memory(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "data" / "train", {"cat": 3, "dog": 3}, size=16)
    cat = tmp_path / "data" / "train" / "cat"
    (cat / "a").symlink_to(".")
    (cat / "b").symlink_to(".")
    manifest = write_manifest(
        tmp_path / "audit.yaml",
        {"version": 1, "data": {"train": {"format": "image_folder", "root": "data/train"}}},
    )
    before = snapshot(tmp_path / "data")

    rc, peak, output = _measured("run", manifest, "--only", "data_loading", cwd=tmp_path)

    assert rc == 1, output
    assert (
        "DL007" in output
        and "data/train/cat/a is a symbolic link to ., which leads back to data/train/cat" in (output)
    ), output
    assert "ImageFolder walks with os.walk(followlinks=True) and would loop" in output
    assert "(and 1 more)" in output
    assert peak < 2 * GIB, peak
    assert snapshot(tmp_path / "data") == before
    explained = run("explain", "DL007", cwd=tmp_path)
    assert explained.exit_code == 0 and "ImageFolder" in explained.stdout


def test_data_paths_too_long_to_open_are_worded_not_crashes(tmp_path: Path) -> None:
    name = "x" * 5000
    for split, words in (
        ({"format": "image_folder", "root": name}, "data.train.root: expected a folder with one sub-folder"),
        (
            {"format": "csv", "path": f"{name}.csv"},
            "data.train.path: expected a readable CSV or Parquet file",
        ),
    ):
        path = write_manifest(tmp_path / "audit.yaml", {"version": 1, "data": {"train": split}})
        done = run("validate", path, cwd=tmp_path)
        assert done.exit_code == 2, done.output
        assert words in done.stderr and "which cannot be opened: File name too long" in done.stderr, (
            done.stderr
        )
        assert "crashed" not in done.output and "Traceback" not in done.output


def test_data_paths_in_a_link_loop_name_the_loop(tmp_path: Path) -> None:
    (tmp_path / "r1").symlink_to("r2")
    (tmp_path / "r2").symlink_to("r1")
    path = write_manifest(
        tmp_path / "audit.yaml",
        {
            "version": 1,
            "data": {
                "train": {"format": "image_folder", "root": "r1"},
                "val": {"format": "csv", "path": "r2"},
            },
        },
    )
    done = run("validate", path, cwd=tmp_path)
    assert done.exit_code == 2, done.output
    assert (
        "data.train.root: expected a folder with one sub-folder per class, found r1, which cannot be opened: Too many levels of symbolic links"
        in done.stderr
    ), done.stderr
    assert (
        "data.val.path: expected a readable CSV or Parquet file, found r2, which cannot be opened: Too many levels"
        in done.stderr
    )
