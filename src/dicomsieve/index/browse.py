"""Read queries for browsing an index by database id (the web app's needs).

Everything here reads; :mod:`dicomsieve.index.store` writes. Each function takes an
open :class:`~dicomsieve.index.store.Index` and returns frozen records. The SQL is
standard (no ``LIMIT``, no SQLite functions), as the schema is.

Database ids are what the web app puts in its URLs: a series, a stored loadable, never
a file path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from dicomsieve.index.store import Index

__all__ = [
    "LoadableRef",
    "SeriesInfo",
    "SeriesListing",
    "SliceDisplay",
    "loadable_ids",
    "loadable_ref",
    "localizer_partners",
    "series_info",
    "series_table",
    "slice_display",
]

_VOLUME_KINDS: Final = ("volume", "sequence")


@dataclass(frozen=True, slots=True)
class SeriesListing:
    """One row of the patients/studies/series table, with database ids.

    ``loadables`` counts the stored loadables by kind (empty when the series was never
    examined); ``selected`` how many of them are selected.
    """

    series_id: int
    series_instance_uid: str
    series_number: int | None
    series_description: str | None
    modality: str | None
    instances: int
    frames: int
    duplicates: int
    study_id: int
    study_instance_uid: str
    study_date: str | None
    study_description: str | None
    patient_ref: int
    patient_id: str | None = field(repr=False)
    patient_name: str | None = field(repr=False)
    loadables: dict[str, int] = field(default_factory=dict)
    selected: int = 0

    @property
    def examined(self) -> bool:
        """The index holds an examine result for this series."""
        return bool(self.loadables)


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """A series and its study, without patient identifiers."""

    series_id: int
    series_instance_uid: str
    series_number: int | None
    series_description: str | None
    modality: str | None
    study_id: int
    study_instance_uid: str
    study_date: str | None
    study_description: str | None


@dataclass(frozen=True, slots=True)
class LoadableRef:
    """Where a stored loadable sits: its series, its place in the series' result.

    ``frame_of_reference_uid`` is that of its first slice.
    """

    loadable_id: int
    series_id: int
    series_instance_uid: str
    series_number: int | None
    series_description: str | None
    modality: str | None
    study_id: int
    ordinal: int
    name: str
    kind: str
    selected: bool
    frame_of_reference_uid: str | None


@dataclass(frozen=True, slots=True)
class SliceDisplay:
    """What displaying one slice needs from its header.

    Window values come from the frame's functional groups when the slice is a frame
    that has them, else from the object.
    """

    modality: str | None
    photometric_interpretation: str | None
    window_center: tuple[float, ...] | None
    window_width: tuple[float, ...] | None


def _floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    value: Any = json.loads(text)
    if not isinstance(value, list):
        return None
    return tuple(float(v) for v in value)


def series_table(index: Index) -> list[SeriesListing]:
    """Every series with at least one present instance, with its study and patient.

    Parameters
    ----------
    index
        An open index.

    Returns
    -------
    list of SeriesListing
        Ordered by patient, study date, study, series number.
    """
    rows = index.conn.execute(
        "SELECT se.id, se.series_instance_uid, se.series_number, se.series_description, "
        "se.modality, COUNT(i.id), "
        "SUM(CASE WHEN i.number_of_frames > 1 THEN i.number_of_frames ELSE 1 END), "
        "SUM(CASE WHEN i.duplicate_of IS NULL THEN 0 ELSE 1 END), "
        "st.id, st.study_instance_uid, st.study_date, st.study_description, "
        "p.id, p.patient_id, p.patient_name "
        "FROM series se JOIN studies st ON st.id = se.study_ref "
        "JOIN patients p ON p.id = st.patient_ref "
        "JOIN instances i ON i.series_ref = se.id "
        "GROUP BY se.id, se.series_instance_uid, se.series_number, se.series_description, "
        "se.modality, st.id, st.study_instance_uid, st.study_date, st.study_description, "
        "p.id, p.patient_id, p.patient_name "
        "ORDER BY p.patient_name, p.patient_id, st.study_date, st.study_instance_uid, "
        "se.series_number, se.series_instance_uid"
    ).fetchall()
    kinds: dict[int, dict[str, int]] = {}
    selected: dict[int, int] = {}
    for series_id, kind, count, chosen in index.conn.execute(
        "SELECT series_ref, kind, COUNT(*), SUM(selected) FROM loadables "
        "GROUP BY series_ref, kind ORDER BY series_ref, kind"
    ):
        kinds.setdefault(int(series_id), {})[str(kind)] = int(count)
        selected[int(series_id)] = selected.get(int(series_id), 0) + int(chosen or 0)
    return [
        SeriesListing(
            series_id=int(r[0]),
            series_instance_uid=r[1],
            series_number=r[2],
            series_description=r[3],
            modality=r[4],
            instances=int(r[5]),
            frames=int(r[6]),
            duplicates=int(r[7]),
            study_id=int(r[8]),
            study_instance_uid=r[9],
            study_date=r[10],
            study_description=r[11],
            patient_ref=int(r[12]),
            patient_id=r[13],
            patient_name=r[14],
            loadables=kinds.get(int(r[0]), {}),
            selected=selected.get(int(r[0]), 0),
        )
        for r in rows
    ]


def series_info(index: Index, series_id: int) -> SeriesInfo | None:
    """The series with this database id, if it has instances.

    Parameters
    ----------
    index
        An open index.
    series_id
        Database id of the series.

    Returns
    -------
    SeriesInfo or None
    """
    row = index.conn.execute(
        "SELECT se.id, se.series_instance_uid, se.series_number, se.series_description, "
        "se.modality, st.id, st.study_instance_uid, st.study_date, st.study_description "
        "FROM series se JOIN studies st ON st.id = se.study_ref WHERE se.id = ? "
        "AND EXISTS (SELECT 1 FROM instances i WHERE i.series_ref = se.id)",
        (series_id,),
    ).fetchone()
    if row is None:
        return None
    return SeriesInfo(int(row[0]), row[1], row[2], row[3], row[4], int(row[5]), *row[6:])


def loadable_ids(index: Index, series_id: int) -> list[int]:
    """Database ids of the stored loadables of a series, in the order examine gave them.

    Parameters
    ----------
    index
        An open index.
    series_id
        Database id of the series.

    Returns
    -------
    list of int
        Position ``n`` is the id of ``stored_examination(...).loadables[n]``.
    """
    return [
        int(row[0])
        for row in index.conn.execute(
            "SELECT id FROM loadables WHERE series_ref = ? ORDER BY ordinal", (series_id,)
        )
    ]


_REF_SELECT: Final = (
    "SELECT lo.id, se.id, se.series_instance_uid, se.series_number, se.series_description, "
    "se.modality, se.study_ref, lo.ordinal, lo.name, lo.kind, lo.selected, "
    "i.frame_of_reference_uid "
    "FROM loadables lo JOIN series se ON se.id = lo.series_ref "
    "LEFT JOIN loadable_slices ls ON ls.loadable_ref = lo.id AND ls.ordinal = 0 "
    "LEFT JOIN instances i ON i.id = ls.instance_ref "
)


def _ref(row: Any) -> LoadableRef:
    return LoadableRef(
        loadable_id=int(row[0]),
        series_id=int(row[1]),
        series_instance_uid=row[2],
        series_number=row[3],
        series_description=row[4],
        modality=row[5],
        study_id=int(row[6]),
        ordinal=int(row[7]),
        name=row[8],
        kind=row[9],
        selected=bool(row[10]),
        frame_of_reference_uid=row[11],
    )


def loadable_ref(index: Index, loadable_id: int) -> LoadableRef | None:
    """Where the stored loadable with this database id sits, if it exists.

    Parameters
    ----------
    index
        An open index.
    loadable_id
        Database id of the loadable.

    Returns
    -------
    LoadableRef or None
    """
    row = index.conn.execute(_REF_SELECT + "WHERE lo.id = ?", (loadable_id,)).fetchone()
    return None if row is None else _ref(row)


def localizer_partners(index: Index, localizer: LoadableRef) -> list[LoadableRef]:
    """The volumes and sequences whose slices can be drawn on a localizer, best first.

    Candidates are in the localizer's study. Those that share its FrameOfReferenceUID
    come first (positions in one frame of reference are comparable; otherwise the
    lines are only as good as the patient's stillness between series); then those of
    its own series, then selected ones, then by series number and order.

    Parameters
    ----------
    index
        An open index.
    localizer
        The localizer (any loadable).

    Returns
    -------
    list of LoadableRef
        Never the localizer itself.
    """
    rows = index.conn.execute(
        _REF_SELECT + "WHERE se.study_ref = ? AND lo.kind IN (?, ?) AND lo.id <> ? "
        "ORDER BY se.series_number, se.id, lo.ordinal",
        (localizer.study_id, *_VOLUME_KINDS, localizer.loadable_id),
    ).fetchall()
    refs = [_ref(row) for row in rows]
    for_uid = localizer.frame_of_reference_uid

    def rank(ref: LoadableRef) -> tuple[int, int, int]:
        same_frame = for_uid is not None and ref.frame_of_reference_uid == for_uid
        return (
            0 if same_frame else 1,
            0 if ref.series_id == localizer.series_id else 1,
            0 if ref.selected else 1,
        )

    return sorted(refs, key=rank)  # stable: series number and order within a rank


def slice_display(index: Index, instance_id: int, frame_number: int | None) -> SliceDisplay | None:
    """Modality, photometric interpretation and window values of one slice.

    Parameters
    ----------
    index
        An open index.
    instance_id
        Database id of the instance (``SliceRef.instance_id``).
    frame_number
        1-based frame of a multi-frame object, or ``None``.

    Returns
    -------
    SliceDisplay or None
        ``None`` when the instance is no longer indexed.
    """
    row = index.conn.execute(
        "SELECT modality, photometric_interpretation, window_center, window_width "
        "FROM instances WHERE id = ?",
        (instance_id,),
    ).fetchone()
    if row is None:
        return None
    centers, widths = _floats(row[2]), _floats(row[3])
    if frame_number is not None:
        frame = index.conn.execute(
            "SELECT window_center, window_width FROM frames "
            "WHERE instance_ref = ? AND frame_number = ?",
            (instance_id, frame_number),
        ).fetchone()
        if frame is not None and frame[0] is not None and frame[1] is not None:
            centers, widths = _floats(frame[0]), _floats(frame[1])
    return SliceDisplay(row[0], row[1], centers, widths)
