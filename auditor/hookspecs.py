"""Hook specifications: the whole plugin interface of auditor.

A plugin is a module (or object) with functions marked ``@auditor.hookimpl``
whose names match the specs below. Plugins are found through the entry-point
group ``auditor``; the built-in audits, data formats and report formats are
registered through that very group, exactly like third-party ones::

    [project.entry-points.auditor]
    image_stats = "auditor_image_stats.plugin"

Every hook is prefixed ``auditor_``. None of them is ``firstresult``: the host
collects one result per plugin, so several plugins can contribute.
Plugin modules must not import torch at import time: ``auditor validate`` and
``auditor --help`` load every plugin and must stay fast and torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from auditor.audit import Audit
    from auditor.data.splits import DataFormat
    from auditor.findings import Finding
    from auditor.report.format import ReportFormat
    from auditor.run.context import RunContext
    from auditor.run.user_code import UserCodeFailure

hookspec = pluggy.HookspecMarker("auditor")


@hookspec
def auditor_audits() -> list[Audit]:
    """Declare the audits this plugin provides.

    :return: a list of :class:`auditor.Audit` (may be empty). Each declares its
        name, version, finding-code prefix, codes (severity, title,
        explanation), which of its codes follow from which
        (``causes``: :class:`auditor.CauseRule`), a JSON Schema for its
        options and what it needs. Two
        plugins may not claim the same prefix or audit name: the host then
        exits with code 2 naming both distributions.

    Called once per run by the plugin manager; not ``firstresult``.
    """


@hookspec
def auditor_data_formats() -> list[DataFormat]:
    """Declare data formats (values of ``data.<split>.format``).

    :return: a list of :class:`auditor.DataFormat`. Each has a name, the JSON
        Schema properties it adds to a split's mapping, and ``open(spec)``
        which returns an :class:`auditor.Split`. Built in: ``image_folder``,
        ``csv`` (csv and parquet) and ``callable``.

    Not ``firstresult``; a name claimed twice is a configuration error.
    """


@hookspec
def auditor_report_formats() -> list[ReportFormat]:
    """Declare report formats (values of ``--format`` and ``report.formats``).

    :return: a list of :class:`auditor.ReportFormat`, each with a name, the
        file name it writes in the output folder and ``render(report,
        catalog)``. ``report`` is the report dict, or the typed
        :class:`auditor.ReportView` when the format sets ``takes_view=True``.
        ``json`` is built in and always written.

    Not ``firstresult``; a name claimed twice is a configuration error.
    """


@hookspec
def auditor_run_started(context: RunContext) -> None:
    """Called once before the first audit runs.

    :param context: the shared :class:`auditor.RunContext` (manifest, lazily
        built model, optimizer, loss and splits). Observers may read it; they
        must not build anything expensive they do not need.
    :return: nothing. Not ``firstresult``.
    """


@hookspec
def auditor_findings(audit: Audit, findings: list[Finding]) -> None:
    """Called after each audit with the findings it produced.

    :param audit: the :class:`auditor.Audit` that ran.
    :param findings: its :class:`auditor.Finding` list, after ``--select`` and
        ``--ignore``; implementations may append to or remove from it (for
        example to suppress a code for a known, accepted case).
    :return: nothing. Not ``firstresult``.
    """


@hookspec
def auditor_run_finished(report: dict[str, Any]) -> None:
    """Called once with the finished JSON report, before any file is written.

    :param report: the report dict (valid against ``report.schema.json``);
        implementations may add keys under ``report["extensions"]``.
    :return: nothing. Not ``firstresult``.
    """


@hookspec
def auditor_user_code_failed(failure: UserCodeFailure) -> Finding | None:
    """Word a failure of user code as a finding: the host knows no finding code, a plugin owns them.

    Called when a call into user code could not finish: it raised, ended the process (``sys.exit``,
    ``os._exit``, a signal), passed its deadline or the run's memory limit, or built a model whose
    tensors are on the ``meta`` device.

    :param failure: the :class:`auditor.kit.UserCodeFailure` (the call, how it ended, the user's frame,
        the audit it happened in).
    :return: a :class:`auditor.Finding` of one of the plugin's codes with ``audit`` set to
        ``failure.audit``, or None to leave it to another plugin. The host uses the first finding
        returned; when no plugin returns one, the audit is ``errored`` with the failure's sentence.
        Not ``firstresult``.
    """
