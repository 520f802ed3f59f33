"""The index database. The only module that writes SQL.

SQLite in WAL mode is the embedded default: readers never block the writer, writes
happen in short ``BEGIN IMMEDIATE`` transactions (one per batch of files), and a busy
timeout makes two scans of one database wait for each other instead of failing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.scanner
import operator
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    NamedTuple,
    TypeAlias,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

from dicomsieve._jsontext import to_json
from dicomsieve.codes import (
    ErrorCode,
    FileState,
    FlagCode,
    IgnoreRule,
    Level,
    LoadableKind,
    WarningCode,
)
from dicomsieve.errors import IndexDbError
from dicomsieve.index.schema import (
    FRAME_COLUMNS,
    INSTANCE_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    id_type,
)
from dicomsieve.model import FileOutcome, FrameRecord, InstanceRecord, PixelDataInfo

if TYPE_CHECKING:
    # Imported where examine results are read: a scan (its readers included) needs
    # none of the examine layer, ~20 ms of imports in each of two processes.
    from dicomsieve.loadables.model import ExamineWarning, Matrix4, SeriesExamination, SliceRef

__all__ = [
    "FileRow",
    "Index",
    "PackedInstance",
    "PackedOutcome",
    "PreparedInstance",
    "PreparedOutcome",
    "SeriesIdentity",
    "SeriesRow",
    "StoredInstance",
    "compact_row",
    "default_db_path",
    "pack_file",
    "pack_instance",
    "pack_outcome",
    "prepare_outcome",
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
# Built once: the statements that run for every file.
_INSERT_NEW_FILE: Final = (
    "INSERT INTO files (id, last_run, path, size, mtime_ns, inode, device, state, code, "
    "message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Most files have no code and no message: their NULLs are left to the column default.
_INSERT_NEW_FILE_PLAIN: Final = (
    "INSERT INTO files (id, last_run, path, size, mtime_ns, inode, device, state) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# Values bound to one IN (...) list: below SQLite's oldest default limit of 999.
_MAX_PARAMETERS: Final = 500
# An instance row: the record columns first, then the pixel columns.
RECORD_COLUMN_NAMES: Final = [n for n, _ in INSTANCE_COLUMNS if n not in _PIXEL_COLUMNS]
_PIXEL_COLUMN_NAMES: Final = [n for n, _ in INSTANCE_COLUMNS if n in _PIXEL_COLUMNS]
_RECORD_GETTER: Final = operator.attrgetter(*RECORD_COLUMN_NAMES)
_PIXEL_GETTER: Final = operator.attrgetter(*(_PIXEL_COLUMNS[n] for n in _PIXEL_COLUMN_NAMES))
_NO_PIXEL: Final = (None,) * len(_PIXEL_COLUMN_NAMES)


def pixel_values(pixel: PixelDataInfo | None) -> tuple[object, ...]:
    """The pixel data columns of an ``instances`` row, which end it."""
    return _PIXEL_GETTER(pixel) if pixel is not None else _NO_PIXEL


_FRAME_GETTER: Final = operator.attrgetter(*(n for n, _ in FRAME_COLUMNS))
_FRAME_INSERT_COLUMNS: Final = tuple(n for n, _ in FRAME_COLUMNS)
# The columns an instance row and a frame row fill, in the order of their values.
_INSTANCE_ROW_COLUMNS: Final = (*RECORD_COLUMN_NAMES, *_PIXEL_COLUMN_NAMES)
# The instance columns before the row's: the ids the writer sets, and duplicate_of for
# a duplicate (left NULL, not bound, for the others).
_INSTANCE_LEAD: Final[tuple[str, ...]] = ("file_ref", "series_ref")
_DUPLICATE_LEAD: Final = (*_INSTANCE_LEAD, "duplicate_of")
_NEW_INSTANCE_LEAD: Final[tuple[str, ...]] = ("id", *_INSTANCE_LEAD)
_NEW_DUPLICATE_LEAD: Final = (*_NEW_INSTANCE_LEAD, "duplicate_of")
_FRAME_LEAD: Final = ("instance_ref",)
_DUPLICATE: Final = str(FlagCode.DUPLICATE_SOP_INSTANCE)


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
    return PreparedOutcome(bare, prepare_record(record))


def prepare_record(record: InstanceRecord) -> PreparedInstance:
    """The rows of one record (the part of :func:`prepare_outcome` after the file)."""
    return PreparedInstance(
        record.sop_instance_uid,
        SeriesIdentity(*_SERIES_GETTER(record)),
        (
            *_row_values(_RECORD_GETTER(record), RECORD_TUPLES),
            *pixel_values(record.pixel_data),
        ),
        tuple(tuple(_row_values(_FRAME_GETTER(frame), _FRAME_TUPLES)) for frame in record.frames),
    )


FileValues: TypeAlias = tuple[
    str, int | None, int | None, int | None, int | None, str, str | None, str | None
]
"""A file's ``files`` values: path, size, mtime_ns, inode, device, state, code, message."""
Compact: TypeAlias = tuple[int, tuple[object, ...]]
"""A row without its NULLs: bit ``n`` of the mask is set when column ``n`` has a value,
and the values of those columns follow in column order."""
SeriesValues: TypeAlias = tuple[
    str, str, str | None, str | None, str | None, str | None, str | None, str | None,
    str | None, int | None, str | None, str | None,
]  # fmt: skip
"""The values of a :class:`SeriesIdentity`, in its field order."""
PackedInstance: TypeAlias = tuple[str, SeriesValues, Compact, tuple[Compact, ...]]
"""An instance's SOPInstanceUID, its :class:`SeriesIdentity` values, its ``instances``
row and its ``frames`` rows (see :class:`PreparedInstance`), the rows compacted."""
PackedOutcome: TypeAlias = tuple[FileValues, tuple[str, ...], PackedInstance | None]
"""A file's outcome in plain values only: its ``files`` values, its flags and its
instance, if any. What a scan's reader processes send (:func:`pack_outcome`)."""


def pack_outcome(
    outcome: FileOutcome | PreparedOutcome,
    compact: Callable[[Sequence[object]], Compact] | None = None,
) -> PackedOutcome:
    """An outcome as the plain values that :meth:`Index.write_packed` stores.

    A scan's reader processes make these (:func:`pack_file` and :func:`pack_instance`,
    without the outcome in between). Plain tuples, strings and numbers unpickle
    without a call to any Python-level constructor (no enum, dataclass or named tuple),
    and a row without its NULLs binds fewer parameters: ``sqlite3`` looks for an adapter
    for every ``None`` and ``bool`` it binds, a dictionary lookup and two attribute
    lookups each, which took as long as the insert itself. Booleans become the integers
    0 and 1 that ``sqlite3`` would store for them anyway.

    ``compact`` does what :func:`compact_row` does (the default), faster: a scan's
    readers pass the C one (``_native.compact``).
    """
    bare, instance = outcome if isinstance(outcome, PreparedOutcome) else prepare_outcome(outcome)
    values, flags = pack_file(
        bare.path, bare.size, bare.mtime_ns, bare.inode, bare.device,
        bare.state, bare.code, bare.message, bare.flags,
    )  # fmt: skip
    return values, flags, None if instance is None else pack_instance(instance, compact)


def pack_file(
    path: str,
    size: int | None,
    mtime_ns: int | None,
    inode: int | None,
    device: int | None,
    state: FileState,
    code: ErrorCode | IgnoreRule | None,
    message: str | None,
    flags: Sequence[FlagCode],
) -> tuple[FileValues, tuple[str, ...]]:
    """A file's ``files`` values and its flags, as :func:`pack_outcome` packs them."""
    return (
        path, size, mtime_ns, inode, device, str(state), None if code is None else str(code),
        message,
    ), tuple([str(flag) for flag in flags])  # fmt: skip


def pack_instance(
    instance: PreparedInstance, compact: Callable[[Sequence[object]], Compact] | None = None
) -> PackedInstance:
    """An instance's rows, as :func:`pack_outcome` packs them."""
    compact = compact or compact_row
    return (
        instance.sop_instance_uid,
        (*instance.series,),
        compact(instance.row),
        tuple([compact(frame) for frame in instance.frames]),
    )


def compact_row(row: Sequence[object]) -> Compact:
    """``row`` without its ``None`` values, and the mask of the columns that are left."""
    mask = 0
    bit = 1
    kept: list[object] = []
    for value in row:
        if value is not None:
            mask |= bit
            kept.append(1 if value is True else 0 if value is False else value)
        bit <<= 1
    return mask, tuple(kept)


@functools.lru_cache(maxsize=512)
def _insert_sql(table: str, lead: tuple[str, ...], columns: tuple[str, ...], mask: int) -> str:
    """``INSERT INTO table`` of the ``lead`` columns and the ``columns`` set in ``mask``.

    The columns left out take their default, NULL (the schema declares no other): a row
    stores the same as when all its NULLs are bound. Standard SQL; ``sqlite3`` keeps each
    such statement prepared in its connection's statement cache. The texts are cached
    too, a bounded number: a long-running server may meet many NULL patterns.
    """
    names = [*lead, *(name for n, name in enumerate(columns) if mask >> n & 1)]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def _insert_frames(db: sqlite3.Connection, groups: dict[int, list[tuple[object, ...]]]) -> None:
    """Insert ``frames`` rows grouped by their mask (see :data:`Compact`), a statement each."""
    for mask, rows in groups.items():
        db.executemany(_insert_sql("frames", _FRAME_LEAD, _FRAME_INSERT_COLUMNS, mask), rows)


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


RECORD_TUPLES: Final = _tuple_positions(InstanceRecord, RECORD_COLUMN_NAMES)
_FRAME_TUPLES: Final = _tuple_positions(FrameRecord, [n for n, _ in FRAME_COLUMNS])


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
        index by :func:`prepare_outcome`.

        Returns the outcomes as stored: an instance whose SOPInstanceUID another file
        already holds gets the ``DUPLICATE_SOP_INSTANCE`` flag (the first file stays the
        original). The outcomes come back without their instance record.
        """
        prepared = [o if isinstance(o, PreparedOutcome) else prepare_outcome(o) for o in outcomes]
        packed = [pack_outcome(p) for p in prepared]
        stored = self.write_packed(run_id, packed)
        return [
            p.outcome
            if after is before
            else replace(p.outcome, flags=(*p.outcome.flags, FlagCode.DUPLICATE_SOP_INSTANCE))
            for p, before, after in zip(prepared, packed, stored, strict=True)
        ]

    def write_packed(self, run_id: int, items: Sequence[PackedOutcome]) -> list[PackedOutcome]:
        """Store outcomes packed by :func:`pack_outcome` in one transaction.

        What a scan calls with what its reader processes send. Returns the items as
        stored: one whose instance duplicates an indexed SOPInstanceUID comes back as a
        new tuple with the ``DUPLICATE_SOP_INSTANCE`` flag added (the first file stays
        the original), the others as they came.
        """
        stored = list(items)
        with self._write() as db:
            known = self._file_ids(db, [item[0][0] for item in items])
            new: list[int] = []
            for position, item in enumerate(items):
                if item[0][0] in known:
                    stored[position] = self._write_one(db, run_id, item)
                else:
                    new.append(position)
            if new:
                written = self._write_new(db, run_id, [items[p] for p in new])
                for position, item in zip(new, written, strict=True):
                    stored[position] = item
        return stored

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
        self, db: sqlite3.Connection, run_id: int, items: Sequence[PackedOutcome]
    ) -> list[PackedOutcome]:
        """Insert files the index has never seen, a statement per table and NULL pattern.

        A first scan writes every file this way. Nothing of these paths can be in the
        index yet (the caller checked inside this ``BEGIN IMMEDIATE`` transaction, which
        no other writer can enter), so there is nothing to delete first, and row ids can
        be numbered here the way SQLite would, ``MAX(id) + 1`` onwards. Rows are grouped
        by the columns they leave NULL, and each group is inserted naming only the others.
        """
        file_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM files").fetchone()[0])
        instance_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM instances").fetchone()[0])
        originals = self._originals(db, [i[2][0] for i in items if i[2] is not None])
        file_rows: list[tuple[object, ...]] = []
        plain_file_rows: list[tuple[object, ...]] = []
        instance_rows: dict[int, list[tuple[object, ...]]] = {}
        frame_rows: dict[int, list[tuple[object, ...]]] = {}
        flag_rows: list[tuple[int, str]] = []
        stored: list[PackedOutcome] = []
        duplicate_bit = 1 << len(_INSTANCE_ROW_COLUMNS)
        for item in items:
            values, flags, instance = item
            file_id += 1
            if values[6] is None and values[7] is None:
                plain_file_rows.append((file_id, run_id, *values[:6]))
            else:
                file_rows.append((file_id, run_id, *values))
            if instance is not None:
                instance_id += 1
                sop_instance_uid, series, (mask, row), frames = instance
                series_ref = self._series_ref(db, series)
                duplicate_of = originals.get(sop_instance_uid)
                if duplicate_of is None:
                    originals[sop_instance_uid] = instance_id
                    group = instance_rows.get(mask)
                    if group is None:
                        group = instance_rows[mask] = []
                    group.append((instance_id, file_id, series_ref, *row))
                else:
                    group = instance_rows.get(mask | duplicate_bit)
                    if group is None:
                        group = instance_rows[mask | duplicate_bit] = []
                    group.append((instance_id, file_id, series_ref, duplicate_of, *row))
                    if _DUPLICATE not in flags:
                        flags = (*flags, _DUPLICATE)
                        item = (values, flags, instance)
                for frame_mask, frame in frames:
                    frame_rows.setdefault(frame_mask, []).append((instance_id, *frame))
            for flag in flags:
                flag_rows.append((file_id, flag))
            stored.append(item)
        if plain_file_rows:
            db.executemany(_INSERT_NEW_FILE_PLAIN, plain_file_rows)
        if file_rows:
            db.executemany(_INSERT_NEW_FILE, file_rows)
        for key, rows in instance_rows.items():
            lead = _NEW_DUPLICATE_LEAD if key & duplicate_bit else _NEW_INSTANCE_LEAD
            sql = _insert_sql("instances", lead, _INSTANCE_ROW_COLUMNS, key & ~duplicate_bit)
            db.executemany(sql, rows)
        _insert_frames(db, frame_rows)
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

    def _write_one(self, db: sqlite3.Connection, run_id: int, item: PackedOutcome) -> PackedOutcome:
        """Store a file the index knows already: update its row, replace its instance."""
        values, flags, instance = item
        file_id = int(
            db.execute(
                "INSERT INTO files (path, size, mtime_ns, inode, device, state, code, message, "
                "last_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, inode = excluded.inode, device = excluded.device, "
                "state = excluded.state, code = excluded.code, message = excluded.message, "
                "last_run = excluded.last_run RETURNING id",
                (*values, run_id),
            ).fetchone()[0]
        )
        db.execute("DELETE FROM instances WHERE file_ref = ?", (file_id,))
        if instance is not None:
            sop_instance_uid, series, (mask, row), frames = instance
            found = db.execute(
                "SELECT id FROM instances WHERE sop_instance_uid = ? AND file_ref <> ? "
                "AND duplicate_of IS NULL ORDER BY id LIMIT 1",
                (sop_instance_uid, file_id),
            ).fetchone()
            series_ref = self._series_ref(db, series)
            lead: tuple[object, ...] = (file_id, series_ref)
            names = _INSTANCE_LEAD
            if found is not None:
                lead = (file_id, series_ref, int(found[0]))
                names = _DUPLICATE_LEAD
                if _DUPLICATE not in flags:
                    flags = (*flags, _DUPLICATE)
                    item = (values, flags, instance)
            sql = _insert_sql("instances", names, _INSTANCE_ROW_COLUMNS, mask) + " RETURNING id"
            instance_id = int(db.execute(sql, (*lead, *row)).fetchone()[0])
            frame_rows: dict[int, list[tuple[object, ...]]] = {}
            for frame_mask, frame in frames:
                frame_rows.setdefault(frame_mask, []).append((instance_id, *frame))
            _insert_frames(db, frame_rows)
        db.execute("DELETE FROM file_flags WHERE file_ref = ?", (file_id,))
        if flags:
            db.executemany(
                "INSERT INTO file_flags (file_ref, code) VALUES (?, ?)",
                [(file_id, flag) for flag in flags],
            )
        return item

    def _series_ref(self, db: sqlite3.Connection, values: SeriesValues) -> int:
        """The ``series`` id of an instance, its patient's and study's rows made first."""
        series_id = self._series_ids.get(values[0])
        if series_id is not None:
            return series_id
        record = SeriesIdentity(*values)
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
        sql = _SELECT_INSTANCES
        params: tuple[object, ...] = ()
        if series_instance_uid is not None:
            sql += " WHERE se.series_instance_uid = ?"
            params = (series_instance_uid,)
        rows = self.conn.execute(sql, params).fetchall()
        # By path, as ORDER BY f.path would give them (paths are unique, and UTF-8 byte
        # order is code point order), without SQLite sorting every column of every row.
        rows.sort(key=_PATH_OF)
        frames = self._frames([int(row[0]) for row in rows], everything=series_instance_uid is None)
        decode = _json_reader()
        result = []
        for row in rows:
            values = list(row[_RECORD_START:])
            for n in _RECORD_JSON:
                if values[n] is not None:
                    values[n] = decode(values[n])
            values[_RECORD_REFERENCED] = bool(values[_RECORD_REFERENCED])
            if row[6] is not None:
                values[_RECORD_PIXEL] = PixelDataInfo(row[6], row[7], row[8], bool(row[9]))
            instance_id = int(row[0])
            values[_RECORD_FRAMES] = frames.get(instance_id, ())
            result.append(
                StoredInstance(
                    instance_id,
                    int(row[1]),
                    row[2],
                    row[3],
                    _build_record(values),
                    row[4],
                    row[5],
                )
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
        from dicomsieve.loadables.model import Loadable, SeriesExamination, SliceRef

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

    def _frames(
        self, instance_ids: list[int], everything: bool = False
    ) -> dict[int, tuple[FrameRecord, ...]]:
        """The frame records of ``instance_ids``, each instance's by frame number.

        ``everything``: the ids are every instance of the index, so the whole table is
        read at once instead of asked for by id.
        """
        if not instance_ids:
            return {}
        select = f"SELECT instance_ref, {', '.join(_FRAME_FIELDS)} FROM frames"
        order = " ORDER BY instance_ref, frame_number"
        queries: list[tuple[str, Sequence[int]]] = [(select + order, ())]
        if not everything:
            # By id: reading the whole table for each series costs as much as the
            # frames of every series, once per series.
            ids = sorted(instance_ids)
            queries = [
                (
                    f"{select} WHERE instance_ref IN ({', '.join('?' * len(chunk))}){order}",
                    chunk,
                )
                for chunk in (
                    ids[n : n + _MAX_PARAMETERS] for n in range(0, len(ids), _MAX_PARAMETERS)
                )
            ]
        out: dict[int, list[FrameRecord]] = {}
        wanted = set(instance_ids)
        decode = _json_reader()
        for sql, params in queries:
            for row in self.conn.execute(sql, params):
                if row[0] not in wanted:
                    continue
                values = list(row[1:])
                for n in _FRAME_JSON:
                    if values[n] is not None:
                        values[n] = decode(values[n])
                out.setdefault(int(row[0]), []).append(_build_frame(values))
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
    from dicomsieve.loadables.model import ExamineWarning

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


# Index.instances reads, after the ids, path, file size and time and the pixel columns
# (_RECORD_START values), one column per InstanceRecord field in the order of the
# fields: a record is then built from a slice of the row. Built once: reading records is
# on examine's hot path.
_JOINED_FIELDS: Final = {
    "series_instance_uid": "se.series_instance_uid",
    "study_instance_uid": "st.study_instance_uid",
    "patient_id": "p.patient_id",
    "patient_name": "p.patient_name",
    "patient_birth_date": "p.birth_date",
    "study_date": "st.study_date",
    "study_time": "st.study_time",
    "study_description": "st.study_description",
    "accession_number": "st.accession_number",
    "pixel_data": "NULL",  # from the pixel columns
    "frames": "NULL",  # from the frames table
}
_RECORD_FIELDS: Final = tuple(f.name for f in fields(InstanceRecord))
_RECORD_START: Final = 10
_PATH_OF: Final = operator.itemgetter(2)
_SELECT_INSTANCES: Final = (
    "SELECT i.id, f.id, f.path, i.duplicate_of, f.size, f.mtime_ns, i.pixel_tag, "
    "i.pixel_offset, i.pixel_length, i.pixel_deflated, "
    + ", ".join(_JOINED_FIELDS.get(name, f"i.{name}") for name in _RECORD_FIELDS)
    + " FROM instances i JOIN files f ON f.id = i.file_ref "
    "JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref "
    "JOIN patients p ON p.id = st.patient_ref"
)
_INSTANCE_SQL_TYPES: Final = dict(INSTANCE_COLUMNS)
# Positions, among the record fields, of the JSON columns and of the special fields.
_RECORD_JSON: Final = tuple(
    n
    for n, name in enumerate(_RECORD_FIELDS)
    if name in _JSON_COLUMNS and _INSTANCE_SQL_TYPES.get(name) == "TEXT"
)
_RECORD_REFERENCED: Final = _RECORD_FIELDS.index("has_referenced_image_sequence")
_RECORD_PIXEL: Final = _RECORD_FIELDS.index("pixel_data")
_RECORD_FRAMES: Final = _RECORD_FIELDS.index("frames")
# The frames columns in the order of the FrameRecord fields, and the JSON ones among them.
_FRAME_FIELDS: Final = tuple(f.name for f in fields(FrameRecord))
_FRAME_JSON: Final = tuple(n for n, name in enumerate(_FRAME_FIELDS) if name in _JSON_COLUMNS)


# What json.loads runs on a document without surrounding whitespace, without the Python
# code around it (a third of its time on the short arrays of the index). Its context is a
# decoder with json.loads' defaults; the stubs ask for a scanner instead.
_scan_json: Final = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _json_value(text: str) -> Any:
    """``json.loads(text)``, the same value or the same error, in less time."""
    try:
        value, end = _scan_json(text, 0)
    except (StopIteration, ValueError, TypeError):
        return json.loads(text)  # leading whitespace, or the error json.loads raises
    if end != len(text):
        return json.loads(text)  # trailing whitespace, or "Extra data"
    return value


_MISSING: Final = object()


def _json_reader() -> Callable[[str], Any]:
    """Decode JSON columns as records hold them (:func:`_to_tuple`), each text once.

    The values of a series repeat from row to row (ImageType, orientation, spacing,
    window): a value that cannot change (hashable: tuples, strings, numbers) is decoded
    the first time and shared after that.
    """
    memo: dict[str, Any] = {}

    def read(text: str) -> Any:
        value = memo.get(text, _MISSING)
        if value is _MISSING:
            value = _to_tuple(_json_value(text))
            try:
                hash(value)
            except TypeError:
                return value  # a list or dict inside: each record gets its own
            memo[text] = value
        return value

    return read


_T = TypeVar("_T")


def _builder(cls: type[_T]) -> Callable[[Sequence[object]], _T]:
    """``cls(*values)`` for a frozen slots dataclass, with every field in ``values``.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``;
    setting the slots through their descriptors costs about half as much, which counts
    for the 66 fields of an InstanceRecord read 10,000 times. Only for a class whose
    ``__init__`` does nothing else (no ``__post_init__``, no field outside ``__init__``);
    any other class, or values of another length, go through ``cls`` itself.
    """
    every = fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or not all(f.init for f in every):
        return lambda values: cls(*values)
    setters = [getattr(cls, f.name).__set__ for f in every]
    count = len(setters)
    new = object.__new__
    call = operator.call

    def build(values: Sequence[object]) -> _T:
        if len(values) != count:
            return cls(*values)
        record = new(cls)
        deque(map(call, setters, repeat(record), values), maxlen=0)  # each sets one field
        return record

    return build


_build_record: Final = _builder(InstanceRecord)
_build_frame: Final = _builder(FrameRecord)
