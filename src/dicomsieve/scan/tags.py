"""The header elements dicomsieve reads, and how values are normalized.

Both readers (the fast one in :mod:`dicomsieve.scan.fastread` and the pydicom one in
:mod:`dicomsieve.scan.pydread`) produce the same *header tree*: a ``dict`` from tag to
a normalized value, holding only the tags named here. Normalized values:

- text VRs: a tuple of stripped strings (the value split on backslashes);
- DS: a tuple of floats, IS: a tuple of ints (``None`` for a component that does not parse);
- binary numbers (US, SS, UL, SL, FL, FD, ...): a tuple of numbers;
- SQ: a tuple of item trees (dicts again), or ``True`` for a sequence whose presence
  is all we need.

Records are then built from the tree by :mod:`dicomsieve.scan.record`, the same way for
both readers, so that a test can prove the two agree.

Private elements (:data:`PRIVATE_TAGS`, declared in the vendor modules) are kept in every
block their creator might own, with every private creator element of their groups; the
record builder reads them in the block their creator actually owns (see
:mod:`dicomsieve.scan.private`).
"""

from __future__ import annotations

from typing import Final

from dicomsieve.scan import ge, siemens, uih
from dicomsieve.scan.private import PrivateTag, creator_tags

__all__ = [
    "FUNCTIONAL_GROUP_SPEC",
    "PIXEL_DATA_TAGS",
    "PRESENCE",
    "PRIVATE_GROUPS",
    "PRIVATE_TAGS",
    "RAW_TAGS",
    "TOP_LEVEL_SPEC",
    "VR_OF",
    "HeaderTree",
    "Spec",
]

HeaderTree = dict[int, object]
"""Tag -> normalized value (see the module docstring)."""

PRESENCE: Final = "presence"
"""Spec marker: record that the sequence exists, skip its content."""

Spec = dict[int, object]
"""Tag -> ``None`` (a value), ``PRESENCE``, or a nested Spec for the items of a sequence."""

PIXEL_DATA_TAGS: Final = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
SPECIFIC_CHARACTER_SET: Final = 0x00080005
TRANSFER_SYNTAX_UID: Final = 0x00020010

# The VR of every tag named below, for implicit VR little endian and for checks.
VR_OF: Final[dict[int, str]] = {
    0x00020010: "UI",
    0x00080005: "CS",
    0x00080008: "CS",
    0x00080016: "UI",
    0x00080018: "UI",
    0x00080020: "DA",
    0x00080030: "TM",
    0x00080032: "TM",
    0x00080033: "TM",
    0x00080050: "SH",
    0x00080060: "CS",
    0x00080070: "LO",
    0x00081030: "LO",
    0x0008103E: "LO",
    0x00081090: "LO",
    0x00081140: "SQ",
    0x00089007: "CS",
    0x00100010: "PN",
    0x00100020: "LO",
    0x00100030: "DA",
    0x00180024: "SH",
    0x00180050: "DS",
    0x00180080: "DS",
    0x00180081: "DS",
    0x00180082: "DS",
    0x00180086: "IS",
    0x00180088: "DS",
    0x00181030: "LO",
    0x00181060: "DS",
    0x00181120: "DS",
    0x00181151: "IS",
    0x00181152: "IS",
    0x00181314: "DS",
    0x00185100: "CS",
    0x00189074: "DT",
    0x00189076: "SQ",
    0x00189082: "FD",
    0x00189087: "FD",
    0x00189089: "FD",
    0x00189112: "SQ",
    0x00189114: "SQ",
    0x00189117: "SQ",
    0x00189118: "SQ",
    0x00189226: "SQ",
    0x00189329: "SQ",
    0x0020000D: "UI",
    0x0020000E: "UI",
    0x00200011: "IS",
    0x00200012: "IS",
    0x00200013: "IS",
    0x00200032: "DS",
    0x00200037: "DS",
    0x00200052: "UI",
    0x00200100: "IS",
    0x00200105: "IS",
    0x00201002: "IS",
    0x00209056: "SH",
    0x00209057: "UL",
    0x00209111: "SQ",
    0x00209113: "SQ",
    0x00209116: "SQ",
    0x00209128: "UL",
    0x00209153: "FD",
    0x00209156: "US",
    0x00209157: "UL",
    0x00280002: "US",
    0x00280004: "CS",
    0x00280008: "IS",
    0x00280010: "US",
    0x00280011: "US",
    0x00280030: "DS",
    0x00280100: "US",
    0x00280101: "US",
    0x00280102: "US",
    0x00280103: "US",
    0x00281050: "DS",
    0x00281051: "DS",
    0x00281052: "DS",
    0x00281053: "DS",
    0x00281054: "LO",
    0x00289110: "SQ",
    0x00289132: "SQ",
    0x00289145: "SQ",
    0x52009229: "SQ",
    0x52009230: "SQ",
}

PRIVATE_TAGS: Final[tuple[PrivateTag, ...]] = (
    *siemens.PRIVATE_TAGS,
    *ge.PRIVATE_TAGS,
    *uih.PRIVATE_TAGS,
)
"""The private elements the record uses, by creator (Siemens CSA, GE, UIH)."""
PRIVATE_GROUPS: Final = frozenset(p.group for p in PRIVATE_TAGS)

VR_OF.update({tag: "LO" for group in sorted(PRIVATE_GROUPS) for tag in creator_tags(group)})
VR_OF.update({tag: p.vr for p in PRIVATE_TAGS for tag in p.tags()})

# Tags kept as raw bytes (binary structures parsed when the record is built).
RAW_TAGS: Final = frozenset(siemens.CSA_IMAGE_HEADER.tags())

# Functional group macros inside Shared/PerFrameFunctionalGroupsSequence items.
FUNCTIONAL_GROUP_SPEC: Final[Spec] = {
    0x00209116: {0x00200037: None},  # PlaneOrientationSequence > ImageOrientationPatient
    0x00209113: {0x00200032: None},  # PlanePositionSequence > ImagePositionPatient
    0x00289110: {0x00280030: None, 0x00180050: None, 0x00180088: None},  # PixelMeasures
    0x00289145: {0x00281052: None, 0x00281053: None, 0x00281054: None},  # PixelValueTransf.
    0x00289132: {0x00281050: None, 0x00281051: None},  # FrameVOILUTSequence
    0x00209111: {  # FrameContentSequence
        0x00209157: None,  # DimensionIndexValues
        0x00209128: None,  # TemporalPositionIndex
        0x00209056: None,  # StackID
        0x00209057: None,  # InStackPositionNumber
        0x00209156: None,  # FrameAcquisitionNumber
        0x00189074: None,  # FrameAcquisitionDateTime
    },
    0x00189114: {0x00189082: None},  # MREchoSequence > EffectiveEchoTime
    0x00189112: {0x00180080: None, 0x00181314: None},  # MRTimingAndRelatedParameters
    0x00189118: {0x00209153: None},  # CardiacSynchronization > NominalCardiacTriggerDelayTime
    0x00189117: {  # MRDiffusionSequence
        0x00189087: None,  # DiffusionBValue
        0x00189076: {0x00189089: None},  # DiffusionGradientDirectionSequence > Orientation
    },
    0x00189226: {0x00089007: None},  # MRImageFrameTypeSequence > FrameType
    0x00189329: {0x00089007: None},  # CTImageFrameTypeSequence > FrameType
}

# Tags that only matter inside functional group macros.
_FRAME_ONLY_TAGS: Final = frozenset(
    {0x00089007, 0x00189074, 0x00189082, 0x00209056, 0x00209057, 0x00209128}
    | {0x00209153, 0x00209156, 0x00209157}
)
TOP_LEVEL_SPEC: Final[Spec] = {
    **{
        tag: None
        for tag, vr in VR_OF.items()
        if vr != "SQ" and tag >> 16 != 0x0002 and tag not in _FRAME_ONLY_TAGS
    },
    0x00081140: PRESENCE,  # ReferencedImageSequence: only whether it is there
    0x52009229: FUNCTIONAL_GROUP_SPEC,  # SharedFunctionalGroupsSequence
    0x52009230: FUNCTIONAL_GROUP_SPEC,  # PerFrameFunctionalGroupsSequence
    **{tag: uih.VFRAME_ITEM_SPEC for tag in uih.VFRAME_SEQUENCE.tags()},
}

TEXT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
# Text VRs decoded with the SpecificCharacterSet; the others are plain ASCII.
CHARSET_VRS: Final = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
SINGLE_VALUED_TEXT_VRS: Final = frozenset({"LT", "ST", "UT", "UR"})
