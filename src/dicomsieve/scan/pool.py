"""Worker processes that read files, isolated so that one bad file costs one file.

Each worker gets batches of paths through its own pipe and answers with one list of
outcomes per batch. Before each file it writes the file's index in the batch and the
time into shared memory, so that the parent knows which file a worker was reading when
it died (``WORKER_CRASH``) or ran past ``Settings.file_timeout_s`` (``PARSE_TIMEOUT``,
the worker is killed). The other files of that batch are read again by a fresh worker.
Each worker limits its own address space (``RLIMIT_AS``) so that a runaway allocation
becomes ``PARSE_MEMORY`` instead of an out-of-memory kill of the machine.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from typing import Any, TypeVar

from dicomsieve.codes import ErrorCode, FileState
from dicomsieve.errors import ScanError
from dicomsieve.model import FileOutcome
from dicomsieve.scan.server import main_module_hidden, reader_context
from dicomsieve.settings import Settings

__all__ = ["read_in_workers"]

_IDLE = -1
_READY = "ready"
_START_TIMEOUT_S = 60.0
_IN_FLIGHT = 2
"""Batches sent to a worker and not answered yet, at most."""


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    # The limit is on top of what the process already maps (interpreter, libraries).
    current = 0
    try:
        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - no /proc
        current = 512 * 1024 * 1024
    limit = current + megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


R = TypeVar("R")
Reader = Callable[[str, Settings], R]
"""What a worker runs on each path: :func:`read_file`, or a reader that also prepares
its outcome for the index (what a scan uses)."""


def _worker_main(
    conn: multiprocessing.connection.Connection,
    settings: Settings,
    reader: Reader[object],
    current: Synchronized[int],
    started: Synchronized[float],
) -> None:
    _limit_memory(settings.worker_memory_mb)
    conn.send(_READY)
    while True:
        try:
            batch = conn.recv()
        except EOFError:
            return
        if batch is None:
            return
        results: list[object] = []
        for index, path in enumerate(batch):
            started.value = time.monotonic()
            current.value = index
            results.append(_guarded(reader, path, settings))
        current.value = _IDLE
        conn.send(results)


def _guarded(reader: Reader[R], path: str, settings: Settings) -> R | FileOutcome:
    """Run ``reader``; an exception it lets escape costs this file, not the worker."""
    try:
        return reader(path, settings)
    except MemoryError:
        return _failed(path, ErrorCode.PARSE_MEMORY, "reading needed more memory than allowed")
    except Exception as exc:
        return _failed(path, ErrorCode.PARSE_ERROR, f"unexpected {type(exc).__name__}")


@dataclass
class _Worker:
    process: Any
    conn: multiprocessing.connection.Connection
    current: Synchronized[int]
    started: Synchronized[float]
    batches: deque[list[str]] = field(default_factory=deque)
    """Sent and not answered yet, in order; the worker reads the first."""


@dataclass
class _Pool:
    settings: Settings
    ctx: Any
    reader: Reader[Any]
    workers: list[_Worker] = field(default_factory=list)

    def start_worker(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        current = self.ctx.Value("q", _IDLE, lock=False)
        started = self.ctx.Value("d", 0.0, lock=False)
        process = self.ctx.Process(
            target=_worker_main,
            args=(child, self.settings, self.reader, current, started),
            daemon=True,
            name="dicomsieve-reader",
        )
        with main_module_hidden():
            process.start()
        child.close()
        # Wait for the worker to say it runs: a worker that cannot start is a setup
        # problem to report at once, not a crash to pin on each file of the scan.
        ready = False
        with contextlib.suppress(EOFError, OSError):
            if parent.poll(_START_TIMEOUT_S):
                ready = parent.recv() == _READY
        if not ready:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)
            parent.close()
            raise ScanError(
                f"a reader process could not start (exit code {process.exitcode}); "
                "see the messages above"
            )
        worker = _Worker(process, parent, current, started)
        self.workers.append(worker)
        return worker

    def retire(self, worker: _Worker, kill: bool) -> None:
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        self.workers.remove(worker)

    def stop(self) -> None:
        for worker in list(self.workers):
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in list(self.workers):
            worker.process.join(timeout=2)
            self.retire(worker, kill=True)


def _failed(path: str, code: ErrorCode, message: str) -> FileOutcome:
    return FileOutcome(path=path, state=FileState.ERROR, code=code, message=message)


def read_in_workers(
    paths: Iterable[str], settings: Settings, reader: Reader[R]
) -> Iterator[Sequence[R | FileOutcome]]:
    """Read ``paths`` in worker processes; yield outcomes in batches, in no set order.

    Every path yields exactly one outcome, whatever happens to the workers.

    Parameters
    ----------
    paths
        Files to read.
    settings
        Worker count, batch size, time and memory limits.
    reader
        The function run on each path in a worker (a module-level function, so that
        it can be sent to the workers), such as :func:`read_file`. A file whose worker
        crashes or hangs gets a :class:`FileOutcome` with an error code instead. Tests
        pass readers that crash or hang.
    """
    pending: deque[list[str]] = deque()
    source = iter(paths)
    exhausted = False

    def refill() -> None:
        nonlocal exhausted
        while not exhausted and len(pending) < 2 * settings.worker_count:
            batch: list[str] = []
            for path in source:
                batch.append(path)
                if len(batch) >= settings.batch_size:
                    break
            if len(batch) < settings.batch_size:
                exhausted = True
            if batch:
                pending.append(batch)

    pool = _Pool(settings, reader_context(), reader)
    try:
        refill()
        if not pending:
            return
        for _ in range(min(settings.worker_count, len(pending))):
            pool.start_worker()
        while True:
            refill()
            for worker in list(pool.workers):
                if not _send(pool, worker, pending):
                    pool.start_worker()
            busy = [w for w in pool.workers if w.batches]
            if not busy:
                if not pending and exhausted:
                    return
                while len(pool.workers) < settings.worker_count and pending:
                    pool.start_worker()
                continue
            handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = multiprocessing.connection.wait(handles, timeout=0.25)
            for worker in busy:
                if worker.conn in ready:
                    try:
                        results: list[R | FileOutcome] = worker.conn.recv()
                    except (EOFError, OSError):
                        yield from _lost_worker(pool, worker, pending, ErrorCode.WORKER_CRASH)
                        continue
                    worker.batches.popleft()
                    # Top the worker up before the caller writes these results: reading
                    # and writing then overlap instead of taking turns.
                    refill()
                    if not _send(pool, worker, pending):
                        pool.start_worker()
                    yield results
                elif worker.process.sentinel in ready:
                    yield from _lost_worker(pool, worker, pending, ErrorCode.WORKER_CRASH)
                elif (
                    worker.current.value != _IDLE
                    and time.monotonic() - worker.started.value > settings.file_timeout_s
                ):
                    yield from _lost_worker(pool, worker, pending, ErrorCode.PARSE_TIMEOUT)
    finally:
        pool.stop()


def _send(pool: _Pool, worker: _Worker, pending: deque[list[str]]) -> bool:
    """Send ``worker`` batches until it has ``_IN_FLIGHT``; ``False`` if it died idle.

    A second batch waits in the worker's pipe while it reads the first, so that it
    never waits for this process (which also writes the index, on the same cores)
    between batches. A worker that dies with batches in flight is found by its
    sentinel, and its batches are read again (:func:`_lost_worker`); one that was idle
    is retired here, as nothing of the batch was read.
    """
    while len(worker.batches) < _IN_FLIGHT and pending:
        batch = pending.popleft()
        try:
            worker.conn.send(batch)
        except OSError:
            pending.appendleft(batch)
            if worker.batches:
                return True
            pool.retire(worker, kill=True)
            return False
        worker.batches.append(batch)
    return True


def _lost_worker(
    pool: _Pool, worker: _Worker, pending: deque[list[str]], code: ErrorCode
) -> Iterator[list[FileOutcome]]:
    """Give the file a worker was reading its error; queue the rest of its batches again.

    When the worker died between files (so no file is to blame), its batch comes back
    one file per batch; a single file lost that way gets the error, so a failure that
    repeats cannot requeue forever.
    """
    batch = worker.batches.popleft() if worker.batches else []
    index = worker.current.value
    pool.retire(worker, kill=True)
    # Batches sent after the one it was reading were not read at all.
    pending.extendleft(reversed(worker.batches))
    if not 0 <= index < len(batch) and len(batch) == 1:
        index = 0
    if 0 <= index < len(batch):
        message = (
            f"reading took longer than {pool.settings.file_timeout_s:g} s"
            if code is ErrorCode.PARSE_TIMEOUT
            else "the reader process died while reading this file"
        )
        yield [_failed(batch[index], code, message)]
        rest = batch[:index] + batch[index + 1 :]
        if rest:
            pending.appendleft(rest)
    else:
        pending.extendleft([path] for path in reversed(batch))
    pool.start_worker()
