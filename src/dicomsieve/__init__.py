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

import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from dicomsieve._lazy import lazy_attributes
from dicomsieve._version import __version__

# The functions named like subpackages are bound now: importing a submodule such as
# ``dicomsieve.scan.read`` sets the package attribute to the subpackage, and a lazy
# lookup would then never run. ``scan`` and ``load`` are thin functions over the
# scanner and the loader, so that ``import dicomsieve`` (and so every command) imports
# neither the readers and the index nor numpy: a command that reads files starts the
# readers' fork server first, and its own imports then overlap the server's start.
# Their subpackages are imported first, so that no later import rebinds the names.
importlib.import_module("dicomsieve.load")
importlib.import_module("dicomsieve.scan")

if TYPE_CHECKING:
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
    from dicomsieve.load.loader import KnownFiles
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
    from dicomsieve.scan.scanner import ScanSummary
    from dicomsieve.settings import Settings
    from dicomsieve.write.files import WrittenOutput, write_volume

# Public names and the modules that define them. They are imported on first use, so
# that ``import dicomsieve`` (and every worker process of a scan) stays light: a scan
# worker needs the readers, not numpy, nibabel or the web app.
_EXPORTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ConfigError": "dicomsieve.errors",
        "ConversionResult": "dicomsieve.api",
        "DicomSieveError": "dicomsieve.errors",
        "ErrorCode": "dicomsieve.codes",
        "Examination": "dicomsieve.loadables",
        "ExamineWarning": "dicomsieve.loadables",
        "FileOutcome": "dicomsieve.model",
        "FileState": "dicomsieve.codes",
        "FlagCode": "dicomsieve.codes",
        "FrameRecord": "dicomsieve.model",
        "IgnoreRule": "dicomsieve.codes",
        "Index": "dicomsieve.index.store",
        "IndexDbError": "dicomsieve.errors",
        "InstanceRecord": "dicomsieve.model",
        "Level": "dicomsieve.codes",
        "LoadError": "dicomsieve.errors",
        "LoadErrorCode": "dicomsieve.codes",
        "Loadable": "dicomsieve.loadables",
        "LoadableKind": "dicomsieve.codes",
        "ScanError": "dicomsieve.errors",
        "ScanSummary": "dicomsieve.scan.scanner",
        "SeriesExamination": "dicomsieve.loadables",
        "Settings": "dicomsieve.settings",
        "SliceRef": "dicomsieve.loadables",
        "SourceInstance": "dicomsieve.loadables",
        "Volume": "dicomsieve.load.volume",
        "WarningCode": "dicomsieve.codes",
        "WrittenOutput": "dicomsieve.write.files",
        "convert": "dicomsieve.api",
        "examine": "dicomsieve.api",
        "examine_instances": "dicomsieve.loadables",
        "read_file": "dicomsieve.scan.read",
        "regularize": "dicomsieve.load.resample",
        "write_volume": "dicomsieve.write.files",
    }
)


__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())


def scan(
    paths: Sequence[str | os.PathLike[str]],
    index: Index,
    settings: Settings | None = None,
    *,
    progress: Callable[[ScanSummary], None] | None = None,
) -> ScanSummary:
    """Scan files and folders into ``index``.

    The whole description, parameters and result are those of
    :func:`dicomsieve.scan.scanner.scan`, which this calls.
    """
    from dicomsieve.scan.scanner import scan as scan_files

    return scan_files(paths, index, settings, progress=progress)


def load(
    loadable: Loadable, settings: Settings | None = None, *, known: KnownFiles | None = None
) -> Volume:
    """Decode the pixels of ``loadable`` into a :class:`Volume`.

    The whole description, parameters and errors are those of
    :func:`dicomsieve.load.loader.load`, which this calls.
    """
    from dicomsieve.load.loader import load as load_volume

    return load_volume(loadable, settings, known=known)


def __dir__() -> list[str]:
    return sorted(__all__)


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
