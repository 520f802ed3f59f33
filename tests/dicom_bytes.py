"""Byte-level builders for valid and malformed DICOM files (DCMTK ``tparser`` style).

Valid files are written by pydicom from a small synthetic dataset with sentinel
patient data; malformed ones are built by editing or appending raw bytes. Nothing
here is real patient data.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

PHI_NAME = "PHISENTINEL^ZZ"
PHI_ID = "PHISENTINEL-ID"
PHI_BIRTH = "19010101"
PHI_STRINGS = (PHI_NAME, PHI_ID, "PHISENTINEL", PHI_BIRTH)


def uid(*parts: object) -> str:
    """A deterministic UID from ``parts``."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def ct_dataset(index: int = 0, *, series: str = "s1", rows: int = 16, cols: int = 16) -> Dataset:
    """A small axial CT slice with every element dicomsieve reads at the top level."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = uid("sop", series, index)
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC1"
    ds.Modality = "CT"
    ds.Manufacturer = "dicomsieve tests"
    ds.StudyDescription = "Test study"
    ds.SeriesDescription = f"Series {series}"
    ds.PatientName = PHI_NAME
    ds.PatientID = PHI_ID
    ds.PatientBirthDate = PHI_BIRTH
    ds.SliceThickness = "2.5"
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series", series)
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-20.0, -20.0, 2.5 * index]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = uid("for")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [0.5, 0.5]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    pixels = (np.arange(rows * cols, dtype=np.int16).reshape(rows, cols) + index).astype(np.int16)
    ds.PixelData = pixels.tobytes()
    return ds


def encode(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """Write ``ds`` as a Part 10 file in ``transfer_syntax``."""
    ds = ds.copy()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    buffer = io.BytesIO()
    if transfer_syntax == ExplicitVRBigEndian:
        pixels = np.frombuffer(ds.PixelData, dtype="<i2").astype(">i2")
        ds.PixelData = pixels.tobytes()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def encode_raw(ds: Dataset) -> bytes:
    """Write ``ds`` as a raw implicit VR little endian dataset: no preamble, no meta."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True)
    return buffer.getvalue()


def _element(tag: int, vr: bytes, value: bytes, *, length: int | None = None) -> bytes:
    """One explicit VR little endian element."""
    size = len(value) if length is None else length
    group, elem = tag >> 16, tag & 0xFFFF
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, size) + value
    return struct.pack("<HH2sH", group, elem, vr, size) + value


def _without_pixels(data: bytes) -> bytes:
    """Cut a valid explicit LE file just before its pixel data element."""
    return data[: data.index(struct.pack("<HH", 0x7FE0, 0x0010) + b"OW")]


ITEM = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def unclosed_sequence() -> bytes:
    """A file that ends inside an undefined-length sequence that is never closed."""
    head = _without_pixels(encode(ct_dataset(50, series="bad")))
    return (
        head
        + _element(0x00091010, b"SQ", b"", length=0xFFFFFFFF)
        + ITEM
        + _element(0x00091011, b"LO", b"ABCD")
    )


def nested_sequences(depth: int) -> bytes:
    """A file with sequences nested ``depth`` deep (undefined lengths), then pixel data."""
    valid = encode(ct_dataset(51, series="bad"))
    head = _without_pixels(valid)
    opening = (_element(0x00091010, b"SQ", b"", length=0xFFFFFFFF) + ITEM) * depth
    closing = (ITEM_END + SEQ_END) * depth
    return head + opening + closing + valid[len(head) :]


def huge_length() -> bytes:
    """A private UT element that declares far more bytes than the file holds."""
    head = _without_pixels(encode(ct_dataset(52, series="bad")))
    return head + _element(0x00091010, b"UT", b"short", length=0xFFFFFFF0)


def deflate_bomb(inflated_bytes: int) -> bytes:
    """A deflated-syntax file whose dataset inflates to about ``inflated_bytes``."""
    ds = ct_dataset(53, series="bad")
    plain = encode(ds)
    head = _without_pixels(plain)[_dataset_start(plain) :]
    pixels = plain[len(_without_pixels(plain)) :]
    deflated = encode(ds, DeflatedExplicitVRLittleEndian)
    meta = deflated[: _dataset_start(deflated)]
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = [compressor.compress(head)]
    body.append(compressor.compress(_element(0x00091010, b"OB", b"", length=inflated_bytes)))
    chunk = bytes(1 << 20)
    for _ in range(inflated_bytes // len(chunk)):
        body.append(compressor.compress(chunk))
    body.append(compressor.compress(bytes(inflated_bytes % len(chunk))))
    body.append(compressor.compress(pixels))
    body.append(compressor.flush())
    return meta + b"".join(body)


def _dataset_start(data: bytes) -> int:
    """Offset of the first element after the file meta group."""
    pos = 132
    while struct.unpack_from("<H", data, pos)[0] == 0x0002:
        vr = data[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
            pos += 12 + struct.unpack_from("<I", data, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return pos


def with_preamble(prefix: bytes) -> bytes:
    """A valid file whose preamble starts with ``prefix`` (a PE or ELF header)."""
    data = encode(ct_dataset(54, series="bad"))
    return prefix + data[len(prefix) :]


def dicm_then_garbage() -> bytes:
    """A preamble, ``DICM``, then bytes that are not DICOM."""
    rng = np.random.default_rng(7)
    return bytes(128) + b"DICM" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()


def short_pixel_data() -> bytes:
    """Native pixel data shorter than Rows x Columns x bits promise (the length is honest)."""
    ds = ct_dataset(55, series="bad")
    ds.PixelData = ds.PixelData[:100]
    return encode(ds)


@dataclass(frozen=True)
class BadCase:
    """One file of the bad-input corpus and what must become of it."""

    name: str
    make: Callable[[], bytes]
    state: str
    code: str | None
    flags: tuple[str, ...] = ()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
ZIP = b"PK\x03\x04" + bytes(60)
VALID = encode(ct_dataset(60, series="bad"))

BAD_CASES: tuple[BadCase, ...] = (
    BadCase("text", lambda: b"hello, this is not DICOM\n" * 20, "not_dicom", None),
    BadCase("png", lambda: PNG, "not_dicom", None),
    BadCase("zip", lambda: ZIP, "not_dicom", None),
    BadCase("empty", lambda: b"", "not_dicom", None),
    BadCase("dicm_garbage", dicm_then_garbage, "error", "PARSE_NO_IDENTITY", ("PARSE_FALLBACK",)),
    BadCase(
        "raw_dataset",
        lambda: encode_raw(ct_dataset(61, series="bad")),
        "indexed",
        None,
        ("NO_PREAMBLE",),
    ),
    BadCase("truncated_pixels", lambda: VALID[:-100], "error", "PARSE_TRUNCATED"),
    BadCase("truncated_header", lambda: VALID[:400], "error", "PARSE_TRUNCATED"),
    BadCase("unclosed_sequence", unclosed_sequence, "error", "PARSE_TRUNCATED"),
    BadCase("nested_1000", lambda: nested_sequences(1000), "error", "PARSE_TOO_DEEP"),
    BadCase("huge_length", huge_length, "error", "PARSE_TRUNCATED"),
    BadCase("deflate_bomb", lambda: deflate_bomb(32 * 1024 * 1024), "error", "PARSE_DEFLATE_LIMIT"),
    BadCase("short_pixels", short_pixel_data, "error", "PIXEL_DATA_SHORT"),
    BadCase(
        "big_endian",
        lambda: encode(ct_dataset(62, series="bad"), ExplicitVRBigEndian),
        "indexed",
        None,
    ),
    BadCase(
        "implicit_vr",
        lambda: encode(ct_dataset(63, series="bad"), ImplicitVRLittleEndian),
        "indexed",
        None,
    ),
    BadCase(
        "pe_preamble",
        lambda: with_preamble(b"MZ\x90\x00"),
        "indexed",
        None,
        ("SEC_EXECUTABLE_PREAMBLE",),
    ),
    BadCase(
        "elf_preamble",
        lambda: with_preamble(b"\x7fELF\x02\x01\x01"),
        "indexed",
        None,
        ("SEC_EXECUTABLE_PREAMBLE",),
    ),
)


def un_sequence(ds: pydicom.Dataset, tag: int) -> None:
    """Re-encode the sequence ``tag`` as UN of defined length, as some archives do: its
    items in implicit VR little endian."""
    raw = b""
    for item in ds[tag].value:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, True
        write_dataset(fp, item)
        body = fp.getvalue()
        raw += struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
    del ds[tag]
    ds.add_new(tag, "UN", raw)
