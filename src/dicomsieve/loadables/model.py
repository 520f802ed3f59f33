"""What examine produces: loadables, their slices and their warnings.

A :class:`Loadable` is one thing a user would load: a volume, a 4D sequence, a
localizer, a lone image, or an object without usable pixels. Its slices are in
slice order (for a sequence: every slice of time point 1, then of time point 2...),
and ``affine_lps`` maps a voxel index (i = column, j = row, k = slice) to LPS
millimetres.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dicomsieve.codes import Level, LoadableKind, WarningCode
from dicomsieve.model import FrameRecord, InstanceRecord

__all__ = [
    "Examination",
    "ExamineWarning",
    "Loadable",
    "SeriesExamination",
    "SliceRef",
    "SourceInstance",
]

Matrix4 = tuple[
    tuple[float, float, float, float],
    tuple[float, float, float, float],
    tuple[float, float, float, float],
    tuple[float, float, float, float],
]


@dataclass(frozen=True, slots=True)
class SourceInstance:
    """One indexed DICOM object handed to examine: where it is and what it says.

    ``instance_id`` is the database id when the instance comes from an index.
    ``duplicate_of`` is set for a file whose SOPInstanceUID was already indexed from
    another file; examine leaves such files out of loadables and reports them.
    """

    path: str
    record: InstanceRecord
    instance_id: int | None = None
    duplicate_of: int | None = None


@dataclass(frozen=True, slots=True)
class SliceRef:
    """One 2D slice of a loadable: a single-frame file, or one frame of a multi-frame file.

    ``frame_number`` is 1-based, and ``None`` for a single-frame object.
    ``position`` is ImagePositionPatient (LPS mm) of this slice, when known.
    """

    path: str
    sop_instance_uid: str
    frame_number: int | None
    instance_number: int | None
    position: tuple[float, float, float] | None
    instance_id: int | None = None


@dataclass(frozen=True, slots=True)
class ExamineWarning:
    """A finding about a loadable or a series, with the numbers that support it.

    ``files`` names the slices concerned (paths, with ``#frame`` for frames), when
    the finding is about particular slices.
    """

    code: WarningCode
    level: Level
    message: str
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``examine --json`` and the index."""
        out: dict[str, Any] = {
            "code": str(self.code),
            "level": str(self.level),
            "message": self.message,
        }
        if self.files:
            out["files"] = list(self.files)
        return out


@dataclass(frozen=True, slots=True)
class Loadable:
    """One thing a user would load from a series, and why it exists.

    Attributes
    ----------
    name
        A readable, unique name within the series.
    kind
        See :class:`~dicomsieve.codes.LoadableKind`.
    series_instance_uid
        The series it came from.
    slices
        Slices in slice order; a sequence lists time point after time point.
    shape
        ``(columns, rows, slices)``, with a 4th entry (time points) for a sequence;
        ``()`` for an unsupported object.
    spacing
        ``(column_mm, row_mm, slice_mm)``: the pixel spacing and the mean distance
        between slice centres (1.0 or SliceThickness for one slice).
    affine_lps
        4x4 matrix from voxel (i = column, j = row, k = slice) to LPS mm, or ``None``
        without geometry. The third column is the mean stacking step, so a tilted
        gantry gives a sheared affine.
    warnings
        Findings with codes, levels and numbers.
    confidence
        0 to 1, see ``docs/examine.md``.
    selected
        Part of the default answer for the series.
    reason
        The rule that produced this loadable.
    mosaic_slices
        For mosaics (Siemens MOSAIC, UIH VFRAME): each slice reference is one mosaic
        image holding this many slices as tiles (``shape`` and ``affine_lps`` describe the
        unpacked volume).
    """

    name: str
    kind: LoadableKind
    series_instance_uid: str
    slices: tuple[SliceRef, ...]
    shape: tuple[int, ...]
    spacing: tuple[float, float, float] | None
    affine_lps: Matrix4 | None
    warnings: tuple[ExamineWarning, ...] = ()
    confidence: float = 1.0
    selected: bool = False
    reason: str = ""
    mosaic_slices: int | None = None

    @property
    def files(self) -> tuple[str, ...]:
        """Paths of the files, each once, in slice order."""
        return tuple(dict.fromkeys(s.path for s in self.slices))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``examine --json`` (see the README)."""
        return {
            "name": self.name,
            "kind": str(self.kind),
            "selected": self.selected,
            "confidence": round(self.confidence, 3),
            "reason": self.reason,
            "files": list(self.files),
            "frames": [s.frame_number for s in self.slices]
            if any(s.frame_number is not None for s in self.slices)
            else None,
            "shape": list(self.shape),
            "spacing": list(self.spacing) if self.spacing is not None else None,
            "affine_lps": [list(row) for row in self.affine_lps]
            if self.affine_lps is not None
            else None,
            "warnings": [w.to_dict() for w in self.warnings],
            "mosaic_slices": self.mosaic_slices,
        }


@dataclass(frozen=True, slots=True)
class SeriesExamination:
    """The loadables of one series, and findings about the series as a whole."""

    series_instance_uid: str
    series_number: int | None
    series_description: str | None
    modality: str | None
    loadables: tuple[Loadable, ...]
    warnings: tuple[ExamineWarning, ...] = ()
    left_out: tuple[str, ...] = field(default=())
    """Paths not in any loadable (duplicates of an indexed SOPInstanceUID), each named
    by a series warning."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of one series in ``examine --json``."""
        return {
            "series_instance_uid": self.series_instance_uid,
            "series_number": self.series_number,
            "series_description": self.series_description,
            "modality": self.modality,
            "loadables": [lo.to_dict() for lo in self.loadables],
            "warnings": [w.to_dict() for w in self.warnings],
            "left_out": list(self.left_out),
        }


@dataclass(frozen=True, slots=True)
class Examination:
    """Examine's answer for a set of series."""

    series: tuple[SeriesExamination, ...]

    def loadables(self) -> Iterator[Loadable]:
        """Every loadable of every series."""
        for s in self.series:
            yield from s.loadables

    def selected(self) -> list[Loadable]:
        """The loadables selected by default."""
        return [lo for lo in self.loadables() if lo.selected]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object printed by ``examine --json``."""
        return {"series": [s.to_dict() for s in self.series]}

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict())


def frame_of(record: InstanceRecord, frame_number: int | None) -> FrameRecord | None:
    """The frame record of ``frame_number`` (1-based), if the object has one."""
    if frame_number is None:
        return None
    for frame in record.frames:
        if frame.frame_number == frame_number:
            return frame
    return None
