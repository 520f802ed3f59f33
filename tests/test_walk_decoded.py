"""The one-pass C walk (``_native.walk_decoded``) gives what the walk then the decoding give.

``parse_header`` walks and decodes in one pass in C: text in a character set VR that
is not plain ASCII waits, raw, until the character set is known. The reference is the
C walk (``walk``, itself compared with the Python walk) followed by the decoding of the
whole raw tree (``decode`` with the dataset's codec). Both are run on generated files in
each encoding, in several character sets, and on random corruptions of them; they must
give equal trees and pixel data positions, or fail the same way.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicom_bytes import ct_dataset, encode
from dicomsieve.scan import fastread
from dicomsieve.scan.fastread import Fallback, Window
from dicomsieve.scan.tags import PIXEL_DATA_TAGS, PRESENCE, RAW_TAGS, TOP_LEVEL_SPEC, VR_OF
from native import native_missing
from test_native_walk import _corrupt, _generated


@pytest.fixture(scope="module", autouse=True)
def _native_walk_built() -> None:
    if fastread._WALK_DECODED is None:
        native_missing("the C walk")


def _one_pass(data: bytes, pos: int, little: bool, explicit: bool, depth: int) -> object:
    result = fastread._WALK_DECODED(  # type: ignore[misc]
        data, len(data), pos, little, explicit, TOP_LEVEL_SPEC, depth, VR_OF,
        PIXEL_DATA_TAGS, PRESENCE, RAW_TAGS,
    )  # fmt: skip
    if result[0] != 0:
        return result
    tree, pixel, charset, deferred = result[1:]
    if deferred is not None:
        codec = "latin_1" if charset is None else fastread._codec_of_bytes(charset)
        try:
            fastread._decode_deferred(deferred, little, codec)
        except Fallback as exc:
            return ("fallback", str(exc))
    return (0, tree, pixel)


def _walk_then_decode(data: bytes, pos: int, little: bool, explicit: bool, depth: int) -> object:
    result = fastread._WALK(  # type: ignore[misc]
        data, len(data), pos, little, explicit, TOP_LEVEL_SPEC, depth, VR_OF,
        PIXEL_DATA_TAGS, PRESENCE,
    )  # fmt: skip
    if result[0] != 0:
        return result
    raw = result[1]
    try:
        tree = fastread._DECODE(  # type: ignore[misc]
            raw, little, fastread._charset_codec(raw), RAW_TAGS, fastread._decode_text
        )
    except Fallback as exc:
        return ("fallback", str(exc))
    return (0, tree, result[2])


def _same(data: bytes, pos: int, little: bool, explicit: bool, depth: int) -> None:
    assert _one_pass(data, pos, little, explicit, depth) == _walk_then_decode(
        data, pos, little, explicit, depth
    )


_NAMES = {
    "ISO_IR 100": "Müller^Jörg",
    "ISO_IR 192": "山田^太郎",
    "ISO_IR 144": "Иванов^Иван",
    "ISO 2022 IR 6\\ISO 2022 IR 87": "Yamada^Tarou=山田^太郎",
    "GB18030": "王^小明",
}


def _charset_seeds() -> list[tuple[bytes, int, bool, bool]]:
    """Files whose text is not plain ASCII, in several character sets and encodings."""
    out = []
    for n, (charset, name) in enumerate(_NAMES.items()):
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian):
            ds = ct_dataset(n, series="charset")
            ds.SpecificCharacterSet = charset.split("\\")
            ds.PatientName = name
            ds.StudyDescription = name.replace("^", " ")
            data = encode(ds, syntax)
            ts, _, pos = fastread._read_meta(Window.of_bytes(data), 132)
            little, explicit, _ = fastread.dataset_encoding(ts)
            out.append((data, pos, little, explicit))
    return out


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, int, bool, bool]]:
    out = _charset_seeds()
    for n, syntax in enumerate(
        (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
    ):
        out += _generated(syntax, tmp_path_factory.mktemp(f"seeds{n}"))
    return out


def test_same_on_generated_files(seeds: list[tuple[bytes, int, bool, bool]]) -> None:
    deferred = 0
    for data, pos, little, explicit in seeds:
        _same(data, pos, little, explicit, 32)
        result = fastread._WALK_DECODED(  # type: ignore[misc]
            data, len(data), pos, little, explicit, TOP_LEVEL_SPEC, 32, VR_OF,
            PIXEL_DATA_TAGS, PRESENCE, RAW_TAGS,
        )  # fmt: skip
        deferred += result[0] == 0 and result[4] is not None
    assert deferred >= len(_NAMES) * 3  # the non-ASCII names waited for their charset


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    choice=st.integers(min_value=0),
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0),
            st.binary(min_size=1, max_size=4) | st.sampled_from([b"\x1b$B", b"\xe9", b"\\"]),
        ),
        max_size=4,
    ),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
    depth=st.integers(min_value=1, max_value=4),
)
def test_same_on_corrupted_files(
    seeds: list[tuple[bytes, int, bool, bool]],
    choice: int,
    edits: list[tuple[int, bytes]],
    cut: int | None,
    depth: int,
) -> None:
    data, pos, little, explicit = seeds[choice % len(seeds)]
    _same(_corrupt(data, pos, len(data) - pos, edits, cut), pos, little, explicit, depth)


def test_a_tag_twice_keeps_the_last_value() -> None:
    # (0010,0010) PN twice, the second time with a VR decode() drops, then twice with
    # non-ASCII text: the raw tree keeps the last value of each tag.
    def element(tag: int, vr: bytes, value: bytes) -> bytes:
        head = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
        return head + vr + len(value).to_bytes(2, "little") + value

    for data in (
        element(0x00100010, b"PN", b"A^B ") + element(0x00100010, b"OB", b"\x00\x01"),
        element(0x00100010, b"OB", b"\x00\x01") + element(0x00100010, b"PN", b"A^B "),
        element(0x00100010, b"PN", b"\xe9^B ") + element(0x00100010, b"PN", b"A^B "),
        element(0x00100010, b"PN", b"A^B ") + element(0x00100010, b"PN", b"\xe9^B "),
        element(0x00080005, b"CS", b"ISO_IR 192")
        + element(0x00100010, b"PN", b"\xc3\xa9^B ")
        + element(0x00080005, b"CS", b"ISO_IR 100"),
    ):
        _same(data, 0, True, True, 4)


_TAGS = [0x00080005, 0x00100010, 0x00081030, 0x00200032, 0x00280010, 0x00291010, 0x0008103E]
_VRS = ["CS", "PN", "LO", "SH", "LT", "UT", "UC", "DS", "IS", "US", "FD", "OB", "UN", "UI"]
_LONG = {"UT", "UC", "OB", "UN"}
_CHARSETS = [b"ISO_IR 100", b"ISO_IR 192", b"ISO 2022 IR 87", b"\\ISO 2022 IR 87", b"GB18030", b""]
_BYTES = (
    st.sampled_from(_CHARSETS)
    | st.binary(max_size=12)
    | st.lists(st.sampled_from(list(b"AB 0.5\\^=\x00\x1b$\xe9\xc3\xa9\x80")), max_size=12).map(
        bytes
    )
)


@settings(max_examples=1000, deadline=None)
@given(
    elements=st.lists(
        st.tuples(st.sampled_from(_TAGS), st.sampled_from(_VRS), _BYTES), min_size=1, max_size=6
    ),
    little=st.booleans(),
)
def test_same_on_random_elements(elements: list[tuple[int, str, bytes]], little: bool) -> None:
    order = "little" if little else "big"
    data = b""
    for tag, vr, value in elements:
        data += (tag >> 16).to_bytes(2, order) + (tag & 0xFFFF).to_bytes(2, order) + vr.encode()
        if vr in _LONG:
            data += b"\0\0" + len(value).to_bytes(4, order)
        else:
            data += len(value).to_bytes(2, order)
        data += value
    _same(data, 0, little, True, 4)
