"""The pydicom reader: the fallback for files the fast reader hands over.

pydicom is guarded here: deflated datasets are inflated by us with a cap (pydicom
inflates in one shot, a deflate-bomb risk), values above 1 MiB are not loaded, its
warnings are silenced (they can quote element values), and its exceptions become
:class:`~dicomsieve.scan.fastread.ReadFailure` codes.
"""

from __future__ import annotations

import struct
import warnings
from io import BytesIO
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset, read_preamble
from pydicom.multival import MultiValue

from dicomsieve.codes import ErrorCode
from dicomsieve.model import PixelDataInfo
from dicomsieve.scan.fastread import (
    DEFLATED_LE,
    LONG_VRS,
    ParsedHeader,
    ReadFailure,
    Window,
    codec_of,
    decode_raw,
    inflate,
)
from dicomsieve.scan.tags import (
    PIXEL_DATA_TAGS,
    PRESENCE,
    RAW_TAGS,
    TEXT_VRS,
    TOP_LEVEL_SPEC,
    VR_OF,
    HeaderTree,
    Spec,
)
from dicomsieve.scan.values import normalize_components

__all__ = ["read_with_pydicom", "tree_from_dataset"]

_DEFER_SIZE = 1024 * 1024


def tree_from_dataset(
    ds: Dataset, spec: Spec = TOP_LEVEL_SPEC, *, little: bool = True
) -> HeaderTree:
    """Normalize the elements of a pydicom dataset named in ``spec`` into a header tree.

    ``little`` is the dataset's byte order: with the dataset's character set, it decodes
    private values that pydicom leaves as bytes (its dictionary does not know their
    creator) the way the fast reader decodes them.
    """
    charset = normalize_components("CS", _charset_terms(ds))
    return _tree(ds, spec, little, codec_of(tuple(str(t) for t in charset)))


def _tree(ds: Dataset, spec: Spec, little: bool, codec: str | None) -> HeaderTree:
    tree: HeaderTree = {}
    # Walk the dataset's own tags: the spec holds thousands (every private block).
    # Iterating the dataset itself would convert every element; its keys are only tags.
    for key in ds.keys():  # noqa: SIM118
        tag = int(key)
        if tag not in spec:
            continue
        want = spec[tag]
        elem = ds[tag]
        if want is PRESENCE:
            tree[tag] = True
            continue
        value = elem.value
        private = (tag >> 16) % 2 == 1
        if private and isinstance(value, bytes | bytearray) and value and tag not in RAW_TAGS:
            vr = VR_OF.get(tag, "UN")
            decoded = decode_raw(tag, vr, bytes(value), want, little=little, codec=codec)
            if decoded is not None:
                tree[tag] = decoded
            continue
        if isinstance(want, dict):
            if elem.VR == "SQ" and value is not None:
                tree[tag] = tuple(_tree(item, want, little, codec) for item in value)
            continue
        if tag in RAW_TAGS:
            if isinstance(value, bytes | bytearray):
                tree[tag] = bytes(value)
            continue
        if value is None or isinstance(value, bytes | bytearray):
            if value is None or not value:
                tree[tag] = ()
            continue  # a binary value pydicom did not convert (an unknown VR)
        parts = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
        if parts == [""]:
            tree[tag] = ()
            continue
        vr = elem.VR
        if vr in TEXT_VRS or vr in ("DS", "IS"):
            tree[tag] = normalize_components(vr, [str(p) for p in parts])
        else:
            tree[tag] = normalize_components(vr, parts)
    return tree


def _charset_terms(ds: Dataset) -> list[str]:
    value = ds.get("SpecificCharacterSet")
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, MultiValue | list | tuple) else [str(value)]


def _pixel_element(fp: BinaryIO, pos: int, implicit: bool, little: bool) -> PixelDataInfo | None:
    """Read the element header at ``pos``; describe it if it is pixel data."""
    fp.seek(pos)
    header = fp.read(12)
    if len(header) < 8:
        return None
    e = "<" if little else ">"
    group, elem = struct.unpack_from(f"{e}HH", header)
    tag = group << 16 | elem
    if tag not in PIXEL_DATA_TAGS:
        return None
    if implicit:
        length, offset = struct.unpack_from(f"{e}I", header, 4)[0], pos + 8
    elif header[4:6] in LONG_VRS and len(header) == 12:
        length, offset = struct.unpack_from(f"{e}I", header, 8)[0], pos + 12
    else:
        length, offset = struct.unpack_from(f"{e}H", header, 6)[0], pos + 8
    return PixelDataInfo(tag=tag, offset=offset, length=None if length == 0xFFFFFFFF else length)


def _stop_at_pixels(tag: object, vr: object, length: object) -> bool:
    return tag in PIXEL_DATA_TAGS


def read_with_pydicom(
    path: str, *, size: int, raw: bool, max_depth: int, inflate_cap: int
) -> ParsedHeader:
    """Read the header of ``path`` with pydicom, guarded.

    Raises
    ------
    ReadFailure
        When pydicom cannot read the file.
    """
    del max_depth  # pydicom has no depth limit; RecursionError is caught below
    try:
        with warnings.catch_warnings(), open(path, "rb") as fp:
            warnings.simplefilter("ignore")
            return _read(fp, size=size, raw=raw, inflate_cap=inflate_cap)
    except ReadFailure:
        raise
    except RecursionError:
        raise ReadFailure(ErrorCode.PARSE_TOO_DEEP, "sequences nested too deep") from None
    except EOFError:
        raise ReadFailure(ErrorCode.PARSE_TRUNCATED, "the file ended inside an element") from None
    except MemoryError:
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise ReadFailure(
            ErrorCode.PARSE_STRUCTURE, f"pydicom could not read it ({type(exc).__name__})"
        ) from None
    except Exception as exc:
        # pydicom raises many types for broken structure; their messages can quote
        # element values, so only the type name is kept.
        raise ReadFailure(
            ErrorCode.PARSE_STRUCTURE, f"pydicom could not read it ({type(exc).__name__})"
        ) from None


def _read(fp: BinaryIO, *, size: int, raw: bool, inflate_cap: int) -> ParsedHeader:
    media_class: str | None = None
    if not raw:
        read_preamble(fp, force=False)
        meta = pydicom.filereader._read_file_meta_info(fp)
        ts = str(meta.get("TransferSyntaxUID", "")) or None
        media_class = str(meta.get("MediaStorageSOPClassUID", "")) or None
        if ts == DEFLATED_LE:
            start = fp.tell()
            win = Window(fp.fileno(), size, b"", 64 * 1024)
            data = inflate(win, start, inflate_cap)
            stream = BytesIO(data)
            ds = read_dataset(stream, False, True, stop_when=_stop_at_pixels)
            pixel = _pixel_element(stream, stream.tell(), False, True)
            if pixel is not None:
                pixel = PixelDataInfo(pixel.tag, pixel.offset, pixel.length, deflated=True)
            return ParsedHeader(tree_from_dataset(ds), ts, media_class, pixel, True, data)
        fp.seek(0)
    ds = pydicom.dcmread(fp, stop_before_pixels=True, defer_size=_DEFER_SIZE, force=raw)
    implicit, little = ds.original_encoding
    pixel = _pixel_element(fp, fp.tell(), bool(implicit), little is not False)
    ts = None
    if not raw:
        ts = str(ds.file_meta.get("TransferSyntaxUID", "")) or None
    tree = tree_from_dataset(ds, little=little is not False)
    return ParsedHeader(tree, ts, media_class, pixel, not raw)
