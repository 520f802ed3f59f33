"""The index: schema covers the records, records round-trip, migrations are idempotent."""

from __future__ import annotations

import sqlite3
from dataclasses import fields
from pathlib import Path

from dicom_bytes import ct_dataset, encode
from dicomsieve import synthetic as syn
from dicomsieve.index.schema import FRAME_COLUMNS, INSTANCE_COLUMNS, SCHEMA_VERSION
from dicomsieve.index.store import Index
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
