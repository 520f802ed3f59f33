"""``dicomsieve convert``: write loadables as NIfTI or NRRD with JSON sidecars."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dicomsieve.cli.options import (
    db_option,
    index_for,
    jobs_option,
    json_option,
    progress_console,
)
from dicomsieve.errors import ConfigError
from dicomsieve.scan.server import start_server
from dicomsieve.settings import Settings
from dicomsieve.write import FORMATS
from dicomsieve.write.names import DEFAULT_TEMPLATE, FIELDS, check_template

if TYPE_CHECKING:
    from dicomsieve.api import ConversionResult, Regularize
    from dicomsieve.index.store import Index
    from dicomsieve.load.loader import KnownFiles

__all__ = ["convert_command"]


@click.command("convert")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@db_option
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (created if needed); nothing is written outside it.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="nii.gz", show_default=True)
@click.option(
    "--all", "include_all", is_flag=True, help="Also localizers and other loadables not selected."
)
@click.option("--series", "series_uid", default=None, help="Only the series with this UID.")
@click.option(
    "--regularize",
    type=click.Choice(["none", "resample"]),
    default="none",
    show_default=True,
    help="none: the stack as acquired, with its exact (sheared) affine. resample: "
    "irregular stacks resampled onto a regular grid, named *_resampled.",
)
@click.option(
    "--name",
    "name_template",
    default=DEFAULT_TEMPLATE,
    show_default=True,
    help=f"File name template; fields: {', '.join(FIELDS)}.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@jobs_option("Worker processes for the scan of PATHS; 0 means one per core.")
@json_option
def convert_command(
    paths: tuple[Path, ...],
    db: Path | None,
    outdir: Path,
    fmt: str,
    include_all: bool,
    series_uid: str | None,
    regularize: Regularize,
    name_template: str,
    overwrite: bool,
    jobs: int,
    as_json: bool,
) -> None:
    """Convert the selected loadables of every series (all with --all) to NIfTI or NRRD.

    Given PATHS, they are scanned and examined first (into a temporary index, or into
    --db). Each image gets a JSON sidecar with BIDS field names and a "dicomsieve" block
    (kind, reason, warnings, source SOPInstanceUIDs). A loadable that cannot be
    converted is reported with its code; the others are still written, and the exit
    status is 1.
    """
    try:
        check_template(name_template)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from exc
    if paths:
        # The readers' fork server starts its interpreter on another core while this
        # one imports the converter (numpy and the writers), instead of after it.
        start_server()
    settings = Settings(jobs=jobs)
    with index_for(paths, db) as index:
        result = _run(
            index,
            paths,
            series_uid,
            settings,
            outdir,
            fmt,
            include_all,
            regularize,
            name_template,
            overwrite,
        )
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    else:
        _print(result)
    if result.failures:
        sys.exit(1)


def _run(
    index: Index,
    paths: tuple[Path, ...],
    series_uid: str | None,
    settings: Settings,
    outdir: Path,
    fmt: str,
    include_all: bool,
    regularize: Regularize,
    name_template: str,
    overwrite: bool,
) -> ConversionResult:
    from dicomsieve import scan
    from dicomsieve.api import convert_examination, examine_index

    if paths:
        scan([str(p) for p in paths], index, settings)
    known: dict[str, KnownFiles] = {}
    examination = examine_index(index, settings, series_uid=series_uid, known=known)

    def convert(progress: Callable[[int, int], None] | None = None) -> ConversionResult:
        return convert_examination(
            examination,
            outdir,
            settings,
            progress=progress,
            index=index,
            known=known,
            fmt=fmt,
            include_all=include_all,
            regularize=regularize,
            name_template=name_template,
            overwrite=overwrite,
        )

    err = progress_console()
    if err is None:
        return convert()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("converting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return convert(show)


def _print(result: ConversionResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Wrote {len(result.outputs)} image(s)", title_justify="left")
    table.add_column("kind")
    table.add_column("loadable")
    table.add_column("file")
    for out in result.outputs:
        table.add_row(out.kind, out.loadable, out.path)
    console.print(table)
    for failure in result.failures:
        console.print(
            f"[red]{failure.code}[/] {failure.loadable}: {failure.message}", highlight=False
        )
