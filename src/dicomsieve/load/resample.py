"""Resample a stack onto a regular orthogonal grid (``--regularize resample``).

A tilted gantry stacks slices at an angle to their normal, and irregular or missing
slices leave unequal gaps: the true geometry is a sheared, uneven stack. For tools that
need a regular grid, the stack is resampled: the new grid keeps the row and column
directions and pixel spacing of the slices, its third axis is the slice normal, its
slice spacing is the smallest gap along the normal when every gap is a whole multiple of
it (missing slices), else the median gap, and it covers every slice. Each new
slice lies between two acquired slices (along the normal); both are sampled bilinearly
at the new slice's in-plane position (a tilted slice is shifted in-plane, not rotated)
and blended linearly by distance. Points outside the acquired slices get the minimum of
the data (air, for CT).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dicomsieve.codes import LoadErrorCode
from dicomsieve.errors import LoadError
from dicomsieve.load.volume import Volume
from dicomsieve.loadables.model import Loadable
from dicomsieve.settings import Settings

__all__ = ["is_regular", "is_regular_stack", "regularize"]


def _frame(
    a: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, float]:
    dc, dr = float(np.linalg.norm(a[:3, 0])), float(np.linalg.norm(a[:3, 1]))
    if dc == 0 or dr == 0:
        raise LoadError(LoadErrorCode.NO_GEOMETRY, "the affine has no in-plane extent")
    row, column = a[:3, 0] / dc, a[:3, 1] / dr
    normal = np.cross(row, column)
    normal /= np.linalg.norm(normal)
    return row, column, normal, dc, dr


def _positions(lo: Loadable, affine: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    refs = lo.slices[:n] if lo.mosaic_slices is None else ()
    if refs and all(s.position is not None for s in refs) and len(refs) == n:
        return np.array([s.position for s in refs], dtype=np.float64)
    # Mosaics and single slices: the affine is the geometry.
    k = np.arange(n, dtype=np.float64)
    return affine[:3, 3][None, :] + k[:, None] * affine[:3, 2][None, :]


def is_regular(volume: Volume, settings: Settings) -> bool:
    """True when the slices already form a regular grid along their normal."""
    return is_regular_stack(volume.loadable, volume.affine_lps, volume.array.shape[2], settings)


def is_regular_stack(
    loadable: Loadable, affine_lps: NDArray[np.float64], slices: int, settings: Settings
) -> bool:
    """:func:`is_regular` from the geometry alone (``slices`` along the third axis), so
    that it can be asked before any voxel is read."""
    if loadable.affine_lps is None:
        return True
    row, column, normal, _, _ = _frame(affine_lps)
    positions = _positions(loadable, affine_lps, slices)
    if len(positions) < 2:
        return True
    offsets = positions - positions[0]
    in_plane = np.abs(offsets @ row).max() + np.abs(offsets @ column).max()
    gaps = np.diff(positions @ normal)
    usual = float(np.median(gaps))
    tol = max(settings.spacing_tolerance_mm, settings.spacing_tolerance_rel * abs(usual))
    return bool(in_plane <= settings.position_tolerance_mm * 10 and np.ptp(gaps) <= tol)


def regularize(volume: Volume, settings: Settings | None = None) -> Volume:
    """Resample ``volume`` onto a regular orthogonal grid (see the module docstring).

    Returns the volume unchanged (``resampled`` false) when it already is regular.

    Raises
    ------
    LoadError
        ``NO_GEOMETRY`` when the loadable has no positions or orientation.
    """
    from scipy.ndimage import map_coordinates

    settings = settings or Settings()
    if volume.resampled:
        return volume  # already on a regular grid of its own
    if volume.loadable.affine_lps is None:
        raise LoadError(LoadErrorCode.NO_GEOMETRY, f"{volume.loadable.name} has no geometry")
    if is_regular(volume, settings):
        return volume
    row, column, normal, dc, dr = _frame(volume.affine_lps)
    positions = _positions(volume.loadable, volume.affine_lps, volume.array.shape[2])
    depth = positions @ normal
    order = np.argsort(depth, kind="stable")
    depth, positions = depth[order], positions[order]
    step = _slice_step(np.diff(depth), settings)
    u = (positions - positions[0]) @ row
    v = (positions - positions[0]) @ column
    columns, rows = volume.array.shape[0], volume.array.shape[1]
    u_min, u_max = float(u.min()), float(u.max()) + (columns - 1) * dc
    v_min, v_max = float(v.min()), float(v.max()) + (rows - 1) * dr
    slack = settings.spacing_tolerance_mm
    new_columns = _count(u_max - u_min, dc, slack)
    new_rows = _count(v_max - v_min, dr, slack)
    new_slices = _count(float(depth[-1] - depth[0]), step, slack)
    origin = positions[0] + u_min * row + v_min * column
    data = volume.array
    extra = data.shape[3:]  # time points and/or colour
    fill = float(np.min(data)) if data.size else 0.0
    out_dtype = data.dtype
    out = np.empty((new_columns, new_rows, new_slices, *extra), dtype=out_dtype, order="F")
    ii, jj = np.meshgrid(np.arange(new_columns), np.arange(new_rows), indexing="ij")
    for z in range(new_slices):
        d = depth[0] + z * step
        k = int(np.clip(np.searchsorted(depth, d, side="right") - 1, 0, len(depth) - 2))
        span = depth[k + 1] - depth[k]
        w = 0.0 if span <= 0 else float(np.clip((d - depth[k]) / span, 0.0, 1.0))
        blended: NDArray[Any] | None = None
        for source, weight in ((k, 1.0 - w), (k + 1, w)):
            if weight == 0.0:
                continue
            src = int(order[source])
            coords = (
                ii + (u_min - u[source]) / dc,
                jj + (v_min - v[source]) / dr,
            )
            sampled = _sample(data[:, :, src], coords, fill, map_coordinates) * weight
            blended = sampled if blended is None else blended + sampled
        assert blended is not None
        if np.issubdtype(out_dtype, np.integer):
            out[:, :, z] = np.rint(blended).astype(out_dtype)
        else:
            out[:, :, z] = blended.astype(out_dtype)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = row * dc, column * dr, normal * step
    affine[:3, 3] = origin
    metadata = dict(volume.metadata)
    block = dict(metadata.get("dicomsieve", {}))
    block["resampling"] = {
        "method": "bilinear in-plane, linear between slices",
        "slice_spacing_mm": round(step, 6),
        "fill_value": fill,
        "acquired_slices": len(depth),
    }
    metadata["dicomsieve"] = block
    return replace(volume, array=out, affine_lps=affine, metadata=metadata, resampled=True)


def _count(extent: float, step: float, slack: float) -> int:
    """Grid points from 0 to at least ``extent - slack``: the grid covers every acquired
    voxel centre, forgiving rounding of the positions up to ``slack`` mm."""
    return max(1, math.ceil((extent - slack) / step)) + 1 if extent > slack else 1


def _slice_step(gaps: NDArray[np.float64], settings: Settings) -> float:
    """The new slice spacing: the smallest gap when every gap is a whole multiple of it
    (missing slices: the acquired slices stay on the grid), else the median gap."""
    real = gaps[gaps > settings.position_tolerance_mm]
    smallest = float(real.min())
    tol = max(settings.spacing_tolerance_mm, settings.spacing_tolerance_rel * smallest)
    multiples = np.rint(real / smallest)
    if np.all(np.abs(real - multiples * smallest) <= tol * multiples):
        return smallest
    return float(np.median(real))


def _sample(
    plane: NDArray[Any],
    coords: tuple[NDArray[Any], NDArray[Any]],
    fill: float,
    map_coordinates: Any,
) -> NDArray[np.float64]:
    """Bilinear samples of one slice (and of each of its trailing axes)."""
    if plane.ndim == 2:
        return np.asarray(
            map_coordinates(plane.astype(np.float64), coords, order=1, mode="constant", cval=fill)
        )
    flat = plane.reshape(plane.shape[0], plane.shape[1], -1)
    parts = [
        map_coordinates(
            flat[:, :, c].astype(np.float64), coords, order=1, mode="constant", cval=fill
        )
        for c in range(flat.shape[2])
    ]
    return np.stack(parts, axis=-1).reshape(coords[0].shape + plane.shape[2:])
