"""The Siemens CSA image header: just enough of it to unpack mosaics.

A Siemens mosaic stores the slices of one volume as tiles of one image. How many tiles
hold slices, and which way the slices are stacked, are only in the private CSA image
header (0029,xx10, in the block of the private creator "SIEMENS CSA HEADER", usually
(0029,1010)): a binary "SV10" structure of named items. The parser is bounded (item
counts and lengths are checked against the buffer) and returns what it understood; it
never raises.
"""

from __future__ import annotations

import math
import struct
from typing import Final

from dicomsieve.scan.private import PrivateTag

__all__ = [
    "CSA_CREATOR",
    "CSA_IMAGE_HEADER",
    "PRIVATE_TAGS",
    "MosaicInfo",
    "mosaic_info",
    "parse_csa",
]

CSA_CREATOR: Final = "SIEMENS CSA HEADER"
CSA_IMAGE_HEADER: Final = PrivateTag(0x0029, CSA_CREATOR, 0x10, "OB")
PRIVATE_TAGS: Final = (CSA_IMAGE_HEADER,)
_MAX_TAGS: Final = 1024
_MAX_ITEMS: Final = 1024
_MAX_SLICES: Final = 4096
_WANTED: Final = frozenset({"NumberOfImagesInMosaic", "SliceNormalVector"})

MosaicInfo = tuple[int, tuple[float, float, float] | None]
"""(number of slices in the mosaic, slice normal or ``None``)."""


def parse_csa(raw: bytes, wanted: frozenset[str] = _WANTED) -> dict[str, tuple[str, ...]]:
    """The items named in ``wanted`` of a CSA2 ("SV10") header, as text values.

    Returns an empty mapping for anything that is not a well-formed CSA2 header.
    """
    out: dict[str, tuple[str, ...]] = {}
    if len(raw) < 16 or raw[:4] != b"SV10":
        return out
    n_tags = struct.unpack_from("<I", raw, 8)[0]
    if not 0 < n_tags <= _MAX_TAGS:
        return out
    pos = 16
    for _ in range(n_tags):
        if pos + 84 > len(raw):
            return out
        name = raw[pos : pos + 64].split(b"\0", 1)[0].decode("latin_1")
        n_items = struct.unpack_from("<i", raw, pos + 76)[0]
        pos += 84
        if not 0 <= n_items <= _MAX_ITEMS:
            return out
        values: list[str] = []
        for _ in range(n_items):
            if pos + 16 > len(raw):
                return out
            length = struct.unpack_from("<i", raw, pos + 4)[0]
            pos += 16
            if length < 0 or pos + length > len(raw):
                return out
            if length:
                values.append(raw[pos : pos + length].split(b"\0", 1)[0].decode("latin_1").strip())
            pos += (length + 3) // 4 * 4
        if name in wanted:
            out[name] = tuple(v for v in values if v)
    return out


def mosaic_info(raw: bytes) -> MosaicInfo | None:
    """Slices per mosaic and the slice normal from a CSA image header, if it says so."""
    items = parse_csa(raw)
    count = items.get("NumberOfImagesInMosaic")
    if not count:
        return None
    try:
        slices = int(float(count[0]))
    except (ValueError, OverflowError):  # "nan", "inf"
        return None
    if not 1 <= slices <= _MAX_SLICES:
        return None
    normal: tuple[float, float, float] | None = None
    vector = items.get("SliceNormalVector", ())
    if len(vector) == 3:
        try:
            x, y, z = (float(v) for v in vector)
        except ValueError:
            return slices, None
        if all(math.isfinite(v) for v in (x, y, z)):
            normal = (x, y, z)
    return slices, normal
