"""A scan: walk, skip what is unchanged, read the rest in workers, write to the index."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from dicomsieve.codes import ErrorCode, FileState, FlagCode, IgnoreRule
from dicomsieve.index.store import (
    FileRow,
    FileValues,
    Index,
    PackedOutcome,
    pack_file,
    pack_instance,
    pack_outcome,
)
from dicomsieve.model import FileOutcome
from dicomsieve.scan.pool import read_in_workers
from dicomsieve.scan.read import read_with
from dicomsieve.scan.rows import native_compact, prepare_tree
from dicomsieve.scan.server import start_server
from dicomsieve.scan.walk import Candidate, walk
from dicomsieve.settings import Settings

__all__ = ["ScanSummary", "scan"]

# Errors worth another try on the next scan even when the file did not change.
_TRANSIENT: Final = frozenset(
    {
        str(ErrorCode.FILE_UNREADABLE),
        str(ErrorCode.FILE_VANISHED),
        str(ErrorCode.PARSE_TIMEOUT),
        str(ErrorCode.PARSE_MEMORY),
        str(ErrorCode.WORKER_CRASH),
    }
)
# A scan gathers what the readers send and writes it in transactions of this many files
# at least, or of what came in this long: a commit costs about as much as writing tens
# of files, and the progress callback runs after each transaction.
_WRITE_FILES: Final = 256
_WRITE_EVERY_S: Final = 0.2
_COUNTED: Final[dict[str, str]] = {
    FileState.INDEXED: "indexed",
    FileState.UNCHANGED: "unchanged",
    FileState.NOT_DICOM: "not_dicom",
    FileState.ERROR: "errors",
    FileState.IGNORED: "ignored",
}


@dataclass
class ScanSummary:
    """Counts of one scan. ``files`` is the sum of the five state counts.

    ``by_code`` counts error codes, ignore rules and flags; ``missing`` counts files
    indexed before that are gone (they are not among ``files``, which this scan walked).
    """

    indexed: int = 0
    unchanged: int = 0
    not_dicom: int = 0
    errors: int = 0
    ignored: int = 0
    missing: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    total: int = 0
    """Files found by the walk; ``files`` reaches it when the scan ends."""

    @property
    def files(self) -> int:
        """Every file this scan walked."""
        return self.indexed + self.unchanged + self.not_dicom + self.errors + self.ignored

    def add(self, outcome: FileOutcome) -> None:
        """Count one outcome."""
        self.count(outcome.state, outcome.code, outcome.flags)

    def count(self, state: str, code: str | None, flags: Sequence[str]) -> None:
        """Count one outcome given by its state, code and flags (as their values)."""
        setattr(self, _COUNTED[state], getattr(self, _COUNTED[state]) + 1)
        if code is not None:
            self.by_code[str(code)] += 1
        for flag in flags:
            self.by_code[str(flag)] += 1

    def counts(self) -> dict[str, int]:
        """The state counts, with ``files`` and ``missing``."""
        return {
            "files": self.files,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "not_dicom": self.not_dicom,
            "errors": self.errors,
            "ignored": self.ignored,
            "missing": self.missing,
        }

    def to_json(self) -> dict[str, object]:
        """The summary as printed by ``dicomsieve scan --json``."""
        counts = self.counts()
        missing = counts.pop("missing")
        return {
            **counts,
            "by_code": dict(sorted(self.by_code.items())),
            "missing": missing,
            "seconds": round(self.seconds, 3),
        }


def read_for_index(path: str, settings: Settings) -> PackedOutcome:
    """What a scan's reader processes run: ``pack_outcome(prepare_outcome(read_file(path,
    settings)))``, made without the record and the outcome in between.

    The rows come straight from the header (:func:`~dicomsieve.scan.rows.prepare_tree`),
    which costs less than the record; the file's values come straight from the read
    (``_file_values``), without a frozen :class:`FileOutcome` (several microseconds a
    file); plain tuples (:func:`~dicomsieve.index.store.pack_outcome`) cost the writer
    less to unpickle.
    """
    (values, flags), instance = read_with(path, settings, prepare_tree, _file_values)
    return values, flags, None if instance is None else pack_instance(instance, native_compact)


def _file_values(
    path: str,
    st: os.stat_result | None,
    state: FileState,
    code: ErrorCode | IgnoreRule | None = None,
    message: str | None = None,
    flags: tuple[FlagCode, ...] = (),
) -> tuple[FileValues, tuple[str, ...]]:
    """:func:`~dicomsieve.scan.read.file_outcome`, packed (an ``OutcomeMaker``)."""
    if st is None:
        return pack_file(path, None, None, None, None, state, code, message, flags)
    return pack_file(
        path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, state, code, message, flags
    )


def _unchanged(candidate: Candidate, known: FileRow) -> bool:
    if known.state == FileState.MISSING or known.state == FileState.IGNORED:
        return False
    if known.state == FileState.ERROR and known.code in _TRANSIENT:
        return False
    return (known.size, known.mtime_ns, known.inode) == (
        candidate.size,
        candidate.mtime_ns,
        candidate.inode,
    )


def scan(
    paths: Sequence[str | os.PathLike[str]],
    index: Index,
    settings: Settings | None = None,
    *,
    progress: Callable[[ScanSummary], None] | None = None,
) -> ScanSummary:
    """Scan files and folders into ``index``.

    Parameters
    ----------
    paths
        Files and folders to scan (folders recursively).
    index
        The open index to write to.
    settings
        Limits and policies; defaults to ``Settings()``.
    progress
        Called with the running summary after each transaction is written.

    Returns
    -------
    ScanSummary
        Every walked file counted in exactly one state.

    Notes
    -----
    Rescans are incremental: a file whose size, mtime_ns and inode match the index is
    ``unchanged`` and not read again (unless its last error may have been transient).
    Files indexed before under the scanned roots that are gone become ``missing``.
    """
    settings = settings or Settings()
    started = time.monotonic()
    start_server()
    roots = [os.path.abspath(os.fspath(p)) for p in paths]
    run_id = index.begin_scan(roots)
    known = index.known_files(roots)
    seen: set[str] = set()
    direct: list[FileOutcome] = []
    to_read: list[str] = []
    summary = ScanSummary()
    # Walk first, so that the total is known for the progress bar; the walk opens nothing.
    for item in walk(roots, follow_symlinks_outside_root=settings.follow_symlinks_outside_root):
        seen.add(item.path)
        if isinstance(item, FileOutcome):
            direct.append(item)
        elif item.path in known and _unchanged(item, known[item.path]):
            summary.count(FileState.UNCHANGED, None, ())
        else:
            to_read.append(item.path)
    summary.total = len(seen)

    def write(batch: Sequence[PackedOutcome]) -> None:
        for (_, _, _, _, _, state, code, _), flags, _ in index.write_packed(run_id, batch):
            summary.count(state, code, flags)
        if progress is not None:
            progress(summary)

    for start in range(0, len(direct), 1000):
        write([pack_outcome(outcome) for outcome in direct[start : start + 1000]])
    gathered: list[PackedOutcome] = []
    written_at = time.monotonic()
    for results in read_in_workers(to_read, settings, read_for_index):
        # A reader that failed on a file (crash, time-out) sends a FileOutcome.
        gathered.extend(pack_outcome(r) if isinstance(r, FileOutcome) else r for r in results)
        now = time.monotonic()
        if len(gathered) >= _WRITE_FILES or now - written_at >= _WRITE_EVERY_S:
            write(gathered)
            gathered = []
            written_at = now
    if gathered:
        write(gathered)
    gone = [
        row.id for path, row in known.items() if path not in seen and row.state != FileState.MISSING
    ]
    if gone:
        index.mark_missing(run_id, gone)
    summary.missing = len(gone)
    summary.seconds = time.monotonic() - started
    index.finish_scan(run_id, summary.counts())
    return summary
