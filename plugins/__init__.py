"""auditor built-in plugins (installed as ``auditor_plugins``)."""
