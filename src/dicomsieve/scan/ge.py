"""GE private elements: the image type GE keeps out of ImageType.

GE writes ImageType ORIGINAL\\PRIMARY\\OTHER on magnitude, phase and field map images
alike. What an image holds is in private elements:

- *PrivateImageType* (0043,xx2F, creator ``GEMS_PARM_01``, SS): 0 magnitude, 1 phase,
  2 real, 3 imaginary;
- a *direct field map* series (GE's B0map, also named B0rf, and 3db0map) stores two
  volumes in one series: first the field map in Hz, then the magnitude, at the same
  positions. Both carry PrivateImageType 0. The series is known by its pulse sequence
  name (0019,xx9C) or internal pulse sequence name (0019,xx9E) (creator
  ``GEMS_ACQU_01``), and the field map is the first volume: InstanceNumber up to
  LocationsInAcquisition (0021,xx4F, creator ``GEMS_RELA_01``), when ImagesInAcquisition
  (0020,1002) counts more images than that (both volumes).

These rules follow GE's description of its field map DICOM in dcm2niix issue 501 and the
public GE sample in ``dcm_qa_fmap``. Everything here is pure and never raises.
"""

from __future__ import annotations

from typing import Final

from dicomsieve.scan.private import PrivateTag

__all__ = [
    "IMAGES_IN_ACQUISITION",
    "INTERNAL_PULSE_SEQUENCE_NAME",
    "LOCATIONS_IN_ACQUISITION",
    "PRIVATE_IMAGE_TYPE",
    "PRIVATE_TAGS",
    "PULSE_SEQUENCE_NAME",
    "is_direct_field_map",
    "private_image_type",
]

PRIVATE_IMAGE_TYPE: Final = PrivateTag(0x0043, "GEMS_PARM_01", 0x2F, "SS")
PULSE_SEQUENCE_NAME: Final = PrivateTag(0x0019, "GEMS_ACQU_01", 0x9C, "LO")
INTERNAL_PULSE_SEQUENCE_NAME: Final = PrivateTag(0x0019, "GEMS_ACQU_01", 0x9E, "LO")
LOCATIONS_IN_ACQUISITION: Final = PrivateTag(0x0021, "GEMS_RELA_01", 0x4F, "SS")
PRIVATE_TAGS: Final = (
    PRIVATE_IMAGE_TYPE,
    PULSE_SEQUENCE_NAME,
    INTERNAL_PULSE_SEQUENCE_NAME,
    LOCATIONS_IN_ACQUISITION,
)
IMAGES_IN_ACQUISITION: Final = 0x00201002
"""ImagesInAcquisition (public, IS): with a field map, both volumes."""

_IMAGE_TYPES: Final = {0: "magnitude", 1: "phase", 2: "real", 3: "imaginary"}
FIELD_MAP: Final = "field map"


def is_direct_field_map(pulse_sequence: str | None, internal_pulse_sequence: str | None) -> bool:
    """Whether GE's pulse sequence names say B0map (B0map, B0rf, 3db0map)."""
    if internal_pulse_sequence and internal_pulse_sequence.strip().lower() == "b0map":
        return True
    name = (pulse_sequence or "").strip().lower()
    return "b0map" in name or name == "b0rf"


def private_image_type(
    code: int | None,
    *,
    pulse_sequence: str | None = None,
    internal_pulse_sequence: str | None = None,
    locations_in_acquisition: int | None = None,
    images_in_acquisition: int | None = None,
    instance_number: int | None = None,
) -> str | None:
    """What a GE image holds: ``magnitude``, ``phase``, ``real``, ``imaginary`` or
    ``field map``; ``None`` when the private elements do not say.

    Parameters
    ----------
    code
        PrivateImageType (0043,xx2F).
    pulse_sequence, internal_pulse_sequence
        (0019,xx9C) and (0019,xx9E).
    locations_in_acquisition
        (0021,xx4F): slices per volume.
    images_in_acquisition
        ImagesInAcquisition (0020,1002).
    instance_number
        InstanceNumber of the image.

    Returns
    -------
    str or None
        ``field map`` for the first volume of a direct field map series, ``magnitude``
        for its second; otherwise the meaning of ``code``.
    """
    locations = locations_in_acquisition
    if (
        is_direct_field_map(pulse_sequence, internal_pulse_sequence)
        and locations is not None
        and locations > 0
        and images_in_acquisition is not None
        and images_in_acquisition > locations
        and instance_number is not None
        and instance_number > 0
    ):
        return FIELD_MAP if instance_number <= locations else "magnitude"
    return _IMAGE_TYPES.get(code) if code is not None else None
