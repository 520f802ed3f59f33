"""NIfTI-1 single files, streamed: the header built here, the voxels block by block.

The header comes from :func:`dicomsieve.write.header.nifti1_header` (the fields nibabel
would write, without importing nibabel). The voxels of a loaded volume are written
straight from its Fortran-ordered array, a block at a time, so no copy of the volume is
made; those of :class:`~dicomsieve.load.stored.StoredPixels` come from the DICOM files a
few frames at a time, with the rescale in ``scl_slope``/``scl_inter``. ``.nii.gz`` goes
through ISA-L's deflate (python-isal) on both cores, about twenty times faster than
zlib's default level, for files a few percent larger.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import IO, Any, Final

import numpy as np
from numpy.typing import NDArray

from dicomsieve.load.stored import StoredPixels
from dicomsieve.load.volume import Volume
from dicomsieve.write.header import nifti1_header

__all__ = ["GZIP_LEVEL", "write_nifti", "write_nifti_stored"]

GZIP_LEVEL: Final = 1
"""ISA-L compression level (0-3); level 1 compresses CT within a few percent of zlib's
default level at many times its speed."""

_BLOCK: Final = 16 << 20


def _blocks(data: NDArray[Any]) -> Iterator[memoryview]:
    """The voxels in NIfTI (Fortran) order, as contiguous blocks without copying when
    the array is Fortran-ordered."""
    if data.flags.f_contiguous:
        flat = data.reshape(-1, order="F")
        step = max(1, _BLOCK // max(1, data.itemsize))
        for start in range(0, flat.size, step):
            yield flat[start : start + step].data
        return
    for k in range(data.shape[2] if data.ndim >= 3 else 1):  # pragma: no cover - fallback
        yield np.asfortranarray(data[:, :, k, ...]).reshape(-1, order="F").data


def write_nifti(volume: Volume, path: str | os.PathLike[str], *, threads: int = 2) -> None:
    """Write ``volume`` as a single-file NIfTI-1 image; gzip when ``path`` ends in ``.gz``.

    Parameters
    ----------
    volume
        What to write (the header as :meth:`Volume.to_nibabel` makes it).
    path
        The file to create.
    threads
        Compression threads for ``.nii.gz``.
    """
    data: NDArray[Any] = volume.array
    shape: tuple[int, ...] = data.shape
    if volume.is_rgb:
        # RGB24: three bytes per voxel, so colour must be the fastest axis of the
        # Fortran-ordered data (a copy; colour images are small).
        data = np.asfortranarray(np.moveaxis(data.astype(np.uint8, copy=False), -1, 0))
        shape = shape[:-1]
    prefix = nifti1_header(volume.affine_ras, shape, data.dtype, rgb=volume.is_rgb)
    _write(path, prefix, _blocks(data), threads)


def write_nifti_stored(
    stored: StoredPixels, path: str | os.PathLike[str], *, threads: int = 2
) -> None:
    """Write the stored values of a loadable as a single-file NIfTI-1 image, the
    rescale in the header; gzip when ``path`` ends in ``.gz``.

    Parameters
    ----------
    stored
        From :func:`dicomsieve.load.stored.stored_pixels`.
    path
        The file to create.
    threads
        Reading threads, and compression threads for ``.nii.gz``.
    """
    prefix = nifti1_header(stored.affine_ras, stored.shape, stored.dtype, scaling=stored.scaling)
    _write(path, prefix, stored.blocks(threads=threads), threads)


def _write(
    path: str | os.PathLike[str], prefix: bytes, blocks: Iterable[memoryview], threads: int
) -> None:
    target = os.fspath(path)
    stream: IO[bytes]
    if target.endswith(".gz"):
        from isal import igzip_threaded

        stream = igzip_threaded.open(target, "wb", compresslevel=GZIP_LEVEL, threads=threads)
    else:
        stream = open(target, "wb")  # noqa: SIM115 - closed below
    with stream:
        stream.write(prefix)
        for block in blocks:
            stream.write(block)
