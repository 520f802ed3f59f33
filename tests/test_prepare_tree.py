"""A scan's direct path gives the index the same rows as the record did, on every file.

``read_for_index`` builds the rows straight from the header tree (``prepare_tree``,
with the JSON text of tuples made in C); the reference is the record path,
``prepare_outcome(read_file(...))``. Both must give the same outcome and the same rows,
value for value and type for type, on every DICOM file that pydicom ships, every file
of ``../shared/data``, generated files in each encoding and the bad-input corpus, and
on random trees (hypothesis); the Python reading (``native=False``) as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

import pydicom.data
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicom_bytes import BAD_CASES, ct_dataset, encode, un_sequence
from dicomsieve import synthetic
from dicomsieve.codes import FileState
from dicomsieve.index.store import PreparedOutcome, pack_outcome, prepare_outcome
from dicomsieve.model import FileOutcome, PixelDataInfo
from dicomsieve.scan import ge, record, siemens, uih
from dicomsieve.scan.read import file_outcome, read_file, read_with
from dicomsieve.scan.record import (
    PER_FRAME_GROUPS,
    PLAIN_FIELDS,
    SHARED_GROUPS,
    build_instance,
    is_plain,
)
from dicomsieve.scan.rows import prepare_tree
from dicomsieve.scan.scanner import read_for_index
from dicomsieve.scan.tags import HeaderTree
from dicomsieve.settings import Settings

PYDICOM_DATA = Path(pydicom.data.__file__).parent


class _Counts:
    """How many compared files had a plain tree, and how many did not."""

    def __init__(self) -> None:
        self.plain = 0
        self.other = 0

    def build(
        self, tree: HeaderTree, transfer_syntax: str | None, pixel: PixelDataInfo | None
    ) -> object:
        if is_plain(tree):
            self.plain += 1
        else:
            self.other += 1
        return build_instance(tree, transfer_syntax, pixel)


def _same(path: Path, settings: Settings, counts: _Counts) -> bool:
    """Whether both ways of preparing ``path`` give exactly the reference."""
    reference = prepare_outcome(read_file(str(path), settings))
    read_with(str(path), settings, counts.build, file_outcome)
    python = PreparedOutcome(
        *read_with(str(path), settings, partial(prepare_tree, native=False), file_outcome)
    )
    native = PreparedOutcome(*read_with(str(path), settings, prepare_tree, file_outcome))
    wanted = repr(reference)
    # What the readers send: the same rows, packed (the form of Index.write_packed).
    sent = read_for_index(str(path), settings)
    return all(result == reference and repr(result) == wanted for result in (native, python)) and (
        sent == pack_outcome(reference) and repr(sent) == repr(pack_outcome(reference))
    )


def _check(paths: Iterable[Path], settings: Settings | None = None) -> _Counts:
    settings = settings or Settings()
    counts = _Counts()
    mismatches = [str(p) for p in paths if not _same(p, settings, counts)]
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:3]}"
    return counts


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".gz"))


def test_same_rows_on_pydicom_test_files() -> None:
    counts = _check(_files(PYDICOM_DATA))
    assert counts.plain >= 100
    assert counts.other >= 5  # enhanced multi-frame objects


@pytest.mark.shared_data
def test_same_rows_on_shared_data(shared_data_plain: Path) -> None:
    counts = _check(_files(shared_data_plain))
    assert counts.plain >= 1000
    assert counts.other >= 250  # GE, Siemens (mosaics among them) and UIH private blocks


def test_same_rows_on_generated_files(tmp_path: Path) -> None:
    un = synthetic.uih_vframe_dwi(slices=2, rows=8, columns=8, directions=1, private_block=0x31)
    for ds in un[:2]:
        un_sequence(ds, 0x00653151)  # UIH's private sequence written as UN
    datasets = [
        *synthetic.enhanced_mr(slices=3, echoes=2, rows=8, columns=8),
        *synthetic.enhanced_mr(slices=2, rows=8, columns=8, b_values=(0.0, 1000.0)),
        *synthetic.mr_multi_echo(slices=2, echoes=2, rows=8, columns=8),
        *synthetic.mr_4d(slices=2, time_points=2, rows=8, columns=8),
        *synthetic.ct_volume(slices=2, rows=8, columns=8),
        *synthetic.ge_field_map(slices=2, rows=8, columns=8, private_block=0x2A),
        *synthetic.uih_vframe_dwi(slices=2, rows=8, columns=8, directions=1),
        *un[:2],
        *synthetic.secondary_capture_rgb(),
        *synthetic.non_image_sr(),
    ]
    paths: list[Path] = []
    for n, syntax in enumerate(synthetic.TRANSFER_SYNTAXES):
        paths += synthetic.write_series(datasets, tmp_path / f"ts{n}", transfer_syntax=syntax)
    raw = tmp_path / "raw"
    raw.mkdir()
    paths += [synthetic.write_raw_dataset(ds, raw / f"{n}") for n, ds in enumerate(datasets)]
    paths += [p for group in synthetic.make_demo(tmp_path / "demo").values() for p in group]
    counts = _check(paths)
    assert counts.plain >= 40
    assert counts.other >= 30


def test_same_outcomes_on_bad_files(tmp_path: Path) -> None:
    paths = []
    for case in BAD_CASES:
        path = tmp_path / case.name
        path.write_bytes(case.make())
        paths.append(path)
    for n in range(3):
        path = tmp_path / f"ct{n}"
        path.write_bytes(encode(ct_dataset(n)))
        paths.append(path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _check([*paths, fifo, tmp_path / "missing"])


# Random trees: values of every kind at the tags the plain path reads, among private
# creators (of the vendors read, or of others) and functional groups.
_PRIVATE = (*ge.PRIVATE_TAGS, *siemens.PRIVATE_TAGS, *uih.PRIVATE_TAGS)
_VALUES = st.one_of(
    st.lists(
        st.one_of(
            st.text(max_size=6),
            st.sampled_from(["ORIGINAL", "MOSAIC", "VFRAME", "b0map", "", " "]),
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.integers(min_value=-1, max_value=4),  # GE image type codes, UIH counts
            st.booleans(),
            st.none(),
        ),
        max_size=4,
    ).map(tuple),
    st.just(True),
    st.just(({0x00200032: (1.0, 2.0, 3.0)},)),
    st.binary(max_size=4),
)
# Values that the vendor modules make something of.
_PRIVATE_VALUES = st.sampled_from(
    [(0,), (1,), (3.0,), ("b0map",), (2.0,), (1000.0,), (0.0, 1.0, 0.0)]
)
_CREATORS = st.sampled_from(sorted({p.creator for p in _PRIVATE} | {"OTHER VENDOR", ""}))
_TAGS = st.sampled_from(sorted({tag for tag, _, _ in PLAIN_FIELDS.values()}))


@st.composite
def _trees(draw: st.DrawFn) -> HeaderTree:
    tree: HeaderTree = draw(st.dictionaries(_TAGS, _VALUES, max_size=12))
    for tag in (0x00080018, 0x0020000E, 0x0020000D):  # mostly with an identity
        if draw(st.integers(0, 9)):
            tree[tag] = (draw(st.sampled_from(["1.2", "1.3", ""])),)
    for _ in range(draw(st.integers(0, 2))):
        private = draw(st.sampled_from(_PRIVATE))
        block = draw(st.sampled_from([0x10, 0x11, 0x2A]))
        creator = draw(st.one_of(st.just(private.creator), _CREATORS))
        tree[private.group << 16 | block] = (creator,)
        tree[private.tag_in(block)] = draw(st.one_of(_PRIVATE_VALUES, _VALUES))
    if draw(st.integers(0, 4)) == 0:
        groups = draw(st.sampled_from([SHARED_GROUPS, PER_FRAME_GROUPS]))
        tree[groups] = ({0x00189112: ({0x00180080: (2.5,)},)},)
    return tree


def _outcome_of(make: Callable[[], object]) -> object:
    try:
        return make()
    except (OverflowError, ValueError) as exc:
        return type(exc).__name__


@settings(max_examples=1500, deadline=None)
@given(
    tree=_trees(),
    transfer_syntax=st.sampled_from([None, "1.2.840.10008.1.2.1"]),
    pixel=st.sampled_from([None, PixelDataInfo(0x7FE00010, 1000, 64, False)]),
)
def test_same_rows_on_random_trees(
    tree: HeaderTree, transfer_syntax: str | None, pixel: PixelDataInfo | None
) -> None:
    def reference() -> object:
        built = build_instance(tree, transfer_syntax, pixel)
        outcome = FileOutcome("f", FileState.INDEXED, instance=built)
        return prepare_outcome(outcome).instance

    assert is_plain(tree) == is_plain(tree, native=False)
    wanted = repr(_outcome_of(reference))
    for native in (True, False):
        assert (
            repr(_outcome_of(partial(prepare_tree, tree, transfer_syntax, pixel, native=native)))
            == wanted
        )


def test_plain_table_checks_its_columns() -> None:
    assert record.plain_table(["rows", "image_type"], [1])
    with pytest.raises(ValueError, match="no plain reading"):
        record.plain_table(["frames"], [])
    with pytest.raises(ValueError, match="JSON"):
        record.plain_table(["image_type"], [])
    with pytest.raises(ValueError, match="JSON"):
        record.plain_table(["rows"], [0])
