"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dicomsieve.index.store import Index, default_db_path

__all__ = ["db_option", "json_option", "open_index"]

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
    return Index(db if db is not None else default_db_path())
