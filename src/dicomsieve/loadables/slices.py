"""One 2D slice per single-frame object or per frame: the unit examine sorts and splits.

A :class:`Slice` flattens an instance record and, for a multi-frame object, one of its
frame records: per-frame values win over the object's own.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from dicomsieve.loadables.model import SliceRef, SourceInstance
from dicomsieve.model import FrameRecord, InstanceRecord

__all__ = ["CROSS_SECTIONAL", "Orientation", "Slice", "flatten", "seconds_of_day"]

Vec = NDArray[np.float64]

# Modalities whose images always carry a position: one without is broken, not a
# projection image.
CROSS_SECTIONAL = frozenset({"CT", "MR", "PT", "NM"})

# ImageType values (any position) that mark a scout across vendors: Siemens and GE
# write LOCALIZER, Philips SURVIEW (and REF_SURVIEW for a derived planning image),
# Siemens CT TOPOGRAM, some older systems SCOUT or SCANOGRAM.
_LOCALIZER_TOKENS = ("LOCALIZER", "SURVIEW", "SCOUT", "TOPOGRAM", "SCANOGRAM")

# Words of a SeriesDescription or ProtocolName that say scout.
_LOCALIZER_WORDS = frozenset(
    {
        "scout",
        "scouts",
        "localizer",
        "localiser",
        "localizers",
        "loc",
        "locator",
        "surview",
        "survey",
        "topogram",
        "scanogram",
        "pilot",
        "tripilot",
        "3plane",
    }
)

# ImageType values (Siemens, GE, Philips; the value 3 or 4 position) naming the complex
# component of an MR image.
_COMPONENTS = {
    "M": "magnitude",
    "MAG": "magnitude",
    "MAGNITUDE": "magnitude",
    "P": "phase",
    "PHASE": "phase",
    "PHASE MAP": "phase",
    "R": "real",
    "REAL": "real",
    "I": "imaginary",
    "IMAGINARY": "imaginary",
    "B0 MAP": "field map",
    "FIELD_MAP": "field map",
    "FIELDMAP": "field map",
}


def seconds_of_day(value: str | None) -> float | None:
    """A DICOM TM (or the time part of a DT) as seconds since midnight."""
    if not value:
        return None
    text = value.strip()
    if len(text) >= 14 and text[:8].isdigit():  # DT: YYYYMMDDHHMMSS...
        day = int(text[:8])
        text = text[8:]
    else:
        day = 0
    text = text.replace(":", "")
    match = re.match(r"^(\d{2})(\d{2})?(\d{2})?(\.\d+)?", text)
    if match is None:
        return None
    hours, minutes, secs, frac = match.groups()
    total = int(hours) * 3600 + int(minutes or 0) * 60 + int(secs or 0)
    return day * 86400.0 + total + (float(frac) if frac else 0.0)


def description_words(text: str | None) -> set[str]:
    """Lower-case words of a description, split at non-letters and at camel case."""
    if not text:
        return set()
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    words = {w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w}
    joined = re.sub(r"[^a-z0-9]", "", text.lower())
    if "3plane" in joined or "threeplane" in joined:
        words.add("3plane")
    return words


@dataclass(frozen=True, slots=True)
class Orientation:
    """Row and column direction cosines, normalised, and their normal."""

    row: Vec
    column: Vec

    @property
    def normal(self) -> Vec:
        n = np.array(_cross(self.row, self.column))
        length = math.sqrt(float(n @ n))
        return n / length if length > 0 else n


def _cross(a: Vec, b: Vec) -> tuple[float, float, float]:
    # Plain arithmetic: numpy's cross costs tens of microseconds per call, and examine
    # calls this for every slice.
    ax, ay, az = float(a[0]), float(a[1]), float(a[2])
    bx, by, bz = float(b[0]), float(b[1]), float(b[2])
    return (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)


def _length(v: Vec | tuple[float, float, float]) -> float:
    return math.sqrt(float(v[0]) ** 2 + float(v[1]) ** 2 + float(v[2]) ** 2)


def _orientation(row_cosine: Vec | None, column_cosine: Vec | None) -> Orientation | None:
    """The orientation of these cosines, or ``None`` when absent or degenerate."""
    if row_cosine is None or column_cosine is None:
        return None
    r_len = _length(row_cosine)
    c_len = _length(column_cosine)
    if r_len < 0.5 or c_len < 0.5:
        return None
    row, column = row_cosine / r_len, column_cosine / c_len
    if _length(_cross(row, column)) < 0.5:
        return None
    return Orientation(_read_only(row), _read_only(column))


def _read_only(v: Vec) -> Vec:
    """``v``, made read-only: slices of one orientation share their vectors."""
    v.flags.writeable = False
    return v


@dataclass(frozen=True, slots=True)
class Slice:
    """Everything examine needs about one 2D slice."""

    source: SourceInstance
    frame: FrameRecord | None
    position: Vec | None
    row_cosine: Vec | None
    column_cosine: Vec | None
    pixel_spacing: tuple[float, float] | None
    # Computed once by flatten, not per comparison: examine sorts and groups by them.
    sort_key: tuple[int, str, int, str] = field(compare=False, repr=False)
    """A total order independent of input order (for determinism)."""
    orientation: Orientation | None = field(compare=False, repr=False)
    """The normalised cosines, ``None`` when absent or degenerate."""

    @property
    def record(self) -> InstanceRecord:
        return self.source.record

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def frame_number(self) -> int | None:
        return self.frame.frame_number if self.frame is not None else None

    @property
    def label(self) -> str:
        """The file name, with ``#frame`` for a frame: how warnings name slices."""
        name = self.source.path
        return f"{name}#{self.frame.frame_number}" if self.frame is not None else name

    @property
    def short_name(self) -> str:
        """How messages name the slice: by InstanceNumber (and frame), never by file
        name, which some exports build from the patient's name."""
        number = self.record.instance_number
        frame = self.frame_number
        if number is not None:
            return f"instance {number}" + (f" frame {frame}" if frame is not None else "")
        if frame is not None:
            return f"frame {frame}"
        return f"SOP ...{self.record.sop_instance_uid[-8:]}"

    def ref(self) -> SliceRef:
        pos = self.position
        return SliceRef(
            path=self.path,
            sop_instance_uid=self.record.sop_instance_uid,
            frame_number=self.frame_number,
            instance_number=self.record.instance_number,
            # tolist: the same floats as float(pos[i]), in one call instead of three.
            position=tuple(pos.tolist()) if pos is not None else None,
            instance_id=self.source.instance_id,
        )

    # -- values, the frame's own first -------------------------------------------------

    @property
    def has_pixels(self) -> bool:
        r = self.record
        return bool(r.pixel_data is not None and r.rows and r.columns)

    @property
    def image_type(self) -> tuple[str, ...]:
        frame_type = self.frame.frame_type if self.frame is not None else None
        return _upper(frame_type or self.record.image_type)

    @property
    def all_image_type_values(self) -> tuple[str, ...]:
        return self.image_type + _upper(self.record.image_type)

    @property
    def localizer_token(self) -> str | None:
        """The ImageType value that marks this slice as a scout, if any."""
        frame_type = self.frame.frame_type if self.frame is not None else None
        return _localizer_token(frame_type, self.record.image_type)

    @property
    def description_says_scout(self) -> bool:
        """SeriesDescription says scout; ProtocolName only when there is no description
        (GE writes the whole exam's protocol there, "BRAIN WITH LOC", on every series)."""
        r = self.record
        text = r.series_description or r.protocol_name
        return bool(description_words(text) & _LOCALIZER_WORDS)

    @property
    def described_by(self) -> str:
        """The field :attr:`description_says_scout` read, with its value, for reasons."""
        r = self.record
        if r.series_description:
            return f"SeriesDescription {r.series_description!r}"
        return f"ProtocolName {r.protocol_name!r}"

    @property
    def component(self) -> str | None:
        """Magnitude, phase, real, imaginary or field map, from ImageType."""
        values = self.image_type
        for value in values[2:]:
            if value in _COMPONENTS:
                return _COMPONENTS[value]
        for value in values[2:]:
            # Philips classic: M_FFE, PHASE MAP, R_IR...; GE: sometimes in value 3 only.
            head = value.split("_", 1)[0]
            if head in ("M", "P", "R", "I") and "_" in value:
                return _COMPONENTS[head]
        return None

    @property
    def is_derived(self) -> bool:
        values = self.record.image_type or ()
        return bool(values) and values[0].upper() == "DERIVED"

    @property
    def echo_number(self) -> int | None:
        echoes = self.record.echo_numbers
        if self.frame is not None and self.frame.echo_time is not None:
            return None  # enhanced objects have no per-frame echo number; TE decides
        return echoes[0] if echoes else None

    @property
    def echo_time(self) -> float | None:
        if self.frame is not None and self.frame.echo_time is not None:
            return self.frame.echo_time
        return self.record.echo_time

    @property
    def temporal_position(self) -> int | None:
        if self.frame is not None and self.frame.temporal_position_index is not None:
            return self.frame.temporal_position_index
        return self.record.temporal_position_identifier

    @property
    def trigger_time(self) -> float | None:
        if self.frame is not None and self.frame.trigger_time is not None:
            return self.frame.trigger_time
        return self.record.trigger_time

    @property
    def diffusion(self) -> tuple[float, ...] | None:
        b: float | None = self.record.diffusion_b_value
        grad = self.record.diffusion_gradient_orientation
        if self.frame is not None and self.frame.diffusion_b_value is not None:
            b, grad = self.frame.diffusion_b_value, self.frame.diffusion_gradient_orientation
        if b is None:
            return None
        return (round(b, 3), *(round(g, 4) for g in (grad or ())))

    @property
    def acquisition_number(self) -> int | None:
        if self.frame is not None and self.frame.frame_acquisition_number is not None:
            return self.frame.frame_acquisition_number
        return self.record.acquisition_number

    @property
    def time_s(self) -> float | None:
        """Acquisition time (frame acquisition date-time for frames), else content time."""
        if self.frame is not None and self.frame.frame_acquisition_datetime:
            value = seconds_of_day(self.frame.frame_acquisition_datetime)
            if value is not None:
                return value
        r = self.record
        return seconds_of_day(r.acquisition_time) or seconds_of_day(r.content_time)

    @property
    def matrix_key(self) -> tuple[int, int, int]:
        r = self.record
        return (r.rows or 0, r.columns or 0, r.samples_per_pixel or 1)


# ImageType repeats from slice to slice (records read from the index share the tuple):
# its upper-case values and scout token are worked out once per distinct value.
@functools.lru_cache(maxsize=256)
def _upper(values: tuple[str, ...] | None) -> tuple[str, ...]:
    return tuple(v.upper() for v in (values or ()))


@functools.lru_cache(maxsize=256)
def _localizer_token(
    frame_type: tuple[str, ...] | None, image_type: tuple[str, ...] | None
) -> str | None:
    for value in _upper(frame_type or image_type) + _upper(image_type):
        for token in _LOCALIZER_TOKENS:
            if token in value:
                return value
    return None


def _vector(values: tuple[float, ...] | None, size: int) -> Vec | None:
    if values is None or len(values) != size:
        return None
    return np.asarray(values, dtype=np.float64)


def flatten(instances: Iterable[SourceInstance]) -> list[Slice]:
    """One :class:`Slice` per single-frame object and per frame, in a canonical order."""
    out: list[Slice] = []
    # Records read from the index share their ImageOrientationPatient tuple: its cosines
    # and Orientation are worked out once per tuple (by identity, so -0.0 stays -0.0),
    # and the slices share them, read-only.
    planes: dict[int, tuple[Vec | None, Vec | None, Orientation | None]] = {}
    for source in instances:
        record = source.record
        frames: tuple[FrameRecord | None, ...] = record.frames or (None,)
        if not record.frames and (record.number_of_frames or 1) > 1:
            # A classic multi-frame object (cine, NM): frames without functional groups.
            frames = tuple(FrameRecord(n + 1) for n in range(record.number_of_frames or 1))
        number = record.instance_number
        for frame in frames:
            position = frame.image_position if frame and frame.image_position else None
            orientation = frame.image_orientation if frame and frame.image_orientation else None
            spacing = frame.pixel_spacing if frame and frame.pixel_spacing else None
            iop_values = orientation or record.image_orientation
            plane = planes.get(id(iop_values))
            if plane is None:
                iop = _vector(iop_values, 6)
                row = _read_only(iop[:3]) if iop is not None else None
                column = _read_only(iop[3:]) if iop is not None else None
                plane = (row, column, _orientation(row, column))
                planes[id(iop_values)] = plane
            ps = spacing or record.pixel_spacing
            # A UIH VFRAME object has no position of its own: its first tile's stands in.
            tiles = record.mosaic_positions
            own = position or record.image_position or (tiles[0] if tiles else None)
            frame_number = frame.frame_number if frame is not None else None
            out.append(
                Slice(
                    source=source,
                    frame=frame,
                    position=_vector(own, 3),
                    row_cosine=plane[0],
                    column_cosine=plane[1],
                    pixel_spacing=(float(ps[0]), float(ps[1]))
                    if ps is not None and len(ps) == 2
                    else None,
                    sort_key=(
                        number if number is not None else 1 << 62,
                        record.sop_instance_uid,
                        frame_number or 0,
                        source.path,
                    ),
                    orientation=plane[2],
                )
            )
    out.sort(key=lambda s: s.sort_key)
    return out
