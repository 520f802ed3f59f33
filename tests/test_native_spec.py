"""Specs other than TOP_LEVEL_SPEC in the C walk, as a dict and compiled (``compile_spec``).

The C walk looks tags up in hash tables made of the spec. Random specs (nested, shared
and cyclic, with keys at the edges of the tag range, keys no element can have, and a
bool key) and random datasets of the same tags must walk as the Python walk walks them.
"""

from __future__ import annotations

import gc
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRLittleEndian

from dicom_bytes import ct_dataset, encode
from dicomsieve.scan import fastread, read, rows
from dicomsieve.scan.fastread import Window, parse_header
from dicomsieve.scan.tags import PIXEL_DATA_TAGS, PRESENCE, VR_OF, Spec
from test_native_walk import _native_walk_built, _walk_both

__all__ = ["_native_walk_built"]  # the fixture that skips the module unless C is built

# Tags of elements and spec keys: the edges of the range and of a group, a pixel data
# tag, tags that VR_OF knows as a value and as a sequence. (Not the character set: the
# decoding that _walk_both checks too wants it as bytes.)
_TAGS = [0x00000000, 0x00000001, 0x00080008, 0x0008FFFF, 0x00100010, 0x00081140]
_TAGS += [0x52009229, 0x7FE00010, 0xFFFF0000, 0xFFFFFFFF]
# Keys no element has (negative, past 32 bits, a delimiter), and True, which is 1.
_ODD_KEYS = [-1, 2**32, 2**32 + 0x00100010, 2**70, 0xFFFEE000, True]

_SPECS = st.recursive(
    st.dictionaries(st.sampled_from(_TAGS + _ODD_KEYS), st.sampled_from([None, PRESENCE])),
    lambda inner: st.dictionaries(
        st.sampled_from(_TAGS + _ODD_KEYS), st.one_of(st.none(), st.just(PRESENCE), inner)
    ),
    max_leaves=12,
)

# An element: ("value", tag, vr, bytes) or ("sequence", tag, undefined, items), an item
# (undefined, elements).
_VALUES = st.tuples(
    st.just("value"),
    st.sampled_from(_TAGS),
    st.sampled_from(["CS", "DS", "US", "LO", "UN", "OB"]),
    st.binary(max_size=6),
)
_ELEMENTS = st.recursive(
    _VALUES,
    lambda inner: st.tuples(
        st.just("sequence"),
        st.sampled_from(_TAGS),
        st.booleans(),
        st.lists(st.tuples(st.booleans(), st.lists(inner, max_size=3)), max_size=2),
    ),
    max_leaves=10,
)
_LONG_VRS = {"OB", "SQ", "UN"}
_ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
_SEQUENCE_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def _encode(element: tuple[Any, ...], explicit: bool) -> bytes:
    """An element in explicit or implicit VR little endian."""
    if element[0] == "value":
        _, tag, vr, body = element
        undefined = False
    else:
        _, tag, undefined, items = element
        vr = "SQ"
        body = b""
        for item_undefined, elements in items:
            content = b"".join(_encode(e, explicit) for e in elements)
            length = 0xFFFFFFFF if item_undefined else len(content)
            body += struct.pack("<HHI", 0xFFFE, 0xE000, length) + content
            body += _ITEM_END if item_undefined else b""
        body += _SEQUENCE_END if undefined else b""
    length = 0xFFFFFFFF if undefined else len(body)
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if not explicit:
        head += struct.pack("<I", length)
    elif vr in _LONG_VRS:
        head += vr.encode() + struct.pack("<HI", 0, length)
    else:
        head += vr.encode() + struct.pack("<H", length)
    return head + body


@settings(max_examples=1000, deadline=None)
@given(
    spec=_SPECS,
    elements=st.lists(_ELEMENTS, max_size=6),
    explicit=st.booleans(),
    cyclic=st.sampled_from([None, *_TAGS]),
)
def test_other_specs_walk_as_in_python(
    spec: Spec, elements: list[tuple[Any, ...]], explicit: bool, cyclic: int | None
) -> None:
    if cyclic is not None:
        spec[cyclic] = spec  # items of the sequence cyclic want what the dataset wants
    data = b"".join(_encode(e, explicit) for e in elements)
    _walk_both(data, 0, True, explicit, 4, spec)


def test_shared_nested_specs() -> None:
    nested: Spec = {0x00100010: None}
    spec: Spec = {0x00081140: nested, 0x52009229: nested, 0x00100010: PRESENCE}
    item = (False, [("value", 0x00100010, "LO", b"AB")])
    data = b"".join(
        _encode(("sequence", tag, False, [item]), True) for tag in (0x00081140, 0x52009229)
    )
    _walk_both(data, 0, True, True, 4, spec)


def test_dict_spec_changes_are_seen_by_the_next_walk() -> None:
    data = _encode(("value", 0x00100010, "LO", b"AB"), True)
    spec: Spec = {}
    _walk_both(data, 0, True, True, 4, spec)
    spec[0x00100010] = None
    _walk_both(data, 0, True, True, 4, spec)
    spec[0x00100010] = PRESENCE
    _walk_both(data, 0, True, True, 4, spec)


def _walk(data: bytes, spec: object) -> tuple[object, ...]:
    result: tuple[object, ...] = fastread._WALK(  # type: ignore[misc]
        data, len(data), 0, True, True, spec, 4, VR_OF, PIXEL_DATA_TAGS, PRESENCE
    )
    return result


def test_compiled_spec_is_a_snapshot() -> None:
    from dicomsieve.scan._native import compile_spec  # the module is skipped unless built

    data = _encode(
        ("sequence", 0x00081140, True, [(True, [("value", 0x00100010, "LO", b"AB")])]), True
    )
    nested: Spec = {0x00100010: None}
    spec: Spec = {0x00081140: nested}
    compiled = compile_spec(spec)
    expected = _walk(data, spec)
    assert expected == (0, {0x00081140: ({0x00100010: ("LO", b"AB")},)}, None)
    nested.clear()
    spec.clear()
    del nested, spec
    gc.collect()
    assert _walk(data, compiled) == expected


def test_compile_spec_refuses_what_is_no_spec() -> None:
    from dicomsieve.scan._native import compile_spec  # the module is skipped unless built

    with pytest.raises(TypeError, match="needs a dict"):
        compile_spec([])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an int"):
        compile_spec({"0x00100010": None})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="not an int"):
        compile_spec({0x00100010: {1.5: None}})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="neither a dict nor"):
        _walk(b"", object())
    deep: Spec = {}
    for _ in range(100_000):
        deep = {0x00100010: deep}
    with pytest.raises(RecursionError):
        compile_spec(deep)


def test_field_tables_look_up_the_tree_keys_themselves() -> None:
    """The C walk keys a tree with the spec's ints, the extract tables hold the same
    objects: the lookups need not compare ints (record.field_table)."""
    tree = parse_header(
        Window.of_bytes(encode(ct_dataset(0), ExplicitVRLittleEndian)), max_depth=8,
        inflate_cap=1 << 20,
    ).tree  # fmt: skip
    keys = {tag: tag for tag in tree}
    shared = [tag for tag, _, _ in rows._PLAIN_TABLE + read._SHAPE_TABLE if tag in keys]
    assert len(shared) > 20
    assert all(keys[tag] is tag for tag in shared)
