"""Scans: the walk, worker isolation, incremental rescans, duplicates and invariants."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from crashy_reader import crash_between_files, crash_or_hang
from dicom_bytes import BAD_CASES, PHI_STRINGS, ct_dataset, encode
from dicomsieve.codes import FileState
from dicomsieve.index.store import Index
from dicomsieve.scan import scanner
from dicomsieve.scan.pool import read_in_workers
from dicomsieve.scan.scanner import scan
from dicomsieve.scan.walk import Candidate, walk
from dicomsieve.settings import Settings


def _valid_tree(root: Path, count: int = 6) -> list[Path]:
    paths = []
    for i in range(count):
        folder = root / "patient" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"IM{i:04d}"  # no extension
        path.write_bytes(encode(ct_dataset(i)))
        paths.append(path)
    hidden = root / ".hidden"
    hidden.write_bytes(encode(ct_dataset(count)))
    paths.append(hidden)
    return paths


def _fingerprint(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """SHA-256, size, mtime_ns and mode of every regular file (sources must not change)."""
    prints = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            prints[str(path)] = (digest, st.st_size, st.st_mtime_ns, st.st_mode)
    return prints


def _records_by_sop(index: Index) -> dict[str, object]:
    return {s.record.sop_instance_uid: s.record for s in index.instances()}


def test_walk_handles_links_fifos_and_loops(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file").write_bytes(b"x")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"y")
    os.symlink(root, root / "sub" / "loop")  # a link back up the tree
    os.symlink(outside, root / "out_link")
    os.symlink(root / "sub" / "file", root / "in_link")
    os.symlink(tmp_path / "nowhere", root / "broken")
    os.link(root / "sub" / "file", root / "hard")
    os.mkfifo(root / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    try:
        items = {os.path.relpath(i.path, root): i for i in walk([str(root)])}
    finally:
        sock.close()
    rules = {k: str(v.code) for k, v in items.items() if not isinstance(v, Candidate)}
    assert rules == {
        "broken": "broken_symlink",
        "fifo": "not_regular_file",
        "in_link": "same_file",  # "hard" came first in name order: it is the one read
        "out_link": "symlink_outside_root",
        "sock": "not_regular_file",
        "sub/file": "same_file",
        "sub/loop": "symlink_loop",
    }
    assert {k for k, v in items.items() if isinstance(v, Candidate)} == {"hard"}


def test_walk_can_follow_links_outside_when_asked(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").write_bytes(b"y")
    os.symlink(tmp_path / "outside", root / "link")
    items = list(walk([str(root)], follow_symlinks_outside_root=True))
    assert len(items) == 1
    assert isinstance(items[0], Candidate)


# batch_size 1 with one worker: two batches in flight behind the one that crashes.
@pytest.mark.parametrize(("jobs", "batch_size"), [(2, 3), (1, 1)])
def test_pool_isolates_crashes_hangs_and_memory(tmp_path: Path, jobs: int, batch_size: int) -> None:
    names = ["a", "CRASH", "b", "HANG", "c", "GREEDY", "d", "e"]
    paths = []
    for i, name in enumerate(names):
        path = tmp_path / name
        path.write_bytes(encode(ct_dataset(i)))
        paths.append(str(path))
    settings = Settings(jobs=jobs, batch_size=batch_size, file_timeout_s=2, worker_memory_mb=512)
    outcomes = [o for batch in read_in_workers(paths, settings, crash_or_hang) for o in batch]
    by_name = {os.path.basename(o.path): o for o in outcomes}
    assert sorted(by_name) == sorted(names)
    assert len(outcomes) == len(names)
    assert str(by_name["CRASH"].code) == "WORKER_CRASH"
    assert str(by_name["HANG"].code) == "PARSE_TIMEOUT"
    assert str(by_name["GREEDY"].code) == "PARSE_MEMORY"
    for name in "abcde":
        assert by_name[name].state == FileState.INDEXED


def test_pool_terminates_when_a_worker_dies_between_files(tmp_path: Path) -> None:
    names = ["a", "b", "UNSENDABLE", "c", "d"]
    paths = []
    for i, name in enumerate(names):
        path = tmp_path / name
        path.write_bytes(encode(ct_dataset(i)))
        paths.append(str(path))
    settings = Settings(jobs=2, batch_size=4, file_timeout_s=20)
    outcomes = [o for batch in read_in_workers(paths, settings, crash_between_files) for o in batch]
    by_name = {os.path.basename(o.path): o for o in outcomes}
    assert sorted(by_name) == sorted(names)
    assert len(outcomes) == len(names)
    assert str(by_name["UNSENDABLE"].code) == "WORKER_CRASH"
    assert all(by_name[n].state == FileState.INDEXED for n in ("a", "b", "c", "d"))


def test_bad_corpus_in_a_tree(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Each bad file ends in its state; the valid files index exactly as in a clean tree."""
    clean = tmp_path / "clean"
    _valid_tree(clean)
    with Index(tmp_path / "clean.sqlite") as db:
        scan([clean], db, settings)
        expected_records = _records_by_sop(db)

    tree = tmp_path / "tree"
    shutil.copytree(clean, tree)
    bad = tree / "bad"
    bad.mkdir()
    for case in BAD_CASES:
        (bad / case.name).write_bytes(case.make())
    os.mkfifo(bad / "fifo")
    os.symlink(bad, bad / "loop")
    before = _fingerprint(tree)
    caplog.set_level(logging.DEBUG)
    with Index(tmp_path / "tree.sqlite") as db:
        summary = scan([tree], db, settings)
        rows = {os.path.relpath(r.path, tree): r for r in db.files()}
        records = _records_by_sop(db)
    assert _fingerprint(tree) == before
    walked = len(before) + 2  # the regular files, the FIFO and the loop link
    assert summary.files == walked == len(rows)
    for case in BAD_CASES:
        row = rows[f"bad/{case.name}"]
        assert (row.state, row.code) == (case.state, case.code), case.name
    assert (rows["bad/fifo"].state, rows["bad/fifo"].code) == ("ignored", "not_regular_file")
    assert (rows["bad/loop"].state, rows["bad/loop"].code) == ("ignored", "symlink_loop")
    for sop, record in expected_records.items():
        assert records[sop] == record
    log_text = caplog.text
    messages = " ".join(r.code or "" for r in rows.values())
    for secret in PHI_STRINGS:
        assert secret not in log_text
        assert secret not in messages


def test_unreadable_file_gets_an_error(tmp_path: Path) -> None:
    """A file without read permission: FILE_UNREADABLE; the file beside it still indexes.

    Root reads anything, so as root the scan runs under ``setpriv`` without the
    capabilities that override file permissions.
    """
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok").write_bytes(encode(ct_dataset(1)))
    secret = data / "secret"
    secret.write_bytes(encode(ct_dataset(2)))
    secret.chmod(0o000)
    code = (
        "import json, sys; from dicomsieve.index.store import Index;"
        "from dicomsieve.scan.scanner import scan; from dicomsieve.settings import Settings;"
        "db = Index(sys.argv[2]); scan([sys.argv[1]], db, Settings(jobs=1));"
        "print(json.dumps({r.path.rsplit('/', 1)[1]: [r.state, r.code] for r in db.files()}))"
    )
    command = [sys.executable, "-c", code, str(data), str(tmp_path / "db.sqlite")]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is missing")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        secret.chmod(0o600)
    assert json.loads(result.stdout) == {
        "ok": ["indexed", None],
        "secret": ["error", "FILE_UNREADABLE"],
    }


def test_rescan_is_incremental(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "data"
    paths = _valid_tree(root)
    db_path = tmp_path / "index.sqlite"
    with Index(db_path) as db:
        first = scan([root], db, settings)
        assert (first.indexed, first.unchanged) == (len(paths), 0)
        dump_before = _dump(db_path)
        again = scan([root], db, settings)
        assert (again.indexed, again.unchanged, again.missing) == (0, len(paths), 0)
        assert _dump(db_path) == dump_before

        os.utime(paths[0], ns=(1, 1))  # touched: re-read
        paths[1].write_bytes(encode(ct_dataset(1, rows=8, cols=8)))  # edited in place
        paths[2].unlink()  # deleted
        (root / "new").write_bytes(encode(ct_dataset(40)))  # added
        third = scan([root], db, settings)
        assert (third.indexed, third.unchanged, third.missing) == (3, len(paths) - 3, 1)
        by_path = {r.path: r for r in db.files()}
        assert by_path[str(paths[2])].state == "missing"
        edited = [s for s in db.instances() if s.path == str(paths[1])]
        assert edited[0].record.rows == 8
        assert len(db.instances()) == len(paths)


def _dump(db_path: Path) -> list[object]:
    conn = sqlite3.connect(db_path)
    try:
        rows = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            if table != "scan_runs":
                rows.append((table, sorted(map(repr, conn.execute(f"SELECT * FROM {table}")))))
        return rows
    finally:
        conn.close()


def test_duplicate_sop_instance_is_flagged_not_replaced(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "data"
    root.mkdir()
    data = encode(ct_dataset(0))
    (root / "a_original").write_bytes(data)
    with Index(tmp_path / "index.sqlite") as db:
        scan([root], db, settings)
        (root / "b_copy").write_bytes(data)
        summary = scan([root], db, settings)
        assert summary.by_code["DUPLICATE_SOP_INSTANCE"] == 1
        stored = {Path(s.path).name: s for s in db.instances()}
        assert stored["a_original"].duplicate_of is None
        assert stored["b_copy"].duplicate_of == stored["a_original"].instance_id
        assert db.file_flags(str(root / "b_copy")) == ["DUPLICATE_SOP_INSTANCE"]
        assert db.series_overview()[0].duplicates == 1


def test_two_concurrent_scans_end_like_one(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _valid_tree(root, count=30)
    db_path = tmp_path / "index.sqlite"
    code = (
        "import sys; from dicomsieve.index.store import Index;"
        "from dicomsieve.scan.scanner import scan; from dicomsieve.settings import Settings;"
        "scan([sys.argv[1]], Index(sys.argv[2]), Settings(jobs=1, batch_size=2))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root), str(db_path)], stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    single = tmp_path / "single.sqlite"
    with Index(single) as db:
        scan([root], db, Settings(jobs=1))
    assert _dump_without_ids(db_path) == _dump_without_ids(single)


def _dump_without_ids(db_path: Path) -> list[object]:
    conn = sqlite3.connect(db_path)
    try:
        files = sorted(conn.execute("SELECT path, size, state, code FROM files"))
        instances = sorted(conn.execute("SELECT sop_instance_uid, duplicate_of FROM instances"))
        series = sorted(conn.execute("SELECT series_instance_uid FROM series"))
        return [files, instances, series]
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_scripts_without_main_guard_and_from_stdin_scan(tmp_path: Path, how: str) -> None:
    # multiprocessing would import the caller's main module again in each worker: an
    # unguarded script would run its scan again there, a script from stdin would fail.
    # Workers are started without it, so both just work.
    data = tmp_path / "data"
    data.mkdir()
    (data / "one.dcm").write_bytes(encode(ct_dataset(0)))
    code = (
        "import dicomsieve\n"
        f"ex = dicomsieve.examine({str(data)!r}, dicomsieve.Settings(jobs=2))\n"
        "print(len(list(ex.loadables())))\n"
    )
    script = tmp_path / "unguarded.py"
    script.write_text(code)
    command = [sys.executable, str(script)] if how == "file" else [sys.executable, "-"]
    started = time.monotonic()
    result = subprocess.run(
        command,
        input=None if how == "file" else code,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    ("files", "every_s"), [(1, 60.0), (5, 60.0), (10_000, 0.0), (10_000, 60.0)]
)
def test_transactions_of_any_size_count_every_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: int, every_s: float
) -> None:
    """The scan gathers the readers' batches into transactions by count or by time."""
    monkeypatch.setattr(scanner, "_WRITE_FILES", files)
    monkeypatch.setattr(scanner, "_WRITE_EVERY_S", every_s)
    root = tmp_path / "data"
    paths = _valid_tree(root, count=12)
    data = paths[0].read_bytes()
    for i in range(3):
        (root / f"copy{i}").write_bytes(data)
    (root / "text").write_bytes(b"not DICOM\n" * 20)
    seen: list[tuple[int, int]] = []
    settings = Settings(jobs=2, batch_size=2, file_timeout_s=20)
    with Index(tmp_path / "index.sqlite") as db:
        summary = scan([root], db, settings, progress=lambda s: seen.append((s.files, s.total)))
        stored = {s.path: s for s in db.instances()}
        flagged = sum(len(db.file_flags(p)) for p in stored)
    assert (summary.files, summary.indexed, summary.not_dicom) == (17, 16, 1)
    assert summary.by_code["DUPLICATE_SOP_INSTANCE"] == 3
    assert flagged == 3
    originals = [s for s in stored.values() if s.record.sop_instance_uid == _sop(stored, paths[0])]
    assert sorted(s.duplicate_of is None for s in originals) == [False, False, False, True]
    counts = [files for files, _ in seen]
    assert counts == sorted(counts)
    assert seen[-1] == (17, 17)
    if files == 1 or every_s == 0.0:
        assert len(seen) == 9  # a transaction for each of the readers' batches
    if files == 10_000 and every_s == 60.0:
        assert len(seen) == 1  # one transaction at the end


def _sop(stored: dict[str, Any], path: Path) -> str:
    return str(stored[str(path)].record.sop_instance_uid)
