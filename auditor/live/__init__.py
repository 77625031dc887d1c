"""Live objects instead of a manifest: ``auditor.check`` and what the framework integrations share."""
