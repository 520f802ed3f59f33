"""The index: schema covers the records, records round-trip, migrations are idempotent."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from dicom_bytes import ct_dataset, encode
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
