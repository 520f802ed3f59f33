"""Writers: NIfTI-1 and NRRD images with JSON sidecars, under safe names."""

from typing import Final

__all__ = ["FORMATS"]

FORMATS: Final = ("nii.gz", "nii", "nrrd")
"""The output formats, the default first."""
