"""Options shared by several commands."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from dicomsieve.index.store import Index

__all__ = ["db_option", "index_for", "jobs_option", "json_option", "open_index"]

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    """``--db FILE``: the index database."""
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Index database file. Default: $DICOMSIEVE_DB, else a per-user data directory.",
    )(func)


def json_option(func: F) -> F:
    """``--json``: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")(
        func
    )


def open_index(db: Path | None) -> Index:
    """Open the index at ``db`` or at the default location."""
    # Imported here: a command that reads files starts the readers' fork server
    # before it imports the index (see dicomsieve.scan.server).
    from dicomsieve.index.store import Index, default_db_path

    return Index(db if db is not None else default_db_path())


def jobs_option(help_text: str) -> Callable[[F], F]:
    """``-j/--jobs N``: worker processes (0: one per core)."""
    return click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help=help_text,
    )


@contextmanager
def index_for(paths: Sequence[Path], db: Path | None) -> Iterator[Index]:
    """The index a command works on: a temporary one (deleted afterwards) when PATHS are
    given without --db, else the one at --db or the default location."""
    if paths and db is None:
        from dicomsieve.index.store import Index

        with (
            tempfile.TemporaryDirectory(prefix="dicomsieve-") as tmp,
            Index(Path(tmp) / "index.sqlite") as index,
        ):
            yield index
    else:
        with open_index(db) as index:
            yield index


def progress_console() -> Console | None:
    """The console to draw a progress bar on (stderr), or ``None`` when it is no terminal.

    Without a terminal (and without ``FORCE_COLOR``, which makes rich draw anyway) rich
    is not imported at all: it costs about 25 ms, a tenth of a small scan.
    """
    if not sys.stderr.isatty() and not os.environ.get("FORCE_COLOR"):
        return None
    from rich.console import Console

    err = Console(stderr=True)
    return err if err.is_terminal else None
