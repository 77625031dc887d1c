"""Helpers shared by more than one built-in audit (one module per job)."""
