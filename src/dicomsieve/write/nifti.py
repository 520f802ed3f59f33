"""NIfTI-1 single files, streamed: the header built here, the voxels block by block.

The header comes from :func:`dicomsieve.write.header.nifti1_header` (the fields nibabel
would write, without importing nibabel). The voxels of a loaded volume are written
straight from its Fortran-ordered array, a block at a time, so no copy of the volume is
made; those of :class:`~dicomsieve.load.stored.StoredPixels` come from the DICOM files a
few frames at a time, with the rescale in ``scl_slope``/``scl_inter``. ``.nii.gz`` is
one gzip member whose blocks (512 KB) are deflated apart by ISA-L (python-isal) on two
threads, about twenty times faster than zlib's default level, for files a few percent
larger; the blocks of stored values are deflated by the thread that has just read them.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from dicomsieve._pipeline import ordered
from dicomsieve.load.stored import BLOCK_BYTES, StoredPixels
from dicomsieve.load.volume import Volume, rgb24
from dicomsieve.write.header import nifti1_header

__all__ = ["GZIP_LEVEL", "write_nifti", "write_nifti_stored"]

GZIP_LEVEL: Final = 1
"""ISA-L compression level (0-3); level 1 compresses CT within a few percent of zlib's
default level at many times its speed."""


def _blocks(data: NDArray[Any]) -> Iterator[memoryview]:
    """The voxels in NIfTI (Fortran) order, as contiguous blocks without copying when
    the array is Fortran-ordered."""
    if data.flags.f_contiguous:
        flat = data.reshape(-1, order="F")
        step = max(1, BLOCK_BYTES // max(1, data.itemsize))
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
        data = np.asfortranarray(np.moveaxis(rgb24(data), -1, 0))
        shape = shape[:-1]
    prefix = nifti1_header(volume.affine_ras, shape, data.dtype, rgb=volume.is_rgb)
    _write(path, prefix, _blocks(data), threads)


def write_nifti_stored(
    stored: StoredPixels,
    path: str | os.PathLike[str],
    *,
    threads: int = 2,
    block_bytes: int = BLOCK_BYTES,
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
        Threads that read (and, for ``.nii.gz``, deflate) the blocks.
    block_bytes
        Bytes read (and deflated) at a time, rounded down to whole frames.
    """
    prefix = nifti1_header(stored.affine_ras, stored.shape, stored.dtype, scaling=stored.scaling)
    target = os.fspath(path)
    if target.endswith(".gz"):
        # Each block deflated on the thread that has just read it, while it is in cache.
        chunks = stored.map_blocks(_deflate, threads=threads, block_bytes=block_bytes)
        _write_gzip(target, prefix, chunks)
    else:
        _write_plain(target, prefix, stored.blocks(threads=threads, block_bytes=block_bytes))


def _write(
    path: str | os.PathLike[str], prefix: bytes, blocks: Iterable[memoryview], threads: int
) -> None:
    target = os.fspath(path)
    if target.endswith(".gz"):
        # Views of the array: blocks ahead hold no buffer (see StoredPixels.map_blocks).
        _write_gzip(target, prefix, ordered(_deflate, blocks, threads=threads, ahead=2 * threads))
    else:
        _write_plain(target, prefix, blocks)


def _write_plain(target: str, prefix: bytes, blocks: Iterable[memoryview]) -> None:
    with open(target, "wb") as stream:
        stream.write(prefix)
        for block in blocks:
            stream.write(block)


def _deflate(block: memoryview) -> tuple[bytes, int, int]:
    """One block as raw deflate ending on a byte boundary (a sync flush, not final), its
    CRC-32 and length. Blocks are deflated independently (no dictionary from the one
    before: files within 0.2 % of one stream's size), so any thread can take any block."""
    from isal import isal_zlib

    compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -15)
    data = compressor.compress(block) + compressor.flush(isal_zlib.Z_SYNC_FLUSH)
    return data, isal_zlib.crc32(block), block.nbytes


def _write_gzip(target: str, prefix: bytes, chunks: Iterable[tuple[bytes, int, int]]) -> None:
    """One gzip member: the header, the deflated prefix and chunks in order, an empty
    final block, the CRC-32 (combined from the chunks') and the length."""
    from isal import isal_zlib

    with open(target, "wb") as stream:
        # Magic, deflate, no flags, no mtime, no extra flags, OS unknown (RFC 1952).
        stream.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        data, crc, size = _deflate(memoryview(prefix))
        stream.write(data)
        for data, chunk_crc, length in chunks:
            stream.write(data)
            crc = isal_zlib.crc32_combine(crc, chunk_crc, length)
            size += length
        stream.write(isal_zlib.compress(b"", wbits=-15))  # the final (empty) block
        stream.write(struct.pack("<II", crc, size & 0xFFFFFFFF))
