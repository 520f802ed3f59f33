"""Slices: the values flatten works out once per slice or per distinct value; the
geometry helpers that replace numpy calls."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from dicomsieve.loadables.geometry import _median, orientation_of
from dicomsieve.loadables.model import SourceInstance
from dicomsieve.loadables.slices import _LOCALIZER_TOKENS, Slice, flatten
from dicomsieve.model import FrameRecord, InstanceRecord


def _record(n: int, **values: object) -> InstanceRecord:
    return InstanceRecord(
        sop_instance_uid=f"1.2.{n}",
        sop_class_uid=None,
        series_instance_uid="1.2",
        study_instance_uid="1.3",
        transfer_syntax_uid=None,
        **values,  # type: ignore[arg-type]
    )


def _slice(record: InstanceRecord, frame: FrameRecord | None = None) -> Slice:
    if frame is not None:
        record = InstanceRecord(
            **{name: getattr(record, name) for name in record.__slots__ if name != "frames"},
            frames=(frame,),
        )
    (only,) = flatten([SourceInstance(f"/f/{record.sop_instance_uid}", record)])
    return only


_WORDS = st.sampled_from(
    ["ORIGINAL", "primary", "M", "Localizer", "axial", "OTHER", *_LOCALIZER_TOKENS]
)
_TYPES = st.one_of(
    st.none(), st.lists(st.one_of(_WORDS, st.text(max_size=6)), max_size=5).map(tuple)
)


@given(image_type=_TYPES, frame_type=_TYPES)
@examples(max_examples=200, deadline=None)
def test_image_type_values_as_defined(
    image_type: tuple[str, ...] | None, frame_type: tuple[str, ...] | None
) -> None:
    """The cached values equal the definitions: the frame's ImageType (else the
    object's) upper-cased, then the object's; the first value holding a scout token."""
    frame = FrameRecord(1, frame_type=frame_type) if frame_type is not None else None
    s = _slice(_record(1, image_type=image_type), frame)
    first = tuple(v.upper() for v in (frame_type or image_type or ()))
    every = first + tuple(v.upper() for v in (image_type or ()))
    token = next((v for v in every if any(t in v for t in _LOCALIZER_TOKENS)), None)
    assert s.image_type == first
    assert s.all_image_type_values == every
    assert s.localizer_token == token


def test_sort_key_orders_by_number_uid_frame_and_path() -> None:
    records = [
        _record(3, instance_number=2),
        _record(2, instance_number=None),
        _record(1, instance_number=2, number_of_frames=2),
    ]
    slices = flatten([SourceInstance(f"/f/{i}", r) for i, r in enumerate(records)])
    assert [s.sort_key for s in slices] == [
        (2, "1.2.1", 1, "/f/2"),
        (2, "1.2.1", 2, "/f/2"),
        (2, "1.2.3", 0, "/f/0"),
        (1 << 62, "1.2.2", 0, "/f/1"),
    ]


def test_one_orientation_tuple_is_worked_out_once() -> None:
    """Records sharing an ImageOrientationPatient tuple (as the index reads them) share
    the slices' cosines and Orientation, read-only; equal tuples that are not the same
    keep their own values (-0.0 and 0.0 compare equal)."""
    shared = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    signed = (1.0, -0.0, 0.0, 0.0, 1.0, -0.0)
    records = [_record(n, image_orientation=shared, image_position=(0.0, 0.0, n)) for n in range(3)]
    records.append(_record(9, image_orientation=signed, image_position=(0.0, 0.0, 9.0)))
    slices = flatten([SourceInstance(f"/f/{r.sop_instance_uid}", r) for r in records])
    first, *others, last = slices
    for s in others:
        assert s.orientation is first.orientation
        assert s.row_cosine is first.row_cosine
    assert first.orientation is not None
    assert last.orientation is not None
    assert last.orientation is not first.orientation
    assert math.copysign(1.0, float(last.orientation.row[1])) == -1.0
    assert math.copysign(1.0, float(first.orientation.row[1])) == 1.0
    assert orientation_of(first) is first.orientation
    for vector in (first.row_cosine, first.column_cosine, first.orientation.row):
        assert vector is not None
        with pytest.raises(ValueError, match="read-only"):
            vector[0] = 2.0


@pytest.mark.parametrize(
    ("iop", "normalised"),
    [
        ((2.0, 0.0, 0.0, 0.0, 0.5, 0.0), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))),
        ((0.0, 0.0, 0.0, 0.0, 1.0, 0.0), None),  # a zero row
        ((1.0, 0.0, 0.0, 1.0, 0.0, 0.0), None),  # parallel
        ((1.0, 0.0, 0.0), None),  # not six values
        (None, None),
    ],
)
def test_orientation_is_normalised_or_none(
    iop: tuple[float, ...] | None, normalised: tuple[tuple[float, ...], ...] | None
) -> None:
    s = _slice(_record(1, image_orientation=iop))
    if normalised is None:
        assert s.orientation is None
        return
    assert s.orientation is not None
    assert np.array_equal(s.orientation.row, normalised[0])
    assert np.array_equal(s.orientation.column, normalised[1])


@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.5, 2.5]),
        ),
        max_size=25,
    )
)
@examples(max_examples=2000, deadline=None)
def test_median_is_numpys(values: list[float]) -> None:
    """The same float as np.median: signed zeros, infinities, NaN and ties included."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty list
        expected = float(np.median(values))
    assert repr(_median(values)) == repr(expected)
