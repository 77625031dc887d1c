"""Stage 1 of a run: the manifest, read, validated and resolved (``module:attr`` strings, pretrained names)."""
