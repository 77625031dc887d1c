"""auditor: a pre-flight checker for PyTorch transfer learning.

The public API for plugin authors and for running audits from Python. Nothing
here imports torch; audits import it when they run.
"""

from auditor._version import __version__
from auditor.audit import Audit, SkipAudit
from auditor.data.splits import DataFormat, Split, SplitDataset, SplitSpec
from auditor.errors import AuditFailed, AuditorError, ManifestError, ManifestInvalid, PluginError, UsageError
from auditor.findings import CodeInfo, Finding, Severity
from auditor.live.check import check
from auditor.report.format import ReportFormat
from auditor.run.context import AuditContext, RunContext, TaskInfo
from auditor.run.registry import hookimpl
from auditor.run.result import CheckResult

__all__ = [
    "Audit",
    "AuditContext",
    "AuditFailed",
    "AuditorError",
    "CheckResult",
    "CodeInfo",
    "DataFormat",
    "Finding",
    "ManifestError",
    "ManifestInvalid",
    "PluginError",
    "ReportFormat",
    "RunContext",
    "Severity",
    "SkipAudit",
    "Split",
    "SplitDataset",
    "SplitSpec",
    "TaskInfo",
    "UsageError",
    "__version__",
    "check",
    "hookimpl",
]
