"""dicomsieve: turn any pile of DICOM files into correct, ready-to-use volumes.

>>> import dicomsieve
>>> with dicomsieve.Index("index.sqlite") as index:  # doctest: +SKIP
...     summary = dicomsieve.scan(["/path/to/dicom"], index)
...     print(summary.to_json())
"""

from __future__ import annotations

import logging

from dicomsieve.codes import ErrorCode, FileState, FlagCode, IgnoreRule
from dicomsieve.errors import ConfigError, DicomSieveError, IndexDbError
from dicomsieve.index.store import Index
from dicomsieve.model import FileOutcome, FrameRecord, InstanceRecord
from dicomsieve.scan.read import read_file
from dicomsieve.scan.scanner import ScanSummary, scan
from dicomsieve.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DicomSieveError",
    "ErrorCode",
    "FileOutcome",
    "FileState",
    "FlagCode",
    "FrameRecord",
    "IgnoreRule",
    "Index",
    "IndexDbError",
    "InstanceRecord",
    "ScanSummary",
    "Settings",
    "__version__",
    "read_file",
    "scan",
]

# Only applications (the CLI, the web server) configure handlers.
logging.getLogger(__name__).addHandler(logging.NullHandler())
