"""``dicomsieve examine``: split series into loadables and show why."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dicomsieve.cli.options import db_option, index_for, jobs_option, json_option
from dicomsieve.codes import Level
from dicomsieve.scan.server import start_server
from dicomsieve.settings import Settings

if TYPE_CHECKING:
    from rich.table import Table

    from dicomsieve.index.store import Index
    from dicomsieve.loadables.model import Examination, SeriesExamination

__all__ = ["examine_command"]

_LEVEL_STYLE = {Level.INFO: "dim", Level.WARNING: "yellow", Level.ERROR: "bold red"}


@click.command("examine")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@db_option
@click.option("--series", "series_uid", default=None, help="Only the series with this UID.")
@jobs_option("Worker processes for the scan of PATHS; 0 means one per core.")
@json_option
def examine_command(
    paths: tuple[Path, ...], db: Path | None, series_uid: str | None, jobs: int, as_json: bool
) -> None:
    """Split every series into loadables: volumes, 4D sequences, localizers, images.

    Given PATHS, they are scanned first: into a temporary index that is deleted
    afterwards, or into --db when it is given. Without PATHS, what --db (or the default
    index) holds is examined. Results are stored in the index.
    """
    if paths:
        start_server()  # its interpreter starts while this one imports the examiner
    settings = Settings(jobs=jobs)
    with index_for(paths, db) as index:
        examination = _run(index, paths, series_uid, settings)
    if as_json:
        sys.stdout.write(examination.to_json() + "\n")
        return
    _print(examination)


def _run(
    index: Index, paths: tuple[Path, ...], series_uid: str | None, settings: Settings
) -> Examination:
    from dicomsieve import scan
    from dicomsieve.api import examine_index

    if paths:
        scan([str(p) for p in paths], index, settings)
    return examine_index(index, settings, series_uid=series_uid)


def _print(examination: Examination) -> None:
    from rich.console import Console

    console = Console()
    if not examination.series:
        console.print("No series indexed.")
        return
    for series in examination.series:
        console.print(_table(series))
        for loadable in series.loadables:
            for w in loadable.warnings:
                if w.level is not Level.INFO:
                    console.print(
                        f"  [{_LEVEL_STYLE[w.level]}]{w.code}[/] {loadable.name}: {w.message}",
                        highlight=False,
                    )
        for w in series.warnings:
            console.print(f"  [dim]{w.code}[/] {w.message}", highlight=False)
        console.print()


def _table(series: SeriesExamination) -> Table:
    title = (
        f"Series {series.series_number if series.series_number is not None else '?'} "
        f"{series.series_description or ''} ({series.modality or '?'})"
    )
    from rich.table import Table

    table = Table(title=title, title_justify="left", caption=series.series_instance_uid)
    table.add_column("sel")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("shape")
    table.add_column("conf", justify="right")
    table.add_column("warnings")
    table.add_column("reason")
    for lo in series.loadables:
        codes = sorted({str(w.code) for w in lo.warnings if w.level is not Level.INFO})
        table.add_row(
            "*" if lo.selected else "",
            str(lo.kind),
            lo.name,
            "x".join(str(n) for n in lo.shape) or "-",
            f"{lo.confidence:.2f}",
            ", ".join(codes),
            lo.reason,
        )
    return table
