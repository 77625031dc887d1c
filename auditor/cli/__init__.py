"""The ``auditor`` command line."""

from auditor.cli.app import main

__all__ = ["main"]
