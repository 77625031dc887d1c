"""Hash every report format rendered from the example projects' saved reports, before and after a refactor.

Renderers must give the same bytes for the same report.json. A run's own files differ run to run only by
timings and the timestamp, so this script runs the examples once (``collect``), keeps their report.json
files as fixtures, and then (``render``) re-renders every installed format from each fixture with
``auditor report`` (a subprocess, like a user) and prints the SHA-256 of every file and of the console
text :func:`auditor.report.console.print_report` writes for it (``timings=False``, so it is stable).
Run ``render`` on the base commit and on the changed one over the same fixtures and ``compare`` them::

    python benchmarks/report_identity.py collect /tmp/identity           # runs the examples (minutes)
    python benchmarks/report_identity.py render /tmp/identity before.json
    ... change the renderers ...
    python benchmarks/report_identity.py render /tmp/identity after.json
    python benchmarks/report_identity.py compare before.json after.json    # exit 1 on any difference

The fixtures: the quickstart with every format; the quickstart with a split that cannot be opened (a
manifest problem, audits skipped); the quickstart plus the third-party ``image_properties`` audit and
its ``findings-csv`` format (installed into a throw-away folder, never into the environment); the
Lightning example, clean and with its planted bug (skipped when lightning is not installed).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
BUILT_IN = ["json", "html", "sarif", "junit", "github", "markdown"]


def _env(extra_path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_WORKSPACE"}
    env.update(COLUMNS="200", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(extra_path), env.get("PYTHONPATH", "")) if p)
    return env


def _auditor(
    *args: str | Path, cwd: Path, extra_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditor", *map(str, args)],
        cwd=cwd,
        env=_env(extra_path),
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _quickstart(target: Path, **changes: Any) -> Path:
    import yaml

    shutil.copytree(
        EXAMPLES / "quickstart",
        target,
        ignore=shutil.ignore_patterns("reports", ".auditor-cache", "__pycache__"),
    )
    manifest = yaml.safe_load((target / "audit.yaml").read_text(encoding="utf-8"))
    manifest.update(changes)
    (target / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return target


def _keep(name: str, report_json: Path, fixtures: Path, extra_path: Path | None = None) -> None:
    folder = fixtures / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(report_json, folder / "report.json")
    (folder / "meta.json").write_text(
        json.dumps({"extra_path": str(extra_path) if extra_path else None}), encoding="utf-8"
    )
    print(f"kept {name}: {report_json}")


def collect(root: Path) -> None:
    work, fixtures = root / "work", root / "fixtures"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(fixtures, ignore_errors=True)
    work.mkdir(parents=True)
    report = {"dir": "reports", "formats": BUILT_IN}

    project = _quickstart(work / "quickstart", report=report)
    done = _auditor("run", "audit.yaml", "--no-cache", cwd=project)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    _keep("quickstart", project / "reports" / "report.json", fixtures)
    _edges(project / "reports" / "report.json", fixtures)

    project = _quickstart(work / "quickstart-problem", report=report)
    import yaml

    manifest = yaml.safe_load((project / "audit.yaml").read_text(encoding="utf-8"))
    manifest["data"]["val"]["root"] = "data/missing"
    (project / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    done = _auditor("run", "audit.yaml", "--no-cache", cwd=project)
    assert done.returncode == 2 and (project / "reports" / "report.json").exists(), done.stdout + done.stderr
    _keep("quickstart-problem", project / "reports" / "report.json", fixtures)

    site = work / "site-image-properties"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(EXAMPLES / "image-properties")],
        check=True,
    )  # fmt: skip
    project = _quickstart(
        work / "image-properties", report={**report, "formats": [*BUILT_IN, "findings-csv"]}
    )
    manifest = yaml.safe_load((project / "audit.yaml").read_text(encoding="utf-8"))
    manifest["audits"]["image_properties"] = {"min_side": 64}
    (project / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    done = _auditor("run", "audit.yaml", "--no-cache", cwd=project, extra_path=site)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    _keep("image-properties", project / "reports" / "report.json", fixtures, extra_path=site)

    try:
        import lightning  # noqa: F401
    except ImportError:
        print("lightning is not installed: the Lightning example is left out")
        return
    for name, args in (("lightning", []), ("lightning-forgot-softmax", ["--forgot-softmax"])):
        example = shutil.copytree(
            EXAMPLES / "lightning", work / name, ignore=shutil.ignore_patterns("reports")
        )
        done = subprocess.run(
            [sys.executable, str(example / "train.py"), *args],
            cwd=example,
            env=_env(),
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert (example / "reports" / "report.json").exists(), done.stdout + done.stderr
        _keep(name, example / "reports" / "report.json", fixtures)


def _edges(report_json: Path, fixtures: Path) -> None:
    """The quickstart's report edited to hold what the examples never produce: a crashed audit, one
    stopped by the manifest, notes, a finding of an audit the report does not list, a missing optional key."""
    report = json.loads(report_json.read_text(encoding="utf-8"))
    audits = report["audits"]
    audits[0].update(
        status="errored",
        error={
            "type": "ZeroDivisionError",
            "message": "division by zero",
            "traceback": "Traceback (most recent call last):\n  ...\n",
        },
    )
    audits[1].update(
        status="errored",
        error={"type": "ManifestError", "message": "data.val: no such folder", "traceback": ""},
    )
    audits[2]["notes"] = ["a note about <b>this</b> | audit", "second note"]
    audits[3].update(status="skipped", reason="needs a second split")
    report["findings"].append(
        {
            "code": "XX001",
            "audit": "not_listed",
            "severity": "warning",
            "title": "orphan",
            "message": "m|*x*",
            "hint": "",
            "location": "model.fc",
            "evidence": {"pairs": [["a.png", "b.png"]], "split": "train"},
        }
    )
    report["summary"]["warning"] += 1
    report["summary"]["total"] += 1
    report.pop("lines", None)
    report.pop("task", None)
    folder = fixtures / "edges"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (folder / "meta.json").write_text(json.dumps({"extra_path": None}), encoding="utf-8")  # fmt: skip


def _console_text(report_json: Path) -> str:
    from rich.console import Console

    from auditor.report.console import print_report

    buffer = io.StringIO()
    console = Console(file=buffer, width=120, no_color=True, color_system=None, force_terminal=False)
    report = json.loads(report_json.read_text(encoding="utf-8"))
    print_report(console, report, [("json", Path("reports/report.json"))], verbose=True, timings=False)
    return buffer.getvalue()


def render(root: Path, output: Path) -> None:
    hashes: dict[str, str] = {}
    for fixture in sorted((root / "fixtures").iterdir()):
        meta = json.loads((fixture / "meta.json").read_text(encoding="utf-8"))
        extra = Path(meta["extra_path"]) if meta["extra_path"] else None
        formats = [*BUILT_IN, "findings-csv"] if extra else BUILT_IN
        out = root / "rendered" / fixture.name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        done = _auditor(
            "report", fixture / "report.json", "--format", ",".join(formats), "--output-dir", out,
            cwd=fixture, extra_path=extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        for path in sorted(out.iterdir()):
            hashes[f"{fixture.name}/{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
        console = _console_text(fixture / "report.json").encode("utf-8")
        hashes[f"{fixture.name}/console.txt"] = hashlib.sha256(console).hexdigest()
    output.write_text(json.dumps(hashes, indent=2) + "\n", encoding="utf-8")
    for key, digest in hashes.items():
        print(f"{digest[:16]}  {key}")


def compare(before: Path, after: Path) -> int:
    old = json.loads(before.read_text(encoding="utf-8"))
    new = json.loads(after.read_text(encoding="utf-8"))
    differ = 0
    print(f"| file | {before.name} | {after.name} | same |")
    print("| --- | --- | --- | --- |")
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, "missing"), new.get(key, "missing")
        differ += a != b
        print(f"| {key} | {a[:12]} | {b[:12]} | {'yes' if a == b else 'NO'} |")
    print(f"\n{len(old.keys() | new.keys()) - differ} of {len(old.keys() | new.keys())} files identical")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("collect").add_argument("root", type=Path)
    step = commands.add_parser("render")
    step.add_argument("root", type=Path)
    step.add_argument("output", type=Path)
    both = commands.add_parser("compare")
    both.add_argument("before", type=Path)
    both.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "collect":
        collect(args.root)
        return 0
    if args.command == "render":
        render(args.root, args.output)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
