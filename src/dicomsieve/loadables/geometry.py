"""Geometry of a stack of slices: orientation, order, spacing, tilt and the affine.

All coordinates are DICOM patient coordinates (LPS, mm). A voxel index is
(i, j, k) = (column, row, slice): i moves along the row direction cosine (the first
three values of ImageOrientationPatient) by the column spacing (PixelSpacing[1]),
j along the column direction cosine by the row spacing (PixelSpacing[0]).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from dicomsieve.codes import Level, WarningCode
from dicomsieve.loadables.model import ExamineWarning, Matrix4
from dicomsieve.loadables.slices import CROSS_SECTIONAL, Orientation, Slice
from dicomsieve.settings import Settings

__all__ = [
    "MosaicGeometry",
    "Orientation",
    "StackGeometry",
    "analyse_stack",
    "cluster_orientations",
    "mosaic_geometry",
    "orientation_of",
    "plane_name",
]

Vec = NDArray[np.float64]

# Files listed in one warning message; the full list goes into ExamineWarning.files.
_NAMED_IN_MESSAGE = 4


def orientation_of(s: Slice) -> Orientation | None:
    """The slice's orientation, or ``None`` when absent or degenerate."""
    return s.orientation


def _median(values: Sequence[float]) -> float:
    """``float(np.median(values))``, the same float, for a list of floats.

    ``np.median`` imports ``numpy.ma`` on its first call (10 to 15 ms, the only import
    of it in a conversion) and costs microseconds per call. The sums start from 0.0 as
    numpy's do (so a median of -0.0 is 0.0); any NaN gives NaN.
    """
    if not values or any(math.isnan(v) for v in values):
        return math.nan
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return (0.0 + ordered[middle]) / 1
    return (0.0 + ordered[middle - 1] + ordered[middle]) / 2


def _angle_deg(a: Vec, b: Vec) -> float:
    cos = max(-1.0, min(1.0, float(a @ b)))
    return math.degrees(math.acos(cos))


def plane_name(o: Orientation) -> str:
    """Axial, coronal or sagittal by the dominant axis of the normal, "oblique" if
    the normal is more than 30 degrees away from every axis."""
    n = np.abs(o.normal)
    axis = int(np.argmax(n))
    name = ("sagittal", "coronal", "axial")[axis]
    return name if n[axis] >= math.cos(math.radians(30)) else f"oblique {name}"


def cluster_orientations(
    slices: Sequence[Slice], settings: Settings
) -> tuple[list[tuple[Orientation, list[Slice]]], list[Slice]]:
    """Group slices whose row and column directions agree within the tolerance.

    Returns the clusters, largest first (ties in the canonical slice order), and the
    slices without a usable orientation.
    """
    clusters: list[tuple[Orientation, list[Slice]]] = []
    without: list[Slice] = []
    tol = settings.orientation_tolerance_deg
    # Slices of one orientation share their Orientation (see flatten): each pair of
    # orientations is compared once, by identity.
    agree: dict[tuple[int, int], bool] = {}
    for s in slices:
        o = orientation_of(s)
        if o is None:
            without.append(s)
            continue
        for rep, members in clusters:
            pair = (id(rep), id(o))
            same = agree.get(pair)
            if same is None:
                same = _angle_deg(rep.row, o.row) <= tol and _angle_deg(rep.column, o.column) <= tol
                agree[pair] = same
            if same:
                members.append(s)
                break
        else:
            clusters.append((o, [s]))
    order = {id(c[1][0]): i for i, c in enumerate(clusters)}
    clusters.sort(key=lambda c: (-len(c[1]), order[id(c[1][0])]))
    return clusters, without


def group_positions(slices: Sequence[Slice], normal: Vec, settings: Settings) -> list[list[Slice]]:
    """Slices grouped by position along ``normal``, in ascending order.

    Slices closer than ``position_tolerance_mm`` along the normal (and in space) share
    a position. Within a position, slices keep the canonical order.
    """
    keyed = sorted(
        ((float(np.dot(s.position, normal)), s) for s in slices if s.position is not None),
        key=lambda item: (item[0], item[1].sort_key),
    )
    groups: list[list[Slice]] = []
    last: float | None = None
    tol = settings.position_tolerance_mm
    for d, s in keyed:
        if last is not None and d - last <= tol and groups:
            head = groups[-1][0]
            assert head.position is not None
            assert s.position is not None
            if float(np.linalg.norm(head.position - s.position)) <= max(tol * 10, 0.1):
                groups[-1].append(s)
                last = d
                continue
        groups.append([s])
        last = d
    for g in groups:
        g.sort(key=lambda s: s.sort_key)
    return groups


@dataclass(frozen=True, slots=True)
class StackGeometry:
    """What :func:`analyse_stack` found: the order, the affine and the warnings."""

    slices: tuple[Slice, ...]
    affine: Matrix4 | None
    spacing: tuple[float, float, float] | None
    warnings: tuple[ExamineWarning, ...] = field(default=())


def _names(slices: Sequence[Slice]) -> str:
    labels = [s.short_name for s in slices]
    if len(labels) > _NAMED_IN_MESSAGE:
        return (
            ", ".join(labels[:_NAMED_IN_MESSAGE]) + f" and {len(labels) - _NAMED_IN_MESSAGE} more"
        )
    return ", ".join(labels)


def _matrix(columns: Sequence[Vec], origin: Vec) -> Matrix4:
    m = np.eye(4)
    for i, col in enumerate(columns):
        m[:3, i] = col
    m[:3, 3] = origin
    rows = [tuple(float(round(v, 6)) + 0.0 for v in m[r]) for r in range(4)]
    return (
        (rows[0][0], rows[0][1], rows[0][2], rows[0][3]),
        (rows[1][0], rows[1][1], rows[1][2], rows[1][3]),
        (rows[2][0], rows[2][1], rows[2][2], rows[2][3]),
        (rows[3][0], rows[3][1], rows[3][2], rows[3][3]),
    )


def _orthonormal_warning(slices: Sequence[Slice], settings: Settings) -> ExamineWarning | None:
    worst = 0.0
    culprit: Slice | None = None
    # Slices of one orientation share their cosine vectors (see flatten): each pair of
    # vectors is measured once, by identity.
    deviations: dict[tuple[int, int], float] = {}
    for s in slices:
        if s.row_cosine is None or s.column_cosine is None:
            continue
        pair = (id(s.row_cosine), id(s.column_cosine))
        dev = deviations.get(pair)
        if dev is None:
            dev = max(
                abs(float(np.linalg.norm(s.row_cosine)) - 1.0),
                abs(float(np.linalg.norm(s.column_cosine)) - 1.0),
                abs(float(np.dot(s.row_cosine, s.column_cosine))),
            )
            deviations[pair] = dev
        if dev > worst:
            worst, culprit = dev, s
    if culprit is None or worst <= settings.orthonormal_tolerance:
        return None
    return ExamineWarning(
        WarningCode.NOT_ORTHONORMAL,
        Level.WARNING,
        f"ImageOrientationPatient is not orthonormal: deviation {worst:.4g} "
        f"(tolerance {settings.orthonormal_tolerance:g}) in {_names([culprit])}; "
        "the directions were normalised",
        (culprit.label,),
    )


def _frames_of_reference_warning(slices: Sequence[Slice]) -> ExamineWarning | None:
    uids = sorted({s.record.frame_of_reference_uid for s in slices} - {None})  # type: ignore[type-var]
    if len(uids) <= 1:
        return None
    return ExamineWarning(
        WarningCode.MULTIPLE_FRAMES_OF_REFERENCE,
        Level.WARNING,
        f"{len(uids)} FrameOfReferenceUIDs among {len(slices)} slices: the positions may "
        "not share one coordinate system",
    )


def _multiples(
    odd: Sequence[tuple[int, float]], usual: float, tol: float
) -> list[tuple[int, float, int]]:
    """The gaps that are an integer multiple (2 or more) of ``usual``, with the number of
    slices missing in each."""
    out = []
    for i, g in odd:
        k = round(g / usual)
        if k >= 2 and abs(g - k * usual) <= tol * k:
            out.append((i, g, k - 1))
    return out


def _spacing_warnings(
    ordered: Sequence[Slice], gaps: Sequence[float], settings: Settings
) -> list[ExamineWarning]:
    """Missing slices, duplicate positions and unequal gaps along the normal."""
    out: list[ExamineWarning] = []
    dup = [i for i, g in enumerate(gaps) if g <= settings.position_tolerance_mm]
    if dup:
        pairs = [(ordered[i], ordered[i + 1]) for i in dup]
        files = tuple(dict.fromkeys(s.label for pair in pairs for s in pair))
        out.append(
            ExamineWarning(
                WarningCode.DUPLICATE_POSITION,
                Level.WARNING,
                f"{len(dup)} pair(s) of slices share a position (gap <= "
                f"{settings.position_tolerance_mm:g} mm): "
                + "; ".join(f"{_names(p)}" for p in pairs[:_NAMED_IN_MESSAGE]),
                files,
            )
        )
    real = [g for g in gaps if g > settings.position_tolerance_mm]
    if not real:
        return out
    usual = _median(real)
    tol = max(settings.spacing_tolerance_mm, settings.spacing_tolerance_rel * usual)
    odd = [
        (i, g)
        for i, g in enumerate(gaps)
        if g > settings.position_tolerance_mm and abs(g - usual) > tol
    ]
    if not odd:
        return out
    multiples = _multiples(odd, usual, tol)
    if len(multiples) != len(odd):
        # With few gaps the median can fall between the usual gap and a double one: try
        # the smallest gap as the usual spacing.
        base = min(real)
        base_tol = max(settings.spacing_tolerance_mm, settings.spacing_tolerance_rel * base)
        odd_base = [
            (i, g)
            for i, g in enumerate(gaps)
            if g > settings.position_tolerance_mm and abs(g - base) > base_tol
        ]
        candidate = _multiples(odd_base, base, base_tol)
        if len(candidate) == len(odd_base):
            usual, tol, odd, multiples = base, base_tol, odd_base, candidate
    if len(multiples) == len(odd):
        missing = sum(m for _, _, m in multiples)
        where = "; ".join(
            f"{m} between {_names([ordered[i], ordered[i + 1]])} (gap {g:.3f} mm)"
            for i, g, m in multiples[:_NAMED_IN_MESSAGE]
        )
        files = tuple(dict.fromkeys(s.label for i, _, _ in multiples for s in ordered[i : i + 2]))
        out.append(
            ExamineWarning(
                WarningCode.MISSING_SLICES,
                Level.WARNING,
                f"{missing} slice(s) missing at the usual spacing of {usual:.3f} mm: {where}",
                files,
            )
        )
    else:
        files = tuple(dict.fromkeys(s.label for i, _ in odd for s in ordered[i : i + 2]))
        out.append(
            ExamineWarning(
                WarningCode.UNEQUAL_SPACING,
                Level.WARNING,
                f"slice gaps vary from {min(real):.3f} to {max(real):.3f} mm (median "
                f"{usual:.3f} mm, tolerance {tol:.3f} mm); {len(odd)} of {len(gaps)} gaps "
                "differ from the median",
                files,
            )
        )
    return out


def _instance_order_warning(ordered: Sequence[Slice]) -> ExamineWarning | None:
    numbers = [s.record.instance_number for s in ordered]
    if any(n is None for n in numbers) or len(set(numbers)) != len(numbers) or len(numbers) < 3:
        return None
    diffs = [b - a for a, b in itertools.pairwise(numbers)]  # type: ignore[operator]
    if all(d > 0 for d in diffs) or all(d < 0 for d in diffs):
        return None
    breaks = sum(1 for d, e in itertools.pairwise(diffs) if (d > 0) != (e > 0))
    return ExamineWarning(
        WarningCode.INSTANCE_ORDER_NOT_SPATIAL,
        Level.INFO,
        f"InstanceNumber order is not the spatial order: {breaks + 1} monotonic runs "
        f"among {len(numbers)} slices; slices are sorted by position",
    )


def _tilt_warnings(
    ordered: Sequence[Slice], normal: Vec, step: Vec, settings: Settings
) -> list[ExamineWarning]:
    length = float(np.linalg.norm(step))
    if length == 0:
        return []
    tilt = math.degrees(math.acos(min(1.0, abs(float(np.dot(step, normal))) / length)))
    tags = sorted({s.record.gantry_detector_tilt for s in ordered} - {None})  # type: ignore[type-var]
    tag = tags[0] if len(tags) == 1 else None
    tag_text = (
        f"GantryDetectorTilt {tag:g} degrees"
        if tag is not None
        else ("GantryDetectorTilt absent" if not tags else f"GantryDetectorTilt varies {tags}")
    )
    out: list[ExamineWarning] = []
    tol = settings.tilt_tolerance_deg
    if tilt > tol:
        out.append(
            ExamineWarning(
                WarningCode.GANTRY_TILT,
                Level.WARNING,
                f"slices are stacked {tilt:.2f} degrees off their normal ({tag_text}); "
                "the affine is sheared: its slice axis runs from the first slice to the last",
            )
        )
    if tag is not None and abs(abs(tag) - tilt) > max(tol, 0.5):
        out.append(
            ExamineWarning(
                WarningCode.TILT_TAG_MISMATCH,
                Level.INFO,
                f"GantryDetectorTilt says {tag:g} degrees but the positions give {tilt:.2f} "
                "degrees; the positions are used",
            )
        )
    return out


def analyse_stack(
    slices: Sequence[Slice], orientation: Orientation | None, settings: Settings
) -> StackGeometry:
    """Sort slices along the normal and describe their geometry.

    Parameters
    ----------
    slices
        Slices of one loadable (one time point), each at its own position.
    orientation
        The orientation of the loadable (the cluster's), ``None`` when unknown.
    settings
        Tolerances.

    Returns
    -------
    StackGeometry
        Slices in spatial order (ties and slices without geometry by InstanceNumber),
        the affine (``None`` without geometry), spacing and warnings.
    """
    warnings: list[ExamineWarning] = []
    with_geometry = orientation is not None and all(
        s.position is not None and orientation_of(s) is not None for s in slices
    )
    if not with_geometry or orientation is None:
        ordered = sorted(slices, key=lambda s: s.sort_key)
        missing = [
            s
            for s in ordered
            if s.position is None or s.row_cosine is None or s.column_cosine is None
        ]
        degenerate = [s for s in ordered if s not in missing and orientation_of(s) is None]
        if missing:
            warnings.append(
                ExamineWarning(
                    WarningCode.MISSING_GEOMETRY,
                    Level.ERROR
                    if len(ordered) > 1 or ordered[0].record.modality in CROSS_SECTIONAL
                    else Level.INFO,
                    f"{len(missing)} of {len(ordered)} slice(s) lack ImagePositionPatient or "
                    f"ImageOrientationPatient ({_names(missing)}); ordered by InstanceNumber, "
                    "no affine",
                    tuple(s.label for s in missing),
                )
            )
        if degenerate:
            warnings.append(
                ExamineWarning(
                    WarningCode.DEGENERATE_GEOMETRY,
                    Level.ERROR,
                    f"ImageOrientationPatient of {len(degenerate)} slice(s) is zero or "
                    f"parallel ({_names(degenerate)}); no affine",
                    tuple(s.label for s in degenerate),
                )
            )
        ps = slices[0].pixel_spacing if slices else None
        spacing = (ps[1], ps[0], 1.0) if ps is not None else None
        return StackGeometry(tuple(ordered), None, spacing, tuple(warnings))

    normal = orientation.normal
    ordered = sorted(
        slices,
        key=lambda s: (float(np.dot(s.position, normal)), s.sort_key),  # type: ignore[arg-type]
    )
    positions = np.array([s.position for s in ordered], dtype=np.float64)
    spacings = {s.pixel_spacing for s in ordered}
    ps = ordered[0].pixel_spacing
    if ps is None:
        warnings.append(
            ExamineWarning(
                WarningCode.MISSING_GEOMETRY,
                Level.WARNING,
                "PixelSpacing is absent; 1 mm is assumed in-plane",
            )
        )
        ps = (1.0, 1.0)
    elif len(spacings) > 1:
        values = sorted(str(v) for v in spacings)
        warnings.append(
            ExamineWarning(
                WarningCode.INCONSISTENT_MATRIX,
                Level.WARNING,
                f"PixelSpacing differs between slices: {', '.join(values)}; the first is used",
            )
        )
    row_step, col_step = ps[0], ps[1]
    n = len(ordered)
    if n > 1:
        step = (positions[-1] - positions[0]) / (n - 1)
        depths = positions @ normal
        gaps = np.diff(depths).tolist()
        warnings.extend(_spacing_warnings(ordered, gaps, settings))
        warnings.extend(_tilt_warnings(ordered, normal, step, settings))
        order_warning = _instance_order_warning(ordered)
        if order_warning is not None:
            warnings.append(order_warning)
        slice_step = float(np.linalg.norm(step))
        if slice_step <= settings.position_tolerance_mm:
            warnings.append(
                ExamineWarning(
                    WarningCode.DEGENERATE_GEOMETRY,
                    Level.ERROR,
                    f"the {n} slices have no extent along the normal; the slice step is "
                    "set to the slice thickness",
                )
            )
            slice_step = ordered[0].record.slice_thickness or 1.0
            step = normal * slice_step
    else:
        r = ordered[0].record
        thickness = r.spacing_between_slices or r.slice_thickness
        slice_step = float(thickness) if thickness and thickness > 0 else 1.0
        step = normal * slice_step
    for warning in (_orthonormal_warning(ordered, settings), _frames_of_reference_warning(ordered)):
        if warning is not None:
            warnings.append(warning)
    affine = _matrix(
        (orientation.row * col_step, orientation.column * row_step, step), positions[0]
    )
    spacing = (float(col_step), float(row_step), round(slice_step, 6))
    return StackGeometry(tuple(ordered), affine, spacing, tuple(warnings))


@dataclass(frozen=True, slots=True)
class MosaicGeometry:
    """The volume inside one mosaic image (Siemens MOSAIC, UIH VFRAME)."""

    tile_columns: int
    tile_rows: int
    slices: int
    affine: Matrix4
    spacing: tuple[float, float, float]
    warnings: tuple[ExamineWarning, ...] = ()


def mosaic_geometry(
    s: Slice, orientation: Orientation | None, settings: Settings | None = None
) -> MosaicGeometry | None:
    """Unpack the geometry of a mosaic: ``n`` tiles in a grid of tile rows and columns
    (the record's ``mosaic_grid``; ``ceil(sqrt(n))`` each way when absent), filled row
    by row from the top left, each ``Columns / grid columns`` by ``Rows / grid rows``.

    A Siemens mosaic's ImagePositionPatient is the corner of the whole grid; the first
    slice's corner lies half the difference between the mosaic and the tile size further
    along the row and column directions. Slices follow the CSA SliceNormalVector (the
    cross product of the cosines when absent), SpacingBetweenSlices apart (else
    SliceThickness). A UIH VFRAME object lists each tile's position: the first is the
    origin and the slice axis steps from the first to the last, with ``UNEQUAL_SPACING``
    when the tiles are not evenly spaced along the normal. ``None`` when the object is
    not a mosaic or lacks geometry.
    """
    r = s.record
    n = r.mosaic_slices
    if not n or orientation is None or s.position is None or s.pixel_spacing is None:
        return None
    if not r.rows or not r.columns:
        return None
    side = math.ceil(math.sqrt(n))
    grid_rows, grid_columns = r.mosaic_grid or (side, side)
    if grid_rows < 1 or grid_columns < 1 or grid_rows * grid_columns < n:
        return None
    if r.rows % grid_rows or r.columns % grid_columns:
        return None
    tile_rows, tile_columns = r.rows // grid_rows, r.columns // grid_columns
    row_step, col_step = s.pixel_spacing
    gap = r.spacing_between_slices or r.slice_thickness or 1.0
    if r.mosaic_positions is not None:
        return _tile_geometry(
            r.mosaic_positions,
            orientation,
            (tile_columns, tile_rows),
            (col_step, row_step, float(gap)),
            settings or Settings(),
        )
    origin = (
        s.position
        + orientation.row * col_step * (r.columns - tile_columns) / 2
        + orientation.column * row_step * (r.rows - tile_rows) / 2
    )
    normal = orientation.normal
    if r.slice_normal is not None and len(r.slice_normal) == 3:
        csa = np.asarray(r.slice_normal, dtype=np.float64)
        length = float(np.linalg.norm(csa))
        if length > 0.5:
            normal = csa / length
    affine = _matrix(
        (orientation.row * col_step, orientation.column * row_step, normal * gap), origin
    )
    return MosaicGeometry(tile_columns, tile_rows, n, affine, (col_step, row_step, float(gap)))


def _tile_geometry(
    positions: Sequence[Sequence[float]],
    orientation: Orientation,
    tile: tuple[int, int],
    steps: tuple[float, float, float],
    settings: Settings,
) -> MosaicGeometry | None:
    """Geometry from the position of every tile (UIH VFRAME); ``steps`` are the column
    and row spacing, and the slice step of a single tile."""
    points = np.asarray(positions, dtype=np.float64)
    n = len(points)
    if n < 1 or points.shape != (n, 3):
        return None
    col_step, row_step, single = steps
    normal = orientation.normal
    warnings: list[ExamineWarning] = []
    if n > 1:
        step = (points[-1] - points[0]) / (n - 1)
        depths = points @ normal
        gaps = np.diff(depths)
        gap = _median(np.abs(gaps).tolist())
        tol = max(settings.spacing_tolerance_mm, settings.spacing_tolerance_rel * gap)
        off = float(
            np.max(np.linalg.norm(points - (points[0] + np.outer(np.arange(n), step)), axis=1))
        )
        if gap <= settings.position_tolerance_mm:
            return None
        if off > tol or float(np.max(np.abs(np.abs(gaps) - gap))) > tol:
            warnings.append(
                ExamineWarning(
                    WarningCode.UNEQUAL_SPACING,
                    Level.WARNING,
                    f"the {n} tile positions are not evenly spaced: gaps along the normal "
                    f"from {float(np.min(np.abs(gaps))):.3f} to {float(np.max(np.abs(gaps))):.3f}"
                    f" mm (median {gap:.3f} mm, tolerance {tol:.3f} mm), up to {off:.3f} mm off"
                    " the line from the first tile to the last",
                )
            )
    else:
        step = normal * single
    affine = _matrix((orientation.row * col_step, orientation.column * row_step, step), points[0])
    spacing = (float(col_step), float(row_step), round(float(np.linalg.norm(step)), 6))
    return MosaicGeometry(tile[0], tile[1], n, affine, spacing, tuple(warnings))
