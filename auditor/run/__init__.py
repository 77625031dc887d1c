"""Stage 2 of a run: plugins found, objects built, audits run, findings linked, the exit code decided."""
