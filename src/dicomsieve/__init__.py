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

from dicomsieve._version import __version__
from dicomsieve.api import ConversionResult, convert, examine
from dicomsieve.codes import (
    ErrorCode,
    FileState,
    FlagCode,
    IgnoreRule,
    Level,
    LoadableKind,
    LoadErrorCode,
    WarningCode,
)
from dicomsieve.errors import ConfigError, DicomSieveError, IndexDbError, LoadError, ScanError
from dicomsieve.index.store import Index
from dicomsieve.load.loader import load
from dicomsieve.load.resample import regularize
from dicomsieve.load.volume import Volume
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
from dicomsieve.write.files import WrittenOutput, write_volume

__all__ = [
    "ConfigError",
    "ConversionResult",
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
    "LoadError",
    "LoadErrorCode",
    "Loadable",
    "LoadableKind",
    "ScanError",
    "ScanSummary",
    "SeriesExamination",
    "Settings",
    "SliceRef",
    "SourceInstance",
    "Volume",
    "WarningCode",
    "WrittenOutput",
    "__version__",
    "convert",
    "examine",
    "examine_instances",
    "load",
    "read_file",
    "regularize",
    "scan",
    "write_volume",
]

# Only applications (the CLI, the web server) configure handlers.
logging.getLogger(__name__).addHandler(logging.NullHandler())
