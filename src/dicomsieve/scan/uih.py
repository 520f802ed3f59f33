"""UIH (United Imaging) private elements: VFRAME tiles and diffusion values.

A UIH "VFRAME" object (ImageType containing ``VFRAME``, UIH's *grid* format) stores the
slices of one volume as tiles of one image, like a Siemens mosaic, but without
ImagePositionPatient. Its layout and geometry are in the private block of the creator
``Image Private Header`` in group 0065:

- (0065,xx50) DS, the number of slices (tiles) in the image. The tiles fill a grid of
  ``c = ceil(sqrt(n))`` columns and ``ceil(n / c)`` rows, row by row from the top left;
- (0065,xx51) SQ, one item per tile, in tile order, each with the tile's
  ImagePositionPatient (0020,0032) (and its acquisition time);
- (0065,xx09) FD, the b-value the sequence played, and (0065,xx37) FD x3, the diffusion
  gradient direction, for DWI that lacks the standard (0018,9087) and (0018,9089).

UIH published this table with the ``dcm_qa_uih`` sample (dcm2niix issue 225). Everything
here is pure and never raises.
"""

from __future__ import annotations

import math
from typing import Final

from dicomsieve.scan.private import PrivateTag

__all__ = [
    "B_VALUE",
    "CREATOR",
    "GRADIENT_DIRECTION",
    "PRIVATE_TAGS",
    "SLICES_IN_GRID",
    "VFRAME_ITEM_SPEC",
    "VFRAME_SEQUENCE",
    "VFrame",
    "vframe",
]

CREATOR: Final = "Image Private Header"
SLICES_IN_GRID: Final = PrivateTag(0x0065, CREATOR, 0x50, "DS")
VFRAME_SEQUENCE: Final = PrivateTag(0x0065, CREATOR, 0x51, "SQ")
B_VALUE: Final = PrivateTag(0x0065, CREATOR, 0x09, "FD")
GRADIENT_DIRECTION: Final = PrivateTag(0x0065, CREATOR, 0x37, "FD")
PRIVATE_TAGS: Final = (SLICES_IN_GRID, VFRAME_SEQUENCE, B_VALUE, GRADIENT_DIRECTION)
_IMAGE_POSITION: Final = 0x00200032
VFRAME_ITEM_SPEC: Final[dict[int, object]] = {_IMAGE_POSITION: None}
"""What the readers keep of each item of (0065,xx51): ImagePositionPatient."""
_MAX_SLICES: Final = 4096

Vec3 = tuple[float, float, float]
VFrame = tuple[int, tuple[int, int], tuple[Vec3, ...]]
"""(slices, (grid rows, grid columns), the position of each tile)."""


def _count(values: object) -> int | None:
    if not isinstance(values, tuple) or len(values) != 1:
        return None
    value = values[0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not float(value).is_integer():
        return None
    count = int(value)
    return count if 1 <= count <= _MAX_SLICES else None


def _position(item: object) -> Vec3 | None:
    if not isinstance(item, dict):
        return None
    values = item.get(_IMAGE_POSITION)
    if not isinstance(values, tuple) or len(values) != 3:
        return None
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return None
        out.append(float(v))
    return (out[0], out[1], out[2])


def vframe(image_type: tuple[str, ...] | None, count: object, items: object) -> VFrame | None:
    """The tile layout and tile positions of a UIH VFRAME object, if its header says so.

    Parameters
    ----------
    image_type
        ImageType of the object; nothing is read unless it holds ``VFRAME``.
    count
        The normalized value of (0065,xx50).
    items
        The normalized items of (0065,xx51) (a tuple of trees).

    Returns
    -------
    VFrame or None
        ``None`` unless the count is a whole number from 1 to 4096 and there is one
        item with a usable ImagePositionPatient per tile.
    """
    if not image_type or "VFRAME" not in (v.upper() for v in image_type):
        return None
    n = _count(count)
    if n is None or not isinstance(items, tuple) or len(items) != n:
        return None
    positions = tuple(_position(item) for item in items)
    if any(p is None for p in positions):
        return None
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    return n, (rows, columns), tuple(p for p in positions if p is not None)
