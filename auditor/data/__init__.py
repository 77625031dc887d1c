"""Data splits as audits see them, the ``DataFormat`` declaration, and safe reads of user data."""
