"""dicomsieve: turn any pile of DICOM files into correct, ready-to-use volumes.

>>> import dicomsieve
>>> examination = dicomsieve.examine("/path/to/dicom")  # doctest: +SKIP
>>> for loadable in examination.selected():  # doctest: +SKIP
...     print(loadable.name, loadable.kind, loadable.shape)

With a persistent index (rescans read only what changed; examine results are stored):

>>> with dicomsieve.Index("index.sqlite") as index:  # doctest: +SKIP
...     summary = dicomsieve.scan(["/path/to/dicom"], index)
...     examination = dicomsieve.examine(index)
"""

from __future__ import annotations

import logging

from dicomsieve.api import examine
from dicomsieve.codes import (
    ErrorCode,
    FileState,
    FlagCode,
    IgnoreRule,
    Level,
    LoadableKind,
    WarningCode,
)
from dicomsieve.errors import ConfigError, DicomSieveError, IndexDbError
from dicomsieve.index.store import Index
from dicomsieve.loadables import (
    Examination,
    ExamineWarning,
    Loadable,
    SeriesExamination,
    SliceRef,
    SourceInstance,
    examine_instances,
)
from dicomsieve.model import FileOutcome, FrameRecord, InstanceRecord
from dicomsieve.scan.read import read_file
from dicomsieve.scan.scanner import ScanSummary, scan
from dicomsieve.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DicomSieveError",
    "ErrorCode",
    "Examination",
    "ExamineWarning",
    "FileOutcome",
    "FileState",
    "FlagCode",
    "FrameRecord",
    "IgnoreRule",
    "Index",
    "IndexDbError",
    "InstanceRecord",
    "Level",
    "Loadable",
    "LoadableKind",
    "ScanSummary",
    "SeriesExamination",
    "Settings",
    "SliceRef",
    "SourceInstance",
    "WarningCode",
    "__version__",
    "examine",
    "examine_instances",
    "read_file",
    "scan",
]

# Only applications (the CLI, the web server) configure handlers.
logging.getLogger(__name__).addHandler(logging.NullHandler())
