"""dicomsieve: turn any pile of DICOM files into correct, ready-to-use volumes."""

from __future__ import annotations

from dicomsieve.errors import ConfigError, DicomSieveError, IndexDbError
from dicomsieve.settings import Settings

__version__ = "0.1.0"

__all__ = ["ConfigError", "DicomSieveError", "IndexDbError", "Settings", "__version__"]
