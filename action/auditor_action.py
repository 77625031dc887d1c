"""The audit step of the auditor GitHub Action (``action.yml``): run auditor, fill the job summary.

Standard library only: it runs in whatever Python the workflow set up, after auditor was installed.
It reads the action's inputs from ``INPUT_*`` variables (what ``action.yml`` passes), runs
``auditor run`` (or ``--static``, or ``auditor validate``) with the ``sarif``, ``markdown`` and
``github`` formats, and then:

- the annotations: the ``github`` format prints them itself, ranked and capped at what GitHub shows
  in one step (10 of each kind, then one notice counting the rest);
- the step summary: report.md (ranked, capped at its own row limit) appended to ``$GITHUB_STEP_SUMMARY``;
  for ``validate`` or a run that wrote no report, the command's output as a code block;
- the step outputs (``$GITHUB_OUTPUT``): ``exit-code``, ``report-dir``, ``sarif``.

It always exits 0, so the SARIF upload after it still runs; the action's last step fails on
``exit-code``. Run it by hand the same way: ``INPUT_MANIFEST=audit.yaml python action/auditor_action.py``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

MODES = ("run", "static", "validate")
FAIL_ON = ("", "error", "warning", "info", "never")
#: GitHub refuses a step summary above 1 MiB; keep well below it.
MAX_SUMMARY_BYTES = 900_000


def _input(name: str, default: str = "") -> str:
    return os.environ.get(f"INPUT_{name}", default).strip() or default


def command(manifest: str, mode: str, fail_on: str, output_dir: str, args: str) -> list[str]:
    """The auditor command line the inputs ask for."""
    if mode not in MODES:
        raise SystemExit(f"auditor action: input mode: expected one of {list(MODES)}, found {mode!r}")
    if fail_on not in FAIL_ON:
        raise SystemExit(
            f"auditor action: input fail-on: expected one of {list(FAIL_ON[1:])}, found {fail_on!r}"
        )
    base = [sys.executable, "-m", "auditor"]
    if mode == "validate":
        return [*base, "validate", manifest]
    line = [*base, "run", manifest, "--format", "sarif,markdown,github", "--output-dir", output_dir]
    if mode == "static":
        line.append("--static")
    if fail_on:
        line += ["--fail-on", fail_on]
    return line + shlex.split(args)


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def _fenced(output: str) -> str:
    fence = "````"
    return f"{fence}text\n{output.rstrip()}\n{fence}\n"


def summary(mode: str, exit_code: int, output: str, report_md: Path) -> str:
    """What goes into the job summary: report.md when the run wrote one, else the command's output."""
    if mode != "validate" and report_md.is_file():
        text = report_md.read_text(encoding="utf-8")
    else:
        verdict = {0: "passed", 1: "failed", 2: "errored"}.get(exit_code, f"exit code {exit_code}")
        text = f"### auditor {mode}: {verdict}\n\n{_fenced(output[-20_000:])}"
    data = text.encode("utf-8")
    if len(data) > MAX_SUMMARY_BYTES:
        text = (
            data[:MAX_SUMMARY_BYTES].decode("utf-8", "ignore") + "\n\n(cut: the full report is report.json)\n"
        )
    return text + "\n"


def main() -> int:
    manifest = _input("MANIFEST", "audit.yaml")
    mode = _input("MODE", "run")
    output_dir = _input("OUTPUT_DIR", "auditor-reports")
    line = command(manifest, mode, _input("FAIL_ON"), output_dir, _input("ARGS"))
    print(f"auditor action: {shlex.join(line[1:])}", flush=True)
    # stdout passes through as it comes: the annotations act only when the step prints them.
    completed = subprocess.run(line, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    sys.stdout.write(completed.stdout)
    sys.stdout.flush()
    reports = Path(output_dir)
    sarif = reports / "report.sarif"
    _append(
        os.environ.get("GITHUB_STEP_SUMMARY"),
        summary(mode, completed.returncode, completed.stdout, reports / "report.md"),
    )
    _append(
        os.environ.get("GITHUB_OUTPUT"),
        f"exit-code={completed.returncode}\n"
        f"report-dir={reports if mode != 'validate' else ''}\n"
        f"sarif={sarif if mode != 'validate' and sarif.is_file() else ''}\n",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
