"""Normalization of element values, shared by both header readers.

See :mod:`dicomsieve.scan.tags` for the normalized forms.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from typing import Final

from dicomsieve.scan.tags import SINGLE_VALUED_TEXT_VRS, TEXT_VRS

__all__ = ["BINARY_FORMATS", "clean_text", "decode_binary", "normalize_components"]

BINARY_FORMATS: Final[dict[str, str]] = {
    "US": "H",
    "SS": "h",
    "UL": "I",
    "SL": "i",
    "FL": "f",
    "FD": "d",
    "SV": "q",
    "UV": "Q",
}


def clean_text(text: str, vr: str) -> tuple[str, ...]:
    """Split a decoded text value on backslashes and strip padding from each part."""
    if vr in SINGLE_VALUED_TEXT_VRS:
        cleaned: tuple[str, ...] = (text.strip(" \x00"),)
    else:
        cleaned = tuple([part.strip(" \x00") for part in text.split("\\")])
    if vr == "PN":
        # Empty trailing component groups carry nothing (pydicom drops them too).
        cleaned = tuple([part.rstrip("=") for part in cleaned])
    if not any(cleaned):
        return ()
    return cleaned


def _to_float(part: object) -> float | None:
    try:
        value = float(part)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _to_int(part: object) -> int | None:
    if isinstance(part, int):
        return int(part)
    try:
        return int(str(part).strip())
    except ValueError:
        value = _to_float(part)
        if value is not None and value.is_integer():
            return int(value)
        return None


def normalize_components(vr: str, parts: Iterable[object]) -> tuple[object, ...]:
    """Normalize the components of a value that is already split and decoded.

    ``parts`` are strings for text VRs (including DS and IS) and numbers for binary
    VRs. Strings are stripped, DS becomes float, IS becomes int.
    """
    if vr == "DS":
        texts = [str(p).strip(" \x00") for p in parts]
        if not any(texts):
            return ()
        return tuple([_to_float(t) for t in texts])
    if vr == "IS":
        texts = [str(p).strip(" \x00") for p in parts]
        if not any(texts):
            return ()
        return tuple([_to_int(t) for t in texts])
    if vr in TEXT_VRS:
        return clean_text("\\".join(str(p) for p in parts), vr)
    return tuple(parts)


def decode_binary(vr: str, raw: bytes, little_endian: bool) -> tuple[object, ...]:
    """Decode a binary numeric value (US, SS, UL, SL, FL, FD, SV, UV)."""
    code = BINARY_FORMATS[vr]
    count = len(raw) // struct.calcsize(code)
    if not count:
        return ()
    endian = "<" if little_endian else ">"
    return struct.unpack_from(f"{endian}{count}{code}", raw)
