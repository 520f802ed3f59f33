"""Examine: records in, loadables out.

:func:`examine_instances` is pure: it groups instances by series, applies the
splitting rules of :mod:`dicomsieve.loadables.split`, computes each loadable's
geometry (:mod:`dicomsieve.loadables.geometry`), then its confidence and whether it is
selected by default. The scale is documented in ``docs/examine.md``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from dicomsieve.codes import Level, LoadableKind, WarningCode
from dicomsieve.loadables.geometry import MosaicGeometry, analyse_stack, mosaic_geometry
from dicomsieve.loadables.model import (
    Examination,
    ExamineWarning,
    Loadable,
    SeriesExamination,
    SourceInstance,
)
from dicomsieve.loadables.slices import flatten
from dicomsieve.loadables.split import Draft, split_series
from dicomsieve.model import InstanceRecord
from dicomsieve.settings import Settings

__all__ = ["CONFIDENCE_PENALTY", "examine_instances", "examine_series"]

CONFIDENCE_PENALTY: dict[Level, float] = {Level.INFO: 0.0, Level.WARNING: 0.15, Level.ERROR: 0.4}
"""Confidence lost per distinct warning code, by level."""

_CONFIDENCE_FLOOR = 0.05


def examine_instances(
    instances: Iterable[SourceInstance], settings: Settings | None = None
) -> Examination:
    """Examine instances of any number of series.

    Parameters
    ----------
    instances
        Indexed instances, in any order (the result does not depend on it).
    settings
        Tolerances; the defaults when ``None``.

    Returns
    -------
    Examination
        One :class:`SeriesExamination` per SeriesInstanceUID, ordered by
        SeriesNumber, then UID.
    """
    settings = settings or Settings()
    by_series: dict[str, list[SourceInstance]] = defaultdict(list)
    for instance in instances:
        by_series[instance.record.series_instance_uid].append(instance)
    results = [examine_series(group, settings) for group in by_series.values()]
    results.sort(
        key=lambda s: (s.series_number is None, s.series_number or 0, s.series_instance_uid)
    )
    return Examination(tuple(results))


def examine_series(instances: Sequence[SourceInstance], settings: Settings) -> SeriesExamination:
    """Examine the instances of one series into loadables.

    Parameters
    ----------
    instances
        Every instance of one SeriesInstanceUID, duplicates included.
    settings
        Tolerances.

    Returns
    -------
    SeriesExamination
    """
    if not instances:
        raise ValueError("examine_series needs at least one instance")
    primary = [i for i in instances if i.duplicate_of is None]
    duplicates = sorted(i.path for i in instances if i.duplicate_of is not None)
    first = min(instances, key=lambda i: (i.record.sop_instance_uid, i.path)).record
    drafts = split_series(flatten(primary), settings)
    loadables = _finish(
        drafts, first.series_instance_uid, first.series_description, first.series_number, settings
    )
    series_warnings: list[ExamineWarning] = []
    if duplicates:
        series_warnings.append(
            ExamineWarning(
                WarningCode.DUPLICATE_SOP_INSTANCE,
                Level.INFO,
                f"{len(duplicates)} file(s) repeat a SOPInstanceUID that another file already "
                "holds; they are left out of the loadables",
                tuple(duplicates),
            )
        )
    return SeriesExamination(
        series_instance_uid=first.series_instance_uid,
        series_number=first.series_number,
        series_description=first.series_description,
        modality=first.modality,
        loadables=loadables,
        warnings=tuple(series_warnings),
        left_out=tuple(duplicates),
    )


def _finish(
    drafts: Sequence[Draft],
    series_uid: str,
    description: str | None,
    number: int | None,
    settings: Settings,
) -> tuple[Loadable, ...]:
    built = [_build(d, series_uid, settings) for d in drafts]
    built.sort(key=_loadable_order)
    named = _name_all(built, description, number)
    return _select(named)


def _loadable_order(item: tuple[Draft, Loadable]) -> tuple[int, str]:
    draft, loadable = item
    rank = {
        LoadableKind.VOLUME: 0,
        LoadableKind.SEQUENCE: 0,
        LoadableKind.IMAGE: 1,
        LoadableKind.LOCALIZER: 2,
        LoadableKind.UNSUPPORTED: 3,
    }[loadable.kind]
    first = loadable.slices[0]
    return (
        rank,
        f"{' '.join(draft.qualifiers)}|{first.sop_instance_uid}|{first.frame_number or 0}",
    )


def _build(draft: Draft, series_uid: str, settings: Settings) -> tuple[Draft, Loadable]:
    warnings = list(draft.warnings)
    if draft.kind is LoadableKind.UNSUPPORTED:
        slices = tuple(sorted(draft.slices, key=lambda s: s.sort_key))
        loadable = Loadable(
            name="",
            kind=draft.kind,
            series_instance_uid=series_uid,
            slices=tuple(s.ref() for s in slices),
            shape=(),
            spacing=None,
            affine_lps=None,
        )
        return draft, _with_warnings(loadable, warnings, draft.base_confidence)
    first = analyse_stack(draft.timepoints[0], draft.orientation, settings)
    warnings.extend(first.warnings)
    ordered = list(first.slices)
    if len(draft.timepoints) > 1:
        mismatched = 0
        reference = np.array([s.position for s in first.slices], dtype=np.float64)
        for t in draft.timepoints[1:]:
            geometry = analyse_stack(t, draft.orientation, settings)
            ordered.extend(geometry.slices)
            if draft.orientation is not None and geometry.affine is not None:
                here = np.array([s.position for s in geometry.slices], dtype=np.float64)
                if here.shape != reference.shape or float(np.max(np.abs(here - reference))) > max(
                    settings.position_tolerance_mm * 10, 0.1
                ):
                    mismatched += 1
        if mismatched:
            warnings.append(
                ExamineWarning(
                    WarningCode.SEQUENCE_GEOMETRY_MISMATCH,
                    Level.WARNING,
                    f"{mismatched} of {len(draft.timepoints) - 1} later time points do not "
                    "repeat the slice positions of the first; the first defines the affine",
                )
            )
    record = draft.timepoints[0][0].record
    kind = draft.kind
    shape: tuple[int, ...] = (record.columns or 0, record.rows or 0, len(draft.timepoints[0]))
    affine, spacing, mosaic_slices = first.affine, first.spacing, None
    mosaic = _mosaic(draft, settings)
    if mosaic is not None:
        draft = draft.extend(_mosaic_reason(record, mosaic))
        shape = (mosaic.tile_columns, mosaic.tile_rows, mosaic.slices)
        affine, spacing, mosaic_slices = mosaic.affine, mosaic.spacing, mosaic.slices
        warnings.extend(mosaic.warnings)
        if kind is LoadableKind.IMAGE and mosaic.slices > 1:
            kind = LoadableKind.VOLUME
    elif any("MOSAIC" in s.all_image_type_values for s in draft.slices):
        warnings.append(
            ExamineWarning(
                WarningCode.MOSAIC_NOT_SPLIT,
                Level.WARNING,
                "Siemens mosaic (ImageType MOSAIC) without a readable CSA image header: the "
                "number of tiles is unknown, so shape and affine describe the whole mosaic",
            )
        )
    elif any("VFRAME" in s.all_image_type_values for s in draft.slices):
        warnings.append(
            ExamineWarning(
                WarningCode.MOSAIC_NOT_SPLIT,
                Level.WARNING,
                "UIH VFRAME image whose private header (creator 'Image Private Header', "
                "group 0065) cannot be read or does not place its tiles: the tiles cannot be "
                "separated, so shape and affine describe the whole image",
            )
        )
    if kind is LoadableKind.SEQUENCE:
        shape = (*shape, len(draft.timepoints))
    loadable = Loadable(
        name="",
        kind=kind,
        series_instance_uid=series_uid,
        slices=tuple(s.ref() for s in ordered),
        shape=shape,
        spacing=spacing,
        affine_lps=affine,
        mosaic_slices=mosaic_slices,
    )
    return draft, _with_warnings(loadable, warnings, draft.base_confidence)


def _mosaic_reason(record: InstanceRecord, mosaic: MosaicGeometry) -> str:
    """How the tiles were found, for the reason."""
    per = f"{mosaic.slices} tiles of {mosaic.tile_columns}x{mosaic.tile_rows}"
    if record.mosaic_positions is not None:
        return (
            f"each image a UIH VFRAME of {per}, placed by the tile positions in its private header"
        )
    return f"each image a Siemens mosaic of {per}, by its CSA image header"


def _mosaic(draft: Draft, settings: Settings) -> MosaicGeometry | None:
    """The mosaic geometry when every time point is one mosaic of the same layout."""
    if any(len(t) != 1 for t in draft.timepoints):
        return None
    layouts = {
        (s.record.mosaic_slices, s.record.mosaic_grid, s.record.rows, s.record.columns)
        for t in draft.timepoints
        for s in t
    }
    if len(layouts) != 1:
        return None
    return mosaic_geometry(draft.timepoints[0][0], draft.orientation, settings)


def _with_warnings(loadable: Loadable, warnings: list[ExamineWarning], base: float) -> Loadable:
    unique: dict[tuple[WarningCode, str], ExamineWarning] = {}
    for w in warnings:
        unique.setdefault((w.code, w.message), w)
    kept = tuple(unique.values())
    penalty = 0.0
    for code in {w.code for w in kept}:
        penalty += max(CONFIDENCE_PENALTY[w.level] for w in kept if w.code == code)
    confidence = max(_CONFIDENCE_FLOOR, round(base - penalty, 3))
    return replace(loadable, warnings=kept, confidence=confidence)


def _name_all(
    built: Sequence[tuple[Draft, Loadable]], description: str | None, number: int | None
) -> list[tuple[Draft, Loadable]]:
    seen: dict[str, int] = {}
    out = []
    for draft, loadable in built:
        # The loadable's own description and number: a UID may hold several series.
        own = draft.slices[0].record if draft.slices else None
        own_description = own.series_description if own else description
        own_number = own.series_number if own else number
        base = own_description or (f"Series {own_number}" if own_number is not None else "Series")
        qualifiers = list(dict.fromkeys(draft.qualifiers))
        if (
            loadable.kind not in (LoadableKind.VOLUME, LoadableKind.LOCALIZER)
            and str(loadable.kind) not in qualifiers
        ):
            qualifiers.append(str(loadable.kind))
        name = f"{base} [{', '.join(qualifiers)}]" if qualifiers else base
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        out.append((draft, replace(loadable, name=name, reason="; ".join(draft.reasons))))
    return out


def _select(named: Sequence[tuple[Draft, Loadable]]) -> tuple[Loadable, ...]:
    """Volumes and sequences are the answer; a lone original image only when the series
    has no volume; localizers, screenshots and unsupported objects never."""
    stacks = [
        (d, lo)
        for d, lo in named
        if lo.kind in (LoadableKind.VOLUME, LoadableKind.SEQUENCE) and d.selectable
    ]
    chosen = {id(lo) for _, lo in stacks}
    if not stacks:
        chosen = {id(lo) for d, lo in named if lo.kind is LoadableKind.IMAGE and d.selectable}
    return tuple(replace(lo, selected=id(lo) in chosen) for _, lo in named)
