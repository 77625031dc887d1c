"""The ``auditor`` command line.

Nothing on the paths of ``--help``, ``validate``, ``list``, ``explain`` and
``schema`` imports torch: they must answer in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from auditor._version import __version__
from auditor.errors import AuditorError, ManifestInvalid, UsageError
from auditor.findings import FailOn

if TYPE_CHECKING:  # pragma: no cover
    from auditor.run.registry import Registry

__all__ = ["build_parser", "main"]


def _gib(value: str) -> float:
    import math

    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of GiB > 0 (e.g. 8 or 0.5), found {value!r}")
    return number


def _split_csv(values: Sequence[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditor",
        description="Pre-flight checks for PyTorch transfer learning: finds the mistakes that make "
        "fine-tuning fail silently, before training starts.",
    )
    parser.add_argument("--version", action="version", version=f"auditor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the audits of a manifest and write reports")
    run.add_argument("manifest", nargs="?", default="audit.yaml", help="manifest (default: audit.yaml)")
    run.add_argument(
        "--only", action="append", metavar="AUDIT", help="run only these audits (repeat or comma-separate)"
    )
    run.add_argument("--skip", action="append", metavar="AUDIT", help="skip these audits")
    run.add_argument(
        "--select",
        action="append",
        metavar="CODE",
        help="report only these codes or prefixes (e.g. SL, LD001)",
    )
    run.add_argument("--ignore", action="append", metavar="CODE", help="drop these codes or prefixes")
    run.add_argument(
        "--fail-on",
        choices=FailOn,
        help="exit 1 on findings at or above this severity (default: the manifest's fail_on, else error)",
    )
    run.add_argument(
        "--format",
        action="append",
        metavar="FORMAT",
        help="report formats besides json (repeat or comma-separate)",
    )
    run.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where reports go (default: the manifest's report.dir, else reports/ beside it)",
    )
    run.add_argument("--static", action="store_true", help="skip every audit that runs the model")
    run.add_argument(
        "--no-cache", action="store_true", help="neither read nor write caches (e.g. image hashes)"
    )
    run.add_argument(
        "--scheduler",
        metavar="local|tcp://HOST:PORT",
        help="hash split_leakage files as Dask tasks: 'local' starts a LocalCluster, an address "
        "uses a running cluster (needs auditor[distributed]; default: the manifest's scheduler)",
    )
    run.add_argument(
        "--redact",
        action="store_true",
        default=None,
        help="write reports fit to publish: paths relative to the manifest, no platform, user "
        "name or tracebacks (default: the manifest's report.redact)",
    )
    run.add_argument(
        "--quiet", "-q", action="store_true", help="print nothing when the run passes (for pre-commit)"
    )
    run.add_argument("--verbose", "-v", action="store_true", help="show tracebacks of crashed audits")
    run.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="accept the findings recorded in this baseline (default: auditor-baseline.json beside "
        "the manifest, when it exists); they are listed apart and do not fail the run",
    )
    run.add_argument("--no-baseline", action="store_true", help="read no baseline file")
    run.add_argument(
        "--in-process",
        action="store_true",
        help="run the audits in this process, not a supervised worker (for debugging with pdb or a "
        "profiler; user code that exits or crashes then ends the run: see docs/reliability.md)",
    )
    run.add_argument(
        "--memory-limit",
        type=_gib,
        metavar="GIB",
        help="stop the worker above this resident memory, in GiB, and report the call that grew it "
        "(default: 80%% of the machine's memory; Linux only)",
    )

    baseline = sub.add_parser(
        "baseline",
        help="record today's findings as accepted (auditor-baseline.json); runs then fail only on new ones",
    )
    baseline.add_argument("manifest", nargs="?", default="audit.yaml", help="manifest (default: audit.yaml)")
    baseline.add_argument(
        "--reason", required=True, metavar="TEXT", help="why these findings are accepted (shown in reports)"
    )
    baseline.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="the baseline file (default: auditor-baseline.json beside the manifest)",
    )
    baseline.add_argument("--only", action="append", metavar="AUDIT", help="run only these audits")
    baseline.add_argument("--skip", action="append", metavar="AUDIT", help="skip these audits")
    baseline.add_argument("--static", action="store_true", help="skip every audit that runs the model")

    validate = sub.add_parser(
        "validate", help="check manifests (schema, options, imports) without running anything"
    )
    validate.add_argument("manifests", nargs="+", metavar="MANIFEST")
    validate.add_argument("--quiet", "-q", action="store_true", help="print only problems")

    sub.add_parser("list", help="installed audits, data formats and report formats")

    explain = sub.add_parser("explain", help="what a finding code means and how to fix it")
    explain.add_argument("code", metavar="CODE")

    schema = sub.add_parser("schema", help="print a JSON Schema")
    schema.add_argument("name", nargs="?", default="manifest", choices=["manifest", "report"])

    new_plugin = sub.add_parser(
        "new-plugin", help="create a third-party plugin package (audit, tests, entry point)"
    )
    new_plugin.add_argument(
        "name", metavar="NAME", help="plugin name, e.g. image-stats (package auditor-image-stats)"
    )
    new_plugin.add_argument(
        "--output-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where the package folder is created (default: the current folder)",
    )
    new_plugin.add_argument(
        "--prefix", metavar="XX", help="finding-code prefix, 2-4 capitals (default: from NAME)"
    )

    report = sub.add_parser("report", help="re-render a saved JSON report in other formats")
    report.add_argument("report", type=Path, metavar="REPORT_JSON")
    report.add_argument("--format", action="append", metavar="FORMAT", required=True)
    report.add_argument("--output-dir", type=Path, metavar="DIR", help="default: the report's folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    When a call into user code passed its deadline and is still running in an
    abandoned thread, the process exits here and now (see ``auditor.run._deadline``)
    instead of returning: a finishing interpreter could wait on that thread.
    """
    code = _main(argv)
    from auditor.run._deadline import abandoned, exit_process

    if abandoned():
        exit_process(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from auditor.report.console import make_console

    err = make_console(stderr=True)
    try:
        return int(_dispatch(args))
    except ManifestInvalid as exc:
        for error in exc.errors:
            err.print(f"[bold red]error:[/bold red] {_escape(error.render())}")
        return 2
    except AuditorError as exc:
        err.print(f"[bold red]error:[/bold red] {_escape(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/bold red]")
        return 130


def _escape(text: str) -> str:
    """Rich markup escaped, and control characters (ESC...) from names made visible."""
    from rich.markup import escape

    from auditor._util.printable import printable

    return escape(printable(text))


def _dispatch(args: argparse.Namespace) -> int:
    handler = {
        "run": _cmd_run,
        "baseline": _cmd_baseline,
        "validate": _cmd_validate,
        "list": _cmd_list,
        "explain": _cmd_explain,
        "schema": _cmd_schema,
        "report": _cmd_report,
        "new-plugin": _cmd_new_plugin,
    }[args.command]
    return handler(args)


def _cmd_run(args: argparse.Namespace) -> int:
    from auditor.manifest.load import manifest_file
    from auditor.report.console import make_console, print_audit_line, print_report
    from auditor.run._progress import NullProgress, RichProgress
    from auditor.run.api import run_manifest
    from auditor.run.registry import load_registry

    registry = load_registry()
    out = make_console()
    quiet = args.quiet
    progress = (
        RichProgress(make_console(stderr=True)) if sys.stderr.isatty() and not quiet else NullProgress()
    )
    if not quiet:
        out.print(f"[bold]auditor[/bold] {__version__}: {_escape(str(manifest_file(args.manifest)))}")
    outcome = run_manifest(
        args.manifest,
        only=_split_csv(args.only),
        skip=_split_csv(args.skip),
        select=_split_csv(args.select),
        ignore=_split_csv(args.ignore),
        static=args.static,
        fail_on=args.fail_on,
        formats=_split_csv(args.format) or None,
        output_dir=args.output_dir,
        use_cache=not args.no_cache,
        registry=registry,
        progress=progress,
        redact=args.redact,
        scheduler=_scheduler(args.scheduler),
        on_audit_done=None if quiet else (lambda result: print_audit_line(out, result)),
        baseline=False if args.no_baseline else args.baseline,
        isolated=not args.in_process and os.name == "posix",
        memory_limit_gib=args.memory_limit,
    )
    _echo(outcome.written, registry)
    if not quiet or outcome.exit_code != 0:
        print_report(out, outcome.report, outcome.written, verbose=args.verbose, timings=not quiet)
    return outcome.exit_code


def _cmd_baseline(args: argparse.Namespace) -> int:
    """Run the audits with no baseline, then record every finding they report in the baseline file."""
    from auditor.manifest.load import manifest_file
    from auditor.report.console import make_console
    from auditor.run.accepted import BASELINE_NAME, read_baseline, write_baseline
    from auditor.run.api import run_manifest

    if not args.reason.strip():
        raise UsageError("--reason: expected why these findings are accepted, found an empty text")
    target = args.output or manifest_file(args.manifest).parent / BASELINE_NAME
    previous = read_baseline(target) if target.exists() else None
    outcome = run_manifest(
        args.manifest,
        only=_split_csv(args.only),
        skip=_split_csv(args.skip),
        static=args.static,
        formats=[],
        baseline=False,
        isolated=os.name == "posix",  # user code that ends the process must not end this command either
    )
    out = make_console()
    if outcome.exit_code == 2:
        # A crashed audit or a broken split reported only part of what it would find: recording that
        # would accept too little today and let tomorrow's complete run fail on old findings.
        make_console(stderr=True).print(
            f"[bold red]error:[/bold red] the run errored (exit code 2; see {_escape(str(outcome.written[0][1]))}): "
            "expected a run whose audits all finished before recording a baseline; nothing was written"
        )
        return 2
    entries = write_baseline(
        target, outcome.report["findings"], args.reason, str(outcome.report["manifest"]["name"]), previous
    )
    kept = sum(1 for e in entries if previous is not None and e.fingerprint in previous.entries)
    out.print(
        f"recorded {len(entries)} finding{'s' if len(entries) != 1 else ''} in {_escape(str(target))}"
        + (f" ({kept} already there kept their reason)" if kept else "")
        + "; `auditor run` now fails only on findings not in it"
    )
    return 0


def _scheduler(value: str | None) -> str | None:
    import re

    if value is None:
        return None
    if not re.match(r"^(local|(tcp|tls|inproc|ucx)://\S+)$", value):
        raise UsageError(
            f"--scheduler: expected 'local' or a Dask scheduler address such as "
            f"tcp://10.0.0.5:8786, found {value!r}"
        )
    return value


def _echo(written: Sequence[tuple[str, Path]], registry: Registry) -> None:
    """Print the files of formats that act only when printed (GitHub workflow commands)."""
    for name, path in written:
        if registry.report_formats[name].echo:
            sys.stdout.write(path.read_text(encoding="utf-8"))
    sys.stdout.flush()


def _cmd_validate(args: argparse.Namespace) -> int:
    from auditor.manifest.load import load_manifest
    from auditor.report.console import make_console
    from auditor.run.registry import load_registry

    registry = load_registry()
    out = make_console()
    err = make_console(stderr=True)
    status = 0
    for path in args.manifests:
        try:
            manifest = load_manifest(path, registry, check_imports=True)
        except ManifestInvalid as exc:
            status = 2
            for error in exc.errors:
                err.print(f"[bold red]error:[/bold red] {_escape(error.render())}")
            continue
        if not args.quiet:
            out.print(f"[green]ok[/green] {_escape(str(path))}")
        for name in [] if args.quiet else manifest.disabled_audits:  # a choice, but a visible one
            out.print(
                f"[yellow]note:[/yellow] {_escape(str(path))}: audits.{_escape(name)}: false disables "
                f"{_escape(name)}; every run reports it as disabled"
            )
    return status


def _cmd_list(args: argparse.Namespace) -> int:
    from auditor.report.console import make_console
    from auditor.run.registry import load_registry

    registry = load_registry()
    rows = [
        (
            audit.name,
            audit.version,
            f"{registry.audit_plugin[audit.name].distribution} {registry.audit_plugin[audit.name].version}",
            "yes" if audit.runs_model else "no",
            " ".join(c.code for c in audit.codes),
        )
        for audit in registry.ordered_audits()
    ]
    columns = ("audit", "version", "distribution", "runs model", "codes")
    out = make_console()
    if sys.stdout.isatty():
        from rich.table import Table

        table = Table(title="audits", title_justify="left")
        for column in columns:
            # fold, never ellipsis: a long plugin name wraps onto the next line, whole.
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_escape(cell) for cell in row))
        out.print(table)
    else:
        # Piped or captured: tab-separated lines under a header (what `cut -f` and scripts read),
        # nothing cut to a terminal width that is not there.
        for row in (columns, *rows):
            sys.stdout.write("\t".join(_plain(cell) for cell in row) + "\n")
    lines = [
        "data formats: " + ", ".join(sorted(registry.data_formats)),
        "report formats: " + ", ".join(sorted(registry.report_formats)),
    ]
    for line in lines:
        if sys.stdout.isatty():
            out.print(_escape(line))
        else:
            sys.stdout.write(_plain(line) + "\n")
    sys.stdout.flush()
    for broken in registry.broken:
        out.print(
            f"[bold red]broken plugin[/bold red] {_escape(broken.name)} "
            f"({_escape(broken.distribution)}): {_escape(broken.error)}"
        )
    return 0


def _plain(text: str) -> str:
    from auditor._util.printable import printable

    return printable(text)


def _cmd_explain(args: argparse.Namespace) -> int:
    from rich.markdown import Markdown

    from auditor._util.suggest import closest
    from auditor.cli.explain import explanation_markdown
    from auditor.report.console import make_console
    from auditor.run.registry import load_registry

    registry = load_registry()
    code = args.code.strip().upper()
    catalog = registry.catalog
    info = catalog.get(code)
    if info is None:
        close = closest(code, catalog)
        raise UsageError(
            f"explain {args.code}: expected a known finding code (`auditor list` shows them), found "
            f"{args.code!r}" + (f"; did you mean {close}?" if close else "")
        )
    audit = registry.audit_for_code(code)
    text = explanation_markdown(info, audit.name if audit else "?")
    if sys.stdout.isatty():
        make_console().print(Markdown(text))
    else:
        sys.stdout.write(text)  # plain Markdown when piped: the exact text docs/codes.md shows
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from auditor._util.schemas import load_schema

    print(json.dumps(load_schema(args.name), indent=2))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from auditor.report.console import make_console
    from auditor.report.document import SCHEMA_VERSION, load_report, newer_minor
    from auditor.report.files import write_reports
    from auditor.run.registry import load_registry

    registry = load_registry()
    report = load_report(args.report)
    newer = newer_minor(report)
    if newer:
        make_console(stderr=True).print(
            f"[yellow]warning:[/yellow] {_escape(str(args.report))} has schema_version {_escape(newer)}, newer "
            f"than this auditor writes ({SCHEMA_VERSION}); fields it does not know are left out"
        )
    formats = _split_csv(args.format)
    output_dir = args.output_dir or args.report.parent
    for name in formats:
        fmt = registry.report_formats.get(name)
        target = output_dir / fmt.filename if fmt else None
        if target is not None and target.exists() and os.path.samefile(target, args.report):
            raise UsageError(
                f"--format {name}: expected an output file other than the input, found that it would "
                f"overwrite {args.report}; pass --output-dir DIR"
            )
    # Only the formats asked for: re-rendering must not rewrite the JSON it reads.
    written = write_reports(report, formats, output_dir, registry, include_json=False)
    _echo(written, registry)
    out = make_console()
    for name, path in written:
        out.print(f"[dim]{name} report:[/dim] {_escape(str(path))}")
    return 0


def _cmd_new_plugin(args: argparse.Namespace) -> int:
    from auditor.cli._scaffold import scaffold
    from auditor.report.console import make_console
    from auditor.run.registry import load_registry

    taken = {audit.prefix for audit in load_registry().audits.values()}
    names, target, written = scaffold(args.name, args.output_dir, prefix=args.prefix, taken_prefixes=taken)
    out = make_console()
    out.print(
        f"created {_escape(str(target))} ({len(written)} files): distribution {names.dist}, "
        f"package {names.package}, audit {names.audit}, codes {names.prefix}001..."
    )
    out.print(_escape(f"next: cd {target} && pip install -e '.[test]' && pytest"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
