"""The index database. The only module that writes SQL.

SQLite in WAL mode is the embedded default: readers never block the writer, writes
happen in short ``BEGIN IMMEDIATE`` transactions (one per batch of files), and a busy
timeout makes two scans of one database wait for each other instead of failing.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple, get_args, get_origin, get_type_hints

from dicomsieve.codes import FileState, FlagCode, Level, LoadableKind, WarningCode
from dicomsieve.errors import IndexDbError
from dicomsieve.index.schema import (
    FRAME_COLUMNS,
    INSTANCE_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    id_type,
)
from dicomsieve.loadables.model import (
    ExamineWarning,
    Loadable,
    Matrix4,
    SeriesExamination,
    SliceRef,
)
from dicomsieve.model import FileOutcome, FrameRecord, InstanceRecord, PixelDataInfo
from dicomsieve.scan.record import build_instance, extract, is_plain, plain_table, to_json
from dicomsieve.scan.tags import HeaderTree

__all__ = [
    "FileRow",
    "Index",
    "PreparedInstance",
    "PreparedOutcome",
    "SeriesIdentity",
    "SeriesRow",
    "StoredInstance",
    "default_db_path",
    "prepare_outcome",
    "prepare_tree",
]

_OPEN_TIMEOUT_S: Final = 60.0
_PATIENT_FIELDS: Final = ("patient_id", "patient_name", "patient_birth_date")
_STUDY_FIELDS: Final = ("study_date", "study_time", "study_description", "accession_number")
# Instance columns that hold PixelDataInfo fields.
_PIXEL_COLUMNS: Final = {
    "pixel_tag": "tag",
    "pixel_offset": "offset",
    "pixel_length": "length",
    "pixel_deflated": "deflated",
}
_INSTANCE_FIELD_NAMES: Final = frozenset(f.name for f in fields(InstanceRecord))
# Built once: the statements that run for every file.
_INSTANCE_INSERT_COLUMNS: Final = (
    ["file_ref", "series_ref", "duplicate_of"]
    + [n for n, _ in INSTANCE_COLUMNS if n not in _PIXEL_COLUMNS]
    + [n for n, _ in INSTANCE_COLUMNS if n in _PIXEL_COLUMNS]
)
_INSERT_INSTANCE: Final = (
    f"INSERT INTO instances ({', '.join(_INSTANCE_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_INSTANCE_INSERT_COLUMNS))}) RETURNING id"
)
_INSERT_NEW_INSTANCE: Final = (
    f"INSERT INTO instances ({', '.join(['id', *_INSTANCE_INSERT_COLUMNS])}) "
    f"VALUES ({', '.join('?' * (len(_INSTANCE_INSERT_COLUMNS) + 1))})"
)
_INSERT_NEW_FILE: Final = (
    "INSERT INTO files (id, path, size, mtime_ns, inode, device, state, code, message, "
    "last_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Values bound to one IN (...) list: below SQLite's oldest default limit of 999.
_MAX_PARAMETERS: Final = 500
# One C call fetches every column's value (the record columns first, then the pixel
# columns, in the order of _INSTANCE_INSERT_COLUMNS).
_RECORD_COLUMN_NAMES: Final = [n for n, _ in INSTANCE_COLUMNS if n not in _PIXEL_COLUMNS]
_PIXEL_COLUMN_NAMES: Final = [n for n, _ in INSTANCE_COLUMNS if n in _PIXEL_COLUMNS]
_RECORD_GETTER: Final = operator.attrgetter(*_RECORD_COLUMN_NAMES)
_PIXEL_GETTER: Final = operator.attrgetter(*(_PIXEL_COLUMNS[n] for n in _PIXEL_COLUMN_NAMES))
_NO_PIXEL: Final = (None,) * len(_PIXEL_COLUMN_NAMES)
_FRAME_GETTER: Final = operator.attrgetter(*(n for n, _ in FRAME_COLUMNS))
_INSERT_FRAME: Final = (
    f"INSERT INTO frames ({', '.join(['instance_ref'] + [n for n, _ in FRAME_COLUMNS])}) "
    f"VALUES ({', '.join('?' * (len(FRAME_COLUMNS) + 1))})"
)
_FRAME_FIELD_NAMES: Final = frozenset(f.name for f in fields(FrameRecord))


class SeriesIdentity(NamedTuple):
    """What the patients, studies and series tables take from an instance."""

    series_instance_uid: str
    study_instance_uid: str
    patient_id: str | None
    patient_name: str | None
    patient_birth_date: str | None
    study_date: str | None
    study_time: str | None
    study_description: str | None
    accession_number: str | None
    series_number: int | None
    series_description: str | None
    modality: str | None


_SERIES_GETTER: Final = operator.attrgetter(*SeriesIdentity._fields)


class PreparedInstance(NamedTuple):
    """An instance as the index stores it: SQL parameters, ready to insert."""

    sop_instance_uid: str
    series: SeriesIdentity
    row: tuple[object, ...]
    """The ``instances`` values after ``file_ref, series_ref, duplicate_of``."""
    frames: tuple[tuple[object, ...], ...]
    """The ``frames`` values after ``instance_ref``, a row per frame."""


class PreparedOutcome(NamedTuple):
    """A file's outcome without its record, and the record prepared for the index."""

    outcome: FileOutcome
    instance: PreparedInstance | None


def prepare_outcome(outcome: FileOutcome) -> PreparedOutcome:
    """Turn an outcome's record into the rows the index inserts.

    A scan runs this in its reader processes: a record of plain SQL values pickles and
    unpickles in a fraction of the time of the record itself, and the one process that
    writes the index has less to do.
    """
    record = outcome.instance
    if record is None:
        return PreparedOutcome(outcome, None)
    bare = FileOutcome(
        outcome.path, outcome.state, outcome.size, outcome.mtime_ns, outcome.inode,
        outcome.device, outcome.code, outcome.message, outcome.flags,
    )  # fmt: skip
    return PreparedOutcome(bare, _prepare_record(record))


def _prepare_record(record: InstanceRecord) -> PreparedInstance:
    pixel = record.pixel_data
    return PreparedInstance(
        record.sop_instance_uid,
        SeriesIdentity(*_SERIES_GETTER(record)),
        (
            *_row_values(_RECORD_GETTER(record), _RECORD_TUPLES),
            *(_PIXEL_GETTER(pixel) if pixel is not None else _NO_PIXEL),
        ),
        tuple(tuple(_row_values(_FRAME_GETTER(frame), _FRAME_TUPLES)) for frame in record.frames),
    )


def prepare_tree(
    tree: HeaderTree,
    transfer_syntax: str | None,
    pixel: PixelDataInfo | None,
    *,
    native: bool = True,
) -> PreparedInstance | None:
    """The rows of one object's header tree, straight from the tree.

    The same as the instance :func:`prepare_outcome` makes of
    ``build_instance(tree, transfer_syntax, pixel)``; ``None`` where that is ``None``.
    A scan's reader processes run this on every file: a plain tree (the common case,
    see :func:`~dicomsieve.scan.record.is_plain`) is read into the row in one
    :func:`~dicomsieve.scan.record.extract` call, JSON text included, without the
    record in between; any other goes through the record.

    Parameters
    ----------
    tree, transfer_syntax, pixel
        What a header reader found (see :func:`~dicomsieve.scan.record.build_instance`).
    native
        Read in C when the extension is built (the default); ``False`` reads in Python,
        which gives the same rows (the tests compare them).

    Returns
    -------
    PreparedInstance or None
        ``None`` when an identifying UID is missing.
    """
    if not is_plain(tree, native=native):
        record = build_instance(tree, transfer_syntax, pixel, native=native)
        return None if record is None else _prepare_record(record)
    values = extract(tree, _PLAIN_TABLE, native=native)
    series = _PLAIN_SERIES(values)
    sop = values[_PLAIN_SOP]
    if not (isinstance(sop, str) and sop and series[0] and series[1]):
        return None
    values[_PLAIN_TRANSFER_SYNTAX] = transfer_syntax
    del values[_PLAIN_ROW_END:]
    values += _PIXEL_GETTER(pixel) if pixel is not None else _NO_PIXEL
    return PreparedInstance(sop, SeriesIdentity(*series), tuple(values), ())


def _file_values(outcome: FileOutcome, run_id: int) -> tuple[object, ...]:
    """The ``files`` values from ``path`` to ``last_run``."""
    return (
        outcome.path,
        outcome.size,
        outcome.mtime_ns,
        outcome.inode,
        outcome.device,
        str(outcome.state),
        None if outcome.code is None else str(outcome.code),
        outcome.message,
        run_id,
    )


def default_db_path() -> Path:
    """``$DICOMSIEVE_DB`` if set, else ``index.sqlite`` in the per-user data directory."""
    env = os.environ.get("DICOMSIEVE_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("dicomsieve")) / "index.sqlite"


@dataclass(frozen=True, slots=True)
class FileRow:
    """What the index knows of one file path."""

    id: int
    path: str
    size: int | None
    mtime_ns: int | None
    inode: int | None
    state: str
    code: str | None


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """One series with its patient and study, for listings."""

    patient_id: str | None
    patient_name: str | None
    study_instance_uid: str
    study_date: str | None
    study_description: str | None
    series_instance_uid: str
    series_number: int | None
    series_description: str | None
    modality: str | None
    instances: int
    frames: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """An indexed instance: its database ids, its file path and its record."""

    instance_id: int
    file_id: int
    path: str
    duplicate_of: int | None
    record: InstanceRecord
    size: int | None = None
    """The file's size when it was indexed (with ``mtime_ns``: is it unchanged?)."""
    mtime_ns: int | None = None


def _dumps(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _to_tuple(value: Any) -> Any:
    """JSON lists as tuples, one level of nesting included (tile positions)."""
    if not isinstance(value, list):
        return value
    if value and isinstance(value[0], list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return tuple(value)


def _tuple_positions(cls: type, names: Sequence[str]) -> tuple[int, ...]:
    """Where in ``names`` the fields of ``cls`` that may hold a tuple are."""

    def holds_tuple(hint: object) -> bool:
        return hint is tuple or get_origin(hint) is tuple or any(map(holds_tuple, get_args(hint)))

    hints = get_type_hints(cls)
    return tuple(n for n, name in enumerate(names) if holds_tuple(hints[name]))


def _row_values(values: Sequence[object], tuples: tuple[int, ...]) -> list[object]:
    """Record values as SQL parameters: the tuples at ``tuples`` as JSON text.

    A scan stores one such row per file; encoding only the few tuple fields, known by
    position, costs a fraction of looking at every value. Booleans need nothing:
    sqlite3 binds them as the integers 0 and 1.
    """
    row = list(values)
    for n in tuples:
        value = row[n]
        if value is not None:
            row[n] = to_json(value)
    return row


_RECORD_TUPLES: Final = _tuple_positions(InstanceRecord, _RECORD_COLUMN_NAMES)
_FRAME_TUPLES: Final = _tuple_positions(FrameRecord, [n for n, _ in FRAME_COLUMNS])
# prepare_tree's extract table: the record columns, then the SeriesIdentity fields
# that are no column.
_PLAIN_NAMES: Final = [
    *_RECORD_COLUMN_NAMES,
    *(n for n in SeriesIdentity._fields if n not in _RECORD_COLUMN_NAMES),
]
_PLAIN_TABLE: Final = plain_table(_PLAIN_NAMES, _RECORD_TUPLES)
_PLAIN_ROW_END: Final = len(_RECORD_COLUMN_NAMES)
_PLAIN_SERIES: Final = operator.itemgetter(*map(_PLAIN_NAMES.index, SeriesIdentity._fields))
_PLAIN_SOP: Final = _PLAIN_NAMES.index("sop_instance_uid")
_PLAIN_TRANSFER_SYNTAX: Final = _PLAIN_NAMES.index("transfer_syntax_uid")


class Index:
    """An open index database.

    Parameters
    ----------
    path
        The SQLite file; created with its folder when missing.

    Raises
    ------
    IndexDbError
        When the database cannot be opened or migrated.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._series_ids: dict[str, int] = {}
        self._study_ids: dict[str, int] = {}
        self._patient_ids: dict[str, int] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=60)
            self._setup()
        except (sqlite3.Error, OSError) as exc:
            raise IndexDbError(f"cannot open the index at {self.path}: {exc}") from exc

    def _setup(self) -> None:
        """Set the pragmas and migrate, retrying while another process holds a lock.

        Switching a new database to WAL takes an exclusive lock without waiting on the
        busy handler, so two processes opening one new database can collide here.
        """
        deadline = time.monotonic() + _OPEN_TIMEOUT_S
        while True:
            try:
                self.conn.execute("PRAGMA busy_timeout=60000")
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
                return
            except (sqlite3.OperationalError, IndexDbError) as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so that it never fails half-way on a lock."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise IndexDbError(f"cannot write to the index: {exc}") from exc
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise IndexDbError(f"cannot commit to the index: {exc}") from exc

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > SCHEMA_VERSION:
                raise IndexDbError(
                    f"the index has schema version {current}; this dicomsieve knows "
                    f"{SCHEMA_VERSION}: upgrade dicomsieve"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                ddl = MIGRATIONS[version - 1].replace("{id}", id_type("sqlite"))
                for statement in ddl.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    @property
    def schema_version(self) -> int:
        """The schema version of this database."""
        row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    # ----------------------------------------------------------------- scan runs

    def begin_scan(self, roots: Sequence[str]) -> int:
        """Record the start of a scan; return its id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO scan_runs (started_at, roots) VALUES (?, ?) RETURNING id",
                (datetime.now(UTC).isoformat(), json.dumps(list(roots))),
            )
            return int(cursor.fetchone()[0])

    def finish_scan(self, run_id: int, counts: dict[str, int]) -> None:
        """Record the end of a scan with its counts."""
        with self._write() as db:
            db.execute(
                "UPDATE scan_runs SET finished_at = ?, files = ?, indexed = ?, unchanged = ?, "
                "not_dicom = ?, errors = ?, ignored = ?, missing = ? WHERE id = ?",
                (
                    datetime.now(UTC).isoformat(),
                    counts.get("files", 0),
                    counts.get("indexed", 0),
                    counts.get("unchanged", 0),
                    counts.get("not_dicom", 0),
                    counts.get("errors", 0),
                    counts.get("ignored", 0),
                    counts.get("missing", 0),
                    run_id,
                ),
            )

    def known_files(self, roots: Iterable[str]) -> dict[str, FileRow]:
        """Every file the index holds at or below each of ``roots`` (absolute paths)."""
        known: dict[str, FileRow] = {}
        sql = (
            "SELECT id, path, size, mtime_ns, inode, state, code FROM files "
            "WHERE path = ? OR (path >= ? AND path < ?)"
        )
        for root in roots:
            prefix = root.rstrip(os.sep) + os.sep
            upper = prefix[:-1] + chr(ord(os.sep) + 1)
            for row in self.conn.execute(sql, (root, prefix, upper)):
                known[row[1]] = FileRow(*row)
        return known

    # -------------------------------------------------------------------- writes

    def write_outcomes(
        self, run_id: int, outcomes: Sequence[FileOutcome | PreparedOutcome]
    ) -> list[FileOutcome]:
        """Store the outcomes of one batch in one transaction.

        ``outcomes`` may come as read (:class:`FileOutcome`) or already prepared for the
        index by :func:`prepare_outcome` (what a scan's reader processes send).

        Returns the outcomes as stored: an instance whose SOPInstanceUID another file
        already holds gets the ``DUPLICATE_SOP_INSTANCE`` flag (the first file stays the
        original). Outcomes that came prepared come back without their instance record.
        """
        prepared = [o if isinstance(o, PreparedOutcome) else prepare_outcome(o) for o in outcomes]
        stored: list[FileOutcome | None] = [None] * len(prepared)
        with self._write() as db:
            known = self._file_ids(db, [p.outcome.path for p in prepared])
            new: list[int] = []
            for position, item in enumerate(prepared):
                if item.outcome.path in known:
                    stored[position] = self._write_one(db, run_id, item)
                else:
                    new.append(position)
            if new:
                written = self._write_new(db, run_id, [prepared[p] for p in new])
                for position, outcome in zip(new, written, strict=True):
                    stored[position] = outcome
        return [outcome for outcome in stored if outcome is not None]

    @staticmethod
    def _file_ids(db: sqlite3.Connection, paths: Sequence[str]) -> set[str]:
        """Which of ``paths`` already have a row in ``files``."""
        found: set[str] = set()
        for start in range(0, len(paths), _MAX_PARAMETERS):
            chunk = paths[start : start + _MAX_PARAMETERS]
            sql = f"SELECT path FROM files WHERE path IN ({', '.join('?' * len(chunk))})"
            found.update(row[0] for row in db.execute(sql, chunk))
        return found

    def _write_new(
        self, db: sqlite3.Connection, run_id: int, items: Sequence[PreparedOutcome]
    ) -> list[FileOutcome]:
        """Insert files the index has never seen, a statement per table for the batch.

        A first scan writes every file this way. Nothing of these paths can be in the
        index yet (the caller checked inside this ``BEGIN IMMEDIATE`` transaction, which
        no other writer can enter), so there is nothing to delete first, and row ids can
        be numbered here the way SQLite would, ``MAX(id) + 1`` onwards.
        """
        file_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM files").fetchone()[0])
        instance_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM instances").fetchone()[0])
        originals = self._originals(
            db, [i.instance.sop_instance_uid for i in items if i.instance is not None]
        )
        file_rows: list[tuple[object, ...]] = []
        instance_rows: list[tuple[object, ...]] = []
        frame_rows: list[tuple[object, ...]] = []
        flag_rows: list[tuple[int, str]] = []
        stored: list[FileOutcome] = []
        for outcome, instance in items:
            file_id += 1
            file_rows.append((file_id, *_file_values(outcome, run_id)))
            flags = outcome.flags
            if instance is not None:
                instance_id += 1
                duplicate_of = originals.get(instance.sop_instance_uid)
                if duplicate_of is None:
                    originals[instance.sop_instance_uid] = instance_id
                elif FlagCode.DUPLICATE_SOP_INSTANCE not in flags:
                    flags = (*flags, FlagCode.DUPLICATE_SOP_INSTANCE)
                series_ref = self._series_ref(db, instance.series)
                instance_rows.append(
                    (instance_id, file_id, series_ref, duplicate_of, *instance.row)
                )
                frame_rows.extend((instance_id, *frame) for frame in instance.frames)
            flag_rows.extend((file_id, str(flag)) for flag in flags)
            stored.append(outcome if flags is outcome.flags else replace(outcome, flags=flags))
        db.executemany(_INSERT_NEW_FILE, file_rows)
        if instance_rows:
            db.executemany(_INSERT_NEW_INSTANCE, instance_rows)
        if frame_rows:
            db.executemany(_INSERT_FRAME, frame_rows)
        if flag_rows:
            db.executemany("INSERT INTO file_flags (file_ref, code) VALUES (?, ?)", flag_rows)
        return stored

    @staticmethod
    def _originals(db: sqlite3.Connection, uids: Sequence[str]) -> dict[str, int]:
        """The first indexed instance of each SOPInstanceUID in ``uids`` that has one."""
        originals: dict[str, int] = {}
        for start in range(0, len(uids), _MAX_PARAMETERS):
            chunk = uids[start : start + _MAX_PARAMETERS]
            sql = (
                "SELECT sop_instance_uid, MIN(id) FROM instances WHERE duplicate_of IS NULL "
                f"AND sop_instance_uid IN ({', '.join('?' * len(chunk))}) "
                "GROUP BY sop_instance_uid"
            )
            originals.update((str(uid), int(i)) for uid, i in db.execute(sql, chunk))
        return originals

    def _write_one(self, db: sqlite3.Connection, run_id: int, item: PreparedOutcome) -> FileOutcome:
        """Store a file the index knows already: update its row, replace its instance."""
        outcome, instance = item
        file_id = int(
            db.execute(
                "INSERT INTO files (path, size, mtime_ns, inode, device, state, code, message, "
                "last_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device, "
                "state = excluded.state, code = excluded.code, message = excluded.message, "
                "last_run = excluded.last_run RETURNING id",
                _file_values(outcome, run_id),
            ).fetchone()[0]
        )
        db.execute("DELETE FROM instances WHERE file_ref = ?", (file_id,))
        flags = outcome.flags
        if instance is not None:
            found = db.execute(
                "SELECT id FROM instances WHERE sop_instance_uid = ? AND file_ref <> ? "
                "AND duplicate_of IS NULL ORDER BY id LIMIT 1",
                (instance.sop_instance_uid, file_id),
            ).fetchone()
            duplicate_of = None if found is None else int(found[0])
            if duplicate_of is not None and FlagCode.DUPLICATE_SOP_INSTANCE not in flags:
                flags = (*flags, FlagCode.DUPLICATE_SOP_INSTANCE)
            series_ref = self._series_ref(db, instance.series)
            instance_id = int(
                db.execute(
                    _INSERT_INSTANCE, (file_id, series_ref, duplicate_of, *instance.row)
                ).fetchone()[0]
            )
            if instance.frames:
                db.executemany(_INSERT_FRAME, [(instance_id, *f) for f in instance.frames])
        db.execute("DELETE FROM file_flags WHERE file_ref = ?", (file_id,))
        if flags:
            db.executemany(
                "INSERT INTO file_flags (file_ref, code) VALUES (?, ?)",
                [(file_id, str(flag)) for flag in flags],
            )
        return outcome if flags is outcome.flags else replace(outcome, flags=flags)

    def _series_ref(self, db: sqlite3.Connection, record: SeriesIdentity) -> int:
        series_id = self._series_ids.get(record.series_instance_uid)
        if series_id is not None:
            return series_id
        patient_key = json.dumps([getattr(record, name) for name in _PATIENT_FIELDS])
        patient_id = self._patient_ids.get(patient_key)
        if patient_id is None:
            patient_id = int(
                db.execute(
                    "INSERT INTO patients (patient_key, patient_id, patient_name, birth_date) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (patient_key) DO UPDATE SET "
                    "patient_key = excluded.patient_key RETURNING id",
                    (
                        patient_key,
                        record.patient_id,
                        record.patient_name,
                        record.patient_birth_date,
                    ),
                ).fetchone()[0]
            )
            self._patient_ids[patient_key] = patient_id
        study_id = self._study_ids.get(record.study_instance_uid)
        if study_id is None:
            study_id = int(
                db.execute(
                    "INSERT INTO studies (study_instance_uid, patient_ref, study_date, study_time, "
                    "study_description, accession_number) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (study_instance_uid) DO UPDATE SET "
                    "study_instance_uid = excluded.study_instance_uid RETURNING id",
                    (
                        record.study_instance_uid,
                        patient_id,
                        record.study_date,
                        record.study_time,
                        record.study_description,
                        record.accession_number,
                    ),
                ).fetchone()[0]
            )
            self._study_ids[record.study_instance_uid] = study_id
        series_id = int(
            db.execute(
                "INSERT INTO series (series_instance_uid, study_ref, series_number, "
                "series_description, modality) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (series_instance_uid) DO UPDATE SET "
                "series_instance_uid = excluded.series_instance_uid RETURNING id",
                (
                    record.series_instance_uid,
                    study_id,
                    record.series_number,
                    record.series_description,
                    record.modality,
                ),
            ).fetchone()[0]
        )
        self._series_ids[record.series_instance_uid] = series_id
        return series_id

    def mark_missing(self, run_id: int, file_ids: Sequence[int]) -> None:
        """Mark files that were indexed before and are gone now; drop their instances."""
        with self._write() as db:
            for file_id in file_ids:
                db.execute("DELETE FROM instances WHERE file_ref = ?", (file_id,))
                db.execute(
                    "UPDATE files SET state = ?, code = NULL, message = NULL, last_run = ? "
                    "WHERE id = ?",
                    (str(FileState.MISSING), run_id, file_id),
                )

    # ------------------------------------------------------------------- queries

    def series_overview(self) -> list[SeriesRow]:
        """Every series with at least one present instance, with patient and study."""
        rows = self.conn.execute(
            "SELECT p.patient_id, p.patient_name, st.study_instance_uid, st.study_date, "
            "st.study_description, se.series_instance_uid, se.series_number, "
            "se.series_description, se.modality, COUNT(i.id), "
            "SUM(CASE WHEN i.number_of_frames > 1 THEN i.number_of_frames ELSE 1 END), "
            "SUM(CASE WHEN i.duplicate_of IS NULL THEN 0 ELSE 1 END) "
            "FROM series se JOIN studies st ON st.id = se.study_ref "
            "JOIN patients p ON p.id = st.patient_ref "
            "JOIN instances i ON i.series_ref = se.id "
            "GROUP BY p.patient_id, p.patient_name, st.study_instance_uid, st.study_date, "
            "st.study_description, se.series_instance_uid, se.series_number, "
            "se.series_description, se.modality "
            "ORDER BY p.patient_name, p.patient_id, st.study_date, st.study_instance_uid, "
            "se.series_number, se.series_instance_uid"
        ).fetchall()
        return [SeriesRow(*row) for row in rows]

    def state_counts(self) -> dict[str, int]:
        """How many files are in each state."""
        return {
            str(state): int(count)
            for state, count in self.conn.execute(
                "SELECT state, COUNT(*) FROM files GROUP BY state"
            )
        }

    def files(self) -> list[FileRow]:
        """Every file row, by path."""
        return [
            FileRow(*row)
            for row in self.conn.execute(
                "SELECT id, path, size, mtime_ns, inode, state, code FROM files ORDER BY path"
            )
        ]

    def file_flags(self, path: str) -> list[str]:
        """The flags recorded for one file."""
        return [
            row[0]
            for row in self.conn.execute(
                "SELECT ff.code FROM file_flags ff JOIN files f ON f.id = ff.file_ref "
                "WHERE f.path = ? ORDER BY ff.code",
                (path,),
            )
        ]

    def instances(self, series_instance_uid: str | None = None) -> list[StoredInstance]:
        """Indexed instances with their records, optionally of one series."""
        names = [n for n, _ in INSTANCE_COLUMNS]
        select = ", ".join(f"i.{n}" for n in names)
        sql = (
            f"SELECT i.id, f.id, f.path, i.duplicate_of, se.series_instance_uid, "
            f"st.study_instance_uid, p.patient_id, p.patient_name, p.birth_date, "
            f"st.study_date, st.study_time, st.study_description, st.accession_number, {select}, "
            "f.size, f.mtime_ns "
            "FROM instances i JOIN files f ON f.id = i.file_ref "
            "JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref "
            "JOIN patients p ON p.id = st.patient_ref"
        )
        params: tuple[object, ...] = ()
        if series_instance_uid is not None:
            sql += " WHERE se.series_instance_uid = ?"
            params = (series_instance_uid,)
        sql += " ORDER BY f.path"
        rows = self.conn.execute(sql, params).fetchall()
        frames = self._frames([int(row[0]) for row in rows])
        result = []
        for row in rows:
            columns = row[13 : 13 + len(names)]
            values = dict(zip(names, columns, strict=True))
            pixel = None
            if values["pixel_tag"] is not None:
                pixel = PixelDataInfo(
                    tag=values["pixel_tag"],
                    offset=values["pixel_offset"],
                    length=values["pixel_length"],
                    deflated=bool(values["pixel_deflated"]),
                )
            kwargs: dict[str, Any] = {
                name: (_to_tuple(json.loads(value)) if is_json and value is not None else value)
                for (name, is_json), value in zip(_RECORD_COLUMNS, columns, strict=False)
                if name is not None
            }
            kwargs["has_referenced_image_sequence"] = bool(kwargs["has_referenced_image_sequence"])
            record = InstanceRecord(
                series_instance_uid=row[4],
                study_instance_uid=row[5],
                patient_id=row[6],
                patient_name=row[7],
                patient_birth_date=row[8],
                study_date=row[9],
                study_time=row[10],
                study_description=row[11],
                accession_number=row[12],
                pixel_data=pixel,
                frames=frames.get(int(row[0]), ()),
                **kwargs,
            )
            result.append(
                StoredInstance(int(row[0]), int(row[1]), row[2], row[3], record, row[-2], row[-1])
            )
        return result

    # -------------------------------------------------------------- examinations

    def series_fingerprint(self, series_instance_uid: str, salt: str) -> str | None:
        """A digest of the series' instances (ids, file sizes and times) and ``salt``.

        Stored examine results are valid while this stays the same. ``None`` when the
        series has no instance.
        """
        rows = self.conn.execute(
            "SELECT i.id, i.duplicate_of, f.size, f.mtime_ns, f.inode FROM instances i "
            "JOIN files f ON f.id = i.file_ref JOIN series se ON se.id = i.series_ref "
            "WHERE se.series_instance_uid = ? ORDER BY i.id",
            (series_instance_uid,),
        ).fetchall()
        if not rows:
            return None
        digest = hashlib.sha256(salt.encode())
        for row in rows:
            digest.update(repr(tuple(row)).encode())
        return digest.hexdigest()

    def series_uids(self) -> list[str]:
        """SeriesInstanceUIDs with at least one instance, by series number."""
        return [
            str(row[0])
            for row in self.conn.execute(
                "SELECT se.series_instance_uid FROM series se "
                "WHERE EXISTS (SELECT 1 FROM instances i WHERE i.series_ref = se.id) "
                "ORDER BY se.series_number, se.series_instance_uid"
            )
        ]

    def store_examination(self, result: SeriesExamination, fingerprint: str) -> None:
        """Replace the stored examine result of one series.

        Every slice of every loadable must carry the ``instance_id`` of this index.
        """
        with self._write() as db:
            row = db.execute(
                "SELECT id FROM series WHERE series_instance_uid = ?",
                (result.series_instance_uid,),
            ).fetchone()
            if row is None:
                raise IndexDbError("cannot store an examination of a series that is not indexed")
            series_id = int(row[0])
            db.execute("DELETE FROM loadables WHERE series_ref = ?", (series_id,))
            db.execute("DELETE FROM examinations WHERE series_ref = ?", (series_id,))
            db.execute(
                "INSERT INTO examinations (series_ref, fingerprint, examined_at, warnings, "
                "left_out) VALUES (?, ?, ?, ?, ?)",
                (
                    series_id,
                    fingerprint,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    _warnings_json(result.warnings),
                    json.dumps(list(result.left_out)),
                ),
            )
            for ordinal, loadable in enumerate(result.loadables):
                cursor = db.execute(
                    "INSERT INTO loadables (series_ref, ordinal, name, kind, selected, "
                    "confidence, reason, shape, spacing, affine_lps, warnings, mosaic_slices) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        series_id,
                        ordinal,
                        loadable.name,
                        str(loadable.kind),
                        int(loadable.selected),
                        loadable.confidence,
                        loadable.reason,
                        json.dumps(list(loadable.shape)),
                        _dumps(list(loadable.spacing) if loadable.spacing else None),
                        _dumps([list(r) for r in loadable.affine_lps])
                        if loadable.affine_lps
                        else None,
                        _warnings_json(loadable.warnings),
                        loadable.mosaic_slices,
                    ),
                )
                loadable_id = cursor.lastrowid
                slices = []
                for k, s in enumerate(loadable.slices):
                    if s.instance_id is None:
                        raise IndexDbError("a loadable slice without an instance id")
                    position = json.dumps(list(s.position)) if s.position else None
                    slices.append((loadable_id, k, s.instance_id, s.frame_number, position))
                db.executemany(
                    "INSERT INTO loadable_slices (loadable_ref, ordinal, instance_ref, "
                    "frame_number, position) VALUES (?, ?, ?, ?, ?)",
                    slices,
                )

    def stored_examination(
        self, series_instance_uid: str, fingerprint: str | None = None
    ) -> SeriesExamination | None:
        """The stored examine result of one series.

        With ``fingerprint``, ``None`` unless the stored result was computed from
        exactly that state (see :meth:`series_fingerprint`).
        """
        row = self.conn.execute(
            "SELECT se.id, se.series_number, se.series_description, se.modality, "
            "e.fingerprint, e.warnings, e.left_out FROM series se "
            "JOIN examinations e ON e.series_ref = se.id WHERE se.series_instance_uid = ?",
            (series_instance_uid,),
        ).fetchone()
        if row is None or (fingerprint is not None and row[4] != fingerprint):
            return None
        series_id = int(row[0])
        slice_rows: dict[int, list[SliceRef]] = {}
        for loadable_id, path, sop, frame, number, position, instance_id in self.conn.execute(
            "SELECT ls.loadable_ref, f.path, i.sop_instance_uid, ls.frame_number, "
            "i.instance_number, ls.position, i.id FROM loadable_slices ls "
            "JOIN loadables lo ON lo.id = ls.loadable_ref "
            "JOIN instances i ON i.id = ls.instance_ref JOIN files f ON f.id = i.file_ref "
            "WHERE lo.series_ref = ? ORDER BY ls.loadable_ref, ls.ordinal",
            (series_id,),
        ):
            pos = json.loads(position) if position else None
            slice_rows.setdefault(int(loadable_id), []).append(
                SliceRef(
                    path=path,
                    sop_instance_uid=sop,
                    frame_number=frame,
                    instance_number=number,
                    position=(float(pos[0]), float(pos[1]), float(pos[2])) if pos else None,
                    instance_id=int(instance_id),
                )
            )
        loadables = []
        for lo in self.conn.execute(
            "SELECT id, name, kind, selected, confidence, reason, shape, spacing, affine_lps, "
            "warnings, mosaic_slices FROM loadables WHERE series_ref = ? ORDER BY ordinal",
            (series_id,),
        ):
            spacing = _loads(lo[7])
            loadables.append(
                Loadable(
                    name=lo[1],
                    kind=LoadableKind(lo[2]),
                    series_instance_uid=series_instance_uid,
                    slices=tuple(slice_rows.get(int(lo[0]), ())),
                    shape=tuple(int(v) for v in json.loads(lo[6])),
                    spacing=(float(spacing[0]), float(spacing[1]), float(spacing[2]))
                    if spacing
                    else None,
                    affine_lps=_affine_from(lo[8]),
                    warnings=_warnings_from(lo[9]),
                    confidence=float(lo[4]),
                    selected=bool(lo[3]),
                    reason=lo[5],
                    mosaic_slices=lo[10],
                )
            )
        return SeriesExamination(
            series_instance_uid=series_instance_uid,
            series_number=row[1],
            series_description=row[2],
            modality=row[3],
            loadables=tuple(loadables),
            warnings=_warnings_from(row[5]),
            left_out=tuple(json.loads(row[6])),
        )

    def _frames(self, instance_ids: list[int]) -> dict[int, tuple[FrameRecord, ...]]:
        if not instance_ids:
            return {}
        names = [n for n, _ in FRAME_COLUMNS]
        out: dict[int, list[FrameRecord]] = {}
        wanted = set(instance_ids)
        sql = (
            f"SELECT instance_ref, {', '.join(names)} FROM frames "
            "ORDER BY instance_ref, frame_number"
        )
        for row in self.conn.execute(sql):
            if row[0] not in wanted:
                continue
            kwargs = {
                name: _to_tuple(_loads(value)) if _is_json(name) else value
                for name, value in zip(names, row[1:], strict=True)
                if name in _FRAME_FIELD_NAMES
            }
            out.setdefault(int(row[0]), []).append(FrameRecord(**kwargs))
        return {key: tuple(value) for key, value in out.items()}


_JSON_COLUMNS: Final = frozenset(
    {
        "image_type",
        "slice_normal",
        "mosaic_grid",
        "mosaic_positions",
        "image_position",
        "image_orientation",
        "pixel_spacing",
        "window_center",
        "window_width",
        "echo_numbers",
        "diffusion_gradient_orientation",
        "dimension_index_values",
        "frame_type",
    }
)


def _warnings_json(warnings: Sequence[ExamineWarning]) -> str:
    return json.dumps([w.to_dict() for w in warnings])


def _warnings_from(text: str) -> tuple[ExamineWarning, ...]:
    return tuple(
        ExamineWarning(
            WarningCode(w["code"]), Level(w["level"]), w["message"], tuple(w.get("files", ()))
        )
        for w in json.loads(text)
    )


def _affine_from(text: str | None) -> Matrix4 | None:
    if text is None:
        return None
    rows = json.loads(text)
    return tuple(tuple(float(v) for v in row) for row in rows)  # type: ignore[return-value]


# Per instance column, in order: the record field it fills (None for pixel columns) and
# whether it holds JSON. Built once: reading records is on examine's hot path.
_RECORD_COLUMNS: Final = tuple(
    (name if name in _INSTANCE_FIELD_NAMES else None, sql_type == "TEXT" and name in _JSON_COLUMNS)
    for name, sql_type in INSTANCE_COLUMNS
)


def _is_json(name: str) -> bool:
    return name in _JSON_COLUMNS
