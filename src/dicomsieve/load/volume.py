"""A loaded volume: voxels, where they are, and what they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from dicomsieve.loadables.model import Loadable

if TYPE_CHECKING:  # nibabel is imported only when an image is made
    import nibabel as nib

__all__ = ["RAS_FROM_LPS", "Volume", "nearest_rigid", "rgb24"]

RAS_FROM_LPS: NDArray[np.float64] = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Multiply an LPS affine on the left by this to get the RAS affine NIfTI uses."""


@dataclass(frozen=True, eq=False)
class Volume:
    """Voxels of one loadable with their exact geometry.

    Attributes
    ----------
    array
        Indexed ``[i, j, k]`` = (column, row, slice), with a 4th axis for the time
        points of a sequence and a last axis of 3 for colour (RGB) images. Values are
        real-world values (rescale slope and intercept applied per slice); MONOCHROME1
        is kept as stored (``metadata["PhotometricInterpretation"]`` says so).
    affine_lps
        4x4 matrix from voxel (i, j, k) to LPS mm (sheared for a tilted gantry).
    loadable
        What was loaded.
    metadata
        Header values for the sidecar (BIDS names where they exist).
    resampled
        True when the voxels were resampled onto a regular orthogonal grid.
    """

    array: NDArray[Any]
    affine_lps: NDArray[np.float64]
    loadable: Loadable
    metadata: dict[str, Any] = field(default_factory=dict)
    resampled: bool = False

    @property
    def affine_ras(self) -> NDArray[np.float64]:
        """The affine in RAS mm (NIfTI's convention)."""
        return RAS_FROM_LPS @ self.affine_lps

    @property
    def is_rgb(self) -> bool:
        """Colour voxels: the last axis holds R, G and B."""
        return bool(self.metadata.get("SamplesPerPixel", 1) == 3)

    def to_nibabel(self) -> nib.Nifti1Image:
        """A NIfTI-1 image: sform and qform code 1 (scanner), the qform the nearest
        rigid approximation of a sheared affine. Colour becomes NIfTI RGB24."""
        import nibabel as nib

        data: NDArray[Any] = self.array
        if self.is_rgb:
            rgb = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
            data = np.ascontiguousarray(rgb24(data)).view(rgb)[..., 0]
        header = nib.Nifti1Header()
        image = nib.Nifti1Image(data, self.affine_ras, header=header)
        image.set_data_dtype(data.dtype)
        image.set_sform(self.affine_ras, code=1)
        image.set_qform(nearest_rigid(self.affine_ras), code=1)
        zooms = np.linalg.norm(self.affine_ras[:3, :3], axis=0)
        image.header.set_zooms((*(float(z) for z in zooms), *([1.0] * (data.ndim - 3))))
        image.header.set_xyzt_units("mm", "sec")
        return image


def rgb24(array: NDArray[Any]) -> NDArray[np.uint8]:
    """Colour voxels as 8 bits per channel, for NIfTI's RGB24.

    8-bit colour is returned as it is. Wider colour (16 bits per sample) is shifted
    right by the fewest bits that bring its largest value into 0-255, so that the
    channels keep their proportions instead of wrapping around; values that already fit
    are kept exactly.
    """
    if array.dtype == np.uint8:
        return array.view(np.uint8)
    peak = int(array.max()) if array.size else 0
    shift = max(peak.bit_length() - 8, 0)
    shifted: NDArray[Any] = np.right_shift(array, shift) if shift else array
    out: NDArray[np.uint8] = np.clip(shifted, 0, 255).astype(np.uint8)
    return out


def nearest_rigid(affine: NDArray[np.float64]) -> NDArray[np.float64]:
    """The rotation-and-zoom affine nearest to ``affine`` (for the qform, which cannot
    hold a shear): orthonormalise the directions by polar decomposition, keep the column
    lengths and the origin."""
    m = affine[:3, :3]
    zooms = np.linalg.norm(m, axis=0)
    zooms[zooms == 0] = 1.0
    directions = m / zooms
    u, _, vt = np.linalg.svd(directions)
    rotation = u @ vt
    out = np.eye(4)
    out[:3, :3] = rotation * zooms
    out[:3, 3] = affine[:3, 3]
    return out
