"""Voxel conformance of ``dicomsieve.load`` with dcm2niix, compared in world space.

A pure library used by ``tests/test_convert_conformance.py`` and
``tools/conformance_report.py``. It builds on ``tests/conformance.py``, which pairs each
dcm2niix output with the dicomsieve loadable that has the same voxel grid; here the pairs
are loaded and their voxels compared:

* **with a reference NIfTI** (the upstream ``Ref/`` file that ``ref_index.json`` names in
  ``upstream_comparison``, or a dicom2nifti ``*_ground_truth.nii.gz``): for every reference
  voxel index, its centre in world space (the reference sform, RAS) is mapped through
  ``inv(volume.affine_ras)`` to a dicomsieve index. Every centre must land on a dicomsieve
  voxel centre (within :data:`VOXEL_ATOL_MM` in world space), every dicomsieve voxel must
  be hit once, and the values must be identical (the reference scaled by its
  ``scl_slope``/``scl_inter``; float values within a few float32 rounding steps, see
  :func:`values_close`). Raw arrays are never compared: the mapping decides which voxel
  faces which. Because both maps are affine, the index mapping is a signed axis
  permutation plus an offset, and its world-space error is largest at a corner, so the 8
  corners bound the error everywhere;
* **without a reference file** (dcm_qa_ct, dicom2nifti, heudiconv... where upstream has no
  ``Ref/`` NIfTI): the data ``min``/``max``/``mean`` that ``ref_index.json`` records for
  the fresh dcm2niix conversion (after ``scl_slope``/``scl_inter``), and the kind of
  number (integer or float) they imply.

dcm2niix stores Philips images as the stored integers with ``scl_slope``/``scl_inter``
taken from Philips' private scale slope (2005,100E), so its values are Philips'
"floating point" values. dicomsieve applies only the standard RescaleSlope/Intercept
(0028,1053/1052). Where a reference file exists such a pair is classified
``SCALING`` when dicomsieve's values are an exact linear function of the reference's
stored integers (same pixels, another scale); each such pair is listed, case by case, in
:data:`KNOWN_VOXEL_DIFFERENCES`.

The module also compares ``dicomsieve.regularize`` with dcm2niix's ``_Tilt``/``_Eq``
outputs (grid and statistics from ``ref_index.json``) and with dicom2nifti's resampled
ground truth (voxel values in world space where both grids hold acquired data).
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from conformance import (
    DATA_DIR,
    RAS_FROM_LPS,
    Case,
    CaseResult,
    OurLoadable,
    RefOutput,
    geometry_match,
    near_miss,
    tolerance_mm,
)

__all__ = [
    "FLOAT_ULPS",
    "KNOWN_RESAMPLE_GRIDS",
    "KNOWN_VOXEL_DIFFERENCES",
    "RESAMPLE_GROUND_TRUTHS",
    "SAME_SLICES",
    "STATS_MEAN_ATOL",
    "VOXEL_ATOL_MM",
    "CaseVoxels",
    "ExamineRecorder",
    "GridMap",
    "KnownResampleGrid",
    "KnownVoxelDifference",
    "LossyCheck",
    "OverlapSlice",
    "RefImage",
    "RefRecord",
    "ResampleComparison",
    "ResampleOutcome",
    "SliceCheck",
    "Stats",
    "SyntaxVolume",
    "VoxelResult",
    "along_stack",
    "check_known_voxel_differences",
    "check_resampled_slices",
    "compare_case",
    "compare_grids",
    "compare_image",
    "compare_overlap",
    "compare_stats",
    "gather",
    "ground_truths",
    "image_to_ref",
    "load_ref_image",
    "loadable_index",
    "lossy_jpeg2000",
    "map_grid",
    "ref_records",
    "resample_case",
    "same_slice_pairs",
    "stale_known_voxel_keys",
    "syntax_volumes",
    "values_close",
    "written_image",
    "written_values",
]

VOXEL_ATOL_MM = 1e-3
"""A reference voxel centre must lie this close (mm, world space) to a dicomsieve one."""

FLOAT_ULPS = 4.0
"""Float values are equal when within this many float32 rounding steps (see
:func:`values_close`)."""

STATS_MEAN_ATOL = 1e-4
"""``ref_index.json`` rounds the mean to 4 decimals (error up to 5e-5)."""

_EPS32 = float(np.finfo(np.float32).eps)

Float4x4 = NDArray[np.float64]
Status = Literal["equal", "differs", "no reference file", "not compared"]


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class RefRecord:
    """What ``ref_index.json`` records of one dcm2niix output of one case."""

    name: str
    datatype: str
    data_min: float | None
    data_max: float | None
    data_mean: float | None
    shape: tuple[int, ...]
    zooms: tuple[float, ...]
    sform_ras: Float4x4 | None
    ref_file: Path | None
    """The upstream ``Ref/`` NIfTI (absolute), when present in the data."""


@functools.lru_cache(maxsize=64)
def _index(path: Path) -> Mapping[str, Any]:
    return cast(Mapping[str, Any], json.loads(path.read_text(encoding="utf-8")))


def _case_entry(case: Case, data_dir: Path) -> Mapping[str, Any]:
    index = _index(data_dir / case.folder / "ref_index.json")
    return cast(Mapping[str, Any], index["cases"][case.key])


def ref_records(case: Case, data_dir: Path = DATA_DIR) -> dict[str, RefRecord]:
    """Every output of the case's dcm2niix run, with its statistics and Ref file."""
    entry = _case_entry(case, data_dir)
    upstream = entry.get("upstream_comparison") or {}
    out: dict[str, RefRecord] = {}
    for name, raw in entry[case.run].get("outputs", {}).items():
        data = raw.get("data") or {}
        link = upstream.get(name)
        rel = link.get("upstream_ref") if isinstance(link, Mapping) else None
        path = data_dir / case.folder / str(rel) if rel else None
        sform = raw.get("sform") if raw.get("sform_code", 1) else None
        out[name] = RefRecord(
            name=name,
            datatype=str(raw.get("datatype", "")),
            data_min=_float(data.get("min")),
            data_max=_float(data.get("max")),
            data_mean=_float(data.get("mean")),
            shape=tuple(int(n) for n in raw.get("shape") or ()),
            zooms=tuple(float(z) for z in raw.get("zooms") or ()),
            sform_ras=None if sform is None else np.asarray(sform, dtype=np.float64),
            ref_file=path if path is not None and path.is_file() else None,
        )
    return out


def ground_truths(case: Case, data_dir: Path = DATA_DIR) -> dict[str, Path]:
    """dicom2nifti's own ``*_ground_truth.nii.gz`` files listed for the case (not the
    ``_reoriented`` copies, which hold the same voxels in another axis order)."""
    entry = _case_entry(case, data_dir)
    out: dict[str, Path] = {}
    for name, raw in (entry.get("upstream_comparison") or {}).items():
        rel = raw.get("dicom2nifti_ground_truth") if isinstance(raw, Mapping) else None
        if rel and "_reoriented" not in str(name):
            path = data_dir / case.folder / str(rel)
            if path.is_file():
                out[str(name)] = path
    return out


def _float(value: object) -> float | None:
    return float(cast(float, value)) if isinstance(value, int | float) else None


@dataclass(frozen=True, eq=False)
class RefImage:
    """A reference NIfTI: stored values, scaling and the world map of its voxels."""

    path: Path
    stored: NDArray[Any]
    """Stored values; RGB as a last axis of 3 (an alpha channel is dropped)."""
    slope: float
    inter: float
    affine_ras: Float4x4
    affine_code: str
    """``sform`` or ``qform``: which matrix placed the voxels."""

    @property
    def scaled(self) -> NDArray[Any]:
        """Values after ``scl_slope``/``scl_inter`` (float64 unless the scaling is 1, 0)."""
        if self.slope == 1.0 and self.inter == 0.0:
            return self.stored
        return self.stored.astype(np.float64) * self.slope + self.inter

    @property
    def is_scaled(self) -> bool:
        """The NIfTI header carries a scaling other than (1, 0)."""
        return not (self.slope == 1.0 and self.inter == 0.0)

    @property
    def scaled_is_integer(self) -> bool:
        """Every value after scaling is an integer (the reference's kind of number)."""
        if np.issubdtype(self.stored.dtype, np.integer):
            return float(self.slope).is_integer() and float(self.inter).is_integer()
        return False

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return (self.stored.shape[0], self.stored.shape[1], self.stored.shape[2])


def load_ref_image(path: Path) -> RefImage:
    """Read a NIfTI: stored array, scaling, sform (else qform). RGB24/RGBA32 become a
    last axis of 3 (alpha dropped); trailing axes of length 1 beyond the third are
    dropped; a 2D image gets a third axis of 1."""
    image = nib.load(str(path))
    assert isinstance(image, nib.Nifti1Image), path
    return image_to_ref(image, path)


def image_to_ref(image: nib.Nifti1Image, path: Path) -> RefImage:
    """:func:`load_ref_image` for an image in memory."""
    proxy: Any = image.dataobj
    stored: NDArray[Any] = np.asarray(proxy.get_unscaled())
    if stored.dtype.names:  # RGB24 / RGBA32 as a structured dtype
        stored = np.stack([stored[c] for c in ("R", "G", "B")], axis=-1)
        rgb = True
    else:
        rgb = False
    spatial_ndim = stored.ndim - (1 if rgb else 0)
    while spatial_ndim > 3 and stored.shape[spatial_ndim - 1] == 1:
        stored = np.squeeze(stored, axis=spatial_ndim - 1)
        spatial_ndim -= 1
    while spatial_ndim < 3:
        stored = np.expand_dims(stored, axis=spatial_ndim)
        spatial_ndim += 1
    slope, inter = proxy.slope, proxy.inter
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    untyped: Any = image  # nibabel's getters are not annotated
    if int(untyped.header["sform_code"]) > 0:
        affine, code = untyped.get_sform(), "sform"
    else:
        affine, code = untyped.get_qform(), "qform"
    return RefImage(
        path=path,
        stored=stored,
        slope=slope,
        inter=inter,
        affine_ras=np.asarray(affine, dtype=np.float64),
        affine_code=code,
    )


# --------------------------------------------------------------------------- grid mapping


@dataclass(frozen=True)
class GridMap:
    """Reference voxel ``(i, j, k)`` is dicomsieve voxel ``P @ (i, j, k) + offset``.

    ``perm[a]`` is the dicomsieve axis that reference axis ``a`` runs along, ``sign[a]``
    its direction; ``max_error_mm`` the largest world distance between a reference voxel
    centre and the dicomsieve voxel centre it is mapped to.
    """

    perm: tuple[int, int, int]
    sign: tuple[int, int, int]
    offset: tuple[int, int, int]
    max_error_mm: float

    def text(self) -> str:
        """``i->i, j->-j, k->k``."""
        names = "ijk"
        return ", ".join(
            f"{names[a]}->{'-' if self.sign[a] < 0 else ''}{names[self.perm[a]]}" for a in range(3)
        )


def _corner_indices(shape: Sequence[int]) -> NDArray[np.float64]:
    axes = [(0, n - 1) if n > 1 else (0,) for n in shape[:3]]
    grid = np.array(np.meshgrid(*axes, indexing="ij"), dtype=np.float64)
    return grid.reshape(3, -1).T


def map_grid(
    ref_affine: Float4x4,
    ref_shape: Sequence[int],
    our_affine: Float4x4,
    our_shape: Sequence[int],
) -> GridMap | str:
    """How the reference grid lies on ours, or why it does not (a sentence).

    Both affines map voxel indices to the same world frame. Reference axes of one voxel
    are free: their step never matters.
    """
    ref3 = [int(n) for n in ref_shape[:3]]
    our3 = [int(n) for n in our_shape[:3]]
    m = np.linalg.inv(our_affine) @ ref_affine
    lin = m[:3, :3].copy()
    for a in range(3):
        if ref3[a] == 1:
            lin[:, a] = 0.0
    perm = [-1, -1, -1]
    sign = [1, 1, 1]
    for a in range(3):
        if ref3[a] == 1:
            continue
        b = int(np.argmax(np.abs(lin[:, a])))
        if b in perm:
            return f"reference axes {perm.index(b)} and {a} both run along our axis {b}"
        perm[a], sign[a] = b, 1 if lin[b, a] > 0 else -1
    free = [b for b in range(3) if b not in perm]
    for a in range(3):
        if perm[a] < 0:
            perm[a] = free.pop(0)
    p = np.zeros((3, 3))
    for a in range(3):
        if ref3[a] > 1:
            p[perm[a], a] = sign[a]
    offset = np.rint(m[:3, 3])
    corners = _corner_indices(ref3)
    residual_index = corners @ (lin - p).T + (m[:3, 3] - offset)
    error = float(np.max(np.linalg.norm(residual_index @ our_affine[:3, :3].T, axis=1)))
    found = GridMap(
        perm=(perm[0], perm[1], perm[2]),
        sign=(sign[0], sign[1], sign[2]),
        offset=(int(offset[0]), int(offset[1]), int(offset[2])),
        max_error_mm=error,
    )
    if error > VOXEL_ATOL_MM:
        return (
            f"reference voxel centres lie up to {error:.4f} mm from dicomsieve's"
            f" (tolerance {VOXEL_ATOL_MM} mm; axes {found.text()})"
        )
    mapped = corners @ p.T + offset
    if any(our3[perm[a]] != ref3[a] for a in range(3)) or mapped.min() < 0:
        return f"grids differ: reference {ref3} maps onto dicomsieve {our3} ({found.text()})"
    if np.any(mapped.max(axis=0) > np.array(our3) - 1):
        return f"grids are shifted: reference {ref3} runs past dicomsieve {our3}"
    return found


def gather(our: NDArray[Any], grid: GridMap, ref_shape: Sequence[int]) -> NDArray[Any]:
    """Our voxels in the reference's voxel order (shape ``ref_shape[:3]`` + our trailing
    axes): ``out[i, j, k] = our[P @ (i, j, k) + offset]``."""
    index: list[NDArray[np.intp]] = [np.zeros((1, 1, 1), dtype=np.intp) for _ in range(3)]
    for b in range(3):
        index[b] = index[b] + grid.offset[b]
    for a in range(3):
        n = int(ref_shape[a])
        steps = grid.sign[a] * np.arange(n, dtype=np.intp)
        shape = [1, 1, 1]
        shape[a] = n
        index[grid.perm[a]] = index[grid.perm[a]] + steps.reshape(shape)
    full = np.broadcast_shapes(*(i.shape for i in index))
    return our[tuple(np.broadcast_to(i, full) for i in index)]


# --------------------------------------------------------------------------- values


def values_close(a: NDArray[Any], b: NDArray[Any], integer: bool) -> NDArray[np.bool_]:
    """Element-wise equality: exact for integers; for floats within :data:`FLOAT_ULPS`
    float32 rounding steps of the larger magnitude, or of the larger of the two arrays'
    largest magnitude times 1e-7 (values that went through float32 as a difference of two
    large numbers, such as ``stored * slope - pi``)."""
    if integer:
        return np.asarray(np.equal(a, b), dtype=np.bool_)
    x, y = a.astype(np.float64), b.astype(np.float64)
    scale = max(float(np.max(np.abs(x), initial=0.0)), float(np.max(np.abs(y), initial=0.0)))
    tol = FLOAT_ULPS * _EPS32 * np.maximum(np.maximum(np.abs(x), np.abs(y)), scale * 1e-7)
    return np.asarray(np.abs(x - y) <= tol, dtype=np.bool_)


@dataclass(frozen=True)
class Stats:
    """Minimum, maximum and mean of an array (all channels, all time points)."""

    min: float
    max: float
    mean: float

    @classmethod
    def of(cls, array: NDArray[Any]) -> Stats:
        return cls(float(np.min(array)), float(np.max(array)), float(np.mean(array)))

    def text(self) -> str:
        return f"min {_g(self.min)}, max {_g(self.max)}, mean {self.mean:.4f}"


def _g(value: float) -> str:
    return f"{value:.6g}"


def _dtype_kind(dtype: np.dtype[Any]) -> str:
    return "integer" if np.issubdtype(dtype, np.integer) else "float"


@dataclass(frozen=True)
class VoxelResult:
    """The comparison of one dicomsieve volume with one reference.

    ``codes`` are stable names of what differs: ``GRID`` (voxel centres do not coincide),
    ``VALUES`` (values differ), ``SCALING`` (values are the same stored integers under
    another linear scale), ``STATS`` (recorded min/max/mean differ), ``DTYPE`` (integer
    against float). ``details`` says how, with numbers.
    """

    case_id: str
    output: str
    """The dcm2niix output name, or ``dicom2nifti:<ground truth file>``."""
    loadable: str
    reference: str
    """``Ref/<file>``, ``<ground truth file>`` or ``ref_index.json statistics``."""
    status: Status
    codes: frozenset[str]
    details: tuple[str, ...]
    ours_dtype: str = ""
    ref_dtype: str = ""
    axes: str = ""
    ours_stats: Stats | None = None
    ref_stats: Stats | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.case_id, self.output)

    def summary(self) -> str:
        """One line: status, then what differs."""
        if not self.details:
            return self.status
        return f"{self.status}: " + "; ".join(self.details)


def _linear_fit(stored: NDArray[Any], ours: NDArray[Any]) -> tuple[float, float, float] | None:
    """``ours = a * stored + b`` by least squares: (a, b, largest residual), or ``None``
    when ``stored`` is constant."""
    x = stored.astype(np.float64).ravel()
    y = ours.astype(np.float64).ravel()
    if x.size < 2 or float(np.ptp(x)) == 0.0:
        return None
    design = np.stack([x, np.ones_like(x)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = float(np.max(np.abs(design @ np.array([a, b]) - y)))
    return float(a), float(b), residual


def compare_image(
    our_array: NDArray[Any],
    our_affine_ras: Float4x4,
    ref: RefImage,
    *,
    case_id: str,
    output: str,
    loadable: str,
    reference: str,
) -> VoxelResult:
    """Compare dicomsieve's voxels (array indexed column, row, slice) with a reference
    NIfTI by mapping voxel centres (see the module docstring)."""
    details: list[str] = []
    codes: set[str] = set()
    ours_stats, ref_stats = Stats.of(our_array), Stats.of(ref.scaled)
    ref_kind = "integer" if ref.scaled_is_integer else "float"
    ours_kind = _dtype_kind(our_array.dtype)
    ref_spatial_ndim = 3
    our_trailing = our_array.shape[3:]
    ref_trailing = ref.stored.shape[ref_spatial_ndim:]
    grid = map_grid(ref.affine_ras, ref.spatial_shape, our_affine_ras, our_array.shape)
    if isinstance(grid, str):
        codes.add("GRID")
        details.append(grid)
    elif our_trailing != ref_trailing:
        codes.add("GRID")
        details.append(f"extra axes differ: dicomsieve {our_trailing}, reference {ref_trailing}")
    extra: dict[str, float] = {}
    axes = ""
    if isinstance(grid, GridMap) and not codes:
        axes = grid.text()
        view = gather(our_array, grid, ref.spatial_shape)
        integer = ref_kind == "integer" and ours_kind == "integer"
        same = values_close(view, ref.scaled, integer)
        if not bool(np.all(same)):
            n_diff = int(np.size(same) - np.count_nonzero(same))
            delta = np.abs(view.astype(np.float64) - ref.scaled.astype(np.float64))
            fit = _linear_fit(ref.stored, view) if ref.is_scaled else None
            if fit is not None and fit[2] <= FLOAT_ULPS * _EPS32 * max(
                abs(ours_stats.min), abs(ours_stats.max), 1.0
            ):
                a, b, residual = fit
                codes.add("SCALING")
                extra.update(slope=a, inter=b, ref_slope=ref.slope, ref_inter=ref.inter)
                extra["max_abs"] = float(delta.max())
                details.append(
                    f"same stored values, another scale: dicomsieve = stored x {_g(a)}"
                    f" + {_g(b)} (max residual {residual:.2g}), the reference = stored x"
                    f" scl_slope {_g(ref.slope)} + scl_inter {_g(ref.inter)}; values apart by"
                    f" up to {_g(float(delta.max()))}"
                )
            else:
                codes.add("VALUES")
                worst = np.unravel_index(int(np.argmax(delta)), delta.shape)
                extra.update(differing=n_diff, max_abs=float(delta.max()))
                details.append(
                    f"{n_diff} of {same.size} values differ, by up to {_g(float(delta.max()))}"
                    f" (reference index {tuple(int(i) for i in worst)}: dicomsieve"
                    f" {_g(float(view[worst]))}, reference {_g(float(ref.scaled[worst]))})"
                )
        extra["max_error_mm"] = grid.max_error_mm
    if ref_kind != ours_kind and "SCALING" not in codes:
        codes.add("DTYPE")
        details.append(
            f"dicomsieve's values are {ours_kind} ({our_array.dtype}), the reference's"
            f" {ref_kind} ({_ref_dtype_text(ref)})"
        )
    return VoxelResult(
        case_id=case_id,
        output=output,
        loadable=loadable,
        reference=reference,
        status="differs" if codes else "equal",
        codes=frozenset(codes),
        details=tuple(details),
        ours_dtype=str(our_array.dtype),
        ref_dtype=_ref_dtype_text(ref),
        axes=axes,
        ours_stats=ours_stats,
        ref_stats=ref_stats,
        extra=extra,
    )


def _ref_dtype_text(ref: RefImage) -> str:
    text = str(ref.stored.dtype)
    if ref.stored.ndim and ref.stored.dtype == np.uint8 and ref.stored.shape[-1] == 3:
        text = "RGB (3 x uint8)"
    if ref.is_scaled:
        text += f" x {_g(ref.slope)} + {_g(ref.inter)}"
    return text


def _record_kind(record: RefRecord) -> str:
    """``integer`` when the recorded type is an integer (or RGB) type and the scaled
    minimum and maximum are integers, else ``float``."""
    dtype = record.datatype
    integer_type = dtype.startswith(("int", "uint")) or "u1" in dtype
    ends = (record.data_min, record.data_max)
    if integer_type and all(v is not None and float(v).is_integer() for v in ends):
        return "integer"
    return "float"


def compare_stats(
    our_array: NDArray[Any],
    record: RefRecord,
    *,
    case_id: str,
    output: str,
    loadable: str,
) -> VoxelResult:
    """Compare dicomsieve's voxels with the statistics ``ref_index.json`` records."""
    ours = Stats.of(our_array)
    details: list[str] = []
    codes: set[str] = set()
    for label, mine, theirs, tol in (
        ("min", ours.min, record.data_min, 1e-6),
        ("max", ours.max, record.data_max, 1e-6),
        ("mean", ours.mean, record.data_mean, STATS_MEAN_ATOL),
    ):
        if theirs is None:
            continue
        if abs(mine - theirs) > tol + 1e-6 * abs(theirs):
            codes.add("STATS")
            details.append(f"{label} {_g(mine)} (dcm2niix {_g(theirs)})")
    ref_kind, ours_kind = _record_kind(record), _dtype_kind(our_array.dtype)
    if ref_kind != ours_kind:
        codes.add("DTYPE")
        details.append(
            f"dicomsieve's values are {ours_kind} ({our_array.dtype}), dcm2niix's {ref_kind}"
            f" ({record.datatype} after scaling)"
        )
    elif ours_kind == "integer" and record.data_min is not None and record.data_max is not None:
        info = np.iinfo(our_array.dtype)
        if not (info.min <= record.data_min and record.data_max <= info.max):
            codes.add("DTYPE")
            details.append(f"{our_array.dtype} cannot hold dcm2niix's range")
    ref_stats = None
    if None not in (record.data_min, record.data_max, record.data_mean):
        ref_stats = Stats(
            cast(float, record.data_min),
            cast(float, record.data_max),
            cast(float, record.data_mean),
        )
    return VoxelResult(
        case_id=case_id,
        output=output,
        loadable=loadable,
        reference="ref_index.json statistics",
        status="no reference file",
        codes=frozenset(codes),
        details=tuple(details),
        ours_dtype=str(our_array.dtype),
        ref_dtype=record.datatype,
        ours_stats=ours,
        ref_stats=ref_stats,
    )


# --------------------------------------------------------------------------- known differences


@dataclass(frozen=True)
class KnownVoxelDifference:
    """The difference codes one pair is expected to show, and why (one line)."""

    codes: frozenset[str]
    reason: str


def _k(reason: str, *codes: str) -> KnownVoxelDifference:
    return KnownVoxelDifference(frozenset(codes), reason)


_PHILIPS_SCALE = (
    "Philips: dcm2niix's scl_slope/scl_inter come from the private scale slope (2005,100E)"
    " (Philips' 'floating point' values); dicomsieve applies only RescaleSlope/Intercept"
    " (0028,1053/1052); the stored pixels are the same"
)
_PHILIPS_STATS = (
    "Philips, no Ref file: dcm2niix's recorded values are Philips' 'floating point' values"
    " (private scale slope 2005,100E); dicomsieve's are RescaleSlope/Intercept values, so"
    " min/max/mean differ by that scale"
)

KNOWN_VOXEL_DIFFERENCES: dict[tuple[str, str], KnownVoxelDifference] = {
    ("dcm_qa_enh/In/Philips", "Philips_WIP_B0_NS_801_e1"): _k(_PHILIPS_SCALE, "SCALING"),
    ("dcm_qa_enh/In/Philips", "Philips_WIP_B0_NS_801_e2_fieldmaphz"): _k(
        "Philips field map (Hz): dcm2niix's scl_slope 0.24420166 (from Philips' private scale"
        " slope 4.095) against the RescaleSlope 0.24420024 dicomsieve applies: the same stored"
        " values, values apart by up to 0.006 Hz",
        "SCALING",
    ),
    ("dcm_qa_philips/In/Magdeburg_2014/fmri", "EPI_asc_CLEAR_201"): _k(_PHILIPS_SCALE, "SCALING"),
    **{
        (f"dcm_qa_philips_enh/In/{export}", f"2001_WIP_fcMRI_Field_Mapping_{export}_{part}"): _k(
            _PHILIPS_SCALE, "SCALING"
        )
        for export in ("cl", "enh")
        for part in ("e1", "e1_ph", "e2", "e2_ph")
    },
    (
        "dicom2nifti/tests/data/failing/sliceincrement/002",
        "dicom2nifti:002_ground_truth.nii.gz",
    ): _k(
        "dicom2nifti resampled this tilted stack with a missing slice onto a regular grid;"
        " dicomsieve loads it as acquired: compared with regularize() under Resampling",
        "GRID",
    ),
    ("Slicer/Testing/Data/Input/philips_ingenia_4_1_3_dwi.dcm", "201_AX_DWI_PH_0mmRL"): _k(
        _PHILIPS_STATS, "STATS"
    ),
    ("dicom2nifti/tests/data/philips_enhanced/anatomical/001", "301_dicom2nifti"): _k(
        _PHILIPS_STATS, "STATS"
    ),
}
"""Per (case id, output), the expected difference codes with a one-line reason.

Differences where dicomsieve's answer is wrong are not listed here: their tests fail."""


def check_known_voxel_differences(
    results: Iterable[VoxelResult],
    table: Mapping[tuple[str, str], KnownVoxelDifference] = KNOWN_VOXEL_DIFFERENCES,
) -> list[str]:
    """Problems: results whose codes are not exactly the listed ones."""
    problems: list[str] = []
    for r in results:
        listed = table.get(r.key)
        expected = listed.codes if listed else frozenset()
        if r.codes != expected:
            what = ", ".join(sorted(r.codes)) or "no difference"
            want = ", ".join(sorted(expected)) or "no difference"
            problems.append(
                f"{r.case_id} {r.output}: found {what}, KNOWN_VOXEL_DIFFERENCES says {want}"
                + (f" ({r.summary()})" if r.details else "")
            )
    return problems


def stale_known_voxel_keys(
    results: Iterable[VoxelResult],
    table: Mapping[tuple[str, str], KnownVoxelDifference] = KNOWN_VOXEL_DIFFERENCES,
) -> list[tuple[str, str]]:
    """Keys of the table that name no compared pair."""
    return sorted(set(table) - {r.key for r in results})


# --------------------------------------------------------------------------- pairing helpers


def loadable_index(result: CaseResult, ours: OurLoadable) -> int:
    """The position of ``ours`` among the case's loadables (the order of
    ``Examination.loadables()``)."""
    for j, lo in enumerate(result.loadables):
        if lo is ours:
            return j
    raise ValueError(f"{ours.description} is not a loadable of {result.case.case_id}")


# --------------------------------------------------------------------------- resampling


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = v / np.linalg.norm(v)
    return out


@dataclass(frozen=True)
class KnownResampleGrid:
    """The grid dicomsieve's ``regularize`` is expected to choose for one case, the
    reference grid, and why they differ (one line, with numbers)."""

    loadable: str
    """Description of the loadable (``S2 volume 512x512x28``)."""
    reference: str
    """The dcm2niix ``_Tilt``/``_Eq`` output name."""
    ours_shape: tuple[int, int, int]
    ref_shape: tuple[int, int, int]
    reason: str


_ROWS = (
    "in-plane both keep {rows} rows, dicomsieve's aligned to the last slice's rows and"
    " dcm2niix's to the first slice's ({off} mm apart along the columns)"
)

KNOWN_RESAMPLE_GRIDS: dict[str, KnownResampleGrid] = {
    "dcm_qa_ct/In/GE": KnownResampleGrid(
        "S2 volume 512x512x28",
        "_2_Tilt_Eq_1",
        (512, 611, 37),
        (512, 611, 56),
        "gaps along the normal 13 x 4.002, 1 x 1.081 and 13 x 6.999 mm: dicomsieve steps their"
        " median 4.002 mm (37 slices), dcm2niix 2.620 mm (56 slices); both span the 144.09 mm"
        " from the first to the last slice; " + _ROWS.format(rows=611, off="0.13"),
    ),
    "dcm_qa_ct/In/Philips": KnownResampleGrid(
        "S201 volume 512x512x54",
        "1F_STEREOTAXIS_Head_201_Tilt_1",
        (512, 600, 54),
        (512, 600, 54),
        "regular 2.371 mm gaps: the same 54 slices; the 18.5 deg tilt shifts the last slice by"
        " 42.04 mm along the columns: dicomsieve covers the span (288.56 mm, 598.15 row steps)"
        " with 600 rows from the last slice's first row, dcm2niix with 600 rows on the first"
        " slice's",
    ),
    "dicom2nifti/tests/data/failing/sliceincrement/001": KnownResampleGrid(
        "S2 volume 512x512x4",
        "2_dicom2nifti_Eq_1",
        (512, 512, 5),
        (512, 512, 6),
        "gaps 5, 5 and 10 mm (a missing slice): dicomsieve steps the smallest gap, 5 mm, of"
        " which every gap is a multiple (5 slices, every acquired slice on the grid), dcm2niix's"
        " _Eq 4 mm (6 slices); both span 0-20 mm",
    ),
    "dicom2nifti/tests/data/failing/sliceincrement/002": KnownResampleGrid(
        "S3 volume 512x512x4",
        "3__Tilt_Eq_1",
        (512, 514, 5),
        (512, 514, 5),
        "gaps 0.750, 0.750 and 1.499 mm along the normal: both step 0.7497 mm (5 slices, 0-3.0"
        " mm); " + _ROWS.format(rows=514, off="0.19"),
    ),
    "dicom2nifti/tests/data/failing/gantrytilting/001": KnownResampleGrid(
        "S4 volume 512x512x4",
        "4__Tilt_1",
        (512, 521, 4),
        (512, 521, 4),
        "regular 4.851 mm gaps: the same 4 slices; " + _ROWS.format(rows=521, off="0.13"),
    ),
    "dcmstack/test/data/dcmstack/2D_16Echo_qT2": KnownResampleGrid(
        "S3 volume 192x192x3",
        "3_2D_16Echo_qT2_1_Eq_1",
        (192, 192, 4),
        (192, 192, 5),
        "gaps 10.5 and 21 mm: dicomsieve steps the smallest gap, 10.5 mm, of which both are"
        " multiples (4 slices, every acquired slice on the grid), dcm2niix's _Eq 7.875 mm (5"
        " slices); both span 0-31.5 mm",
    ),
    "dicom-numpy/tests/dupe-positions.zip": KnownResampleGrid(
        "S1 volume 512x512x10",
        "1_6.14_ROUTINE_CHEST_ABD_PELVIS_Eq_1",
        (512, 512, 16),
        (512, 512, 20),
        "gaps 7.5-115 mm, not multiples of one gap: dicomsieve steps their median 32.5 mm and"
        " covers the 470 mm with 15 steps (16 slices, to 487.5 mm), dcm2niix's _Eq steps 24.74"
        " mm (20 slices, 0-470 mm)",
    ),
}
"""Per case id: the loadable to resample, the dcm2niix output to compare with, the grid
shapes both choose, and why they differ."""

RESAMPLE_GROUND_TRUTHS: dict[str, tuple[str, float]] = {
    "dicom2nifti/tests/data/failing/sliceincrement/002": ("002_ground_truth.nii.gz", 0.0),
}
"""Per case id: dicom2nifti's resampled ground truth (next to the case folder) and the
value it pads with outside its data (0; the data's range is -1024 to -770)."""


@dataclass(frozen=True)
class ResampleComparison:
    """dicomsieve's regular grid against a reference grid, in one frame.

    The frame is dicomsieve's: ``u`` along the rows' direction (image column axis),
    ``v`` along the columns' direction, ``w`` along the slice normal, in mm from the first
    acquired slice's first voxel. Extents are over voxel centres.
    """

    case_id: str
    reference: str
    ours_shape: tuple[int, ...]
    ref_shape: tuple[int, ...]
    ours_zooms: tuple[float, float, float]
    ref_zooms: tuple[float, float, float]
    axis_angle_deg: float
    """Largest angle between a reference axis and the dicomsieve axis it runs along."""
    ours_extent: tuple[tuple[float, float], ...]
    ref_extent: tuple[tuple[float, float], ...]
    acquired_extent: tuple[tuple[float, float], ...]
    """``u``, ``v`` and ``w`` ranges of the acquired voxel centres (every slice)."""
    acquired_depth: tuple[float, float]
    """``w`` of the first and last acquired slice."""
    acquired_gaps: tuple[float, ...]
    ours_stats: Stats
    ref_stats: Stats | None
    acquired_stats: Stats
    ours_dtype: str
    ref_dtype: str

    def extent_text(self) -> str:
        """``u -0.00..249.51 (ref -0.00..249.51), ...``."""
        parts = []
        for name, (a0, a1), (b0, b1) in zip("uvw", self.ours_extent, self.ref_extent, strict=True):
            parts.append(f"{name} {a0:.2f}..{a1:.2f} (ref {b0:.2f}..{b1:.2f})")
        return ", ".join(parts)


def _frame(affine_lps: Float4x4) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit row, column and normal vectors (rows of a 3x3) and the origin."""
    row, col = _unit(affine_lps[:3, 0]), _unit(affine_lps[:3, 1])
    normal = _unit(np.cross(row, col))
    return np.stack([row, col, normal]), affine_lps[:3, 3].copy()


def _extent(
    affine_lps: Float4x4, shape: Sequence[int], axes: NDArray[np.float64], origin: NDArray[Any]
) -> tuple[tuple[float, float], ...]:
    corners = _corner_indices(shape)
    world = corners @ affine_lps[:3, :3].T + affine_lps[:3, 3]
    local = (world - origin) @ axes.T
    return tuple((float(local[:, i].min()), float(local[:, i].max())) for i in range(3))


def compare_grids(
    *,
    case_id: str,
    reference: str,
    acquired_affine_lps: Float4x4,
    acquired_positions: NDArray[np.float64],
    acquired_array: NDArray[Any],
    ours_affine_lps: Float4x4,
    ours_array: NDArray[Any],
    ref_affine_lps: Float4x4,
    ref_shape: Sequence[int],
    ref_stats: Stats | None,
    ref_dtype: str,
) -> ResampleComparison:
    """Describe dicomsieve's resampled grid and a reference grid in dicomsieve's frame."""
    axes, _ = _frame(acquired_affine_lps)
    origin = acquired_positions[0]
    ours_lin = ours_affine_lps[:3, :3]
    ref_lin = ref_affine_lps[:3, :3]
    worst = 0.0
    for a in range(3):
        ref_dir = _unit(ref_lin[:, a])
        cos = max(abs(float(ref_dir @ _unit(ours_lin[:, b]))) for b in range(3))
        worst = max(worst, math.degrees(math.acos(min(1.0, cos))))
    depth = acquired_positions @ axes[2] - origin @ axes[2]
    order = np.sort(depth)
    offsets = (acquired_positions - origin) @ axes.T
    size = [
        (acquired_array.shape[a] - 1) * float(np.linalg.norm(acquired_affine_lps[:3, a]))
        for a in (0, 1)
    ]
    acquired_extent = (
        (float(offsets[:, 0].min()), float(offsets[:, 0].max()) + size[0]),
        (float(offsets[:, 1].min()), float(offsets[:, 1].max()) + size[1]),
        (float(order[0]), float(order[-1])),
    )
    return ResampleComparison(
        case_id=case_id,
        reference=reference,
        ours_shape=tuple(ours_array.shape),
        ref_shape=tuple(int(n) for n in ref_shape),
        ours_zooms=_zooms(ours_affine_lps),
        ref_zooms=_zooms(ref_affine_lps),
        axis_angle_deg=worst,
        ours_extent=_extent(ours_affine_lps, ours_array.shape, axes, origin),
        ref_extent=_extent(ref_affine_lps, ref_shape, axes, origin),
        acquired_extent=acquired_extent,
        acquired_depth=(float(order[0]), float(order[-1])),
        acquired_gaps=tuple(float(g) for g in np.diff(order)),
        ours_stats=Stats.of(ours_array),
        ref_stats=ref_stats,
        acquired_stats=Stats.of(acquired_array),
        ours_dtype=str(ours_array.dtype),
        ref_dtype=ref_dtype,
    )


def _zooms(affine: Float4x4) -> tuple[float, float, float]:
    z = np.linalg.norm(affine[:3, :3], axis=0)
    return (float(z[0]), float(z[1]), float(z[2]))


@dataclass(frozen=True)
class OverlapSlice:
    """Resampled values against a resampled reference on one reference slice, at the
    reference voxel centres that lie inside dicomsieve's grid and inside the acquired
    (sheared) stack. Differences are dicomsieve minus reference."""

    k: int
    compared: int
    voxels: int
    median_abs: float
    p99_abs: float
    max_abs: float
    mean_signed: float
    padding_fraction: float
    """Share of the reference slice equal to its padding value (not compared)."""
    acquired_k: float
    """Where the reference slice lies in the acquired stack's slice index (mean step)."""


def compare_overlap(
    ours_array: NDArray[Any],
    ours_affine_ras: Float4x4,
    acquired_affine_ras: Float4x4,
    acquired_shape: Sequence[int],
    ref: RefImage,
    ref_padding: float | None = None,
) -> tuple[OverlapSlice, ...]:
    """Sample dicomsieve's resampled volume (trilinear) at every reference voxel centre
    inside both dicomsieve's grid and the acquired stack (within :data:`VOXEL_ATOL_MM`),
    and compare with the reference there, slice by reference slice. Reference voxels
    equal to ``ref_padding`` (a value the reference writes outside its data) are not
    compared."""
    from scipy.ndimage import map_coordinates

    shape = ref.spatial_shape
    ours_inv = np.linalg.inv(ours_affine_ras)
    acq_inv = np.linalg.inv(acquired_affine_ras)
    ours_eps = VOXEL_ATOL_MM / np.linalg.norm(ours_affine_ras[:3, :3], axis=0)
    acq_eps = VOXEL_ATOL_MM / np.linalg.norm(acquired_affine_ras[:3, :3], axis=0)
    out: list[OverlapSlice] = []
    for k in range(shape[2]):
        idx = np.indices((shape[0], shape[1], 1), dtype=np.float64).reshape(3, -1)
        idx[2] = k
        world = ref.affine_ras[:3, :3] @ idx + ref.affine_ras[:3, 3:4]
        world4 = np.vstack([world, np.ones(world.shape[1])])
        ours_idx, acq_idx = (ours_inv @ world4)[:3], (acq_inv @ world4)[:3]
        theirs = ref.scaled[:, :, k].reshape(-1).astype(np.float64)
        inside = np.ones(world.shape[1], dtype=bool)
        if ref_padding is not None:
            inside &= theirs != ref_padding
        for axis in range(3):
            e, last = ours_eps[axis], ours_array.shape[axis] - 1
            inside &= (ours_idx[axis] >= -e) & (ours_idx[axis] <= last + e)
            e, last = acq_eps[axis], acquired_shape[axis] - 1
            inside &= (acq_idx[axis] >= -e) & (acq_idx[axis] <= last + e)
        coords = np.clip(ours_idx[:, inside], 0, np.array(ours_array.shape[:3])[:, None] - 1)
        sampled = np.asarray(
            map_coordinates(ours_array.astype(np.float64), coords, order=1, mode="nearest"),
            dtype=np.float64,
        )
        delta = sampled - theirs[inside]
        absd = np.abs(delta)
        some = absd.size > 0
        out.append(
            OverlapSlice(
                k=k,
                compared=int(inside.sum()),
                voxels=int(inside.size),
                median_abs=float(np.median(absd)) if some else math.nan,
                p99_abs=float(np.percentile(absd, 99)) if some else math.nan,
                max_abs=float(absd.max()) if some else math.nan,
                mean_signed=float(delta.mean()) if some else math.nan,
                padding_fraction=float(np.mean(theirs == ref_padding))
                if ref_padding is not None
                else 0.0,
                acquired_k=float(np.mean(acq_idx[2])),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class SliceCheck:
    """A resampled slice that lies on an acquired slice, against an independent
    bilinear sampling of that slice at the resampled voxel centres (world space)."""

    z: int
    acquired: int
    compared: int
    max_abs: float


def check_resampled_slices(
    ours_array: NDArray[Any],
    ours_affine_lps: Float4x4,
    acquired_array: NDArray[Any],
    acquired_affine_lps: Float4x4,
    acquired_positions: NDArray[np.float64],
    tol_mm: float = 1e-3,
) -> tuple[SliceCheck, ...]:
    """For every resampled slice whose plane is an acquired slice's plane (within
    ``tol_mm`` along the normal), sample the acquired slice bilinearly at the resampled
    voxel centres, placed with that slice's own ImagePositionPatient and the in-plane
    directions and spacings, and compare. Voxel centres outside the acquired slice are
    not compared."""
    from scipy.ndimage import map_coordinates

    axes, _ = _frame(acquired_affine_lps)
    row, col, normal = axes
    dc = float(np.linalg.norm(acquired_affine_lps[:3, 0]))
    dr = float(np.linalg.norm(acquired_affine_lps[:3, 1]))
    depth = acquired_positions @ normal
    columns, rows = acquired_array.shape[0], acquired_array.shape[1]
    ii, jj = np.meshgrid(
        np.arange(ours_array.shape[0]), np.arange(ours_array.shape[1]), indexing="ij"
    )
    out: list[SliceCheck] = []
    for z in range(ours_array.shape[2]):
        origin = ours_affine_lps[:3, 3] + z * ours_affine_lps[:3, 2]
        hits = np.flatnonzero(np.abs(depth - origin @ normal) <= tol_mm)
        if hits.size == 0:
            continue
        k = int(hits[0])
        world = (
            origin[None, None, :]
            + ii[..., None] * ours_affine_lps[:3, 0]
            + jj[..., None] * ours_affine_lps[:3, 1]
        )
        rel = world - acquired_positions[k]
        u, v = rel @ row / dc, rel @ col / dr
        inside = (u >= -1e-6) & (u <= columns - 1 + 1e-6) & (v >= -1e-6) & (v <= rows - 1 + 1e-6)
        coords = np.stack([np.clip(u[inside], 0, None), np.clip(v[inside], 0, None)])
        expected = map_coordinates(
            acquired_array[:, :, k].astype(np.float64), coords, order=1, mode="nearest"
        )
        got = ours_array[:, :, z][inside].astype(np.float64)
        delta = np.abs(got - np.asarray(expected, dtype=np.float64))
        out.append(
            SliceCheck(
                z=z,
                acquired=k,
                compared=int(inside.sum()),
                max_abs=float(delta.max()) if delta.size else math.nan,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- running


class ExamineRecorder:
    """An ``examine`` callable for :func:`conformance.run_all` that keeps each
    :class:`dicomsieve.Examination`, so that the paired loadables can be loaded."""

    def __init__(self) -> None:
        self.exams: dict[str, Any] = {}

    def __call__(self, path: Path) -> Mapping[str, Any]:
        import dicomsieve

        exam = dicomsieve.examine(str(path))
        self.exams[str(path)] = exam
        return cast(Mapping[str, Any], exam.to_dict())

    def loadable(self, result: CaseResult, ours: OurLoadable) -> Any:
        """The :class:`dicomsieve.Loadable` behind ``ours``."""
        found = list(self.exams[result.examined_path].loadables())[loadable_index(result, ours)]
        if found.name != ours.name or tuple(found.files) != ours.files:
            raise ValueError(f"{ours.description}: examine results do not line up")
        return found


def written_image(volume: Any) -> nib.Nifti1Image:
    """The NIfTI that ``convert`` writes for ``volume``'s loadable, read back: the stored
    values with the rescale in the header when ``stored_pixels`` takes the loadable
    (as ``convert`` does), else the loaded volume; by the writer ``convert`` uses."""
    from dicomsieve.load.stored import stored_pixels
    from dicomsieve.write.nifti import write_nifti, write_nifti_stored

    stored = stored_pixels(volume.loadable)
    with tempfile.TemporaryDirectory(prefix="dicomsieve-written-") as tmp:
        path = Path(tmp) / "written.nii"
        if stored is not None:
            write_nifti_stored(stored, path)
        else:
            write_nifti(volume, path)
        return nib.Nifti1Image.from_bytes(path.read_bytes())


def written_values(volume: Any) -> tuple[NDArray[Any], RefImage]:
    """The values a reader gets from the NIfTI ``convert`` writes for ``volume``, after
    ``scl_slope``/``scl_inter``: in the volume's type when they are exactly its values,
    else as float64 (and the comparison shows it)."""
    image = image_to_ref(written_image(volume), Path("written.nii"))
    values, ours = image.scaled, volume.array
    if values.dtype != ours.dtype and np.array_equal(values, ours):
        values = values.astype(ours.dtype)
    return values, image


def _ground_truth_match(result: CaseResult, ref: RefImage) -> OurLoadable | None:
    volumes = int(np.prod(ref.stored.shape[3:])) if ref.stored.ndim > 3 else 1
    if ref.stored.dtype == np.uint8 and ref.stored.shape[-1] == 3:
        volumes = int(np.prod(ref.stored.shape[3:-1])) if ref.stored.ndim > 4 else 1
    ref_lps = RAS_FROM_LPS @ ref.affine_ras
    for lo in result.loadables:
        shape, affine = lo.spatial_shape, lo.affine_lps
        if shape is None or affine is None or lo.volumes != volumes:
            continue
        if geometry_match(ref_lps, ref.spatial_shape, affine, shape) is not None:
            return lo
    return None


SAME_SLICES = "ref_index.json statistics (same slices, another grid)"
"""The reference of a comparison between a dcm2niix output and a dicomsieve loadable
that hold the same slices on different grids (see :func:`same_slice_pairs`)."""


def same_slice_pairs(result: CaseResult) -> list[tuple[RefOutput, OurLoadable]]:
    """Unmatched dcm2niix outputs and unmatched loadables that hold the same slices: same
    shape and volume count, the same first slice in world space, only the grid differs
    (dcm2niix steps one gap where the gaps vary, or a tilted stack differently; the
    reasons are in ``conformance.KNOWN_DIFFERENCES``). Their statistics must agree."""
    out: list[tuple[RefOutput, OurLoadable]] = []
    for ref in result.unmatched_ref:
        affine = ref.affine_lps
        miss = near_miss(ref, result.unmatched_ours)
        if affine is None or miss is None:
            continue
        if miss.axes.first_slice_mm <= tolerance_mm(affine, ref.spatial_shape):
            out.append((ref, miss.ours))
    return out


@dataclass(frozen=True)
class CaseVoxels:
    """The voxel comparisons of one case: against dcm2niix (one per matched pair) and
    against dicom2nifti's ground truths; ``written`` repeats the dcm2niix comparisons
    with the NIfTI that ``convert`` writes instead of the loaded volume."""

    results: tuple[VoxelResult, ...]
    written: tuple[VoxelResult, ...]
    arrays: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    """Loaded arrays kept by output name (only when asked for)."""


def compare_case(
    result: CaseResult,
    recorder: ExamineRecorder,
    data_dir: Path = DATA_DIR,
    *,
    keep_arrays: bool = False,
) -> CaseVoxels:
    """Load every loadable paired with a dcm2niix output and compare it with the Ref
    NIfTI, else with the recorded statistics; compare dicom2nifti ground truths with the
    loadable of the same grid."""
    import dicomsieve

    records = ref_records(result.case, data_dir)
    out: list[VoxelResult] = []
    written: list[VoxelResult] = []
    arrays: dict[str, NDArray[Any]] = {}
    loaded: dict[int, Any] = {}

    def volume_of(ours: OurLoadable) -> Any:
        j = loadable_index(result, ours)
        if j not in loaded:
            loaded[j] = dicomsieve.load(recorder.loadable(result, ours))
        return loaded[j]

    case_id = result.case.case_id
    for pair in result.pairs:
        record = records[pair.ref.name]
        volume = volume_of(pair.ours)
        label = f"{pair.ours.description} {pair.ours.name!r}"
        if keep_arrays:
            arrays[pair.ref.name] = volume.array
        has_geometry = pair.ours.affine_lps is not None
        if record.ref_file is None or not has_geometry:
            found = compare_stats(
                volume.array, record, case_id=case_id, output=pair.ref.name, loadable=label
            )
            out.append(found)
            values, _ = written_values(volume)
            written.append(
                compare_stats(values, record, case_id=case_id, output=pair.ref.name, loadable=label)
            )
            continue
        ref = load_ref_image(record.ref_file)
        rel = record.ref_file.relative_to(data_dir / result.case.folder).as_posix()
        found = compare_image(
            volume.array,
            volume.affine_ras,
            ref,
            case_id=case_id,
            output=pair.ref.name,
            loadable=label,
            reference=rel,
        )
        block = volume.metadata.get("dicomsieve", {})
        slopes, intercepts = block.get("rescale_slopes", []), block.get("rescale_intercepts", [])
        if len(slopes) == 1 and len(intercepts) == 1:
            found = replace(
                found,
                extra={
                    **found.extra,
                    "rescale_slope": slopes[0],
                    "rescale_intercept": intercepts[0],
                },
            )
        out.append(found)
        values, image = written_values(volume)
        written.append(
            compare_image(  # the same comparison, on what convert writes
                values,
                image.affine_ras,
                ref,
                case_id=case_id,
                output=pair.ref.name,
                loadable=label,
                reference=rel,
            )
        )
    for ref_output, same in same_slice_pairs(result):
        found = compare_stats(
            volume_of(same).array,
            records[ref_output.name],
            case_id=case_id,
            output=ref_output.name,
            loadable=f"{same.description} {same.name!r}",
        )
        out.append(replace(found, reference=SAME_SLICES))
    for name, path in sorted(ground_truths(result.case, data_dir).items()):
        ref = load_ref_image(path)
        ours = _ground_truth_match(result, ref)
        output = f"dicom2nifti:{name}"
        if ours is None:
            out.append(
                VoxelResult(
                    case_id=case_id,
                    output=output,
                    loadable="-",
                    reference=path.name,
                    status="not compared",
                    codes=frozenset({"GRID"}),
                    details=("no dicomsieve loadable has this voxel grid",),
                    ref_dtype=_ref_dtype_text(ref),
                )
            )
            continue
        volume = volume_of(ours)
        out.append(
            compare_image(
                volume.array,
                volume.affine_ras,
                ref,
                case_id=case_id,
                output=output,
                loadable=f"{ours.description} {ours.name!r}",
                reference=path.name,
            )
        )
    return CaseVoxels(tuple(out), tuple(written), arrays)


# --------------------------------------------------------------------------- resampling runs


def along_stack(
    acquired_array: NDArray[Any],
    acquired_affine_lps: Float4x4,
    positions: NDArray[np.float64],
    world_lps: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Another way to interpolate a tilted, uneven stack (a model of dicom2nifti's): each
    point between two acquired slices is interpolated linearly along the line joining the
    two slices' origins (the stacking direction), bilinearly in each slice; the first and
    last slice clamp the depth. ``world_lps`` is (n, 3); points outside a slice get 0."""
    from scipy.ndimage import map_coordinates

    axes, _ = _frame(acquired_affine_lps)
    row, col, normal = axes
    dc = float(np.linalg.norm(acquired_affine_lps[:3, 0]))
    dr = float(np.linalg.norm(acquired_affine_lps[:3, 1]))
    depth = positions @ normal
    n = len(depth)
    d = world_lps @ normal
    lower = np.clip(np.searchsorted(depth, d, side="right") - 1, 0, n - 2)
    frac = np.clip((d - depth[lower]) / (depth[lower + 1] - depth[lower]), 0.0, 1.0)
    out = np.zeros(len(d))
    for source, weight in ((lower, 1.0 - frac), (lower + 1, frac)):
        step = positions[lower + 1] - positions[lower]
        along = ((d - depth[source]) / (step @ normal))[:, None] * step
        rel = world_lps - along - positions[source]
        u, v = rel @ row / dc, rel @ col / dr
        values = np.zeros(len(d))
        for k in range(n):
            mask = source == k
            if np.any(mask):
                values[mask] = map_coordinates(
                    acquired_array[:, :, k].astype(np.float64),
                    np.stack([u[mask], v[mask]]),
                    order=1,
                    mode="constant",
                    cval=0.0,
                )
        out += weight * values
    return out


def _documented_step(gaps: NDArray[np.float64]) -> float:
    """README's rule for the resampled slice spacing, computed independently here."""
    smallest = float(gaps.min())
    tol = max(0.05, 0.01 * smallest)
    if all(abs(g - round(g / smallest) * smallest) <= tol * round(g / smallest) for g in gaps):
        return smallest
    return float(np.median(gaps))


@dataclass(frozen=True)
class ResampleOutcome:
    """``regularize(load(...))`` of one case against dcm2niix's record (and dicom2nifti's
    ground truth, where there is one)."""

    case_id: str
    known: KnownResampleGrid
    comparison: ResampleComparison
    slice_checks: tuple[SliceCheck, ...]
    expected_step: float
    """The slice spacing the documented rule gives: the smallest gap along the normal when
    every gap is a whole multiple of it, else the median gap."""
    resampled: bool
    ours_integer: bool
    ground_truth: str | None = None
    overlap: tuple[OverlapSlice, ...] = ()
    stack_model_median: tuple[float, ...] = ()
    """Per ground-truth slice: median |along_stack - ground truth| over the compared
    voxels (nan where none)."""
    misplaced_median: tuple[float, ...] = ()
    """Per ground-truth slice: the smallest median |difference| when dicomsieve's
    resampled volume is moved by one resampled slice along the normal (either way): what
    a misplaced slice would show (nan where nothing is compared)."""


def resample_case(
    result: CaseResult,
    recorder: ExamineRecorder,
    known: KnownResampleGrid,
    data_dir: Path = DATA_DIR,
) -> ResampleOutcome:
    """Load the case's loadable, regularize it and compare (see :class:`ResampleOutcome`)."""
    import dicomsieve

    ours = next(lo for lo in result.loadables if lo.description == known.loadable)
    loadable = recorder.loadable(result, ours)
    volume = dicomsieve.load(loadable)
    regular = dicomsieve.regularize(volume)
    positions = np.array([s.position for s in loadable.slices], dtype=np.float64)
    record = ref_records(result.case, data_dir)[known.reference]
    assert record.sform_ras is not None, known.reference
    ref_stats = None
    if None not in (record.data_min, record.data_max, record.data_mean):
        ref_stats = Stats(
            cast(float, record.data_min),
            cast(float, record.data_max),
            cast(float, record.data_mean),
        )
    comparison = compare_grids(
        case_id=result.case.case_id,
        reference=known.reference,
        acquired_affine_lps=volume.affine_lps,
        acquired_positions=positions,
        acquired_array=volume.array,
        ours_affine_lps=regular.affine_lps,
        ours_array=regular.array,
        ref_affine_lps=RAS_FROM_LPS @ record.sform_ras,
        ref_shape=record.shape,
        ref_stats=ref_stats,
        ref_dtype=record.datatype,
    )
    checks = check_resampled_slices(
        regular.array, regular.affine_lps, volume.array, volume.affine_lps, positions
    )
    gaps = np.array(comparison.acquired_gaps)
    outcome = ResampleOutcome(
        case_id=result.case.case_id,
        known=known,
        comparison=comparison,
        slice_checks=checks,
        expected_step=_documented_step(gaps[gaps > 0.01]),
        resampled=bool(regular.resampled),
        ours_integer=bool(np.issubdtype(regular.array.dtype, np.integer)),
    )
    truth = RESAMPLE_GROUND_TRUTHS.get(result.case.case_id)
    if truth is None:
        return outcome
    name, padding = truth
    path = (data_dir / result.case.case_id).parent / name
    ref = load_ref_image(path)
    overlap = compare_overlap(
        regular.array, regular.affine_ras, volume.affine_ras, volume.array.shape, ref, padding
    )
    moved: list[tuple[OverlapSlice, ...]] = []
    for sign in (1.0, -1.0):
        shifted = regular.affine_ras.copy()
        shifted[:3, 3] += sign * regular.affine_ras[:3, 2]
        moved.append(
            compare_overlap(
                regular.array, shifted, volume.affine_ras, volume.array.shape, ref, padding
            )
        )
    misplaced = tuple(
        min((m[k].median_abs for m in moved if m[k].compared), default=math.nan)
        for k in range(len(overlap))
    )
    model: list[float] = []
    ref_lps = RAS_FROM_LPS @ ref.affine_ras
    shape = ref.spatial_shape
    inv = np.linalg.inv(volume.affine_lps)
    for k in range(shape[2]):
        idx = np.indices((shape[0], shape[1], 1), dtype=np.float64).reshape(3, -1)
        idx[2] = k
        world = (ref_lps[:3, :3] @ idx + ref_lps[:3, 3:4]).T
        theirs = ref.scaled[:, :, k].reshape(-1).astype(np.float64)
        acq = world @ inv[:3, :3].T + inv[:3, 3]
        eps = VOXEL_ATOL_MM / np.linalg.norm(volume.affine_lps[:3, :3], axis=0)
        inside = (theirs != padding) & np.all(
            (acq >= -eps) & (acq <= np.array(volume.array.shape[:3]) - 1 + eps), axis=1
        )
        if not np.any(inside):
            model.append(math.nan)
            continue
        values = along_stack(volume.array, volume.affine_lps, positions, world[inside])
        model.append(float(np.median(np.abs(values - theirs[inside]))))
    return replace(
        outcome,
        ground_truth=name,
        overlap=overlap,
        stack_model_median=tuple(model),
        misplaced_median=misplaced,
    )


# --------------------------------------------------------------------------- transfer syntaxes


@dataclass(frozen=True, eq=False)
class SyntaxVolume:
    """One dcm_qa_ts file: its transfer syntax and what dicomsieve loads from it."""

    file: str
    syntax: str
    syntax_name: str
    lossy_flag: str | None
    """LossyImageCompression (0028,2110), when present."""
    array: NDArray[Any]
    affine_lps: Float4x4
    output: str


def syntax_volumes(result: CaseResult, arrays: Mapping[str, NDArray[Any]]) -> list[SyntaxVolume]:
    """The loaded volume of every paired single-file loadable of a case, with the file's
    transfer syntax, by file name."""
    import pydicom

    out: list[SyntaxVolume] = []
    for pair in result.pairs:
        (path,) = pair.ours.files
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        uid = ds.file_meta.TransferSyntaxUID
        affine = pair.ours.affine_lps
        assert affine is not None, path
        flag = ds.get("LossyImageCompression")
        out.append(
            SyntaxVolume(
                file=Path(path).name,
                syntax=str(uid),
                syntax_name=str(uid.name),
                lossy_flag=None if flag is None else str(flag),
                array=arrays[pair.ref.name],
                affine_lps=affine,
                output=pair.ref.name,
            )
        )
    return sorted(out, key=lambda v: v.file)


@dataclass(frozen=True)
class LossyCheck:
    """A lossy JPEG 2000 copy of a lossless file, loaded by dicomsieve."""

    psnr_target_db: float
    psnr_db: float
    """Against the lossless voxels, peak 4095 (12 bits)."""
    max_abs: float
    changed: int
    """How many voxels the lossy coding changed."""
    same_geometry: bool
    tiles_match_decoder: bool
    """Every mosaic tile dicomsieve cut equals pydicom's decoding of the lossy file."""


def lossy_jpeg2000(
    source: Path,
    workdir: Path,
    lossless: NDArray[Any],
    lossless_affine: Float4x4,
    psnr_target_db: float,
) -> LossyCheck:
    """Re-encode ``source`` (a Siemens mosaic) as lossy JPEG 2000 (1.2.840.10008.1.2.4.91,
    LossyImageCompression 01) into ``workdir``, examine and load it, and compare with
    the lossless voxels."""
    import pydicom
    from pydicom.uid import JPEG2000

    import dicomsieve

    ds = pydicom.dcmread(source)
    ds.compress(JPEG2000, j2k_psnr=[psnr_target_db])
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_15444_1"
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"{source.stem}_j2k_lossy.dcm"
    ds.save_as(target, enforce_file_format=True)
    decoded = pydicom.dcmread(target).pixel_array  # rows x columns of the whole mosaic
    (loadable,) = list(dicomsieve.examine(workdir).loadables())
    volume = dicomsieve.load(loadable)
    columns, rows, n = volume.array.shape[:3]
    tiles = math.ceil(math.sqrt(n))
    match = volume.array.shape == lossless.shape
    for k in range(n):
        r0, c0 = (k // tiles) * rows, (k % tiles) * columns
        tile = decoded[r0 : r0 + rows, c0 : c0 + columns].T
        match = match and bool(np.array_equal(volume.array[:, :, k], tile))
    error = volume.array.astype(np.float64) - lossless.astype(np.float64)
    rmse = float(np.sqrt(np.mean(error**2)))
    return LossyCheck(
        psnr_target_db=psnr_target_db,
        psnr_db=math.inf if rmse == 0 else 20 * math.log10(4095 / rmse),
        max_abs=float(np.max(np.abs(error))),
        changed=int(np.count_nonzero(error)),
        same_geometry=bool(np.array_equal(volume.affine_lps, lossless_affine))
        and volume.array.dtype == lossless.dtype,
        tiles_match_decoder=match,
    )
