"""Work on a few shared threads, results in order; reusable buffers.

Reading pixel bytes (``pread``), copying them, deflating them (ISA-L) and checksumming
them all release the GIL, so a few threads keep both cores busy while the calling
thread writes the results in order. The threads and the buffers are kept for the next
loadable: starting two threads and zeroing fresh 4 MB buffers for each of 200 MR series
cost 1.8 s (profiled).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Final, TypeVar

__all__ = ["give_buffer", "ordered", "take_buffer"]

X = TypeVar("X")
T = TypeVar("T")

MIN_BUFFER: Final = 512 << 10
"""Buffers are at least this large (one block of the stored-value path), so that a
free buffer fits the next loadable's blocks."""

_LOCK: Final = threading.Lock()
_EXECUTORS: dict[int, ThreadPoolExecutor] = {}
_FREE: list[bytearray] = []
_KEEP: Final = 4  # threads + 1 in flight for the usual two threads


def _executor(threads: int) -> ThreadPoolExecutor:
    with _LOCK:
        pool = _EXECUTORS.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dicomsieve")
            _EXECUTORS[threads] = pool
        return pool


def take_buffer(size: int) -> bytearray:
    """A buffer of at least ``size`` bytes, a free one when there is one."""
    with _LOCK:
        for n, buffer in enumerate(_FREE):
            if len(buffer) >= size:
                return _FREE.pop(n)
    return bytearray(max(size, MIN_BUFFER))


def give_buffer(buffer: bytearray) -> None:
    """Return a buffer nobody uses any more (a few are kept)."""
    with _LOCK:
        if len(_FREE) < _KEEP:
            _FREE.append(buffer)


def ordered(
    fn: Callable[[X], T], items: Iterable[X], *, threads: int, ahead: int | None = None
) -> Iterator[T]:
    """``fn(item)`` for each item, run on ``threads`` shared threads, yielded in order.

    At most ``ahead`` calls (default and minimum: ``threads``) are ahead of the
    consumer, so memory stays bounded. More than ``threads`` keeps every thread busy
    while the call the consumer waits for runs long: a thread that finishes early takes
    the next item instead of waiting for the consumer to hand it one. When the consumer
    stops early or a call fails, the calls not started are cancelled and the running
    ones waited for before this returns (or raises): no thread is left working on the
    consumer's buffers. With ``threads`` below 2 everything runs in the calling thread.
    """
    if threads < 2:
        for item in items:
            yield fn(item)
        return
    pool = _executor(threads)
    pending: deque[Future[T]] = deque()
    todo = iter(items)

    def submit() -> None:
        item = next(todo, _END)
        if item is not _END:
            pending.append(pool.submit(fn, item))  # type: ignore[arg-type]

    try:
        for _ in range(max(threads, ahead or threads)):
            submit()
        while pending:
            result = pending[0].result()
            pending.popleft()
            submit()
            yield result
    finally:
        for future in pending:
            future.cancel()
        wait(pending)


_END: Final = object()
