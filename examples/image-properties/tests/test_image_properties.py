"""Tests of the image_properties audit and the findings-csv format, written with auditor.testing.

The fixtures ``auditor_project``, ``auditor_run`` and ``auditor_cli`` come from
auditor's pytest plugin (installed with auditor); this package must be
installed (``pip install -e .``) so that auditor finds it through its entry points.
"""

from __future__ import annotations

import csv
import io

import pytest
from auditor_image_properties._inspect import inspect_sample

AUDITS = {"image_properties": {}}


def colour_split(project, root="data/train", counts=None, **kwargs):
    return project.image_folder(root, counts or {"cat": 4, "dog": 4}, size=64, **kwargs)


def test_clean_colour_images_give_no_finding_and_a_summary(auditor_project, auditor_run):
    manifest = auditor_project.manifest(
        data={
            "train": colour_split(auditor_project),
            "val": colour_split(auditor_project, "data/val", seed=1),
        },
        audits=AUDITS,
    )
    result = auditor_run(manifest)
    result.assert_clean()
    summary = result.audit("image_properties")["evidence"]["splits"]["train"]
    assert summary["inspected"] == 8 and summary["corrupt"] == 0 and summary["grayscale"] == 0
    assert summary["modes"] == {"RGB": 8} and summary["width"] == {"min": 64, "median": 64, "max": 64}


def test_corrupt_file_is_an_error_that_fails_the_run(auditor_project, auditor_run):
    train = colour_split(auditor_project)
    auditor_project.corrupt_image("data/train/dog/truncated.png")
    auditor_project.write("data/train/cat/empty.jpg", b"")
    result = auditor_run(auditor_project.manifest(data={"train": train}, audits=AUDITS))
    result.assert_only_codes("IP001")
    result.assert_exit_code(1)
    (finding,) = result.findings_for("IP001")
    assert finding["severity"] == "error" and finding["evidence"]["count"] == 2
    files = {f["file"]: f["error"] for f in finding["evidence"]["files"]}
    assert set(files) == {"data/train/cat/empty.jpg", "data/train/dog/truncated.png"}
    assert (
        "truncated" in files["data/train/dog/truncated.png"].lower()
        or "OSError" in files["data/train/dog/truncated.png"]
    )


def test_header_only_mode_misses_truncation_by_design(auditor_project, auditor_run):
    train = colour_split(auditor_project)
    auditor_project.corrupt_image("data/train/dog/truncated.png")
    manifest = auditor_project.manifest(
        data={"train": train}, audits={"image_properties": {"full_decode": False}}
    )
    auditor_run(manifest).assert_no_codes("IP001")


def test_grayscale_mixed_into_colour_is_reported_with_its_classes(auditor_project, auditor_run):
    train = colour_split(auditor_project)
    auditor_project.image("data/train/dog/gray-l.png", size=64, mode="L", seed=7)
    # RGB on disk, but three equal channels: grayscale all the same.
    auditor_project.image("data/train/dog/gray-rgb.png", size=64, mode="L", seed=8)
    from PIL import Image

    path = auditor_project.path("data/train/dog/gray-rgb.png")
    Image.open(path).convert("RGB").save(path)
    result = auditor_run(auditor_project.manifest(data={"train": train}, audits=AUDITS))
    result.assert_only_codes("IP002")
    result.assert_exit_code(0)  # a warning, below the default fail_on: error
    (finding,) = result.findings_for("IP002")
    assert finding["evidence"]["count"] == 2 and finding["evidence"]["per_class"] == {"dog": 2}


def test_an_all_grayscale_dataset_is_consistent_not_mixed(auditor_project, auditor_run):
    train = auditor_project.image_folder("data/train", {"a": 3, "b": 3}, size=64, mode="L")
    result = auditor_run(auditor_project.manifest(data={"train": train}, audits=AUDITS))
    result.assert_no_codes("IP002")
    assert result.audit("image_properties")["evidence"]["splits"]["train"]["grayscale"] == 6


def test_tiny_images_and_the_min_side_option(auditor_project, auditor_run):
    train = colour_split(auditor_project)
    auditor_project.image("data/train/cat/icon.png", size=(16, 20), seed=9)
    result = auditor_run(auditor_project.manifest(data={"train": train}, audits=AUDITS))
    result.assert_only_codes("IP003")
    assert "16x20" in result.findings_for("IP003")[0]["message"]
    relaxed = auditor_project.manifest(
        data={"train": train}, audits={"image_properties": {"min_side": 16}}, name="audit-relaxed.yaml"
    )
    auditor_run(relaxed).assert_clean()


def test_extreme_aspect_ratio_and_its_option(auditor_project, auditor_run):
    train = colour_split(auditor_project)
    auditor_project.image("data/train/dog/banner.png", size=(400, 50), seed=10)
    result = auditor_run(auditor_project.manifest(data={"train": train}, audits=AUDITS))
    result.assert_only_codes("IP004")
    assert result.findings_for("IP004")[0]["evidence"]["files"][0]["ratio"] == 8.0
    relaxed = auditor_project.manifest(
        data={"train": train},
        audits={"image_properties": {"max_aspect_ratio": 10}},
        name="audit-relaxed.yaml",
    )
    auditor_run(relaxed).assert_clean()


def test_unknown_option_is_a_manifest_error(auditor_project, auditor_cli):
    manifest = auditor_project.manifest(
        data={"train": colour_split(auditor_project)}, audits={"image_properties": {"min_sides": 3}}
    )
    result = auditor_cli("validate", manifest)
    result.assert_exit_code(2)
    assert "min_sides" in result.output and "min_side" in result.output


def test_findings_csv_has_one_row_per_finding(auditor_project, auditor_run):
    train = colour_split(auditor_project)
    auditor_project.image("data/train/cat/icon.png", size=8, seed=9)
    auditor_project.corrupt_image("data/train/dog/broken.png")
    result = auditor_run(
        auditor_project.manifest(data={"train": train}, audits=AUDITS), formats=["json", "findings-csv"]
    )
    rows = list(csv.DictReader(io.StringIO(result.file("findings-csv").read_text(encoding="utf-8"))))
    assert [(r["code"], r["severity"], r["location"]) for r in rows] == [
        (f["code"], f["severity"], f["location"]) for f in result.findings
    ]
    assert {r["code"] for r in rows} == {"IP001", "IP003"}
    assert '"count":1' in rows[0]["evidence"]


def test_cli_lists_the_plugin_and_runs_it(auditor_project, auditor_cli):
    listed = auditor_cli("list")
    listed.assert_exit_code(0)
    row = listed.listed_audit("image_properties")
    assert (
        row["distribution"] == "auditor-image-properties 0.1.0" and row["codes"] == "IP001 IP002 IP003 IP004"
    )
    assert row["runs model"] == "no"  # so it runs under --static and in the pre-commit hook
    assert "findings-csv" in listed.stdout
    broken = [line for line in listed.stdout.splitlines() if line.startswith("broken plugin")]
    assert not [line for line in broken if "auditor-image-properties" in line], broken

    train = colour_split(auditor_project)
    auditor_project.corrupt_image("data/train/dog/broken.png")
    manifest = auditor_project.manifest(data={"train": train}, audits=AUDITS)
    run = auditor_cli("run", manifest, "--format", "findings-csv", cwd=auditor_project.root)
    run.assert_exit_code(1)
    run.assert_codes("IP001")
    assert (run.output_dir / "findings.csv").is_file()
    explained = auditor_cli("explain", "IP002")
    explained.assert_exit_code(0)
    assert "RandomGrayscale" in explained.stdout


@pytest.mark.parametrize(
    ("value", "gray", "size"),
    [
        ("pil-l", True, (5, 4)),
        ("pil-rgb", False, (5, 4)),
        ((1, 4, 5), True, (5, 4)),
        ((3, 4, 5), False, (5, 4)),
    ],
)
def test_samples_of_non_file_formats(value, gray, size):
    from PIL import Image

    class Array:  # anything with a (C, H, W) shape, like a tensor
        def __init__(self, shape):
            self.shape = shape

    if value == "pil-l":
        sample = Image.new("L", (5, 4))
    elif value == "pil-rgb":
        sample = Image.new("RGB", (5, 4), (200, 10, 10))
    else:
        sample = Array(value)
    info = inspect_sample(sample)
    assert info.ok and info.grayscale is gray and (info.width, info.height) == size
    assert not inspect_sample(object()).ok
