"""Writing outcomes: rows without their NULLs store exactly what full rows stored."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from dicom_bytes import BAD_CASES, ct_dataset, encode
from dicomsieve import synthetic as syn
from dicomsieve.codes import FileState, FlagCode
from dicomsieve.index import store
from dicomsieve.index.store import Index, pack_outcome, prepare_outcome
from dicomsieve.model import FileOutcome
from dicomsieve.scan.read import read_file
from dicomsieve.settings import Settings


def _tree(root: Path) -> list[str]:
    """Files whose rows leave different columns NULL: CT, enhanced MR (frames), vendor
    private values, a mosaic, errors and files that are not DICOM."""
    paths = syn.write_series(syn.ct_volume(slices=3, rows=8, columns=8), root / "ct")
    paths += syn.write_series(syn.enhanced_mr(slices=2, echoes=2, rows=8, columns=8), root / "enh")
    paths += syn.write_series(syn.ge_field_map(slices=2, rows=8, columns=8), root / "ge")
    paths += syn.write_series(syn.uih_vframe_dwi(slices=4, rows=6, columns=6), root / "uih")
    paths += syn.write_series(syn.secondary_capture_rgb(), root / "sc")
    paths += syn.write_series(syn.non_image_sr(), root / "sr")
    bad = root / "bad"
    bad.mkdir()
    for case in BAD_CASES:
        (bad / case.name).write_bytes(case.make())
        paths.append(bad / case.name)
    return sorted(str(p) for p in paths)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> list[FileOutcome]:
    root = tmp_path_factory.mktemp("data")
    settings = Settings()
    read = [read_file(path, settings) for path in _tree(root)]
    # The same SOPInstanceUID in a second file, and a flag already set by the reader.
    copy = root / "ct_copy"
    copy.write_bytes(Path(read[0].path).read_bytes())
    read.insert(2, read_file(str(copy), settings))
    assert {o.state for o in read} >= {FileState.INDEXED, FileState.ERROR, FileState.NOT_DICOM}
    assert any(o.instance is not None and o.instance.frames for o in read)
    assert any(o.flags for o in read)
    return read


def _reference(path: Path, outcomes: list[FileOutcome]) -> None:
    """The index as full rows store it: every column bound, NULLs and booleans included."""
    with Index(path) as index:
        run_id = index.begin_scan(["/"])
        db = index.conn
        db.execute("BEGIN IMMEDIATE")
        columns = ["file_ref", "series_ref", "duplicate_of", *store._INSTANCE_ROW_COLUMNS]
        frame_columns = ["instance_ref", *store._FRAME_INSERT_COLUMNS]
        originals: dict[str, int] = {}
        for outcome in outcomes:
            prepared = prepare_outcome(outcome)
            bare, instance = prepared
            file_id = db.execute(
                "INSERT INTO files (path, size, mtime_ns, inode, device, state, code, message, "
                "last_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    bare.path,
                    bare.size,
                    bare.mtime_ns,
                    bare.inode,
                    bare.device,
                    str(bare.state),
                    None if bare.code is None else str(bare.code),
                    bare.message,
                    run_id,
                ),
            ).fetchone()[0]
            flags = [str(f) for f in bare.flags]
            if instance is not None:
                duplicate_of = originals.get(instance.sop_instance_uid)
                if duplicate_of is not None and "DUPLICATE_SOP_INSTANCE" not in flags:
                    flags.append("DUPLICATE_SOP_INSTANCE")
                instance_id = db.execute(
                    f"INSERT INTO instances ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))}) RETURNING id",
                    (
                        file_id,
                        index._series_ref(db, instance.series),
                        duplicate_of,
                        *instance.row,
                    ),
                ).fetchone()[0]
                originals.setdefault(instance.sop_instance_uid, instance_id)
                for frame in instance.frames:
                    db.execute(
                        f"INSERT INTO frames ({', '.join(frame_columns)}) "
                        f"VALUES ({', '.join('?' * len(frame_columns))})",
                        (instance_id, *frame),
                    )
            for flag in flags:
                db.execute("INSERT INTO file_flags (file_ref, code) VALUES (?, ?)", (file_id, flag))
        db.execute("COMMIT")


def _dump(path: Path) -> dict[str, list[str]]:
    """Every stored value with its SQLite type, ids replaced by what they stand for."""

    def typed(alias: str, table: str, leave_out: set[str]) -> str:
        names = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        return ", ".join(f"typeof({alias}.{n}), {alias}.{n}" for n in names if n not in leave_out)

    conn = sqlite3.connect(path)
    try:
        queries = {
            "files": f"SELECT {typed('f', 'files', {'id', 'last_run'})} FROM files f",
            "file_flags": "SELECT f.path, ff.code FROM file_flags ff "
            "JOIN files f ON f.id = ff.file_ref",
            "instances": "SELECT f.path, se.series_instance_uid, df.path, "
            f"{typed('i', 'instances', {'id', 'file_ref', 'series_ref', 'duplicate_of'})} "
            "FROM instances i JOIN files f ON f.id = i.file_ref "
            "JOIN series se ON se.id = i.series_ref "
            "LEFT JOIN instances d ON d.id = i.duplicate_of "
            "LEFT JOIN files df ON df.id = d.file_ref",
            "frames": f"SELECT f.path, {typed('fr', 'frames', {'instance_ref'})} FROM frames fr "
            "JOIN instances i ON i.id = fr.instance_ref JOIN files f ON f.id = i.file_ref",
            "series": f"SELECT {typed('se', 'series', {'id', 'study_ref'})} FROM series se",
            "studies": f"SELECT {typed('st', 'studies', {'id', 'patient_ref'})} FROM studies st",
            "patients": f"SELECT {typed('p', 'patients', {'id'})} FROM patients p",
        }
        return {
            table: sorted(map(repr, conn.execute(sql).fetchall())) for table, sql in queries.items()
        }
    finally:
        conn.close()


def test_no_column_has_a_default_but_null(tmp_path: Path) -> None:
    """Inserts leave a row's NULL columns out; that stores NULL only without defaults."""
    with Index(tmp_path / "index.sqlite") as index:
        for table in ("files", "instances", "frames"):
            for row in index.conn.execute(f"PRAGMA table_info({table})"):
                assert row[4] is None, (table, row[1])


@pytest.mark.parametrize("batch", [1, 4, 1000])
def test_rows_with_different_null_patterns_store_what_full_rows_store(
    tmp_path: Path, outcomes: list[FileOutcome], batch: int
) -> None:
    _reference(tmp_path / "reference.sqlite", outcomes)
    expected = _dump(tmp_path / "reference.sqlite")
    assert expected["frames"]
    assert expected["file_flags"]
    with Index(tmp_path / "index.sqlite") as index:
        run_id = index.begin_scan(["/"])
        for start in range(0, len(outcomes), batch):
            index.write_outcomes(run_id, outcomes[start : start + batch])
    assert _dump(tmp_path / "index.sqlite") == expected


def test_packed_outcomes_store_what_outcomes_store(
    tmp_path: Path, outcomes: list[FileOutcome]
) -> None:
    with Index(tmp_path / "outcomes.sqlite") as index:
        index.write_outcomes(index.begin_scan(["/"]), outcomes)
    with Index(tmp_path / "packed.sqlite") as index:
        index.write_packed(index.begin_scan(["/"]), [pack_outcome(o) for o in outcomes])
    assert _dump(tmp_path / "packed.sqlite") == _dump(tmp_path / "outcomes.sqlite")


def test_writing_known_paths_again_stores_the_same(
    tmp_path: Path, outcomes: list[FileOutcome]
) -> None:
    """Known paths take the other way (update, delete, insert one by one).

    Without the duplicates: writing an original again makes it a duplicate of its copy.
    """
    seen: set[str] = set()
    unique = []
    for outcome in outcomes:
        uid = None if outcome.instance is None else outcome.instance.sop_instance_uid
        if uid not in seen:
            unique.append(outcome)
            if uid is not None:
                seen.add(uid)
    _reference(tmp_path / "reference.sqlite", unique)
    with Index(tmp_path / "index.sqlite") as index:
        index.write_outcomes(index.begin_scan(["/"]), unique)
        run_id = index.begin_scan(["/"])
        for outcome in unique:
            index.write_outcomes(run_id, [outcome])
    assert _dump(tmp_path / "index.sqlite") == _dump(tmp_path / "reference.sqlite")


def _copies(root: Path, count: int) -> list[FileOutcome]:
    root.mkdir()
    data = encode(ct_dataset(0))
    settings = Settings()
    paths = []
    for i in range(count):
        (root / f"copy{i}").write_bytes(data)
        paths.append(str(root / f"copy{i}"))
    return [read_file(p, settings) for p in paths]


@pytest.mark.parametrize("sizes", [[5], [1, 1, 1, 1, 1], [2, 3], [1, 4]])
def test_duplicate_flags_across_and_within_batches(tmp_path: Path, sizes: list[int]) -> None:
    read = _copies(tmp_path / "data", sum(sizes))
    with Index(tmp_path / "index.sqlite") as index:
        run_id = index.begin_scan([str(tmp_path)])
        returned: list[FileOutcome] = []
        start = 0
        for size in sizes:
            returned += index.write_outcomes(run_id, read[start : start + size])
            start += size
        stored = {os.path.basename(s.path): s for s in index.instances()}
        flags = {os.path.basename(p): index.file_flags(p) for p in (o.path for o in read)}
    assert [o.flags for o in returned] == [()] + [(FlagCode.DUPLICATE_SOP_INSTANCE,)] * 4
    original = stored["copy0"]
    assert original.duplicate_of is None
    assert all(stored[f"copy{i}"].duplicate_of == original.instance_id for i in range(1, 5))
    assert flags == {"copy0": []} | {f"copy{i}": ["DUPLICATE_SOP_INSTANCE"] for i in range(1, 5)}


def test_packed_outcomes_are_plain_values(outcomes: list[FileOutcome]) -> None:
    """What readers send unpickles without calling any Python-level constructor."""
    plain = (str, int, float, type(None))

    def check(value: object) -> None:
        if type(value) is tuple:
            for item in value:
                check(item)
        else:
            assert type(value) in plain, repr(value)

    for outcome in outcomes:
        packed = pack_outcome(outcome)
        check(packed)
        assert pack_outcome(prepare_outcome(outcome)) == packed
