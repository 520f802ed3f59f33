"""The index: schema covers the records, records round-trip, migrations are idempotent."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass, fields
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from dicom_bytes import ct_dataset, encode
from dicomsieve import synthetic as syn
from dicomsieve.index.schema import FRAME_COLUMNS, INSTANCE_COLUMNS, SCHEMA_VERSION
from dicomsieve.index.store import Index, _builder, _json_reader, _json_value, _to_tuple
from dicomsieve.model import FrameRecord, InstanceRecord
from dicomsieve.scan.read import read_file
from dicomsieve.scan.scanner import scan
from dicomsieve.settings import Settings

# Stored in the patients and studies tables, or as their own rows.
ELSEWHERE = {
    "patient_id",
    "patient_name",
    "patient_birth_date",
    "study_instance_uid",
    "study_date",
    "study_time",
    "study_description",
    "accession_number",
    "series_instance_uid",
    "pixel_data",
    "frames",
}


def test_instance_columns_cover_every_record_field() -> None:
    columns = {name for name, _ in INSTANCE_COLUMNS}
    assert {f.name for f in fields(InstanceRecord)} - ELSEWHERE <= columns
    assert {f.name for f in fields(FrameRecord)} == {name for name, _ in FRAME_COLUMNS}


def test_records_round_trip_through_the_index(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for i in range(3):
        (root / f"{i}").write_bytes(encode(ct_dataset(i)))
    settings = Settings(jobs=1)
    with Index(tmp_path / "index.sqlite") as db:
        scan([root], db, settings)
        stored = {s.path: s.record for s in db.instances()}
    assert len(stored) == 3
    for path, record in stored.items():
        assert read_file(path, settings).instance == record


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    with Index(path) as db:
        assert db.schema_version == SCHEMA_VERSION
    with Index(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        rows = db.conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]
        assert rows == SCHEMA_VERSION
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def _vendor_files(root: Path) -> tuple[list[Path], list[Path]]:
    """GE field map and UIH VFRAME files (private values), and a plain CT stack."""
    private = syn.write_series(syn.ge_field_map(slices=3, rows=8, columns=8), root / "ge")
    private += syn.write_series(syn.uih_vframe_dwi(slices=5, rows=6, columns=6), root / "uih")
    plain = syn.write_series(syn.ct_volume(slices=3, rows=8, columns=8), root / "ct")
    return private, plain


def test_vendor_private_values_round_trip_through_the_index(tmp_path: Path) -> None:
    private, _plain = _vendor_files(tmp_path / "data")
    settings = Settings(jobs=1)
    with Index(tmp_path / "index.sqlite") as db:
        scan([tmp_path / "data"], db, settings)
        stored = {s.path: s.record for s in db.instances()}
    for path in private:
        record = stored[str(path)]
        assert record == read_file(str(path), settings).instance
        assert record.private_image_type is not None or record.mosaic_positions is not None
    uih = [stored[str(p)] for p in private if "uih" in p.parts]
    assert uih
    assert all(r.mosaic_grid == (2, 3) for r in uih)
    assert all(isinstance(r.mosaic_positions[0], tuple) for r in uih if r.mosaic_positions)


def test_migration_4_reads_vendor_files_again(tmp_path: Path) -> None:
    """An index of schema 3 lacks the private values: the migration forgets the files'
    modification times, so that the next scan reads GE and UIH files again."""
    private, plain = _vendor_files(tmp_path / "data")
    db_path = tmp_path / "index.sqlite"
    settings = Settings(jobs=1)
    with Index(db_path) as db:
        scan([tmp_path / "data"], db, settings)
    # Back to schema 3: the columns of migration 4 gone, its version row removed.
    conn = sqlite3.connect(db_path)
    with conn:
        for column in ("private_image_type", "mosaic_grid", "mosaic_positions"):
            conn.execute(f"ALTER TABLE instances DROP COLUMN {column}")
        conn.execute("DELETE FROM schema_version WHERE version = 4")
    conn.close()
    with Index(db_path) as db:
        assert db.schema_version == SCHEMA_VERSION
        forgotten = {
            row[0] for row in db.conn.execute("SELECT path FROM files WHERE mtime_ns IS NULL")
        }
        assert forgotten == {str(p) for p in private}
        summary = scan([tmp_path / "data"], db, settings)
        assert (summary.indexed, summary.unchanged) == (len(private), len(plain))
        stored = {s.path: s.record for s in db.instances()}
    assert all(stored[str(p)] == read_file(str(p), settings).instance for p in private)


def test_records_of_one_series_equal_those_read_with_every_series(tmp_path: Path) -> None:
    """Index.instances(uid) asks for the frames of its instances by id; without a uid it
    reads the whole frames table: the records are the same, and the files' own."""
    root = tmp_path / "data"
    syn.write_series(syn.enhanced_mr(slices=4, echoes=2, rows=8, columns=8), root / "enh1")
    syn.write_series(
        syn.enhanced_mr(series_number=7, series_uid="1.2.3.7", slices=3, rows=8, columns=8),
        root / "enh2",
    )
    syn.write_series(syn.uih_vframe_dwi(slices=5, rows=6, columns=6), root / "uih")
    syn.write_series(syn.ct_volume(slices=3, rows=8, columns=8), root / "ct")
    settings = Settings(jobs=1)
    with Index(tmp_path / "index.sqlite") as db:
        scan([root], db, settings)
        everything = db.instances()
        by_series = [s for uid in db.series_uids() for s in db.instances(uid)]
    assert sorted(by_series, key=lambda s: s.path) == everything
    assert sum(len(s.record.frames) for s in everything) == 4 * 2 + 3 * 2
    for stored in everything:
        assert stored.record == read_file(stored.path, settings).instance


# What the index stores as JSON: tuples of numbers or strings, tile positions (tuples of
# tuples), and None inside a tuple; any JSON value besides.
_NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True))
_TUPLES = st.one_of(
    st.tuples(_NUMBERS, _NUMBERS, _NUMBERS),
    st.lists(st.one_of(_NUMBERS, st.text(), st.none()), max_size=8).map(tuple),
    st.lists(st.lists(_NUMBERS, min_size=3, max_size=3).map(tuple), max_size=6).map(tuple),
)
_JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), _NUMBERS, st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


def _outcome(function: Callable[[str], object], text: str) -> tuple[str, object]:
    """The value ``function`` returns, or the type and message of what it raises."""
    try:
        return ("value", function(text))
    except Exception as exc:  # the error itself is what is compared
        return ("error", (type(exc), str(exc)))


@given(value=st.one_of(_TUPLES, _JSON_VALUES), before=st.sampled_from(["", " ", "\n\t"]),
       after=st.sampled_from(["", " ", "\r\n", "x", "]", ", 1"]))  # fmt: skip
@examples(max_examples=300, deadline=None)
def test_json_value_is_json_loads(value: object, before: str, after: str) -> None:
    """The same value (NaN too: compared as text) or the same error, on any text."""
    text = before + json.dumps(value) + after
    assert repr(_outcome(_json_value, text)) == repr(_outcome(json.loads, text))


@given(text=st.text(max_size=12))
@examples(max_examples=300, deadline=None)
def test_json_value_is_json_loads_on_any_text(text: str) -> None:
    assert repr(_outcome(_json_value, text)) == repr(_outcome(json.loads, text))


@given(values=st.lists(st.one_of(st.none(), _TUPLES, _JSON_VALUES), max_size=10))
@examples(max_examples=200, deadline=None)
def test_json_reader_decodes_each_text_as_before(values: list[object]) -> None:
    """As ``_to_tuple(json.loads(text))``, values repeated or not; a value holding a list
    or a dict is never shared between records."""
    read = _json_reader()
    texts = [json.dumps(v) for v in values] * 2
    got = [read(text) for text in texts]
    assert repr(got) == repr([_to_tuple(json.loads(text)) for text in texts])
    half = len(values)
    for first, again in zip(got[:half], got[half:], strict=True):
        if isinstance(first, list | dict) or (
            isinstance(first, tuple) and any(isinstance(v, list | dict) for v in first)
        ):
            assert first is not again


@dataclass(frozen=True, slots=True)
class _Checked:
    a: int
    b: str = "b"

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: tuple[int, ...] = ()


def test_builder_makes_what_the_constructor_makes(tmp_path: Path) -> None:
    private, plain = _vendor_files(tmp_path / "data")
    settings = Settings(jobs=1)
    for path in private + plain:
        record = read_file(str(path), settings).instance
        assert record is not None
        values = [getattr(record, f.name) for f in fields(InstanceRecord)]
        built = _builder(InstanceRecord)(values)
        assert type(built) is InstanceRecord
        assert built == record
        assert repr(built) == repr(record)
        assert hash(built) == hash(record)
        for frame in record.frames:
            frame_values = [getattr(frame, f.name) for f in fields(FrameRecord)]
            assert _builder(FrameRecord)(frame_values) == frame
    assert _builder(_Plain)([1, (2,)]) == _Plain(1, (2,))
    with pytest.raises(FrozenInstanceError):
        _builder(_Plain)([1, (2,)]).a = 2  # type: ignore[misc]


def test_builder_leaves_other_classes_and_lengths_to_the_constructor() -> None:
    with pytest.raises(ValueError, match="negative"):
        _builder(_Checked)([-1, "x"])
    assert _builder(_Plain)([1]) == _Plain(1)  # the default fills the missing field
    with pytest.raises(TypeError):
        _builder(_Plain)([1, (), 3])


def test_instances_come_in_the_order_sqlite_sorts_their_paths(tmp_path: Path) -> None:
    """Index.instances sorts in Python: the order of ORDER BY path (UTF-8 bytes), with
    names beyond ASCII and beyond the Basic Multilingual Plane."""
    root = tmp_path / "data"
    names = ["b", "B", "é", "z", "\u65e5\u672c", "\U0001f600", "\uff21", "a b", "a-b", "a_b"]
    for i, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / f"{i}").write_bytes(encode(ct_dataset(i)))
    with Index(tmp_path / "index.sqlite") as db:
        scan([root], db, Settings(jobs=1))
        expected = [row[0] for row in db.conn.execute("SELECT path FROM files ORDER BY path")]
        got = [s.path for s in db.instances()]
        one_series = [s.path for uid in db.series_uids() for s in db.instances(uid)]
    assert got == expected
    assert len(got) == len(names)
    assert sorted(one_series) == got
