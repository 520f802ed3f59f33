"""Load one loadable: decode its pixels into one preallocated array.

Two passes over the files: the header of each file first (the fast reader, checking
that the file still holds the object examine saw and collecting rescale values, so that
the output type is known before any pixel is decoded), then the pixels, streamed file by
file through pydicom's pixel handlers (with the pylibjpeg plugins for JPEG, JPEG-LS,
JPEG 2000 and RLE) straight into their place in the output array. No second full copy
of the volume is made.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dicomsieve._version import __version__
from dicomsieve.codes import FileState, LoadableKind, LoadErrorCode
from dicomsieve.errors import LoadError
from dicomsieve.load.volume import Volume
from dicomsieve.loadables.model import Loadable
from dicomsieve.model import InstanceRecord
from dicomsieve.scan.read import read_file
from dicomsieve.settings import Settings

__all__ = ["KnownFiles", "load"]

_NATIVE_PIXEL_DATA = 0x7FE00010
_DEFLATED = "1.2.840.10008.1.2.1.99"
_NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
_DECODE_THREADS = 2
# Threads pay off only when each frame is a large copy (512x512 CT: 1.8x faster); for
# 256x256 MR the hand-offs cost more than they save (measured: 75 vs 107 us a slice).
_THREADED_FRAME_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class _SliceInfo:
    """Where one slice of the loadable comes from and how its values scale."""

    path: str
    frame_index: int | None  # 0-based, for multi-frame objects
    slope: float
    intercept: float
    record: InstanceRecord


KnownFiles = Mapping[str, tuple[InstanceRecord, int | None, int | None]]
"""Path -> (record, size, mtime_ns) as indexed: files whose size and modification time
are unchanged are not read again for their header."""


def load(
    loadable: Loadable, settings: Settings | None = None, *, known: KnownFiles | None = None
) -> Volume:
    """Decode the pixels of ``loadable`` into a :class:`Volume`.

    Parameters
    ----------
    loadable
        A loadable from :func:`dicomsieve.examine` (any kind but ``unsupported``).
    settings
        Limits for re-reading headers; the defaults when ``None``.
    known
        Records from the index with the size and mtime they were read at; a file whose
        size and mtime still match is not read again for its header.

    Returns
    -------
    Volume
        ``array[i, j, k]`` = (column, row, slice), with a 4th axis for a sequence and a
        last axis of 3 for colour. Rescale slope and intercept are applied per slice:
        the array is integer when every slope and intercept is an integer and the
        scaled range of the stored bits fits, else float32. When only an intercept
        would widen 8 or 16 stored bits (CT at -1024), the values present decide: they
        stay in a type of the stored width when they fit.

    Raises
    ------
    LoadError
        With a :class:`~dicomsieve.codes.LoadErrorCode`: unsupported object, a file that
        changed since it was indexed, a decoding failure, pixel data shorter than
        promised, slices that disagree in matrix or bit depth.
    """
    settings = settings or Settings()
    if loadable.kind is LoadableKind.UNSUPPORTED or not loadable.slices or len(loadable.shape) < 3:
        raise LoadError(LoadErrorCode.NOT_LOADABLE, f"{loadable.kind} has no pixels to load")
    if loadable.affine_lps is None:
        affine = np.eye(4)
    else:
        affine = np.array(loadable.affine_lps, dtype=np.float64)
    records = _headers(loadable, settings, known or {})
    infos = [_slice_info(ref.path, ref.frame_number, records[ref.path]) for ref in loadable.slices]
    first = infos[0].record
    samples = first.samples_per_pixel or 1
    _check_consistent(infos, loadable)
    dtype = _output_dtype(infos)
    shape: tuple[int, ...] = tuple(loadable.shape)
    if samples > 1:
        shape = (*shape, samples)
    stored = _stored_dtype(first)
    if _narrowable(infos, dtype, stored):
        out = _load_narrow(loadable, infos, shape, stored)
    else:
        # Fortran order: each slice out[:, :, k] is one contiguous block, filled by one
        # copy of a transposed frame, and NIfTI and NRRD write this order unchanged.
        out = np.empty(shape, dtype=dtype, order="F")
        _decode_into(out, loadable, infos)
    return Volume(
        array=out,
        affine_lps=affine,
        loadable=loadable,
        metadata=_metadata(loadable, first, infos),
    )


def _unchanged(path: str, size: int | None, mtime_ns: int | None) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return False
    return size is not None and info.st_size == size and info.st_mtime_ns == mtime_ns


def _headers(
    loadable: Loadable, settings: Settings, known: KnownFiles
) -> dict[str, InstanceRecord]:
    """The record of every file: as indexed when the file is unchanged, else re-read; the
    object must be the one examine saw."""
    expected = {ref.path: ref.sop_instance_uid for ref in loadable.slices}
    records: dict[str, InstanceRecord] = {}
    for path, sop in expected.items():
        entry = known.get(path)
        if entry is not None and entry[0].sop_instance_uid == sop and _unchanged(path, *entry[1:]):
            records[path] = entry[0]
            continue
        outcome = read_file(path, settings)
        record = outcome.instance
        if outcome.state is not FileState.INDEXED or record is None:
            code = outcome.code or outcome.state
            if outcome.code == "PIXEL_DATA_SHORT":
                raise LoadError(LoadErrorCode.PIXEL_DATA_SHORT, f"{path}: {outcome.message}")
            raise LoadError(LoadErrorCode.FILE_CHANGED, f"{path} can no longer be read ({code})")
        if record.sop_instance_uid != sop:
            raise LoadError(
                LoadErrorCode.FILE_CHANGED,
                f"{path} holds another object than when it was examined; scan again",
            )
        records[path] = record
    return records


def _slice_info(path: str, frame_number: int | None, record: InstanceRecord) -> _SliceInfo:
    slope, intercept = record.rescale_slope, record.rescale_intercept
    index: int | None = None
    if frame_number is not None:
        index = frame_number - 1
        for frame in record.frames:
            if frame.frame_number == frame_number:
                if frame.rescale_slope is not None:
                    slope = frame.rescale_slope
                if frame.rescale_intercept is not None:
                    intercept = frame.rescale_intercept
                break
    elif (record.number_of_frames or 1) > 1:
        index = 0
    return _SliceInfo(
        path=path,
        frame_index=index,
        slope=1.0 if slope is None or slope == 0 else float(slope),
        intercept=0.0 if intercept is None else float(intercept),
        record=record,
    )


def _check_consistent(infos: Sequence[_SliceInfo], loadable: Loadable) -> None:
    layouts = {
        (
            i.record.rows,
            i.record.columns,
            i.record.samples_per_pixel or 1,
            i.record.bits_allocated,
            i.record.pixel_representation or 0,
        )
        for i in infos
    }
    if len(layouts) > 1:
        raise LoadError(
            LoadErrorCode.INCONSISTENT_SLICES,
            f"{loadable.name}: slices differ in matrix, samples or bit depth: {sorted(layouts)}",
        )
    bits = infos[0].record.bits_allocated or 0
    if bits > 32:
        raise LoadError(LoadErrorCode.UNSUPPORTED_PIXELS, f"{bits}-bit pixels")


def _stored_range(record: InstanceRecord) -> tuple[int, int]:
    bits = record.bits_stored or record.bits_allocated or 16
    if record.pixel_representation == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _output_dtype(infos: Sequence[_SliceInfo]) -> np.dtype[Any]:
    """The narrowest type that holds every scaled value exactly, else float32."""
    first = infos[0].record
    if (first.samples_per_pixel or 1) > 1:
        return np.dtype(np.uint8) if (first.bits_allocated or 8) <= 8 else np.dtype(np.uint16)
    if any(
        i.record.pixel_data is not None and i.record.pixel_data.tag != _NATIVE_PIXEL_DATA
        for i in infos
    ):
        return np.dtype(np.float32)  # float or double float pixel data
    integral = all(i.slope.is_integer() and i.intercept.is_integer() for i in infos)
    if not integral:
        return np.dtype(np.float32)
    low, high = math.inf, -math.inf
    for i in infos:
        lo, hi = _stored_range(i.record)
        a, b = lo * i.slope + i.intercept, hi * i.slope + i.intercept
        low, high = min(low, a, b), max(high, a, b)
    for candidate in (np.uint8, np.int16, np.uint16, np.int32):
        limits = np.iinfo(candidate)
        if limits.min <= low and high <= limits.max:
            if candidate is np.uint8 and (first.bits_allocated or 16) > 8:
                continue
            return np.dtype(candidate)
    return np.dtype(np.float32)


def _stored_dtype(record: InstanceRecord) -> np.dtype[Any]:
    bits = record.bits_allocated or 16
    signed = record.pixel_representation == 1
    size = {8: 1, 16: 2, 32: 4}.get(bits, 8)
    return np.dtype(f"{'i' if signed else 'u'}{size}")


def _narrowable(infos: Sequence[_SliceInfo], dtype: np.dtype[Any], stored: np.dtype[Any]) -> bool:
    """The type chosen from the header is wider than the stored pixels only because of
    an intercept (CT: 16 stored bits, intercept -1024); the actual values may fit."""
    return (
        np.issubdtype(dtype, np.integer)
        and dtype.itemsize > stored.itemsize
        and stored.itemsize in (1, 2)
        and (infos[0].record.samples_per_pixel or 1) == 1
        and all(i.slope == 1.0 for i in infos)
    )


def _load_narrow(
    loadable: Loadable, infos: Sequence[_SliceInfo], shape: tuple[int, ...], stored: np.dtype[Any]
) -> NDArray[Any]:
    """Decode the stored values, then add the intercepts in place when the actual range
    fits a type of the stored width (int16 for CT), else widen (a second copy, only
    when the data need it)."""
    out = np.empty(shape, dtype=stored, order="F")
    raw = [replace(i, intercept=0.0) for i in infos]
    _decode_into(out, loadable, raw)
    intercepts = [int(i.intercept) for i in infos]
    low = int(out.min()) + min(intercepts) if out.size else 0
    high = int(out.max()) + max(intercepts) if out.size else 0
    target: np.dtype[Any] | None = None
    for candidate in (np.int8, np.uint8, np.int16, np.uint16):
        limits = np.iinfo(candidate)
        if (
            np.dtype(candidate).itemsize == stored.itemsize
            and limits.min <= low <= high <= limits.max
        ):
            target = np.dtype(candidate)
            break
    if target is None:
        wide = out.astype(np.int32, order="F")
        for index, intercept in _intercept_blocks(loadable, intercepts):
            if intercept:
                wide[index] += intercept
        return wide
    # Same width: add modulo 2**bits on the unsigned view, in place. Two's complement
    # makes the bits the exact result in ``target``, because every result fits it.
    bits = stored.itemsize * 8
    unsigned = out.view(np.dtype(f"u{stored.itemsize}"))
    for index, intercept in _intercept_blocks(loadable, intercepts):
        if intercept:
            unsigned[index] += unsigned.dtype.type(intercept % (1 << bits))
    return out.view(target)


def _intercept_blocks(
    loadable: Loadable, intercepts: Sequence[int]
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """The part of the array each slice reference fills, with its intercept; the whole
    array at once when every intercept is the same."""
    if len(set(intercepts)) == 1:
        yield (Ellipsis,), intercepts[0]
        return
    sequence = len(loadable.shape) == 4
    per_volume = loadable.shape[2] if loadable.mosaic_slices is None else 1
    for position, intercept in enumerate(intercepts):
        if loadable.mosaic_slices is not None:
            index: tuple[Any, ...] = (Ellipsis, position) if sequence else (Ellipsis,)
        else:
            k, t = position % per_volume, position // per_volume
            index = (slice(None), slice(None), k, t) if sequence else (slice(None), slice(None), k)
        yield index, intercept


def _decode_into(out: NDArray[Any], loadable: Loadable, infos: Sequence[_SliceInfo]) -> None:
    """Decode file by file, on a few threads (reads and copies release the GIL); put each
    frame (transposed to column, row) in its place. Distinct files fill distinct slices."""
    slices_per_volume = loadable.shape[2] if loadable.mosaic_slices is None else 1
    by_path: dict[str, list[tuple[int, _SliceInfo]]] = defaultdict(list)
    for position, info in enumerate(infos):
        by_path[info.path].append((position, info))

    def one_file(item: tuple[str, list[tuple[int, _SliceInfo]]]) -> None:
        path, wanted = item
        _decode_file(out, loadable, slices_per_volume, path, wanted)

    items = list(by_path.items())
    frame_bytes = (infos[0].record.rows or 0) * (infos[0].record.columns or 0) * out.itemsize
    if len(items) < 4 or frame_bytes < _THREADED_FRAME_BYTES or _DECODE_THREADS < 2:
        for item in items:
            one_file(item)
        return
    with ThreadPoolExecutor(max_workers=_DECODE_THREADS) as pool:
        for _ in pool.map(one_file, items):
            pass


def _decode_file(
    out: NDArray[Any],
    loadable: Loadable,
    slices_per_volume: int,
    path: str,
    wanted: list[tuple[int, _SliceInfo]],
) -> None:
    indices = [info.frame_index or 0 for _, info in wanted]
    multi = any(info.frame_index is not None for _, info in wanted)
    try:
        record = wanted[0][1].record
        if _direct(out, loadable, record, wanted):
            _read_native_into(out, slices_per_volume, path, record, wanted)
            return
        frames: Iterator[NDArray[Any]]
        if _native(record):
            frames = _native_frames(path, record, indices)
        else:
            # pydicom decodes straight from the file, except a deflated dataset, which
            # must be read (and inflated) as a whole first.
            source: Any = path
            if record.transfer_syntax_uid == _DEFLATED:
                # Imported here: pydicom costs 0.15 s to import and native pixels
                # never need it.
                from pydicom import dcmread

                source = dcmread(path)
            frames = _frames(source, indices if multi else None)
        for (position, info), frame in zip(wanted, frames, strict=True):
            _place(out, loadable, position, slices_per_volume, frame, info)
    except LoadError:
        raise
    except Exception as exc:  # codec errors come in many classes
        message = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if "shorter" in message or "truncat" in message.lower():
            raise LoadError(LoadErrorCode.PIXEL_DATA_SHORT, f"{path}: {message}") from exc
        raise LoadError(LoadErrorCode.DECODE_FAILED, f"{path}: {message}") from exc


def _native(record: InstanceRecord) -> bool:
    """Uncompressed little-endian greyscale pixels that the fast path reads itself (the
    agreement with pydicom is tested on every such file of the test data)."""
    pixel = record.pixel_data
    bits = record.bits_allocated
    stored = record.bits_stored or bits
    return (
        record.transfer_syntax_uid in _NATIVE_SYNTAXES
        and pixel is not None
        and pixel.tag == _NATIVE_PIXEL_DATA
        and not pixel.deflated
        and pixel.length is not None
        and (record.samples_per_pixel or 1) == 1
        and bits in (8, 16, 32)
        and stored is not None
        and 0 < stored <= bits
        and (record.high_bit is None or record.high_bit == stored - 1)
        and bool(record.rows and record.columns)
    )


def _native_frames(path: str, record: InstanceRecord, indices: list[int]) -> Iterator[NDArray[Any]]:
    """Frames read straight from the file at the pixel data offset the scan recorded,
    with the unused high bits cleared (unsigned) or the sign extended (signed), as pydicom
    does."""
    assert record.bits_allocated is not None
    rows, columns = record.rows or 0, record.columns or 0
    signed = record.pixel_representation == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{record.bits_allocated // 8}")
    frame_bytes = _native_extent(path, record, dtype.itemsize)
    fd = os.open(path, os.O_RDONLY)
    try:
        for index in indices:
            frame = np.empty(rows * columns, dtype=dtype)
            _read_frame(fd, path, record, index, frame_bytes, frame)
            yield frame.reshape(rows, columns)
    finally:
        os.close(fd)


def _native_extent(path: str, record: InstanceRecord, itemsize: int) -> int:
    """Bytes of one frame; ``PIXEL_DATA_SHORT`` when the pixel data cannot hold them all."""
    assert record.pixel_data is not None
    frame_bytes = (record.rows or 0) * (record.columns or 0) * itemsize
    frames = record.number_of_frames or 1
    if (record.pixel_data.length or 0) < frame_bytes * frames:
        raise LoadError(
            LoadErrorCode.PIXEL_DATA_SHORT,
            f"{path}: {record.pixel_data.length} bytes of pixel data, "
            f"{frame_bytes * frames} promised",
        )
    return frame_bytes


def _read_frame(
    fd: int, path: str, record: InstanceRecord, index: int, frame_bytes: int, out: NDArray[Any]
) -> None:
    """Frame ``index`` (0-based) into ``out`` (contiguous, of the stored width), its
    unused high bits fixed in place."""
    assert record.pixel_data is not None
    # A byte view of ``out`` itself (cast refuses what is not C-contiguous): never a
    # silent copy that the read would fill instead.
    raw = out.data.cast("B")
    offset = record.pixel_data.offset + index * frame_bytes
    got = os.preadv(fd, [raw], offset)
    while 0 < got < frame_bytes:  # a short read that is not the end of the file
        more = os.preadv(fd, [raw[got:]], offset + got)
        if more <= 0:
            break
        got += more
    if got < frame_bytes:
        raise LoadError(LoadErrorCode.PIXEL_DATA_SHORT, f"{path}: frame {index + 1} ends early")
    bits = record.bits_allocated or 16
    fix_high_bits(out, bits, record.bits_stored or bits, record.pixel_representation == 1)


def fix_high_bits(values: NDArray[Any], bits: int, stored: int, signed: bool) -> None:
    """In place, as pydicom does: the bits above ``stored`` cleared (unsigned) or set to
    the sign (signed). ``values`` is any integer array ``bits`` wide; it is
    reinterpreted, so that an int16 array of 12-bit unsigned values is masked too."""
    shift = bits - stored
    if shift <= 0:
        return
    size = bits // 8
    if signed:
        view = values.view(f"<i{size}")
        np.left_shift(view, shift, out=view)
        np.right_shift(view, shift, out=view)
    else:
        view = values.view(f"<u{size}")
        np.bitwise_and(view, view.dtype.type((1 << stored) - 1), out=view)


def _read_native_into(
    out: NDArray[Any],
    slices_per_volume: int,
    path: str,
    record: InstanceRecord,
    wanted: list[tuple[int, _SliceInfo]],
) -> None:
    """Each wanted frame read straight into its slice of ``out``: a slice of a
    Fortran-ordered array is contiguous and in the frame's order (column fastest), so
    the file's bytes go there with one copy, none through a temporary frame."""
    frame_bytes = _native_extent(path, record, out.itemsize)
    fd = os.open(path, os.O_RDONLY)
    try:
        for position, info in wanted:
            k, t = position % slices_per_volume, position // slices_per_volume
            target = out[:, :, k] if out.ndim == 3 else out[:, :, k, t]
            _read_frame(fd, path, record, info.frame_index or 0, frame_bytes, target.T)
    finally:
        os.close(fd)


def _direct(
    out: NDArray[Any], loadable: Loadable, record: InstanceRecord, wanted: list[tuple[int, Any]]
) -> bool:
    """Native frames that go into ``out`` unchanged: the output's width, no rescale, one
    greyscale frame per slice of the loadable's matrix."""
    return (
        _native(record)
        and loadable.mosaic_slices is None
        and out.ndim in (3, 4)
        and out.flags.f_contiguous
        and out.dtype.kind in "iu"
        and out.itemsize * 8 == record.bits_allocated
        and out.shape[:2] == (record.columns, record.rows)
        and all(info.slope == 1.0 and info.intercept == 0.0 for _, info in wanted)
    )


def _frames(source: Any, indices: list[int] | None) -> Iterator[NDArray[Any]]:
    """The frames ``indices`` of one object (its only frame when ``None``), decoded.

    One frame: ``pixel_array``. Several: ``iter_pixels``, which parses the header once;
    where pydicom 3.0's ``iter_pixels`` fails on a read-only buffer (signed JPEG-LS),
    the dataset is read once and each frame decoded with ``pixel_array``.
    """
    from pydicom import dcmread
    from pydicom.pixels.utils import iter_pixels, pixel_array

    if indices is None:
        yield pixel_array(source)
        return
    done = 0
    try:
        for frame in iter_pixels(source, indices=indices):
            yield frame
            done += 1
    except ValueError as exc:
        if "read-only" not in str(exc) or done:
            raise
        dataset = source if not isinstance(source, str) else dcmread(source)
        for index in indices:
            yield pixel_array(dataset, index=index)


def _place(
    out: NDArray[Any],
    loadable: Loadable,
    position: int,
    slices_per_volume: int,
    frame: NDArray[Any],
    info: _SliceInfo,
) -> None:
    rows, columns = info.record.rows or 0, info.record.columns or 0
    if frame.shape[:2] != (rows, columns):
        raise LoadError(
            LoadErrorCode.PIXEL_DATA_SHORT,
            f"{info.path}: decoded {frame.shape[:2]} pixels, the header says {(rows, columns)}",
        )
    if loadable.mosaic_slices is not None:
        _place_mosaic(out, loadable, position, frame, info)
        return
    k, t = position % slices_per_volume, position // slices_per_volume
    target = (slice(None), slice(None), k) if out.ndim - (frame.ndim - 2) == 3 else None
    index: tuple[Any, ...] = target if target is not None else (slice(None), slice(None), k, t)
    out[index] = _scaled(np.swapaxes(frame, 0, 1), info, out.dtype)


def _place_mosaic(
    out: NDArray[Any], loadable: Loadable, position: int, frame: NDArray[Any], info: _SliceInfo
) -> None:
    columns, rows, n = loadable.shape[0], loadable.shape[1], loadable.shape[2]
    # Tiles fill the grid row by row; a row holds as many as fit the image's width
    # (ceil(sqrt(n)) for Siemens and UIH alike).
    per_row = frame.shape[1] // columns if columns else 0
    if per_row < 1 or -(-n // per_row) * rows > frame.shape[0]:
        raise LoadError(
            LoadErrorCode.INCONSISTENT_SLICES,
            f"{info.path}: a {frame.shape[1]}x{frame.shape[0]} image cannot hold {n} tiles "
            f"of {columns}x{rows}",
        )
    t = position
    for k in range(n):
        r0, c0 = (k // per_row) * rows, (k % per_row) * columns
        tile = frame[r0 : r0 + rows, c0 : c0 + columns]
        index: tuple[Any, ...] = (slice(None), slice(None), k)
        if len(loadable.shape) == 4:
            index = (*index, t)
        out[index] = _scaled(np.swapaxes(tile, 0, 1), info, out.dtype)


def _scaled(stored: NDArray[Any], info: _SliceInfo, dtype: np.dtype[Any]) -> NDArray[Any]:
    if info.slope == 1.0 and info.intercept == 0.0:
        return stored
    if np.issubdtype(dtype, np.integer):
        return stored.astype(np.int64) * int(info.slope) + int(info.intercept)
    return stored.astype(np.float64) * info.slope + info.intercept


def _metadata(
    loadable: Loadable, first: InstanceRecord, infos: Sequence[_SliceInfo]
) -> dict[str, Any]:
    """Sidecar fields: BIDS names where they exist (times in seconds), then ours."""
    out: dict[str, Any] = {}

    def put(name: str, value: object) -> None:
        if value is not None and value != () and value != "":
            out[name] = list(value) if isinstance(value, tuple) else value

    put("Modality", first.modality)
    put("Manufacturer", first.manufacturer)
    put("ManufacturerModelName", first.manufacturer_model_name)
    put("SeriesDescription", first.series_description)
    put("ProtocolName", first.protocol_name)
    put("SequenceName", first.sequence_name)
    put("ImageType", first.image_type)
    put("SeriesNumber", first.series_number)
    put("AcquisitionTime", _bids_time(first.acquisition_time))
    echo_time = first.echo_time
    number = loadable.slices[0].frame_number
    if echo_time is None and number is not None:  # enhanced MR: per frame
        echo_time = next((f.echo_time for f in first.frames if f.frame_number == number), None)
    put("EchoTime", None if echo_time is None else echo_time / 1000.0)
    put("RepetitionTime", None if first.repetition_time is None else first.repetition_time / 1000.0)
    put("InversionTime", None if first.inversion_time is None else first.inversion_time / 1000.0)
    put("FlipAngle", first.flip_angle)
    put("SliceThickness", first.slice_thickness)
    put("SpacingBetweenSlices", first.spacing_between_slices)
    put("PhotometricInterpretation", first.photometric_interpretation)
    put("SamplesPerPixel", first.samples_per_pixel or 1)
    put("ConversionSoftware", "dicomsieve")
    put("ConversionSoftwareVersion", __version__)
    slopes = sorted({i.slope for i in infos})
    intercepts = sorted({i.intercept for i in infos})
    out["dicomsieve"] = {
        "name": loadable.name,
        "kind": str(loadable.kind),
        "reason": loadable.reason,
        "confidence": loadable.confidence,
        "series_instance_uid": loadable.series_instance_uid,
        "warnings": [w.to_dict() for w in loadable.warnings],
        "source_sop_instance_uids": list(
            dict.fromkeys(s.sop_instance_uid for s in loadable.slices)
        ),
        "frames": [s.frame_number for s in loadable.slices]
        if any(s.frame_number is not None for s in loadable.slices)
        else None,
        "rescale_slopes": slopes,
        "rescale_intercepts": intercepts,
        "monochrome1_kept_as_stored": first.photometric_interpretation == "MONOCHROME1",
        "mosaic_slices": loadable.mosaic_slices,
    }
    return out


def _bids_time(value: str | None) -> str | None:
    """DICOM TM ``HHMMSS.ffffff`` as ``HH:MM:SS.ffffff``."""
    if not value or len(value) < 6 or not value[:6].isdigit():
        return value
    return f"{value[0:2]}:{value[2:4]}:{value[4:]}"
