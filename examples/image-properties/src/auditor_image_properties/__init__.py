"""auditor-image-properties: a third-party auditor plugin.

Adds the ``image_properties`` audit (codes IP001-IP004: corrupt, grayscale,
tiny and extremely elongated images) and the ``findings-csv`` report format.
Both register through the ``auditor`` entry-point group in pyproject.toml.
"""

__version__ = "0.1.0"
