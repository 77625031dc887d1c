"""auditor: a pre-flight checker for PyTorch transfer learning.

The public API for plugin authors and for running audits from Python. Nothing
here imports torch; audits import it when they run.
"""

from auditor._version import __version__
from auditor.audit import Audit, CauseRule, SkipAudit
from auditor.data.splits import DataFormat, Split, SplitDataset, SplitSpec
from auditor.errors import AuditFailed, AuditorError, ManifestError, ManifestInvalid, PluginError, UsageError
from auditor.findings import CodeInfo, Finding, Severity
from auditor.live.check import check
from auditor.report.evidence import (
    ChannelStat,
    ClassCounts,
    GradNorm,
    LeakedPair,
    Measurements,
    ModuleParams,
    SampleRef,
)
from auditor.report.format import ReportFormat
from auditor.report.view import (
    AuditError,
    AuditView,
    BrokenPluginInfo,
    EnvironmentView,
    FindingView,
    ManifestInfo,
    PluginInfo,
    ProblemView,
    ReportView,
    SummaryView,
    TaskView,
    ToolInfo,
)
from auditor.run.context import AuditContext, RunContext, TaskInfo
from auditor.run.registry import hookimpl
from auditor.run.result import CheckResult

__all__ = [
    "Audit",
    "AuditContext",
    "AuditError",
    "AuditFailed",
    "AuditView",
    "AuditorError",
    "BrokenPluginInfo",
    "CauseRule",
    "ChannelStat",
    "CheckResult",
    "ClassCounts",
    "CodeInfo",
    "DataFormat",
    "EnvironmentView",
    "Finding",
    "FindingView",
    "GradNorm",
    "LeakedPair",
    "ManifestError",
    "ManifestInfo",
    "ManifestInvalid",
    "Measurements",
    "ModuleParams",
    "PluginError",
    "PluginInfo",
    "ProblemView",
    "ReportFormat",
    "ReportView",
    "RunContext",
    "SampleRef",
    "Severity",
    "SkipAudit",
    "Split",
    "SplitDataset",
    "SplitSpec",
    "SummaryView",
    "TaskInfo",
    "TaskView",
    "ToolInfo",
    "UsageError",
    "__version__",
    "check",
    "hookimpl",
]
