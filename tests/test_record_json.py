"""The JSON text of record tuples made in C (``_native.json``, the ``_JSON`` field kinds of
``record.extract``) is exactly what ``json.dumps`` writes, as the index stores it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomsieve.scan.record import to_json
from native import native_function


def _native_json() -> Callable[[object], str]:
    native_json: Callable[[object], str] = native_function("json")
    return native_json


_JSON_VALUES = st.recursive(
    st.one_of(
        st.text(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.booleans(),
        st.none(),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(tuple), st.lists(inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=1000, deadline=None)
@given(value=_JSON_VALUES)
def test_json_same_as_json_dumps(value: object) -> None:
    native_json = _native_json()
    assert native_json(value) == json.dumps(value) == to_json(value)


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 1.0, -1.0, 1e15, 9999999999999998.0, 1e16, -1e16, 2.0**53, 2.0**63, 1e300, 0.5],
)
def test_json_of_whole_floats(value: float) -> None:
    assert _native_json()((value,)) == json.dumps((value,))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=600))
def test_json_of_floats_met_again(values: list[float]) -> None:
    # The C encoder remembers the text of recent floats: the second time, from there.
    native_json = _native_json()
    for _ in range(2):
        assert native_json(tuple(values)) == json.dumps(values)


def test_json_refuses_what_it_does_not_know() -> None:
    native_json = _native_json()
    with pytest.raises(TypeError):
        native_json(({"a": 1},))
