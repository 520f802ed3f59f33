"""``dicomsieve scan``: index files and folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dicomsieve.cli.options import (
    db_option,
    jobs_option,
    json_option,
    open_index,
    progress_console,
)
from dicomsieve.scan.server import start_server
from dicomsieve.settings import Settings

if TYPE_CHECKING:
    from dicomsieve.scan.scanner import ScanSummary

__all__ = ["scan_command"]


@click.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
@jobs_option("Worker processes; 0 means one per core.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=Settings().file_timeout_s,
    show_default=True,
    help="Seconds one file may take before it gets PARSE_TIMEOUT.",
)
@click.option(
    "--follow-outside-links",
    is_flag=True,
    help="Follow symbolic links whose target lies outside the scanned folder.",
)
@json_option
def scan_command(
    paths: tuple[Path, ...],
    db: Path | None,
    jobs: int,
    timeout: float,
    follow_outside_links: bool,
    as_json: bool,
) -> None:
    """Index every file under PATHS into the database.

    Folders are walked recursively (regular files only; links are not followed out of
    the folder). Each file ends in one state: indexed, unchanged, not_dicom, error (with
    a code) or ignored (with a rule). Rescans read only what changed.
    """
    start_server()  # its interpreter imports the readers while this one imports the scan
    from dicomsieve import scan

    settings = Settings(
        jobs=jobs, file_timeout_s=timeout, follow_symlinks_outside_root=follow_outside_links
    )
    err = progress_console()
    with open_index(db) as index:
        if err is not None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            with Progress(
                TextColumn("scanning"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task("", total=None)

                def show(summary: ScanSummary) -> None:
                    bar.update(
                        task,
                        total=summary.total,
                        completed=summary.files,
                        description=f"{summary.errors} errors",
                    )

                summary = scan([str(p) for p in paths], index, settings, progress=show)
        else:
            summary = scan([str(p) for p in paths], index, settings)
    if as_json:
        sys.stdout.write(json.dumps(summary.to_json()) + "\n")
        return
    _print_summary(summary)


def _print_summary(summary: ScanSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Scanned {summary.files} files in {summary.seconds:.1f} s")
    table.add_column("state")
    table.add_column("files", justify="right")
    for name, count in summary.counts().items():
        if name != "files":
            table.add_row(name, str(count))
    for code, count in sorted(summary.by_code.items()):
        table.add_row(f"  {code}", str(count))
    Console().print(table)
