"""The process that the readers of a scan are forked from.

Kept apart from :mod:`dicomsieve.scan.pool` and free of dicomsieve imports, so that a
command can start the server before it imports anything heavy: the server's new
interpreter then imports the readers on one core while the command imports the rest
of dicomsieve on the other.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["main_module_hidden", "reader_context", "start_server"]

_PRELOAD = ["dicomsieve.scan.scanner"]
"""What the fork server imports once, so that each reader starts with it imported."""


def start_server() -> None:
    """Start the fork server of the readers now, without waiting for it.

    Starting it imports the readers in a new interpreter (0.1-0.2 s); a command that
    reads files calls this first, so that the two overlap. Without a fork server
    (platforms that only spawn) this does nothing.
    """
    if reader_context().get_start_method() != "forkserver":  # pragma: no cover
        return
    from multiprocessing import forkserver

    with main_module_hidden():
        forkserver.ensure_running()


def reader_context() -> Any:
    """The multiprocessing context that reader processes are started from."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        return multiprocessing.get_context("spawn")
    # forkserver: workers fork from a clean server process, not from a parent that
    # may hold threads (progress bars) or database connections.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Start a process without the caller's main module.

    multiprocessing tells a new process to import the parent's ``__main__`` again (so
    that functions defined there can be found). Readers only run dicomsieve's own code,
    and importing the caller's script again would run it again when it has no
    ``if __name__ == "__main__":`` guard, or fail for a script read from stdin. The
    main module is swapped for an empty one while the process is started.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
