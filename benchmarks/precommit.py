"""Speed of the pre-commit hooks' commands on the quickstart example.

Targets (issue 7): `auditor validate` < 1 s; `auditor run --static` < 5 s cold
(no cache); a warm re-run opens no unchanged image file. Every command is the
hook's own entry from .pre-commit-hooks.yaml, in a fresh `auditor` process.
Prints one line per number.

    .venv/bin/python benchmarks/precommit.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import best_of

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart"
AUDITOR = str(Path(sys.executable).parent / "auditor")


def hook_args(hook_id: str) -> list[str]:
    """The hook's entry from .pre-commit-hooks.yaml, minus the leading `auditor`: run exactly what it runs."""
    import shlex

    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    entry = next(hook["entry"] for hook in hooks if hook["id"] == hook_id)
    words = shlex.split(entry)
    assert words[0] == "auditor", entry
    return words[1:]


#: Runs auditor's CLI with an audit hook that records every file opened under a folder.
COUNT_OPENS = """
import json, os, sys
root = os.path.realpath(sys.argv[1]); opened = set()
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(root + os.sep):
            opened.add(os.path.relpath(path, root))
sys.addaudithook(hook)
from auditor.cli.app import main
code = main(sys.argv[3:])
json.dump(sorted(opened), open(sys.argv[2], "w"))
sys.exit(code)
"""


def timed(args: list[str], cwd: Path) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"`{' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[:500]}")
    return elapsed, done.returncode


def copy_quickstart(target: Path) -> tuple[Path, list[str]]:
    """The quickstart, with audits not installed in this checkout (yet) left out of its manifest."""
    import yaml

    from auditor.run.registry import load_registry

    shutil.copytree(QUICKSTART, target, ignore=shutil.ignore_patterns("reports", ".auditor-cache"))
    manifest = yaml.safe_load((target / "audit.yaml").read_text())
    registry = load_registry()
    missing = [name for name in manifest["audits"] if name not in registry.audits]
    formats = manifest.get("report", {}).get("formats", [])
    missing += [f"{name} (report format)" for name in formats if name not in registry.report_formats]
    if missing:
        manifest["audits"] = {k: v for k, v in manifest["audits"].items() if k in registry.audits}
        if formats:
            manifest["report"]["formats"] = [f for f in formats if f in registry.report_formats]
        (target / "audit.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return target, missing


def main() -> None:
    colds = []
    with tempfile.TemporaryDirectory() as tmp:
        checked, missing = copy_quickstart(Path(tmp) / "quickstart")
        if missing:
            print(f"note: not installed yet, left out of the manifest: {', '.join(missing)}")
        validate, static = hook_args("auditor-validate"), hook_args("auditor-static")
        seconds, _ = best_of(5, lambda: timed([AUDITOR, *validate, "audit.yaml"], checked))
        print(
            f"auditor validate (quickstart), best of 5: {seconds:.2f} s  (target < 0.5 s; benchmarks/validate.py has more)"
        )
        for attempt in range(3):
            project, _ = copy_quickstart(Path(tmp) / f"quickstart-{attempt}")
            cold, code = timed([AUDITOR, *static, "audit.yaml"], project)
            colds.append(cold)
        print(
            f"auditor run --static (quickstart, no cache), best of 3: {min(colds):.2f} s, exit {code}  "
            "(target < 5 s)"
        )
        warm, code = best_of(3, lambda: timed([AUDITOR, *static, "audit.yaml"], project))
        print(f"auditor run --static (quickstart, warm cache), best of 3: {warm:.2f} s, exit {code[1]}")
        log = Path(tmp) / "opened.json"
        images = sum(1 for p in (project / "data").rglob("*") if p.is_file())
        subprocess.run(
            [sys.executable, "-c", COUNT_OPENS, str(project / "data"), str(log), *static, "audit.yaml"],
            cwd=project,
            check=False,
            capture_output=True,
        )
        opened = json.loads(log.read_text())
        print(
            f"image files opened by a warm re-run: {len(opened)} of {images}"
            + (f" (e.g. {opened[0]})" if opened else "")
            + "  (target 0)"
        )


if __name__ == "__main__":
    main()
