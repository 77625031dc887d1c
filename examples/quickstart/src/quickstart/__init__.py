"""A small fine-tuning project with mistakes planted for auditor to find."""
