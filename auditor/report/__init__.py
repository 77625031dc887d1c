"""Stage 3 of a run: the report document, the files written from it, and the console."""
