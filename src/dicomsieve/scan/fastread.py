"""A fast DICOM header reader for the common encodings.

It reads the file meta group and the dataset up to the pixel data, keeping only the
tags named in :mod:`dicomsieve.scan.tags`. Elements it does not need are skipped by
their length without being read; only sequences of undefined length are walked.
It handles explicit and implicit VR little endian, explicit VR big endian, and
deflated datasets (inflated here, up to a cap). Anything it does not understand raises
:class:`Fallback`, and the caller hands the file to pydicom. Problems it is sure of
(a length past the end of the file, nesting too deep, a deflate bomb) raise
:class:`ReadFailure` with a code.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from dicomsieve.codes import ErrorCode
from dicomsieve.model import PixelDataInfo
from dicomsieve.scan.tags import (
    CHARSET_VRS,
    PIXEL_DATA_TAGS,
    PRESENCE,
    RAW_TAGS,
    SPECIFIC_CHARACTER_SET,
    TEXT_VRS,
    TOP_LEVEL_SPEC,
    TRANSFER_SYNTAX_UID,
    VR_OF,
    HeaderTree,
    Spec,
)
from dicomsieve.scan.values import BINARY_FORMATS, clean_text, decode_binary, normalize_components

__all__ = [
    "LONG_VRS",
    "VALID_VRS",
    "Fallback",
    "ParsedHeader",
    "ReadFailure",
    "Window",
    "codec_of",
    "dataset_encoding",
    "decode_raw",
    "inflate",
    "is_encapsulated",
    "parse_header",
]

IMPLICIT_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_LE: Final = "1.2.840.10008.1.2.1"
DEFLATED_LE: Final = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE: Final = "1.2.840.10008.1.2.2"
UNDEFINED: Final = 0xFFFFFFFF
ITEM: Final = 0xFFFEE000
ITEM_END: Final = 0xFFFEE00D
SEQUENCE_END: Final = 0xFFFEE0DD

LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
_SHORT_VRS: Final = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT"}
    | {b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
VALID_VRS: Final = LONG_VRS | _SHORT_VRS
_VR_TEXT: Final = {vr: vr.decode("ascii") for vr in VALID_VRS}
"""Every VR of explicit VR encoding, as the two bytes found in a file."""
_ENCAPSULATED_PREFIXES: Final = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5")
# Single-valued character sets whose bytes decode with one Python codec.
_SIMPLE_CHARSETS: Final[dict[str, str]] = {
    "": "latin_1",
    "ISO_IR 6": "latin_1",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso_ir_144",
    "ISO_IR 127": "iso_ir_127",
    "ISO_IR 126": "iso_ir_126",
    "ISO_IR 138": "iso_ir_138",
    "ISO_IR 148": "iso_ir_148",
    "ISO_IR 166": "iso_ir_166",
    "ISO_IR 192": "UTF8",
    "GB18030": "GB18030",
    "GBK": "GBK",
}


class Fallback(Exception):
    """The fast reader does not handle this file; pydicom should read it."""


class ReadFailure(Exception):
    """A file that cannot be indexed, with its code. The message has no patient data."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_encapsulated(transfer_syntax: str | None) -> bool:
    """Whether pixel data in this transfer syntax is encapsulated (compressed)."""
    return transfer_syntax is not None and transfer_syntax.startswith(_ENCAPSULATED_PREFIXES)


def dataset_encoding(transfer_syntax: str | None) -> tuple[bool, bool, bool]:
    """Return ``(little_endian, explicit_vr, deflated)`` for a transfer syntax UID.

    Raises :class:`Fallback` for a missing or unknown transfer syntax.
    """
    if transfer_syntax == IMPLICIT_LE:
        return True, False, False
    if transfer_syntax == EXPLICIT_LE:
        return True, True, False
    if transfer_syntax == DEFLATED_LE:
        return True, True, True
    if transfer_syntax == EXPLICIT_BE:
        return False, True, False
    if is_encapsulated(transfer_syntax):
        return True, True, False  # encapsulated pixel data, explicit VR LE dataset
    raise Fallback("unknown transfer syntax")


class Window:
    """Bytes of a file, read on demand in chunks, addressed by absolute offset."""

    __slots__ = ("base", "buf", "chunk", "fd", "size")

    def __init__(self, fd: int | None, size: int, first: bytes, chunk: int) -> None:
        self.fd = fd
        self.size = size
        self.buf = first
        self.base = 0
        self.chunk = chunk

    @classmethod
    def of_bytes(cls, data: bytes) -> Window:
        """A window over bytes already in memory (an inflated dataset)."""
        return cls(None, len(data), data, len(data) or 1)

    def need(self, pos: int, n: int, what: str) -> None:
        """Make ``[pos, pos + n)`` available in ``buf`` or raise ``PARSE_TRUNCATED``."""
        if pos + n > self.size:
            raise ReadFailure(
                ErrorCode.PARSE_TRUNCATED,
                f"{what} at byte {pos} needs {n} bytes; the file has {self.size}",
            )
        if pos >= self.base and pos + n <= self.base + len(self.buf):
            return
        if self.fd is None:  # pragma: no cover - an in-memory window holds everything
            raise ReadFailure(ErrorCode.PARSE_TRUNCATED, f"{what} at byte {pos}: out of range")
        length = max(n, self.chunk)
        data = os.pread(self.fd, length, pos)
        if len(data) < n:
            raise ReadFailure(
                ErrorCode.PARSE_TRUNCATED, f"{what} at byte {pos}: the file ended early"
            )
        self.buf = data
        self.base = pos


class ParsedHeader(NamedTuple):
    """What a header reader found: the tree, the transfer syntax and the pixel data.

    A named tuple: one is made per file, in a fraction of a frozen dataclass's time.
    """

    tree: HeaderTree
    transfer_syntax: str | None
    media_storage_sop_class: str | None
    pixel: PixelDataInfo | None
    has_preamble: bool
    dataset_bytes: bytes | None = None
    """The inflated dataset of a deflated file (pixel data offsets refer to it)."""


class _Parser:
    """Walks elements of one dataset encoding; keeps raw values of wanted tags."""

    def __init__(
        self, win: Window, little: bool, explicit: bool, max_depth: int, stop_at_pixels: bool
    ) -> None:
        self.win = win
        self.little = little
        self.explicit = explicit
        self.max_depth = max_depth
        self.stop_at_pixels = stop_at_pixels
        e = "<" if little else ">"
        self.tag_fmt = struct.Struct(f"{e}HH")
        # One unpack for the whole short explicit header: group, element, VR, length.
        self.explicit_fmt = struct.Struct(f"{e}HH2sH")
        self.u16 = struct.Struct(f"{e}H")
        self.u32 = struct.Struct(f"{e}I")
        self.pixel: tuple[int, int, int | None] | None = None

    def implicit_le(self) -> _Parser:
        """A parser of the same bytes for implicit VR little endian content."""
        return _Parser(self.win, True, False, self.max_depth, stop_at_pixels=False)

    def dataset(self, pos: int, end: int | None, spec: Spec, depth: int) -> tuple[HeaderTree, int]:
        """Parse elements from ``pos`` to ``end`` (or to an item delimiter when ``None``)."""
        win = self.win
        tree: HeaderTree = {}
        explicit = self.explicit
        top = depth == 0
        limit = win.size if end is None else end
        explicit_fmt, tag_fmt = self.explicit_fmt, self.tag_fmt
        while pos < limit:
            # Fast path: the 12 header bytes are already in the window (the common case);
            # otherwise need() reads more or raises PARSE_TRUNCATED.
            off = pos - win.base
            if off < 0 or off + 12 > len(win.buf):
                win.need(pos, 8, "element header")
                off = pos - win.base
            if explicit:
                group, elem, vr_bytes, short_length = explicit_fmt.unpack_from(win.buf, off)
            else:
                group, elem = tag_fmt.unpack_from(win.buf, off)
            tag = group << 16 | elem
            if group == 0xFFFE:
                if tag == ITEM_END and end is None and not top:
                    return tree, pos + 8
                raise Fallback(f"unexpected delimiter ({group:04X},{elem:04X}) at byte {pos}")
            if explicit:
                if vr_bytes in LONG_VRS:
                    if off + 12 > len(win.buf):
                        win.need(pos, 12, "element header")
                        off = pos - win.base
                    length = self.u32.unpack_from(win.buf, off + 8)[0]
                    vpos = pos + 12
                elif vr_bytes in _SHORT_VRS:
                    length = short_length
                    vpos = pos + 8
                else:
                    raise Fallback(f"unknown VR at byte {pos}")
                vr = _VR_TEXT[vr_bytes]
                unknown = vr == "UN"
                if unknown:
                    vr = VR_OF.get(tag, "UN")
                    if length == UNDEFINED:
                        raise Fallback("UN element of undefined length")
            else:
                unknown = False
                length = self.u32.unpack_from(win.buf, off + 4)[0]
                vpos = pos + 8
                vr = VR_OF.get(tag, "SQ" if length == UNDEFINED else "UN")
            if tag in PIXEL_DATA_TAGS and top:
                self.pixel = (tag, vpos, None if length == UNDEFINED else length)
                if self.stop_at_pixels:
                    return tree, pos
            want = spec.get(tag, _SKIP)
            if length == UNDEFINED:
                if vr != "SQ":
                    raise Fallback(f"undefined length for VR {vr} at byte {pos}")
                sub = want if isinstance(want, dict) else {}
                items, pos = self.sequence(vpos, None, sub, depth + 1)
                if want is PRESENCE:
                    tree[tag] = True
                elif isinstance(want, dict):
                    tree[tag] = items
                continue
            if vpos + length > win.size:
                raise ReadFailure(
                    ErrorCode.PARSE_TRUNCATED,
                    f"element ({group:04X},{elem:04X}) at byte {pos} declares {length} bytes; "
                    f"only {win.size - vpos} remain in the file",
                )
            if want is _SKIP:
                pos = vpos + length
                continue
            if want is PRESENCE:
                tree[tag] = True
            elif isinstance(want, dict):
                if vr != "SQ":
                    raise Fallback(f"expected a sequence at byte {pos}")
                # A sequence written as UN holds implicit VR little endian items.
                parser = self if not unknown else self.implicit_le()
                tree[tag], _ = parser.sequence(vpos, vpos + length, want, depth + 1)
            else:
                voff = vpos - win.base
                if voff < 0 or voff + length > len(win.buf):
                    win.need(vpos, length, "element value")
                    voff = vpos - win.base
                tree[tag] = (vr, win.buf[voff : voff + length])
            pos = vpos + length
        if end is None and not top:
            raise ReadFailure(ErrorCode.PARSE_TRUNCATED, "an item of undefined length never ends")
        return tree, pos

    def sequence(
        self, pos: int, end: int | None, spec: Spec, depth: int
    ) -> tuple[tuple[HeaderTree, ...], int]:
        """Parse the items of a sequence; returns the kept trees and the end position."""
        if depth > self.max_depth:
            raise ReadFailure(
                ErrorCode.PARSE_TOO_DEEP,
                f"sequences nested deeper than {self.max_depth} levels at byte {pos}",
            )
        win = self.win
        items: list[HeaderTree] = []
        limit = win.size if end is None else end
        while pos < limit:
            win.need(pos, 8, "item header")
            off = pos - win.base
            group, elem = self.tag_fmt.unpack_from(win.buf, off)
            tag = group << 16 | elem
            length = self.u32.unpack_from(win.buf, off + 4)[0]
            if tag == SEQUENCE_END:
                return tuple(items), pos + 8
            if tag != ITEM:
                raise Fallback(f"expected an item tag at byte {pos}")
            if length == UNDEFINED:
                item, pos = self.dataset(pos + 8, None, spec, depth)
            else:
                if pos + 8 + length > win.size:
                    raise ReadFailure(
                        ErrorCode.PARSE_TRUNCATED,
                        f"item at byte {pos} declares {length} bytes; "
                        f"only {win.size - pos - 8} remain",
                    )
                if spec:
                    item, _ = self.dataset(pos + 8, pos + 8 + length, spec, depth)
                else:
                    item = {}
                pos += 8 + length
            items.append(item)
        if end is None:
            raise ReadFailure(
                ErrorCode.PARSE_TRUNCATED, "a sequence of undefined length never ends"
            )
        return tuple(items), pos


_SKIP: Final = object()


_NativeFunctions = tuple[
    Callable[..., tuple[Any, ...]],
    Callable[..., HeaderTree],
    Callable[..., tuple[Any, ...]],
    Callable[..., tuple[Any, ...]],
    object,
]


def _native() -> _NativeFunctions | None:
    """The C walk and decoder (``_native.c``): optional, built where a compiler is at hand.

    The last item is TOP_LEVEL_SPEC as the C walk reads it (a hash table of tags, made
    once: a snapshot of the constant).
    """
    try:
        from dicomsieve.scan._native import compile_spec, decode, meta, walk, walk_decoded
    except ImportError:  # pragma: no cover - exercised on machines without a compiler
        return None
    return walk, decode, meta, walk_decoded, compile_spec(TOP_LEVEL_SPEC)


_WALK, _DECODE, _META, _WALK_DECODED, _NATIVE_SPEC = _native() or (None, None, None, None, None)
NATIVE_WALK: Final = _WALK is not None
"""Whether the C element walk and decoder are in use."""
# The C walk looks for pixel data in group 7FE0 only.
assert all(tag >> 16 == 0x7FE0 for tag in PIXEL_DATA_TAGS)
_NATIVE_MAX_BYTES: Final = 4 * 1024 * 1024
MEDIA_SOP_CLASS: Final = 0x00020002
_META_SPEC: Final[Spec] = {TRANSFER_SYNTAX_UID: None, MEDIA_SOP_CLASS: None}
_META_TAGS: Final = frozenset(_META_SPEC)


def _decode_tree(tree: HeaderTree, little: bool, codec: str | None) -> HeaderTree:
    """Turn raw ``(vr, bytes)`` values into normalized values, recursively.

    ``codec`` is ``None`` for character sets with code extensions (ISO 2022): values
    in pure ASCII decode the same under them; any other value goes to pydicom.
    """
    out: HeaderTree = {}
    for tag, value in tree.items():
        if type(value) is not tuple:
            out[tag] = value
        elif len(value) == 2 and type(value[1]) is bytes:
            vr, raw = value
            if tag in RAW_TAGS:
                out[tag] = bytes(raw)
            elif vr == "DS" or vr == "IS":
                parts = raw.decode("latin_1").split("\\")
                out[tag] = normalize_components(vr, parts)
            elif vr in TEXT_VRS:
                out[tag] = _decode_text(vr, raw, codec)
            elif vr in BINARY_FORMATS:
                out[tag] = decode_binary(vr, raw, little)
            # other VRs (OB, UN without a known VR, ...) are not kept
        else:
            out[tag] = tuple([_decode_tree(item, little, codec) for item in value])
    return out


def decode_raw(
    tag: int, vr: str, raw: bytes, spec: object, *, little: bool, codec: str | None
) -> object | None:
    """Normalize one value that another reader left as bytes, as this reader would.

    Parameters
    ----------
    tag, vr
        The element and the VR this reader knows it by.
    raw
        The value's bytes.
    spec
        What the spec wants of ``tag``: ``None`` for a value, a nested spec for a
        sequence, whose bytes are parsed as implicit VR little endian items (as a
        sequence written as UN holds them).
    little
        Byte order of binary values.
    codec
        Python codec of the character set; ``None`` for ISO 2022 sets.

    Returns
    -------
    object or None
        The normalized value, ``None`` when the bytes do not parse.
    """
    try:
        if isinstance(spec, dict):
            if vr != "SQ":
                return None
            win = Window.of_bytes(raw)
            parser = _Parser(win, True, False, 32, stop_at_pixels=False)
            items, _ = parser.sequence(0, len(raw), spec, 1)
            return _decode_tree({tag: items}, True, codec)[tag]
        return _decode_tree({tag: (vr, raw)}, little, codec).get(tag)
    except (Fallback, ReadFailure, struct.error):
        return None


def codec_of(charset: tuple[str, ...]) -> str | None:
    """The Python codec of a normalized SpecificCharacterSet; ``None`` for ISO 2022 sets."""
    if len(charset) == 1 and charset[0] in _SIMPLE_CHARSETS:
        return _SIMPLE_CHARSETS[charset[0]]
    if not charset:
        return "latin_1"
    return None


def _decode_text(vr: str, raw: bytes, codec: str | None) -> tuple[object, ...]:
    if vr in CHARSET_VRS:
        if codec is None:
            if not raw.isascii() or b"\x1b" in raw:
                raise Fallback("a value needs character set code extensions")
            codec = "latin_1"
    else:
        codec = "latin_1"
    return clean_text(raw.decode(codec, errors="replace"), vr)


def _charset_codec(tree: HeaderTree) -> str | None:
    """The Python codec of the dataset's character set; ``None`` for ISO 2022 sets."""
    raw = tree.get(SPECIFIC_CHARACTER_SET)
    if raw is None:
        return "latin_1"
    assert isinstance(raw, tuple)
    return _codec_of_bytes(raw[1])


@functools.lru_cache(maxsize=64)
def _codec_of_bytes(raw: bytes) -> str | None:
    # Memoized: a scan meets the same few character set values in file after file.
    return codec_of(clean_text(raw.decode("latin_1"), "CS"))


_META_HEADER: Final = struct.Struct("<HH2sH")
_U32_LE: Final = struct.Struct("<I")


def _raise_native_failure(result: tuple[Any, ...]) -> None:
    """Raise what a C walk's ``(1, message)`` or ``(2, code, message)`` stands for."""
    if result[0] == 1:
        raise Fallback(result[1])
    if result[0] == 2:
        raise ReadFailure(ErrorCode[result[1]], result[2])


def _read_meta(win: Window, pos: int, *, native: bool = True) -> tuple[str | None, str | None, int]:
    """Read the file meta group (always explicit VR little endian).

    Returns the transfer syntax, the media storage SOP class and the dataset's offset.
    In C when the extension is built, ``native`` is true and the group is in the bytes
    read so far; the Python loop below gives the same results (the tests compare them).
    """
    if native and _META is not None and win.base == 0:
        result = _META(win.buf, win.size, pos, _META_TAGS)
        if result[0] == 0:
            decoded = _DECODE(result[1], True, "latin_1", RAW_TAGS, _decode_text)  # type: ignore[misc]
            return (
                _first_str(decoded, TRANSFER_SYNTAX_UID),
                _first_str(decoded, MEDIA_SOP_CLASS),
                result[2],
            )
        _raise_native_failure(result)
    raw: HeaderTree = {}
    while pos < win.size:
        win.need(pos, 8, "file meta element")
        off = pos - win.base
        group, elem, vr_bytes, length = _META_HEADER.unpack_from(win.buf, off)
        if group != 0x0002:
            break
        if vr_bytes in LONG_VRS:
            win.need(pos, 12, "file meta element")
            length = _U32_LE.unpack_from(win.buf, pos - win.base + 8)[0]
            vpos = pos + 12
        elif vr_bytes in _SHORT_VRS:
            vpos = pos + 8
        else:
            raise Fallback("file meta element with an unknown VR")
        if length == UNDEFINED:
            raise Fallback("file meta element of undefined length")
        tag = group << 16 | elem
        if tag in _META_SPEC:
            win.need(vpos, length, "file meta element")
            voff = vpos - win.base
            raw[tag] = (_VR_TEXT[vr_bytes], win.buf[voff : voff + length])
        elif vpos + length > win.size:
            raise ReadFailure(
                ErrorCode.PARSE_TRUNCATED,
                f"element (0002,{elem:04X}) at byte {pos} declares {length} bytes; "
                f"only {win.size - vpos} remain in the file",
            )
        pos = vpos + length
    decoded = _decode_tree(raw, True, "latin_1")
    return _first_str(decoded, TRANSFER_SYNTAX_UID), _first_str(decoded, MEDIA_SOP_CLASS), pos


def _first_str(tree: HeaderTree, tag: int) -> str | None:
    value = tree.get(tag)
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return value[0]
    return None


def inflate(win: Window, start: int, cap: int) -> bytes:
    """Inflate the raw deflate stream from ``start`` to the end of the file, up to ``cap``."""
    win.need(start, win.size - start, "deflated dataset")
    stream = win.buf[start - win.base :]
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        data = inflater.decompress(stream, cap + 1)
    except zlib.error as exc:
        raise ReadFailure(ErrorCode.PARSE_DEFLATE_ERROR, f"bad deflate stream: {exc}") from None
    if len(data) > cap:
        raise ReadFailure(
            ErrorCode.PARSE_DEFLATE_LIMIT,
            f"the deflated dataset inflates past {cap} bytes "
            f"(file: {win.size} bytes); refused as a possible deflate bomb",
        )
    return data


def _walk_natively(
    win: Window, pos: int, little: bool, explicit: bool, max_depth: int
) -> tuple[HeaderTree, tuple[int, int, int | None] | None] | None:
    """The element walk of :meth:`_Parser.dataset` and the decoding of
    :func:`_decode_tree`, in one pass in C, on the window's first bytes.

    Returns the decoded tree and the pixel data position; ``None`` when the C walk is
    not built or the header goes on past the bytes read so far (the Python walk then
    does it).
    """
    if _WALK_DECODED is None or win.base != 0:
        return None
    while True:
        result = _WALK_DECODED(
            win.buf, win.size, pos, little, explicit, _NATIVE_SPEC, max_depth, VR_OF,
            PIXEL_DATA_TAGS, PRESENCE, RAW_TAGS,
        )  # fmt: skip
        status = result[0]
        if status == 0:
            tree, pixel, charset, deferred = result[1:]
            if deferred is not None:
                codec = "latin_1" if charset is None else _codec_of_bytes(charset)
                _decode_deferred(deferred, little, codec)
            return tree, pixel
        _raise_native_failure(result)
        # The header goes on past the bytes read: read 4 times as many from the start
        # and walk again (in C that is cheaper than walking on in Python), up to a cap
        # past which the Python walk steps over what it does not need unread.
        length = min(win.size, 4 * len(win.buf))
        if win.fd is None or length > _NATIVE_MAX_BYTES:
            return None
        data = os.pread(win.fd, length, 0)
        if len(data) <= len(win.buf):  # the file shrank while it was read
            return None
        win.buf = data


def _decode_deferred(
    deferred: list[tuple[HeaderTree, int, tuple[str, bytes]]], little: bool, codec: str | None
) -> None:
    """Decode the text that the C walk left raw until the character set was known.

    An entry whose raw value was replaced since (the tag came again) is skipped, as the
    raw tree would have kept only the last value.
    """
    for tree, tag, raw in deferred:
        if tree.get(tag) is raw:
            tree[tag] = _DECODE({tag: raw}, little, codec, RAW_TAGS, _decode_text)[tag]  # type: ignore[misc]


def parse_header(
    win: Window,
    *,
    max_depth: int,
    inflate_cap: int,
    raw_explicit: bool | None = None,
    native: bool = True,
) -> ParsedHeader:
    """Parse a Part 10 file (or a raw dataset when ``raw_explicit`` is not ``None``).

    Parameters
    ----------
    win
        The file's bytes.
    max_depth
        Deepest sequence nesting accepted.
    inflate_cap
        Most bytes a deflated dataset may inflate to.
    raw_explicit
        ``None`` for a Part 10 file with preamble and meta; otherwise the file is a raw
        little endian dataset with explicit (``True``) or implicit (``False``) VR.
    native
        Walk the elements and decode the values in C when that extension is built (the
        default); ``False`` takes the Python code, which gives the same results (the
        tests compare them).

    Raises
    ------
    Fallback
        For anything this reader does not handle.
    ReadFailure
        For a file that is certainly broken.
    """
    if raw_explicit is None:
        ts, media_class, pos = _read_meta(win, 132, native=native)
        little, explicit, deflated = dataset_encoding(ts)
    else:
        ts, media_class, pos = None, None, 0
        little, explicit, deflated = True, raw_explicit, False
    dataset_bytes = None
    if deflated:
        dataset_bytes = inflate(win, pos, inflate_cap)
        win, pos = Window.of_bytes(dataset_bytes), 0
    walked = _walk_natively(win, pos, little, explicit, max_depth) if native else None
    if walked is not None:
        tree, found = walked
    else:
        parser = _Parser(win, little, explicit, max_depth, stop_at_pixels=True)
        raw_tree, _ = parser.dataset(pos, None, TOP_LEVEL_SPEC, 0)
        found = parser.pixel
        codec = _charset_codec(raw_tree)
        if native and _DECODE is not None:
            tree = _DECODE(raw_tree, little, codec, RAW_TAGS, _decode_text)
        else:
            tree = _decode_tree(raw_tree, little, codec)
    pixel = None
    if found is not None:
        tag, offset, length = found
        pixel = PixelDataInfo(tag, offset, length, deflated)
    return ParsedHeader(tree, ts, media_class, pixel, raw_explicit is None, dataset_bytes)
