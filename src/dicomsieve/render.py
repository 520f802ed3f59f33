"""Pixels for a screen: windowing, orthogonal planes, PNG images and thumbnails.

Pure functions over arrays laid out as :class:`~dicomsieve.Volume` keeps them:
``array[i, j, k]`` = (column, row, slice), a 4th axis for the time points of a sequence,
and a last axis of 3 for colour. Values are real-world values (rescale applied), which
is what DICOM's WindowCenter and WindowWidth refer to.

Display conventions:

- the acquired plane (``axis=2``) is shown as stored, as every DICOM viewer shows it:
  columns to the right, rows down. Reference lines computed in the localizer's pixel
  coordinates (:func:`dicomsieve.loadables.reference_lines`) land on it unchanged;
- the two reformatted planes (``axis=0``: a fixed column, ``axis=1``: a fixed row) are
  turned to the usual radiological layout of the plane they are closest to: axial with
  the patient's left on the right and posterior down, coronal with left on the right
  and superior up, sagittal with posterior on the right and superior up;
- MONOCHROME1 (low values bright) is inverted after windowing, so that it looks as the
  modality meant it.

PNG images are scaled so that their pixels are square in millimetres: a reformat of
3 mm slices from 0.7 mm pixels is not squashed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CT_PRESETS",
    "Plane",
    "Window",
    "apply_window",
    "data_window",
    "default_window",
    "extract_plane",
    "plane_count",
    "presets",
    "render_png",
    "thumbnail_png",
    "to_png",
]


@dataclass(frozen=True, slots=True)
class Window:
    """A linear VOI window: ``center`` and ``width`` in real-world values."""

    center: float
    width: float
    name: str = ""

    def to_dict(self) -> dict[str, float | str]:
        """The JSON form used by the web app."""
        return {"name": self.name, "center": self.center, "width": self.width}


CT_PRESETS: Final[tuple[Window, ...]] = (
    Window(40.0, 80.0, "CT brain"),
    Window(75.0, 215.0, "CT subdural"),
    Window(40.0, 400.0, "CT soft tissue"),
    Window(50.0, 350.0, "CT mediastinum"),
    Window(60.0, 160.0, "CT liver"),
    Window(-600.0, 1500.0, "CT lung"),
    Window(400.0, 1800.0, "CT bone"),
)
"""The usual CT windows in Hounsfield units (centre, width)."""

_LETTERS: Final = (("R", "L"), ("A", "P"), ("I", "S"))  # (negative, positive) per LPS axis
# (screen right, screen down) in LPS for the plane a reformat is closest to, by the
# dominant axis of its normal: sagittal (x), coronal (y), axial (z).
_LAYOUTS: Final = (
    (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])),
    (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])),
    (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])),
)


@dataclass(frozen=True, eq=False)
class Plane:
    """One 2D plane of a volume, in display order.

    Attributes
    ----------
    pixels
        ``[row, column]`` as shown (row 0 at the top), with a last axis of 3 for colour.
    pixel_size
        Millimetres between columns (horizontally) and between rows (vertically).
    right, down
        The patient direction (``L``, ``R``, ``A``, ``P``, ``S``, ``I``) the image's
        columns and rows run towards: the label of its right and bottom edges.
    """

    pixels: NDArray[Any]
    pixel_size: tuple[float, float]
    right: str
    down: str


def _letter(direction: NDArray[np.float64]) -> str:
    axis = int(np.argmax(np.abs(direction)))
    return _LETTERS[axis][1 if direction[axis] >= 0 else 0]


def _spatial(shape: Sequence[int], rgb: bool) -> int:
    """How many of the leading axes are voxel axes (3, or 4 with time)."""
    return len(shape) - (1 if rgb else 0)


def plane_count(shape: Sequence[int], axis: int, *, rgb: bool = False) -> int:
    """How many planes a volume of ``shape`` has along ``axis`` (0, 1 or 2).

    Parameters
    ----------
    shape
        The array shape, ``(columns, rows, slices[, time][, 3])``.
    axis
        0 (a fixed column), 1 (a fixed row) or 2 (a slice).
    rgb
        The last axis holds colour.

    Returns
    -------
    int
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    if _spatial(shape, rgb) < 3:
        raise ValueError(f"not a volume: shape {tuple(shape)}")
    return int(shape[axis])


def extract_plane(
    array: NDArray[Any],
    affine_lps: NDArray[np.float64],
    axis: int,
    index: int,
    *,
    time: int = 0,
    rgb: bool = False,
) -> Plane:
    """One plane of a volume, turned for display.

    Parameters
    ----------
    array
        ``[column, row, slice(, time)(, 3)]``.
    affine_lps
        Voxel (column, row, slice) to LPS millimetres.
    axis
        2: slice ``index`` as stored; 0: column ``index``; 1: row ``index`` (reformats,
        turned to the radiological layout of the plane they are closest to).
    index
        Which plane along ``axis``.
    time
        Which time point of a sequence (ignored for a 3D volume).
    rgb
        The last axis of ``array`` holds colour.

    Returns
    -------
    Plane

    Raises
    ------
    IndexError
        When ``index`` or ``time`` is out of range.
    ValueError
        For an axis other than 0, 1, 2.
    """
    count = plane_count(array.shape, axis, rgb=rgb)
    if not 0 <= index < count:
        raise IndexError(f"plane {index} of {count}")
    volume = array
    if _spatial(array.shape, rgb) == 4:
        if not 0 <= time < array.shape[3]:
            raise IndexError(f"time point {time} of {array.shape[3]}")
        volume = array[:, :, :, time]
    elif time != 0:
        raise IndexError(f"time point {time} of a volume without time")
    m = np.asarray(affine_lps, dtype=np.float64)[:3, :3]
    steps = [m[:, 0], m[:, 1], m[:, 2]]
    if axis == 2:
        pixels = np.swapaxes(volume[:, :, index], 0, 1)  # [row, column]
        return Plane(
            pixels=pixels,
            pixel_size=(_norm(steps[0]), _norm(steps[1])),
            right=_letter(steps[0]),
            down=_letter(steps[1]),
        )
    # The two voxel axes left in the plane, and their directions.
    u_axis, v_axis = (1, 2) if axis == 0 else (0, 2)
    data = volume[index] if axis == 0 else volume[:, index]  # [u, v(, 3)]
    du, dv = steps[u_axis], steps[v_axis]
    normal = np.cross(du, dv)
    if not np.any(normal):
        normal = np.eye(3)[axis]
    right, down = _LAYOUTS[int(np.argmax(np.abs(normal)))]
    if abs(float(_unit(du) @ right)) >= abs(float(_unit(dv) @ right)):
        pixels = np.swapaxes(data, 0, 1)  # [v, u]: u runs horizontally
        horizontal, vertical = du, dv
    else:
        pixels = data  # [u, v]: v runs horizontally
        horizontal, vertical = dv, du
    if float(horizontal @ right) < 0:
        pixels, horizontal = pixels[:, ::-1], -horizontal
    if float(vertical @ down) < 0:
        pixels, vertical = pixels[::-1, :], -vertical
    return Plane(
        pixels=pixels,
        pixel_size=(_norm(horizontal), _norm(vertical)),
        right=_letter(horizontal),
        down=_letter(vertical),
    )


def _norm(v: NDArray[np.float64]) -> float:
    n = float(np.linalg.norm(v))
    return n if n > 0 else 1.0


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def data_window(data: NDArray[Any]) -> Window:
    """The window that spans the range of ``data`` (finite values only).

    Parameters
    ----------
    data
        Any array of real-world values.

    Returns
    -------
    Window
        Named ``data range``; width at least 1.
    """
    finite = data[np.isfinite(data)] if np.issubdtype(data.dtype, np.floating) else data
    if finite.size == 0:
        return Window(0.0, 1.0, "data range")
    low, high = float(finite.min()), float(finite.max())
    return Window((low + high) / 2.0, max(high - low, 1.0), "data range")


def _pairs(
    centers: Sequence[float] | None, widths: Sequence[float] | None
) -> list[tuple[float, float]]:
    if not centers or not widths:
        return []
    return [
        (float(c), float(w))
        for c, w in zip(centers, widths, strict=False)
        if math.isfinite(c) and math.isfinite(w) and w > 0
    ]


def default_window(
    centers: Sequence[float] | None, widths: Sequence[float] | None, data: NDArray[Any]
) -> Window:
    """The DICOM default window: the slice's first WindowCenter/WindowWidth, else the data range.

    Parameters
    ----------
    centers, widths
        WindowCenter and WindowWidth of the slice (per frame for enhanced objects), or
        ``None``.
    data
        The values shown, for the fallback.

    Returns
    -------
    Window
        Named ``DICOM`` when it comes from the header.
    """
    pairs = _pairs(centers, widths)
    if pairs:
        return Window(pairs[0][0], pairs[0][1], "DICOM")
    return data_window(data)


def presets(
    modality: str | None,
    centers: Sequence[float] | None,
    widths: Sequence[float] | None,
    data: NDArray[Any],
) -> tuple[Window, ...]:
    """The windows to offer: the file's own, the modality's usual ones, the data range.

    Parameters
    ----------
    modality
        DICOM Modality; CT adds :data:`CT_PRESETS`.
    centers, widths
        WindowCenter and WindowWidth of the slice (every pair is offered).
    data
        The values shown.

    Returns
    -------
    tuple of Window
        The DICOM default first (see :func:`default_window`).
    """
    pairs = _pairs(centers, widths)
    own = [Window(c, w, "DICOM" if n == 0 else f"DICOM {n + 1}") for n, (c, w) in enumerate(pairs)]
    out = [*own, data_window(data)]
    if modality == "CT":
        out.extend(CT_PRESETS)
    return tuple(out)


def apply_window(
    pixels: NDArray[Any], window: Window, *, invert: bool = False
) -> NDArray[np.uint8]:
    """Map values to 0..255 with DICOM's linear VOI function (PS3.3 C.11.2.1.2.1).

    Parameters
    ----------
    pixels
        Real-world values; colour (a last axis of 3) is passed through, clipped.
    window
        Centre and width; a width below 1 counts as 1.
    invert
        Invert after windowing (MONOCHROME1).

    Returns
    -------
    numpy.ndarray of uint8
    """
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        colour: NDArray[np.uint8] = np.clip(pixels, 0, 255).astype(np.uint8)
        return colour
    c, w = window.center, max(window.width, 1.0)
    values = pixels.astype(np.float64)
    if w == 1.0:
        scaled = np.where(values > c - 0.5, 255.0, 0.0)
    else:
        scaled = ((values - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0
    out: NDArray[np.uint8] = np.clip(np.rint(np.nan_to_num(scaled, nan=0.0)), 0, 255).astype(
        np.uint8
    )
    if invert:
        out = np.subtract(255, out, dtype=np.uint8)
    return out


def to_png(
    image: NDArray[np.uint8],
    pixel_size: tuple[float, float] = (1.0, 1.0),
    *,
    max_size: int = 1024,
) -> bytes:
    """Encode an 8-bit image as PNG with square pixels.

    Parameters
    ----------
    image
        ``[row, column]`` greyscale or ``[row, column, 3]`` colour.
    pixel_size
        Millimetres between columns and between rows; the image is resampled
        (bilinear) so that both become the smaller one.
    max_size
        The longer side is scaled down to at most this many pixels.

    Returns
    -------
    bytes
        A PNG file.
    """
    from PIL import Image

    rows, columns = image.shape[0], image.shape[1]
    step = min(pixel_size)
    if not step > 0:
        step = 1.0
    width = columns * pixel_size[0] / step
    height = rows * pixel_size[1] / step
    scale = min(1.0, max_size / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray(np.ascontiguousarray(image), "RGB" if image.ndim == 3 else "L")
    if size != (columns, rows):
        picture = picture.resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def render_png(
    plane: Plane, window: Window, *, invert: bool = False, max_size: int = 1024
) -> bytes:
    """A plane windowed and encoded: :func:`apply_window` then :func:`to_png`.

    Parameters
    ----------
    plane
        From :func:`extract_plane`.
    window
        The window; ignored for colour.
    invert
        MONOCHROME1.
    max_size
        Longest side in pixels.

    Returns
    -------
    bytes
        A PNG file.
    """
    return to_png(
        apply_window(plane.pixels, window, invert=invert), plane.pixel_size, max_size=max_size
    )


def thumbnail_png(plane: Plane, window: Window, *, invert: bool = False, size: int = 128) -> bytes:
    """A small PNG of a plane (the middle slice of a loadable, as a rule).

    Parameters
    ----------
    plane
        From :func:`extract_plane`.
    window
        The DICOM default window, as a rule (:func:`default_window`).
    invert
        MONOCHROME1.
    size
        The longer side in pixels (smaller images are not enlarged).

    Returns
    -------
    bytes
        A PNG file.
    """
    return render_png(plane, window, invert=invert, max_size=size)
