"""The C fast path (``scan/_native.c``) gives what the Python code gives, on every file.

The Python code is the reference: the walk (``_Parser`` in ``fastread.py``), the
decoding (``_decode_tree``) and the record fields (``record.extract``). Both are run
on every DICOM file that pydicom ships, every file of ``../shared/data``, generated
files in each encoding, random corruptions and truncations of those, and random values
(hypothesis). They must give the same trees, records and pixel data positions, or fail
the same way (fall back to pydicom, or the same error code and message).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom.data
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicom_bytes import un_sequence
from dicomsieve import synthetic
from dicomsieve.scan import fastread
from dicomsieve.scan.fastread import Fallback, ReadFailure, Window, parse_header
from dicomsieve.scan.read import sniff
from dicomsieve.scan.record import FieldKind, build_instance, extract
from dicomsieve.scan.tags import PIXEL_DATA_TAGS, PRESENCE, RAW_TAGS, TOP_LEVEL_SPEC, VR_OF, Spec
from dicomsieve.settings import Settings
from native import native_missing

PYDICOM_DATA = Path(pydicom.data.__file__).parent


@pytest.fixture(scope="module", autouse=True)
def _native_walk_built() -> None:
    if not fastread.NATIVE_WALK:
        native_missing("the C walk")


def _parse(path: Path, *, native: bool, chunk: int) -> object:
    """parse_header's result, or what it raised, as comparable values."""
    with open(path, "rb") as handle:
        head = handle.read(chunk)
    kind, explicit = sniff(head)
    if kind == "not_dicom":
        return "not_dicom"
    fd = os.open(path, os.O_RDONLY)
    try:
        header = parse_header(
            Window(fd, os.fstat(fd).st_size, head, chunk),
            max_depth=Settings().max_sequence_depth,
            inflate_cap=Settings().inflate_cap(os.fstat(fd).st_size),
            raw_explicit=explicit,
            native=native,
        )
        return header, build_instance(
            header.tree, header.transfer_syntax, header.pixel, native=native
        )
    except Fallback as exc:
        return ("fallback", str(exc))
    except ReadFailure as exc:
        return ("failure", exc.code, exc.message)
    finally:
        os.close(fd)


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".gz"))


def _check_folder(folder: Path) -> int:
    compared = 0
    mismatches = []
    # 64 KiB: the header is in the first read; 1 KiB: it often is not (the C walk
    # then hands over to the Python walk, which must make no difference either).
    for path in _files(folder):
        for chunk in (64 * 1024, 1024):
            native = _parse(path, native=True, chunk=chunk)
            if native == "not_dicom":
                break
            compared += 1
            if native != _parse(path, native=False, chunk=chunk):
                mismatches.append(f"{path} (first read {chunk} bytes)")
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:3]}"
    return compared


def test_same_as_python_walk_on_pydicom_test_files() -> None:
    assert _check_folder(PYDICOM_DATA) >= 300


@pytest.mark.shared_data
def test_same_as_python_walk_on_shared_data(shared_data_plain: Path) -> None:
    assert _check_folder(shared_data_plain) >= 3000


def _walk_both(
    data: bytes, pos: int, little: bool, explicit: bool, depth: int, spec: Spec = TOP_LEVEL_SPEC
) -> None:
    """Walk ``data`` both ways, in C with the spec as a dict and compiled; the results, or
    the failures, must be equal."""
    natives = [
        fastread._WALK(  # type: ignore[misc]
            data, len(data), pos, little, explicit, native_spec, depth, VR_OF,
            PIXEL_DATA_TAGS, PRESENCE,
        )
        for native_spec in (spec, _compiled(spec))
    ]  # fmt: skip
    parser = fastread._Parser(Window.of_bytes(data), little, explicit, depth, stop_at_pixels=True)
    try:
        tree, _ = parser.dataset(pos, None, spec, 0)
        python: tuple[object, ...] = (0, tree, parser.pixel)
    except Fallback as exc:
        python = (1, str(exc))
    except ReadFailure as exc:
        python = (2, exc.code.name, exc.message)
    for native in natives:
        assert repr(native) == repr(python)
    if natives[0][0] == 0:
        _decode_both(natives[0][1], little)


def _compiled(spec: Spec) -> object:
    """``spec`` compiled for the C walk; the module's own for TOP_LEVEL_SPEC."""
    if spec is TOP_LEVEL_SPEC:
        return fastread._NATIVE_SPEC
    from dicomsieve.scan._native import compile_spec  # the module is skipped unless built

    return compile_spec(spec)


def _decoded(decode: Callable[[], object]) -> object:
    try:
        return decode()
    except Fallback as exc:
        return ("fallback", str(exc))


def _decode_both(raw: dict[int, object], little: bool) -> None:
    """Decode a raw tree both ways, with its own character set and with others."""
    own = fastread._charset_codec(raw)
    for codec in {own, "latin_1", "UTF8", "iso8859_2", None}:
        native = _decoded(
            lambda codec=codec: fastread._DECODE(  # type: ignore[misc]
                raw, little, codec, RAW_TAGS, fastread._decode_text
            )
        )
        python = _decoded(lambda codec=codec: fastread._decode_tree(raw, little, codec))
        assert repr(native) == repr(python), codec


def _generated(transfer_syntax: str, tmp: Path) -> list[tuple[bytes, int, bool, bool]]:
    """Files in one encoding: (bytes, dataset offset, little endian, explicit VR)."""
    un = synthetic.uih_vframe_dwi(slices=2, rows=8, columns=8, directions=1, private_block=0x31)[:2]
    for ds in un:
        un_sequence(ds, 0x00653151)  # UIH's private sequence written as UN
    datasets = [
        *synthetic.enhanced_mr(slices=3, echoes=2, rows=8, columns=8),
        *synthetic.mr_multi_echo(slices=2, echoes=2, rows=8, columns=8),
        *synthetic.ct_volume(slices=2, rows=8, columns=8),
        *synthetic.ge_field_map(slices=2, rows=8, columns=8, private_block=0x2A)[:3],
        *synthetic.uih_vframe_dwi(slices=2, rows=8, columns=8, directions=1)[:2],
        *un,
    ]
    paths = synthetic.write_series(datasets, tmp, transfer_syntax=transfer_syntax)
    out = []
    for path in paths:
        data = path.read_bytes()
        win = Window.of_bytes(data)
        ts, _, pos = fastread._read_meta(win, 132)
        little, explicit, _ = fastread.dataset_encoding(ts)
        out.append((data, pos, little, explicit))
    return out


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, int, bool, bool]]:
    out = []
    for n, syntax in enumerate(
        (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
    ):
        out += _generated(syntax, tmp_path_factory.mktemp(f"seeds{n}"))
    return out


@pytest.mark.parametrize("index", range(3))
def test_same_on_generated_files(seeds: list[tuple[bytes, int, bool, bool]], index: int) -> None:
    for data, pos, little, explicit in seeds[index::3]:
        _walk_both(data, pos, little, explicit, 32)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    choice=st.integers(min_value=0),
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=4)), max_size=4
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
    corrupted = _corrupt(data, pos, len(data) - pos, edits, cut)
    _walk_both(corrupted, pos, little, explicit, depth)


def _corrupt(
    data: bytes, start: int, span: int, edits: list[tuple[int, bytes]], cut: int | None
) -> bytes:
    """``data`` with bytes replaced, then cut, at offsets folded into [start, start + span)."""
    buffer = bytearray(data)
    for offset, replacement in edits:
        at = start + offset % span
        buffer[at : at + len(replacement)] = replacement
    if cut is not None:
        del buffer[start + cut % span :]
    return bytes(buffer)


def test_buffer_longer_than_file_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than the file"):
        fastread._WALK(  # type: ignore[misc]
            b"\0" * 16, 8, 0, True, True, TOP_LEVEL_SPEC, 4, VR_OF, PIXEL_DATA_TAGS, PRESENCE
        )


_VRS = ["DS", "IS", "CS", "LO", "LT", "PN", "SH", "UI", "UT", "UR", "DA", "TM", "AE"]
_VRS += ["US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "OB", "UN", "AT", "SQ"]
# Bytes that make values interesting: separators, padding, signs, exponents, digits,
# underscores, Unicode whitespace in Latin-1 (0x1C, 0x85, 0xA0), ESC, non-ASCII.
_VALUE_BYTES = st.binary(max_size=24) | st.lists(
    st.sampled_from(list(b"0123456789 \\\x00=.-+eE_naifNAIF\t\x1c\x85\xa0\x1b\xe9")),
    max_size=24,
).map(bytes)


@settings(max_examples=500, deadline=None)
@given(
    values=st.lists(st.tuples(st.sampled_from(_VRS), _VALUE_BYTES), min_size=1, max_size=6),
    little=st.booleans(),
    raw_tag=st.booleans(),
    nested=st.booleans(),
)
def test_decode_same_as_python(
    values: list[tuple[str, bytes]], little: bool, raw_tag: bool, nested: bool
) -> None:
    raw: dict[int, object] = {0x00100000 + n: value for n, value in enumerate(values)}
    if raw_tag:
        raw[next(iter(RAW_TAGS))] = values[0]
    if nested:
        raw[0x52009229] = (dict(raw), {}, {0x00280030: ("DS", b"0.5\\0.5 ")})
        raw[0x00081140] = True
    _decode_both(raw, little)


# Numbers as DS and IS values write them, for the C reading of plain numbers from the
# bytes (no str made): every float repr, ints around the 18 digits read in C, leading
# zeros and signs, exponents that overflow, and text up to the 64 bytes read in C.
_NUMBER_TEXT = st.one_of(
    st.floats().map(repr),
    st.floats().map(lambda f: f"{f:.17e}"),
    st.tuples(
        st.sampled_from(["", "+", "-"]),
        st.integers(min_value=1, max_value=22).flatmap(
            lambda n: st.text("0123456789", min_size=n, max_size=n)
        ),
    ).map("".join),
    st.from_regex(r"[+-]?0*[0-9]{0,20}(\.[0-9]{0,40})?([eE][+-]?[0-9]{1,4})?", fullmatch=True),
).map(str.encode)


@settings(max_examples=500, deadline=None)
@given(
    numbers=st.lists(_NUMBER_TEXT, min_size=1, max_size=3),
    padding=st.sampled_from([b"", b" ", b"\x00", b"  "]),
)
def test_decode_numbers_same_as_python(numbers: list[bytes], padding: bytes) -> None:
    value = b"\\".join(padding + number + padding for number in numbers)
    _decode_both({0x00280030: ("DS", value), 0x00200013: ("IS", value)}, True)


_VALUES = st.one_of(
    st.text(max_size=6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.booleans(),
    st.none(),
)
_TREE_VALUES = st.one_of(
    st.lists(_VALUES, max_size=4).map(tuple),
    st.just(True),
    st.just(({0x00280030: (0.5, 0.5)},)),
    st.binary(max_size=4),
)


@settings(max_examples=500, deadline=None)
@given(
    tree=st.dictionaries(st.integers(min_value=1, max_value=4), _TREE_VALUES, max_size=4),
    rows=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5),
            st.sampled_from(list(FieldKind)),
            st.sampled_from([None, 1, 2, 3]),
        ),
        max_size=8,
    ),
)
def test_extract_same_as_python(
    tree: dict[int, object], rows: list[tuple[int, FieldKind, int | None]]
) -> None:
    table = tuple(rows)

    def run(native: bool) -> object:
        try:
            return extract(tree, table, native=native)
        except OverflowError:
            return "overflow"

    assert repr(run(True)) == repr(run(False))


def _meta_both(data: bytes) -> None:
    def run(native: bool) -> object:
        try:
            return fastread._read_meta(Window.of_bytes(data), 132, native=native)
        except Fallback as exc:
            return ("fallback", str(exc))
        except ReadFailure as exc:
            return ("failure", exc.code, exc.message)

    assert run(True) == run(False)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    choice=st.integers(min_value=0),
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=4)), max_size=3
    ),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_meta_same_on_corrupted_files(
    seeds: list[tuple[bytes, int, bool, bool]],
    choice: int,
    edits: list[tuple[int, bytes]],
    cut: int | None,
) -> None:
    data, pos, _, _ = seeds[choice % len(seeds)]
    # the file meta group and the first dataset element
    _meta_both(_corrupt(data, 132, pos - 132 + 16, edits, cut))
