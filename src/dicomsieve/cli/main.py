"""The ``dicomsieve`` command: a click group of thin commands over the library.

Exit codes: 0 when the command did its job (a scan that met broken files did its job:
they are recorded), 1 when convert could not convert some loadable (each is reported
with its code), 2 for usage errors (click), 3 when dicomsieve itself failed (an index
that cannot be opened, for example).
"""

from __future__ import annotations

import logging
import sys

import click

from dicomsieve import __version__
from dicomsieve.cli.convert import convert_command
from dicomsieve.cli.examine import examine_command
from dicomsieve.cli.ls import ls_command
from dicomsieve.cli.scan import scan_command
from dicomsieve.cli.serve import serve_command
from dicomsieve.errors import DicomSieveError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dicomsieve")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v, -vv).")
def cli(verbose: int) -> None:
    """dicomsieve: turn any pile of DICOM files into correct, ready-to-use volumes."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


cli.add_command(scan_command)
cli.add_command(ls_command)
cli.add_command(examine_command)
cli.add_command(convert_command)
cli.add_command(serve_command)


def main() -> None:
    """Console entry point."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DicomSieveError as exc:
        click.echo(f"dicomsieve: {exc}", err=True)
        sys.exit(3)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
