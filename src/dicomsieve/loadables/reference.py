"""Reference lines: where the slices of a volume cut a localizer image.

The thing a localizer exists for. Each slice of the volume is a rectangle in patient
space; where that rectangle crosses the localizer's plane is a segment, which is drawn
on the localizer in its pixel coordinates. The method is the usual one (as described
for DICOM viewers by Clunie): express the slice's corners in the localizer's
coordinate system (along its rows, along its columns, and distance from its plane),
and intersect the rectangle's edges with distance zero. A slice parallel to the
localizer has no line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dicomsieve.loadables.model import Loadable

__all__ = ["ReferenceLine", "reference_lines"]

_PARALLEL_DEG = 1.0


@dataclass(frozen=True, slots=True)
class ReferenceLine:
    """One slice's line on the localizer, in localizer pixel coordinates.

    ``start`` and ``end`` are (column, row) with pixel centres at integers; they may
    lie outside the image when the slice extends beyond the localizer's field of view.
    """

    slice_index: int
    start: tuple[float, float]
    end: tuple[float, float]


def _frame(loadable: Loadable) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if loadable.affine_lps is None:
        raise ValueError(f"{loadable.name} has no geometry")
    affine = np.array(loadable.affine_lps, dtype=np.float64)
    return affine[:3, :3], affine[:3, 3]


def reference_lines(
    localizer: Loadable, volume: Loadable, *, slice_index: int = 0
) -> list[ReferenceLine]:
    """The line of every slice of ``volume`` on one image of ``localizer``.

    Parameters
    ----------
    localizer
        The image the lines are drawn on (any loadable with geometry).
    volume
        The loadable whose slices are drawn (a volume or a sequence: its first time
        point's slices).
    slice_index
        Which slice of ``localizer`` (for a 3D localizer).

    Returns
    -------
    list of ReferenceLine
        In the volume's slice order; slices parallel to the localizer or not crossing
        its plane are left out.

    Raises
    ------
    ValueError
        When either loadable has no geometry.
    """
    loc_m, loc_origin = _frame(localizer)
    vol_m, vol_origin = _frame(volume)
    col_step, row_step = np.linalg.norm(loc_m[:, 0]), np.linalg.norm(loc_m[:, 1])
    u_dir, v_dir = loc_m[:, 0] / col_step, loc_m[:, 1] / row_step
    normal = np.cross(u_dir, v_dir)
    normal /= np.linalg.norm(normal)
    origin = loc_origin + loc_m[:, 2] * slice_index
    vol_normal = np.cross(vol_m[:, 0], vol_m[:, 1])
    vol_normal /= np.linalg.norm(vol_normal)
    if abs(float(vol_normal @ normal)) >= math.cos(math.radians(_PARALLEL_DEG)):
        return []
    columns, rows = volume.shape[0], volume.shape[1]
    slices = volume.shape[2]
    # Corners of each slice rectangle (voxel centres at the rectangle's corners, widened
    # by half a pixel so that the line spans the slice's full extent).
    ci = np.array([-0.5, columns - 0.5, columns - 0.5, -0.5])
    cj = np.array([-0.5, -0.5, rows - 0.5, rows - 0.5])
    lines: list[ReferenceLine] = []
    for k in range(slices):
        points = vol_origin[None, :] + (
            ci[:, None] * vol_m[:, 0] + cj[:, None] * vol_m[:, 1] + k * vol_m[:, 2]
        )
        rel = points - origin
        u = rel @ u_dir / col_step
        v = rel @ v_dir / row_step
        w = rel @ normal
        crossings: list[tuple[float, float]] = []
        for a in range(4):
            b = (a + 1) % 4
            wa, wb = float(w[a]), float(w[b])
            if wa == 0.0:
                crossings.append((float(u[a]), float(v[a])))
            if (wa < 0.0 < wb) or (wb < 0.0 < wa):
                t = wa / (wa - wb)
                crossings.append((float(u[a] + t * (u[b] - u[a])), float(v[a] + t * (v[b] - v[a]))))
        unique = list(dict.fromkeys((round(x, 6), round(y, 6)) for x, y in crossings))
        if len(unique) >= 2:
            start, end = max(
                ((p, q) for p in unique for q in unique),
                key=lambda pq: (pq[0][0] - pq[1][0]) ** 2 + (pq[0][1] - pq[1][1]) ** 2,
            )
            lines.append(ReferenceLine(k, start, end))
    return lines
