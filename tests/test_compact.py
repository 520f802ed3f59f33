"""Rows without their NULLs (``compact_row``), in C (``_native.compact``) as in Python."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomsieve.index.store import Compact, compact_row
from dicomsieve.scan import rows
from native import native_function


def _native_compact() -> Callable[[Sequence[object]], Compact]:
    compact: Callable[[Sequence[object]], Compact] = native_function("compact")
    return compact


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=4),
)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ((), (0, ())),
        ((None, None), (0, ())),
        ((1, None, "a"), (0b101, (1, "a"))),
        ((True, False, None, 0), (0b1011, (1, 0, 0))),
        ((None,) * 70 + ("x",), (1 << 70, ("x",))),
        ((5,) * 66, ((1 << 66) - 1, (5,) * 66)),
    ],
)
def test_compact_row(row: tuple[object, ...], expected: Compact) -> None:
    assert compact_row(row) == expected
    assert _native_compact()(row) == expected
    assert _native_compact()(list(row)) == expected


@settings(max_examples=500, deadline=None)
@given(st.lists(_VALUES, max_size=80))
def test_native_compact_agrees(row: list[object]) -> None:
    mask, values = _native_compact()(row)
    expected_mask, expected_values = compact_row(row)
    assert mask == expected_mask
    assert values == expected_values
    # True and False are stored as the integers they bind as, not as bools.
    assert [type(v) for v in values] == [type(v) for v in expected_values]


def test_readers_use_the_native_compact() -> None:
    assert rows.native_compact is _native_compact()


def test_native_compact_needs_a_sequence() -> None:
    with pytest.raises(TypeError):
        _native_compact()(5)  # type: ignore[arg-type]
