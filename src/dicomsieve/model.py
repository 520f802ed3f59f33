"""Records: what a scan learns about each file, as frozen dataclasses.

A :class:`FileOutcome` is the result of looking at one path: its state and, for a
DICOM file that was read, an :class:`InstanceRecord` with the header elements
dicomsieve uses. Enhanced multi-frame objects carry one :class:`FrameRecord` per
frame, built from the shared and per-frame functional groups.

Patient identifiers are excluded from ``repr`` so that a record printed in a log
or a traceback never shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

from dicomsieve.codes import ErrorCode, FileState, FlagCode, IgnoreRule

__all__ = ["FileOutcome", "FrameRecord", "InstanceRecord", "PixelDataInfo"]

Floats = tuple[float, ...]
Strs = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """Geometry and acquisition values of one frame of a multi-frame object.

    Values come from the per-frame functional group of the frame, else from the
    shared functional groups. ``frame_number`` is 1-based, as in DICOM.
    """

    frame_number: int
    image_position: Floats | None = None
    image_orientation: Floats | None = None
    pixel_spacing: Floats | None = None
    slice_thickness: float | None = None
    spacing_between_slices: float | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    rescale_type: str | None = None
    window_center: Floats | None = None
    window_width: Floats | None = None
    dimension_index_values: tuple[int, ...] | None = None
    temporal_position_index: int | None = None
    stack_id: str | None = None
    in_stack_position: int | None = None
    frame_acquisition_number: int | None = None
    frame_acquisition_datetime: str | None = None
    echo_time: float | None = None
    trigger_time: float | None = None
    diffusion_b_value: float | None = None
    diffusion_gradient_orientation: Floats | None = None
    frame_type: Strs | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Sent from worker processes by the thousand: positional values pickle and load
        # several times faster than the generated field-by-field state of a slots class.
        return (type(self), tuple([getattr(self, name) for name in _FIELDS["FrameRecord"]]))


@dataclass(frozen=True, slots=True)
class PixelDataInfo:
    """Where the pixel data element sits in the file.

    ``offset`` is the byte offset of the value (after the element header) in the
    file, or in the inflated dataset stream when ``deflated`` is true. ``length`` is
    ``None`` for encapsulated (compressed) pixel data of undefined length.
    """

    tag: int
    offset: int
    length: int | None
    deflated: bool = False

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Sent from worker processes by the thousand: positional values pickle and load
        # several times faster than the generated field-by-field state of a slots class.
        return (type(self), tuple([getattr(self, name) for name in _FIELDS["PixelDataInfo"]]))


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """The header elements of one DICOM object that dicomsieve uses.

    Multi-valued elements are tuples; absent or unparsable values are ``None``.
    Text is decoded with the object's SpecificCharacterSet and stripped.
    """

    sop_instance_uid: str
    sop_class_uid: str | None
    series_instance_uid: str
    study_instance_uid: str
    transfer_syntax_uid: str | None
    patient_id: str | None = field(default=None, repr=False)
    patient_name: str | None = field(default=None, repr=False)
    patient_birth_date: str | None = field(default=None, repr=False)
    study_date: str | None = None
    study_time: str | None = None
    study_description: str | None = None
    accession_number: str | None = field(default=None, repr=False)
    series_number: int | None = None
    series_description: str | None = None
    modality: str | None = None
    manufacturer: str | None = None
    manufacturer_model_name: str | None = None
    protocol_name: str | None = None
    sequence_name: str | None = None
    instance_number: int | None = None
    acquisition_number: int | None = None
    image_type: Strs | None = None
    content_time: str | None = None
    acquisition_time: str | None = None
    image_position: Floats | None = None
    image_orientation: Floats | None = None
    pixel_spacing: Floats | None = None
    slice_thickness: float | None = None
    spacing_between_slices: float | None = None
    gantry_detector_tilt: float | None = None
    frame_of_reference_uid: str | None = None
    patient_position: str | None = None
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int | None = None
    samples_per_pixel: int | None = None
    photometric_interpretation: str | None = None
    bits_allocated: int | None = None
    bits_stored: int | None = None
    high_bit: int | None = None
    pixel_representation: int | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    rescale_type: str | None = None
    window_center: Floats | None = None
    window_width: Floats | None = None
    echo_numbers: tuple[int, ...] | None = None
    echo_time: float | None = None
    repetition_time: float | None = None
    inversion_time: float | None = None
    flip_angle: float | None = None
    temporal_position_identifier: int | None = None
    number_of_temporal_positions: int | None = None
    trigger_time: float | None = None
    diffusion_b_value: float | None = None
    diffusion_gradient_orientation: Floats | None = None
    xray_tube_current: float | None = None
    exposure: float | None = None
    has_referenced_image_sequence: bool = False
    pixel_data: PixelDataInfo | None = None
    frames: tuple[FrameRecord, ...] = ()
    mosaic_slices: int | None = None
    """A mosaic (Siemens MOSAIC, UIH VFRAME): how many tiles hold slices, from the Siemens
    CSA image header or UIH's private (0065,xx50)."""
    slice_normal: Floats | None = None
    """Siemens mosaic: the direction slices are stacked in (CSA SliceNormalVector)."""
    private_image_type: str | None = None
    """What the image holds by vendor private elements, where ImageType does not say it:
    ``magnitude``, ``phase``, ``real``, ``imaginary`` or ``field map`` (GE, see
    :mod:`dicomsieve.scan.ge`)."""
    mosaic_grid: tuple[int, int] | None = None
    """A mosaic's grid of tiles, (rows, columns), filled row by row from the top left:
    ``ceil(sqrt(n))`` each way for Siemens, ``ceil(n / c)`` rows of ``c = ceil(sqrt(n))``
    for UIH. ``None`` with ``mosaic_slices`` set: a Siemens mosaic indexed before the grid
    was recorded."""
    mosaic_positions: tuple[Floats, ...] | None = None
    """UIH VFRAME: ImagePositionPatient of each tile, in tile order (the object itself has
    none)."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Sent from worker processes by the thousand: positional values pickle and load
        # several times faster than the generated field-by-field state of a slots class.
        return (type(self), tuple([getattr(self, name) for name in _FIELDS["InstanceRecord"]]))


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What looking at one path produced: exactly one state, and why.

    ``code`` is an :class:`ErrorCode` for ``error``, an :class:`IgnoreRule` for
    ``ignored``, and ``None`` otherwise. ``message`` never contains patient data.
    """

    path: str
    state: FileState
    size: int | None = None
    mtime_ns: int | None = None
    inode: int | None = None
    device: int | None = None
    code: ErrorCode | IgnoreRule | None = None
    message: str | None = None
    flags: tuple[FlagCode, ...] = ()
    instance: InstanceRecord | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Sent from worker processes by the thousand: positional values pickle and load
        # several times faster than the generated field-by-field state of a slots class.
        return (type(self), tuple([getattr(self, name) for name in _FIELDS["FileOutcome"]]))


_FIELDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        cls.__name__: tuple(f.name for f in fields(cls))
        for cls in (FrameRecord, PixelDataInfo, InstanceRecord, FileOutcome)
    }
)
