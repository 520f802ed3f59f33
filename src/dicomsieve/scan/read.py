"""Read one file into a :class:`~dicomsieve.model.FileOutcome`. Never raises for a bad file.

The steps: open without blocking (a FIFO swapped in after the walk cannot hang us),
check it is a regular file, sniff the first bytes (Part 10 preamble and ``DICM``, or a
plausible raw dataset), parse the header with the fast reader (pydicom when it hands
over), build the record, then check that the pixel data fits in the file.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import replace
from typing import Final, Protocol, TypeVar, cast

from dicomsieve.codes import ErrorCode, FileState, FlagCode, IgnoreRule
from dicomsieve.model import FileOutcome, PixelDataInfo
from dicomsieve.scan.fastread import (
    VALID_VRS,
    Fallback,
    ParsedHeader,
    ReadFailure,
    Window,
    is_encapsulated,
    parse_header,
)
from dicomsieve.scan.record import PLAIN_FIELDS, build_instance, extract, field_table
from dicomsieve.scan.tags import HeaderTree
from dicomsieve.settings import Settings

__all__ = ["OutcomeMaker", "file_outcome", "read_file", "read_with", "sniff"]

Built = TypeVar("Built")
Made = TypeVar("Made")
Made_co = TypeVar("Made_co", covariant=True)


class OutcomeMaker(Protocol[Made_co]):
    """What makes a file's outcome of what a read found: :func:`file_outcome`, or a
    maker of the values a scan stores (without the outcome in between)."""

    def __call__(
        self,
        path: str,
        st: os.stat_result | None,
        state: FileState,
        code: ErrorCode | IgnoreRule | None = None,
        message: str | None = None,
        flags: tuple[FlagCode, ...] = (),
    ) -> Made_co: ...


MEDIA_STORAGE_DIRECTORY: Final = "1.2.840.10008.1.3.10"
_ERROR: Final = FileState.ERROR
_EXECUTABLE_MAGICS: Final = (
    b"MZ",  # PE (Windows)
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O, both byte orders and widths
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary
)


def sniff(head: bytes) -> tuple[str, bool | None]:
    """Classify the first bytes of a file.

    Returns
    -------
    tuple
        ``("part10", None)`` for a preamble followed by ``DICM``; ``("raw", explicit)``
        for a plausible little endian dataset without preamble, where ``explicit`` tells
        the VR encoding; ``("not_dicom", None)`` otherwise.
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "part10", None
    if len(head) < 8:
        return "not_dicom", None
    group, element = struct.unpack_from("<HH", head)
    # A raw dataset starts with a group 0008 element (identifying information).
    if group != 0x0008 or element > 0x0100:
        return "not_dicom", None
    if head[4:6] in VALID_VRS:
        return "raw", True
    length = struct.unpack_from("<I", head, 4)[0]
    if length <= 0x400:
        return "raw", False
    return "not_dicom", None


def file_outcome(
    path: str,
    st: os.stat_result | None,
    state: FileState,
    code: ErrorCode | IgnoreRule | None = None,
    message: str | None = None,
    flags: tuple[FlagCode, ...] = (),
) -> FileOutcome:
    """An outcome with the file's size, times and identity when it was stat-ed.

    Built in one call (``dataclasses.replace`` on a frozen outcome costs several
    microseconds a file, and a scan makes one outcome per file).
    """
    if st is None:
        return FileOutcome(path, state, code=code, message=message, flags=flags)
    return FileOutcome(
        path, state, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, code, message, flags
    )


def _check_pixels(fd: int, size: int, header: ParsedHeader) -> None:
    """Raise ReadFailure when the pixel data does not fit in the file."""
    pixel = header.pixel
    if pixel is None:
        return
    available = len(header.dataset_bytes) if header.dataset_bytes is not None else size
    if pixel.length is not None:
        if pixel.offset + pixel.length > available:
            raise ReadFailure(
                ErrorCode.PARSE_TRUNCATED,
                f"pixel data declares {pixel.length} bytes at byte {pixel.offset}; "
                f"the file has {available - pixel.offset} left",
            )
        expected = _expected_native_bytes(header)
        if expected is not None and pixel.length < expected:
            raise ReadFailure(
                ErrorCode.PIXEL_DATA_SHORT,
                f"pixel data has {pixel.length} bytes; Rows x Columns x frames x samples x "
                f"bits promise {expected}",
            )
        return
    if header.dataset_bytes is not None:
        return  # encapsulated inside a deflated stream: checked when decoding
    _check_fragments(fd, size, pixel.offset)


# The record fields that size native pixel data, read as the record reads them.
_SHAPE_TABLE: Final = field_table(
    PLAIN_FIELDS[name]
    for name in ("rows", "columns", "bits_allocated", "number_of_frames", "samples_per_pixel")
)


def _expected_native_bytes(header: ParsedHeader) -> int | None:
    if is_encapsulated(header.transfer_syntax):
        return None
    # INT fields: an int or None
    shape = cast("list[int | None]", extract(header.tree, _SHAPE_TABLE))
    rows, cols, bits, frames, samples = shape
    if not rows or not cols or not bits:
        return None
    frames = max(frames or 1, 1)
    samples = max(samples or 1, 1)
    total_bits = rows * cols * frames * samples * bits
    return (total_bits + 7) // 8


def _check_fragments(fd: int, size: int, offset: int) -> None:
    """Walk the items of encapsulated pixel data; raise if they run past the file."""
    if size - offset >= 8 and os.pread(fd, 8, size - 8) == b"\xfe\xff\xdd\xe0\x00\x00\x00\x00":
        return  # the usual case: the file ends with the sequence delimiter
    pos = offset
    while pos + 8 <= size:
        header = os.pread(fd, 8, pos)
        group, element, length = struct.unpack("<HHI", header)
        if (group, element) == (0xFFFE, 0xE0DD):
            return
        if (group, element) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
            raise ReadFailure(
                ErrorCode.PARSE_STRUCTURE, f"bad item in encapsulated pixel data at byte {pos}"
            )
        pos += 8 + length
    raise ReadFailure(
        ErrorCode.PARSE_TRUNCATED,
        f"encapsulated pixel data runs past the end of the file ({size} bytes)",
    )


def read_file(path: str, settings: Settings) -> FileOutcome:
    """Look at one file and return its outcome. Never raises for a bad file.

    Parameters
    ----------
    path
        The file to read. It is opened read-only and never modified.
    settings
        Limits (header chunk size, deflate cap, nesting depth).

    Returns
    -------
    FileOutcome
        ``indexed`` with an :class:`~dicomsieve.model.InstanceRecord`, ``not_dicom``,
        ``ignored`` (not a regular file, a media directory) or ``error`` with a code.
    """
    outcome, record = read_with(path, settings, build_instance, file_outcome)
    return outcome if record is None else replace(outcome, instance=record)


def read_with(
    path: str,
    settings: Settings,
    build: Callable[[HeaderTree, str | None, PixelDataInfo | None], Built | None],
    outcome: OutcomeMaker[Made],
) -> tuple[Made, Built | None]:
    """:func:`read_file` with other makers than the record's and the outcome's. Never
    raises for a bad file.

    Parameters
    ----------
    path, settings
        As for :func:`read_file`.
    build
        Called as :func:`~dicomsieve.scan.record.build_instance` is, on the header
        tree, transfer syntax and pixel data position; it returns ``None`` exactly
        when ``build_instance`` would (an identifying UID is missing).
    outcome
        Called as :func:`file_outcome` is, once, with the file's state; a scan passes
        one that makes the values it stores.

    Returns
    -------
    tuple
        What ``outcome`` made (with :func:`file_outcome`: the outcome :func:`read_file`
        gives, without a record), and what ``build`` made of the file when it is
        ``indexed`` (else ``None``).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return outcome(
            path, None, _ERROR, ErrorCode.FILE_VANISHED, "the file disappeared before it was read"
        ), None
    except OSError as exc:
        return outcome(
            path,
            None,
            _ERROR,
            ErrorCode.FILE_UNREADABLE,
            f"cannot open: {errno.errorcode.get(exc.errno or 0, 'error')}",
        ), None
    st = None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return outcome(path, st, FileState.IGNORED, IgnoreRule.NOT_REGULAR_FILE), None
        return _read_open_file(fd, path, st, settings, build, outcome)
    except MemoryError:
        return outcome(
            path, st, _ERROR, ErrorCode.PARSE_MEMORY, "reading needed more memory than allowed"
        ), None
    except RecursionError:
        return outcome(
            path, st, _ERROR, ErrorCode.PARSE_TOO_DEEP, "sequences nested too deep"
        ), None
    except OSError as exc:
        return outcome(
            path,
            st,
            _ERROR,
            ErrorCode.FILE_UNREADABLE,
            f"read failed: {errno.errorcode.get(exc.errno or 0, 'error')}",
        ), None
    except Exception as exc:  # a reader bug must cost one file, not the scan
        return outcome(
            path, st, _ERROR, ErrorCode.PARSE_ERROR, f"unexpected {type(exc).__name__}"
        ), None
    finally:
        os.close(fd)


def _read_open_file(
    fd: int,
    path: str,
    st: os.stat_result,
    settings: Settings,
    build: Callable[[HeaderTree, str | None, PixelDataInfo | None], Built | None],
    outcome: OutcomeMaker[Made],
) -> tuple[Made, Built | None]:
    size = st.st_size
    head = os.read(fd, settings.header_chunk_bytes)
    kind, explicit = sniff(head)
    if kind == "not_dicom":
        return outcome(path, st, FileState.NOT_DICOM), None
    flags: list[FlagCode] = []
    if kind == "part10" and head.startswith(_EXECUTABLE_MAGICS):
        flags.append(FlagCode.SEC_EXECUTABLE_PREAMBLE)
    if kind == "raw":
        flags.append(FlagCode.NO_PREAMBLE)
    depth = settings.max_sequence_depth
    cap = settings.inflate_cap(size)
    try:
        try:
            header = parse_header(
                Window(fd, size, head, settings.header_chunk_bytes),
                max_depth=depth,
                inflate_cap=cap,
                raw_explicit=explicit,
            )
        except Fallback:
            # pydicom costs ~0.2 s to import: only load it when a file needs it.
            from dicomsieve.scan.pydread import read_with_pydicom

            flags.append(FlagCode.PARSE_FALLBACK)
            header = read_with_pydicom(
                path, size=size, raw=kind == "raw", max_depth=depth, inflate_cap=cap
            )
        if header.media_storage_sop_class == MEDIA_STORAGE_DIRECTORY:
            return outcome(
                path, st, FileState.IGNORED, IgnoreRule.MEDIA_DIRECTORY, None, (*flags,)
            ), None
        built = build(header.tree, header.transfer_syntax, header.pixel)
        if built is None:
            if header.tree.get(0x00080016) == (MEDIA_STORAGE_DIRECTORY,):
                return outcome(
                    path, st, FileState.IGNORED, IgnoreRule.MEDIA_DIRECTORY, None, (*flags,)
                ), None
            raise ReadFailure(
                ErrorCode.PARSE_NO_IDENTITY,
                "StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID is missing",
            )
        _check_pixels(fd, size, header)
    except ReadFailure as failure:
        return outcome(path, st, _ERROR, failure.code, failure.message, (*flags,)), None
    return outcome(path, st, FileState.INDEXED, None, None, (*flags,)), built
