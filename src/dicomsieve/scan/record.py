"""Build records from a header tree, the same way for both readers."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from enum import IntEnum
from typing import Final

from dicomsieve._jsontext import to_json
from dicomsieve.model import FrameRecord, InstanceRecord, PixelDataInfo
from dicomsieve.scan import ge, siemens, uih
from dicomsieve.scan.extension import extension_function
from dicomsieve.scan.private import PrivateTag, creator_blocks, creator_tags
from dicomsieve.scan.tags import PRIVATE_GROUPS, PRIVATE_TAGS, TOP_LEVEL_SPEC, HeaderTree

__all__ = [
    "PLAIN_FIELDS",
    "FieldKind",
    "build_frames",
    "build_instance",
    "extract",
    "field_table",
    "first_str",
    "is_plain",
    "plain_table",
    "to_json",
]

Floats = tuple[float, ...]

SHARED_GROUPS: Final = 0x52009229
PER_FRAME_GROUPS: Final = 0x52009230
SOP_INSTANCE_UID: Final = 0x00080018
SERIES_INSTANCE_UID: Final = 0x0020000E
STUDY_INSTANCE_UID: Final = 0x0020000D
IMAGE_TYPE: Final = 0x00080008
REPETITION_TIME: Final = 0x00180080
FLIP_ANGLE: Final = 0x00181314
B_VALUE: Final = 0x00189087
GRADIENT_ORIENTATION: Final = 0x00189089


def _values(tree: HeaderTree, tag: int) -> tuple[object, ...] | None:
    value = tree.get(tag)
    if isinstance(value, tuple) and value and not isinstance(value[0], dict):
        return value
    return None


def first_str(tree: HeaderTree, tag: int) -> str | None:
    """The first text component of ``tag``, or ``None``."""
    values = _values(tree, tag)
    if values and isinstance(values[0], str) and values[0]:
        return values[0]
    return None


def _joined(tree: HeaderTree, tag: int) -> str | None:
    values = _values(tree, tag)
    if not values:
        return None
    text = "\\".join(str(v) for v in values)
    return text or None


def _strs(tree: HeaderTree, tag: int) -> tuple[str, ...] | None:
    values = _values(tree, tag)
    if not values:
        return None
    return tuple(str(v) for v in values)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def _float(tree: HeaderTree, tag: int) -> float | None:
    values = _values(tree, tag)
    return _number(values[0]) if values else None


def _floats(tree: HeaderTree, tag: int, count: int | None = None) -> tuple[float, ...] | None:
    values = _values(tree, tag)
    if not values:
        return None
    numbers = [_number(v) for v in values]
    if any(n is None for n in numbers):
        return None
    if count is not None and len(numbers) != count:
        return None
    return tuple(n for n in numbers if n is not None)


def _int(tree: HeaderTree, tag: int) -> int | None:
    values = _values(tree, tag)
    if not values:
        return None
    value = values[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _ints(tree: HeaderTree, tag: int) -> tuple[int, ...] | None:
    values = _values(tree, tag)
    if not values:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return tuple(int(v) for v in values)  # type: ignore[call-overload]


def _items(tree: HeaderTree, tag: int) -> tuple[HeaderTree, ...]:
    value = tree.get(tag)
    if isinstance(value, tuple) and value and isinstance(value[0], dict):
        return value
    return ()


def _first_item(tree: HeaderTree, tag: int) -> HeaderTree:
    items = _items(tree, tag)
    return items[0] if items else {}


def _merged_macro(per_frame: HeaderTree, shared: HeaderTree, tag: int) -> HeaderTree:
    """The first item of a functional group macro, per-frame over shared."""
    if tag in per_frame:
        return _first_item(per_frame, tag)
    return _first_item(shared, tag)


def _frame(number: int, per_frame: HeaderTree, shared: HeaderTree) -> FrameRecord:
    def macro(tag: int) -> HeaderTree:
        return _merged_macro(per_frame, shared, tag)

    measures = macro(0x00289110)
    transform = macro(0x00289145)
    voi = macro(0x00289132)
    content = macro(0x00209111)
    diffusion = macro(0x00189117)
    gradient = _first_item(diffusion, 0x00189076)
    frame_type = macro(0x00189226) or macro(0x00189329)
    return FrameRecord(
        frame_number=number,
        image_position=_floats(macro(0x00209113), 0x00200032, 3),
        image_orientation=_floats(macro(0x00209116), 0x00200037, 6),
        pixel_spacing=_floats(measures, 0x00280030, 2),
        slice_thickness=_float(measures, 0x00180050),
        spacing_between_slices=_float(measures, 0x00180088),
        rescale_slope=_float(transform, 0x00281053),
        rescale_intercept=_float(transform, 0x00281052),
        rescale_type=first_str(transform, 0x00281054),
        window_center=_floats(voi, 0x00281050),
        window_width=_floats(voi, 0x00281051),
        dimension_index_values=_ints(content, 0x00209157),
        temporal_position_index=_int(content, 0x00209128),
        stack_id=first_str(content, 0x00209056),
        in_stack_position=_int(content, 0x00209057),
        frame_acquisition_number=_int(content, 0x00209156),
        frame_acquisition_datetime=first_str(content, 0x00189074),
        echo_time=_float(macro(0x00189114), 0x00189082),
        trigger_time=_float(macro(0x00189118), 0x00209153),
        diffusion_b_value=_float(diffusion, 0x00189087),
        diffusion_gradient_orientation=_floats(gradient, 0x00189089, 3),
        frame_type=_strs(frame_type, 0x00089007),
    )


def build_frames(tree: HeaderTree) -> tuple[FrameRecord, ...]:
    """One :class:`FrameRecord` per item of the PerFrameFunctionalGroupsSequence."""
    per_frame = _items(tree, PER_FRAME_GROUPS)
    if not per_frame and SHARED_GROUPS not in tree:
        return ()
    shared = _first_item(tree, SHARED_GROUPS)
    if not per_frame:
        count = _int(tree, 0x00280008) or 1
        return tuple(_frame(n + 1, {}, shared) for n in range(count))
    return tuple(_frame(n + 1, item, shared) for n, item in enumerate(per_frame))


class FieldKind(IntEnum):
    """How a record field is read from its element (the helpers above, by name).

    The ``_JSON`` kinds give the tuple of their plain kind as the JSON text the index
    stores (:func:`to_json`); ``NONE`` reads nothing and gives ``None``.
    """

    FIRST_STR = 0
    JOINED = 1
    STRS = 2
    INT = 3
    INTS = 4
    FLOAT = 5
    FLOATS = 6
    PRESENT = 7
    STRS_JSON = 8
    INTS_JSON = 9
    FLOATS_JSON = 10
    NONE = 11


_JSON_KINDS: Final = {
    FieldKind.STRS: FieldKind.STRS_JSON,
    FieldKind.INTS: FieldKind.INTS_JSON,
    FieldKind.FLOATS: FieldKind.FLOATS_JSON,
}
_PLAIN_OF_JSON: Final = {json_kind: kind for kind, json_kind in _JSON_KINDS.items()}


def _field(tree: HeaderTree, tag: int, kind: FieldKind, count: int | None) -> object:
    if kind is FieldKind.NONE:
        return None
    if kind in _PLAIN_OF_JSON:
        value = _field(tree, tag, _PLAIN_OF_JSON[kind], count)
        return None if value is None else to_json(value)
    if kind is FieldKind.FIRST_STR:
        return first_str(tree, tag)
    if kind is FieldKind.JOINED:
        return _joined(tree, tag)
    if kind is FieldKind.STRS:
        return _strs(tree, tag)
    if kind is FieldKind.INT:
        return _int(tree, tag)
    if kind is FieldKind.INTS:
        return _ints(tree, tag)
    if kind is FieldKind.FLOAT:
        return _float(tree, tag)
    if kind is FieldKind.FLOATS:
        return _floats(tree, tag, count)
    return tag in tree


FieldTable = tuple[tuple[int, FieldKind, int | None], ...]


def extract(tree: HeaderTree, table: FieldTable, *, native: bool = True) -> list[object]:
    """The value of each ``(tag, kind, count)`` row of ``table`` in ``tree``.

    In C when the extension is built and ``native`` is true (``_native.extract``, the
    same rules as the helpers above; the tests compare both), else in Python.
    """
    if native and _EXTRACT is not None:
        return _EXTRACT(tree, table)
    return [_field(tree, tag, kind, count) for tag, kind, count in table]


_EXTRACT: Final[Callable[[HeaderTree, FieldTable], list[object]] | None] = extension_function(
    "extract"
)
_SPEC_KEYS: Final = {tag: tag for tag in TOP_LEVEL_SPEC}


def field_table(rows: Iterable[tuple[int, FieldKind, int | None]]) -> FieldTable:
    """``rows`` as an :func:`extract` table, each tag as TOP_LEVEL_SPEC's own int: the C
    walk keys its trees with those objects, and a dict lookup by the very key object
    compares no ints (a sixth of the C extract's time). Any other int reads the same."""
    return tuple([(_SPEC_KEYS.get(tag, tag), kind, count) for tag, kind, count in rows])


F = FieldKind
# The InstanceRecord fields read straight from one top-level element, by field name.
_INSTANCE_FIELDS: Final[dict[str, tuple[int, FieldKind, int | None]]] = {
    "sop_class_uid": (0x00080016, F.FIRST_STR, None),
    "patient_id": (0x00100020, F.JOINED, None),
    "patient_name": (0x00100010, F.JOINED, None),
    "patient_birth_date": (0x00100030, F.FIRST_STR, None),
    "study_date": (0x00080020, F.FIRST_STR, None),
    "study_time": (0x00080030, F.FIRST_STR, None),
    "study_description": (0x00081030, F.JOINED, None),
    "accession_number": (0x00080050, F.JOINED, None),
    "series_number": (0x00200011, F.INT, None),
    "series_description": (0x0008103E, F.JOINED, None),
    "modality": (0x00080060, F.FIRST_STR, None),
    "manufacturer": (0x00080070, F.JOINED, None),
    "manufacturer_model_name": (0x00081090, F.JOINED, None),
    "protocol_name": (0x00181030, F.JOINED, None),
    "sequence_name": (0x00180024, F.JOINED, None),
    "instance_number": (0x00200013, F.INT, None),
    "acquisition_number": (0x00200012, F.INT, None),
    "content_time": (0x00080033, F.FIRST_STR, None),
    "acquisition_time": (0x00080032, F.FIRST_STR, None),
    "image_position": (0x00200032, F.FLOATS, 3),
    "image_orientation": (0x00200037, F.FLOATS, 6),
    "pixel_spacing": (0x00280030, F.FLOATS, 2),
    "slice_thickness": (0x00180050, F.FLOAT, None),
    "spacing_between_slices": (0x00180088, F.FLOAT, None),
    "gantry_detector_tilt": (0x00181120, F.FLOAT, None),
    "frame_of_reference_uid": (0x00200052, F.FIRST_STR, None),
    "patient_position": (0x00185100, F.FIRST_STR, None),
    "rows": (0x00280010, F.INT, None),
    "columns": (0x00280011, F.INT, None),
    "number_of_frames": (0x00280008, F.INT, None),
    "samples_per_pixel": (0x00280002, F.INT, None),
    "photometric_interpretation": (0x00280004, F.FIRST_STR, None),
    "bits_allocated": (0x00280100, F.INT, None),
    "bits_stored": (0x00280101, F.INT, None),
    "high_bit": (0x00280102, F.INT, None),
    "pixel_representation": (0x00280103, F.INT, None),
    "rescale_slope": (0x00281053, F.FLOAT, None),
    "rescale_intercept": (0x00281052, F.FLOAT, None),
    "rescale_type": (0x00281054, F.FIRST_STR, None),
    "window_center": (0x00281050, F.FLOATS, None),
    "window_width": (0x00281051, F.FLOATS, None),
    "echo_numbers": (0x00180086, F.INTS, None),
    "echo_time": (0x00180081, F.FLOAT, None),
    "inversion_time": (0x00180082, F.FLOAT, None),
    "temporal_position_identifier": (0x00200100, F.INT, None),
    "number_of_temporal_positions": (0x00200105, F.INT, None),
    "trigger_time": (0x00181060, F.FLOAT, None),
    "xray_tube_current": (0x00181151, F.FLOAT, None),
    "exposure": (0x00181152, F.FLOAT, None),
    "has_referenced_image_sequence": (0x00081140, F.PRESENT, None),
}
_INSTANCE_NAMES: Final = tuple(_INSTANCE_FIELDS)
_INSTANCE_TABLE: Final = field_table(_INSTANCE_FIELDS.values())

PLAIN_FIELDS: Final[dict[str, tuple[int, FieldKind, int | None]]] = {
    **_INSTANCE_FIELDS,
    "sop_instance_uid": (SOP_INSTANCE_UID, F.FIRST_STR, None),
    "series_instance_uid": (SERIES_INSTANCE_UID, F.FIRST_STR, None),
    "study_instance_uid": (STUDY_INSTANCE_UID, F.FIRST_STR, None),
    "image_type": (IMAGE_TYPE, F.STRS, None),
    "repetition_time": (REPETITION_TIME, F.FLOAT, None),
    "flip_angle": (FLIP_ANGLE, F.FLOAT, None),
    "diffusion_b_value": (B_VALUE, F.FLOAT, None),
    "diffusion_gradient_orientation": (GRADIENT_ORIENTATION, F.FLOATS, 3),
}
"""How :func:`build_instance` reads each field of a plain tree (see :func:`is_plain`)
from one top-level element, by field name. Of the other fields, ``transfer_syntax_uid``,
``pixel_data`` and ``frames`` (``()``) come from elsewhere and the rest are ``None``."""
_PLAIN_NONE: Final = frozenset(
    {"mosaic_slices", "slice_normal", "private_image_type", "mosaic_grid", "mosaic_positions"}
)
_VENDOR_CREATORS: Final = frozenset((p.group, p.creator) for p in PRIVATE_TAGS)
_CREATORS_BY_GROUP: Final = {
    group: frozenset(creator for g, creator in _VENDOR_CREATORS if g == group)
    for group in PRIVATE_GROUPS
}
_CREATOR_TAGS: Final = frozenset(tag for group in PRIVATE_GROUPS for tag in creator_tags(group))


_HAS_CREATOR: Final[Callable[[HeaderTree, dict[int, frozenset[str]]], bool] | None] = (
    extension_function("has_creator")
)


def is_plain(tree: HeaderTree, *, native: bool = True) -> bool:
    """Whether :func:`build_instance` reads ``tree`` as :data:`PLAIN_FIELDS` says.

    So it does unless the tree has functional groups (enhanced multi-frame objects:
    frames, and timing read from the groups) or a private creator of a vendor that
    :mod:`dicomsieve.scan.ge`, :mod:`~dicomsieve.scan.siemens` or
    :mod:`~dicomsieve.scan.uih` reads; without those, the private fields are ``None``.
    The creators are looked for in C when the extension is built and ``native`` is true
    (``_native.has_creator``: the tree's tags once, where the set intersection below
    hashes each of them), else in Python.
    """
    if SHARED_GROUPS in tree or PER_FRAME_GROUPS in tree:
        return False
    if native and _HAS_CREATOR is not None:
        return not _HAS_CREATOR(tree, _CREATORS_BY_GROUP)
    for tag in _CREATOR_TAGS.intersection(tree):
        value = tree[tag]
        if (
            isinstance(value, tuple)
            and value
            and isinstance(value[0], str)
            and (tag >> 16, value[0]) in _VENDOR_CREATORS
        ):
            return False
    return True


def plain_table(names: Sequence[str], as_json: Collection[int]) -> FieldTable:
    """The :func:`extract` table of the fields ``names`` of a plain tree, in that order.

    Parameters
    ----------
    names
        Field names of :class:`~dicomsieve.model.InstanceRecord` (``pixel_data`` and
        ``frames`` excepted).
    as_json
        The positions in ``names`` of the fields that hold tuples, to be read as their
        JSON text (:func:`to_json`); they must be exactly those.

    Returns
    -------
    FieldTable
        A row per name; ``NONE`` for the fields that are not in :data:`PLAIN_FIELDS`
        (``transfer_syntax_uid``, which the caller fills in, and the fields that are
        ``None`` in a plain tree).

    Raises
    ------
    ValueError
        For a name that is none of these, or ``as_json`` that is not the tuple fields.
    """
    table: list[tuple[int, FieldKind, int | None]] = []
    for n, name in enumerate(names):
        if name not in PLAIN_FIELDS:
            if name != "transfer_syntax_uid" and name not in _PLAIN_NONE:
                raise ValueError(f"no plain reading of the field {name!r}")
            table.append((0, F.NONE, None))
            continue
        tag, kind, count = PLAIN_FIELDS[name]
        if (n in as_json) != (kind in _JSON_KINDS):
            raise ValueError(f"{name!r} is {'not ' if n in as_json else ''}a JSON field")
        table.append((tag, _JSON_KINDS.get(kind, kind), count))
    return field_table(table)


class _Private:
    """The private elements of one object, each read in the block its creator owns."""

    __slots__ = ("blocks", "tree")

    def __init__(self, tree: HeaderTree) -> None:
        self.tree = tree
        self.blocks = creator_blocks(tree, PRIVATE_GROUPS)

    def get(self, tag: PrivateTag) -> object:
        block = self.blocks.get((tag.group, tag.creator))
        return None if block is None else self.tree.get(tag.tag_in(block))

    def values(self, tag: PrivateTag) -> HeaderTree:
        """``{0: value}``, so that the helpers for public tags read it."""
        value = self.get(tag)
        return {} if value is None else {0: value}


_Mosaic = tuple[int, tuple[float, float, float] | None, tuple[int, int], tuple[Floats, ...] | None]


def _mosaic(private: _Private, image_type: tuple[str, ...] | None) -> _Mosaic | None:
    """(slices, slice normal, grid, tile positions) of a Siemens MOSAIC (from its CSA
    image header) or a UIH VFRAME object (from its private block)."""
    if not image_type:
        return None
    upper = {v.upper() for v in image_type}
    if "MOSAIC" in upper:
        raw = private.get(siemens.CSA_IMAGE_HEADER)
        info = siemens.mosaic_info(raw) if isinstance(raw, bytes) else None
        if info is None:
            return None
        side = math.ceil(math.sqrt(info[0]))
        return info[0], info[1], (side, side), None
    if "VFRAME" in upper:
        vframe = uih.vframe(
            image_type, private.get(uih.SLICES_IN_GRID), private.get(uih.VFRAME_SEQUENCE)
        )
        if vframe is None:
            return None
        return vframe[0], None, vframe[1], vframe[2]
    return None


def _private_image_type(private: _Private, tree: HeaderTree) -> str | None:
    """GE's image type from its private elements (see :mod:`dicomsieve.scan.ge`)."""
    if not private.blocks:
        return None
    return ge.private_image_type(
        _int(private.values(ge.PRIVATE_IMAGE_TYPE), 0),
        pulse_sequence=first_str(private.values(ge.PULSE_SEQUENCE_NAME), 0),
        internal_pulse_sequence=first_str(private.values(ge.INTERNAL_PULSE_SEQUENCE_NAME), 0),
        locations_in_acquisition=_int(private.values(ge.LOCATIONS_IN_ACQUISITION), 0),
        images_in_acquisition=_int(tree, ge.IMAGES_IN_ACQUISITION),
        instance_number=_int(tree, 0x00200013),
    )


def build_instance(
    tree: HeaderTree,
    transfer_syntax: str | None,
    pixel: PixelDataInfo | None,
    *,
    native: bool = True,
) -> InstanceRecord | None:
    """Build the record of one object; ``None`` when an identifying UID is missing.

    ``native=False`` reads the fields in Python instead of C (see :func:`extract`).
    """
    sop = first_str(tree, SOP_INSTANCE_UID)
    series = first_str(tree, SERIES_INSTANCE_UID)
    study = first_str(tree, STUDY_INSTANCE_UID)
    if not (sop and series and study):
        return None
    image_type = _strs(tree, IMAGE_TYPE)
    private = _Private(tree)
    mosaic = _mosaic(private, image_type)
    b_value = _float(tree, B_VALUE)
    gradient = _floats(tree, GRADIENT_ORIENTATION, 3)
    if b_value is None:  # UIH keeps them in its private block
        b_value = _float(private.values(uih.B_VALUE), 0)
        if b_value is not None:
            gradient = _floats(private.values(uih.GRADIENT_DIRECTION), 0, 3)
    # Enhanced MR keeps TR and flip angle in the shared functional groups.
    timing = _first_item(_first_item(tree, SHARED_GROUPS), 0x00189112) or _first_item(
        _first_item(tree, PER_FRAME_GROUPS), 0x00189112
    )
    repetition_time = _float(tree, REPETITION_TIME)
    if repetition_time is None:
        repetition_time = _float(timing, REPETITION_TIME)
    flip_angle = _float(tree, FLIP_ANGLE)
    if flip_angle is None:
        flip_angle = _float(timing, FLIP_ANGLE)
    fields = dict(zip(_INSTANCE_NAMES, extract(tree, _INSTANCE_TABLE, native=native), strict=True))
    return InstanceRecord(
        sop_instance_uid=sop,
        series_instance_uid=series,
        study_instance_uid=study,
        transfer_syntax_uid=transfer_syntax,
        image_type=image_type,
        repetition_time=repetition_time,
        flip_angle=flip_angle,
        diffusion_b_value=b_value,
        diffusion_gradient_orientation=gradient,
        pixel_data=pixel,
        frames=build_frames(tree),
        mosaic_slices=mosaic[0] if mosaic else None,
        slice_normal=mosaic[1] if mosaic else None,
        private_image_type=_private_image_type(private, tree),
        mosaic_grid=mosaic[2] if mosaic else None,
        mosaic_positions=mosaic[3] if mosaic else None,
        **fields,  # type: ignore[arg-type]
    )
