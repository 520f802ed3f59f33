"""Stable codes for what happened to each file.

Every file a scan walks ends in exactly one :class:`FileState`. Files in the
``error`` state carry an :class:`ErrorCode`; files in the ``ignored`` state carry
the :class:`IgnoreRule` that skipped them. :class:`FlagCode` values are notes on a
file that was indexed anyway. The string values are stored in the index and printed
in ``--json`` output: they never change meaning once released.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ErrorCode",
    "FileState",
    "FlagCode",
    "IgnoreRule",
    "Level",
    "LoadErrorCode",
    "LoadableKind",
    "WarningCode",
]


class FileState(StrEnum):
    """The one state a walked file ends in."""

    INDEXED = "indexed"
    """Read and stored, now or (for ``unchanged``) by an earlier scan."""
    UNCHANGED = "unchanged"
    """Same size, mtime_ns and inode as at the last scan: not read again."""
    NOT_DICOM = "not_dicom"
    """Not a DICOM file. A state, not an error."""
    ERROR = "error"
    """A DICOM file (or one that claims to be) that could not be indexed."""
    IGNORED = "ignored"
    """Skipped by a named rule (:class:`IgnoreRule`); never opened for reading."""
    MISSING = "missing"
    """Indexed before, gone now. Never a state of a file walked in this scan."""


class ErrorCode(StrEnum):
    """Why a file is in the ``error`` state."""

    FILE_UNREADABLE = "FILE_UNREADABLE"
    """The operating system refused to open or read it (permissions, I/O error)."""
    FILE_VANISHED = "FILE_VANISHED"
    """It disappeared between the walk and the read."""
    PARSE_TRUNCATED = "PARSE_TRUNCATED"
    """An element, or the pixel data, is declared longer than what is left of the file."""
    PARSE_STRUCTURE = "PARSE_STRUCTURE"
    """The byte structure is broken: bad item tags, an unclosed sequence, a bad VR."""
    PARSE_TOO_DEEP = "PARSE_TOO_DEEP"
    """Sequences are nested deeper than ``Settings.max_sequence_depth``."""
    PARSE_NO_IDENTITY = "PARSE_NO_IDENTITY"
    """StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID is missing."""
    PARSE_DEFLATE_LIMIT = "PARSE_DEFLATE_LIMIT"
    """A deflated dataset inflates past ``Settings.max_inflated_bytes`` (a deflate bomb)."""
    PARSE_DEFLATE_ERROR = "PARSE_DEFLATE_ERROR"
    """A deflated dataset is not a valid deflate stream."""
    PIXEL_DATA_SHORT = "PIXEL_DATA_SHORT"
    """Native pixel data is shorter than Rows x Columns x frames x samples promise."""
    PARSE_TIMEOUT = "PARSE_TIMEOUT"
    """Reading took longer than ``Settings.file_timeout_s``; the worker was replaced."""
    PARSE_MEMORY = "PARSE_MEMORY"
    """Reading needed more memory than ``Settings.worker_memory_mb`` allows."""
    WORKER_CRASH = "WORKER_CRASH"
    """The worker process died while reading this file; the scan went on."""
    PARSE_ERROR = "PARSE_ERROR"
    """Any other failure of the reader. A bug report is welcome."""


class IgnoreRule(StrEnum):
    """Why a walked file was skipped without being read."""

    NOT_REGULAR_FILE = "not_regular_file"
    """A FIFO, socket or device: never opened."""
    SYMLINK_OUTSIDE_ROOT = "symlink_outside_root"
    """A symbolic link whose target lies outside the scanned root."""
    SYMLINK_LOOP = "symlink_loop"
    """A link to a folder that is already being walked (a cycle)."""
    BROKEN_SYMLINK = "broken_symlink"
    """A symbolic link whose target does not exist."""
    SAME_FILE = "same_file"
    """Another path to a file (same device and inode) already walked in this scan."""
    MEDIA_DIRECTORY = "media_directory"
    """A DICOMDIR or another Media Storage Directory object: an index, not an image."""


class FlagCode(StrEnum):
    """Notes on an indexed file."""

    DUPLICATE_SOP_INSTANCE = "DUPLICATE_SOP_INSTANCE"
    """Its SOPInstanceUID was already indexed from another file, which stays the original."""
    SEC_EXECUTABLE_PREAMBLE = "SEC_EXECUTABLE_PREAMBLE"
    """The 128-byte preamble starts like a program (PE, ELF or Mach-O): a polyglot file."""
    NO_PREAMBLE = "NO_PREAMBLE"
    """A raw dataset without the Part 10 preamble and file meta information."""
    PARSE_FALLBACK = "PARSE_FALLBACK"
    """The fast reader handed this file to pydicom."""


class LoadableKind(StrEnum):
    """What a loadable is."""

    VOLUME = "volume"
    """A 3D stack of slices (or one multi-frame object's frames) with one geometry."""
    SEQUENCE = "sequence"
    """A 4D stack: the same slice positions repeated over time, b-values or triggers."""
    LOCALIZER = "localizer"
    """A scout, surview or topogram: offered, never selected by default."""
    IMAGE = "image"
    """A lone 2D image that is not a localizer (a radiograph, a screenshot)."""
    UNSUPPORTED = "unsupported"
    """An object without usable pixels (a report, raw data, a presentation state)."""


class Level(StrEnum):
    """How much an examine warning matters."""

    INFO = "info"
    """Worth knowing; the loadable is as good as a clean one."""
    WARNING = "warning"
    """The geometry is irregular; the volume loads but is not a regular grid."""
    ERROR = "error"
    """The geometry cannot be trusted (missing or degenerate)."""


class WarningCode(StrEnum):
    """Stable codes of examine warnings. Messages carry the numbers."""

    UNEQUAL_SPACING = "UNEQUAL_SPACING"
    """Slice gaps differ by more than the spacing tolerances."""
    MISSING_SLICES = "MISSING_SLICES"
    """A gap is an integer multiple (2 or more) of the usual spacing."""
    DUPLICATE_POSITION = "DUPLICATE_POSITION"
    """Two slices of one volume share a position."""
    GANTRY_TILT = "GANTRY_TILT"
    """Slices are stacked at an angle to their normal (tilted gantry); the affine is sheared."""
    TILT_TAG_MISMATCH = "TILT_TAG_MISMATCH"
    """GantryDetectorTilt disagrees with the tilt computed from the positions."""
    INSTANCE_ORDER_NOT_SPATIAL = "INSTANCE_ORDER_NOT_SPATIAL"
    """InstanceNumber order is not the spatial order of the slices."""
    INCONSISTENT_MATRIX = "INCONSISTENT_MATRIX"
    """The series holds images of more than one matrix or pixel spacing."""
    MISSING_GEOMETRY = "MISSING_GEOMETRY"
    """ImagePositionPatient, ImageOrientationPatient or PixelSpacing is absent."""
    DEGENERATE_GEOMETRY = "DEGENERATE_GEOMETRY"
    """Orientation vectors are zero or parallel, or the stack has no extent."""
    NOT_ORTHONORMAL = "NOT_ORTHONORMAL"
    """Row and column cosines are not unit length or not perpendicular."""
    MULTIPLE_FRAMES_OF_REFERENCE = "MULTIPLE_FRAMES_OF_REFERENCE"
    """The slices of one loadable name more than one FrameOfReferenceUID."""
    INCOMPLETE_SEQUENCE = "INCOMPLETE_SEQUENCE"
    """Some time points (or b-values...) lack slices that the others have."""
    REPEATS_BY_ORDER = "REPEATS_BY_ORDER"
    """Positions repeat and no tag tells the repeats apart: time points by InstanceNumber."""
    SEQUENCE_GEOMETRY_MISMATCH = "SEQUENCE_GEOMETRY_MISMATCH"
    """Time points of a sequence do not share the same slice positions."""
    DUPLICATE_SOP_INSTANCE = "DUPLICATE_SOP_INSTANCE"
    """Files with an already indexed SOPInstanceUID were left out."""
    NO_PIXEL_DATA = "NO_PIXEL_DATA"
    """An object without pixel data (or without Rows and Columns)."""
    MOSAIC_NOT_SPLIT = "MOSAIC_NOT_SPLIT"
    """A mosaic (Siemens MOSAIC, UIH VFRAME) whose private header cannot be read: each image
    holds a grid of slices that examine does not separate."""


class LoadErrorCode(StrEnum):
    """Why a loadable could not be loaded or written."""

    NOT_LOADABLE = "NOT_LOADABLE"
    """An unsupported object (no pixel data) or a loadable without slices."""
    FILE_CHANGED = "FILE_CHANGED"
    """A file is gone or no longer holds the object examine saw; scan again."""
    DECODE_FAILED = "DECODE_FAILED"
    """The pixel data could not be decoded (a codec error or a missing plugin)."""
    PIXEL_DATA_SHORT = "PIXEL_DATA_SHORT"
    """The pixel data is shorter than the header promises; it is refused, not padded."""
    INCONSISTENT_SLICES = "INCONSISTENT_SLICES"
    """Slices of one loadable differ in matrix, samples or bit depth."""
    UNSUPPORTED_PIXELS = "UNSUPPORTED_PIXELS"
    """A pixel format dicomsieve does not convert (more than 32 bits, float pixels...)."""
    NO_GEOMETRY = "NO_GEOMETRY"
    """Resampling needs positions and orientation, which the loadable lacks."""
    OUTPUT_EXISTS = "OUTPUT_EXISTS"
    """The output file exists and ``overwrite`` was not given."""
    WRITE_FAILED = "WRITE_FAILED"
    """The output could not be written (permissions, disk full)."""
