"""The ``dicomsieve`` command: a click group of thin commands over the library.

Exit codes: 0 when the command did its job (a scan that met broken files did its job:
they are recorded), 1 when convert could not convert some loadable (each is reported
with its code), 2 for usage errors (click), 3 when dicomsieve itself failed (an index
that cannot be opened, for example).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NoReturn

import click

from dicomsieve._version import __version__
from dicomsieve.errors import DicomSieveError

__all__ = ["cli", "console_main", "main"]

# Command name -> module and attribute. Each command is imported when it runs, so that
# `dicomsieve scan` does not pay for the web app's or the converter's imports.
_COMMANDS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "convert": ("dicomsieve.cli.convert", "convert_command"),
        "examine": ("dicomsieve.cli.examine", "examine_command"),
        "ls": ("dicomsieve.cli.ls", "ls_command"),
        "scan": ("dicomsieve.cli.scan", "scan_command"),
        "serve": ("dicomsieve.cli.serve", "serve_command"),
    }
)


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        command = getattr(importlib.import_module(target[0]), target[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dicomsieve")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v, -vv).")
def cli(verbose: int) -> None:
    """dicomsieve: turn any pile of DICOM files into correct, ready-to-use volumes."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    """Run the command line in ``sys.argv``; errors become exit statuses (SystemExit).

    The ``dicomsieve`` script runs this through :func:`console_main`.
    """
    # numpy's OpenBLAS starts a thread per core when numpy is imported, and they spin
    # for a while before they sleep: ~0.07 s of a core taken from the fork server's
    # start-up or from deflating (perf, CT convert). dicomsieve's linear algebra is 4x4
    # matrices, which OpenBLAS never splits over threads. A user's setting is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
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


def console_main() -> NoReturn:
    """The ``dicomsieve`` console script: :func:`main`, then an exit without teardown.

    When the command returns, everything it opened is closed (the index, temporary
    folders and output files by their context managers; worker processes joined). What
    the interpreter would do next, free every module's objects and join the idle pool
    threads, costs ~50 ms: 7% of a CT convert to ``.nii``. So the log handlers and the
    streams are flushed and the process exits at once, with :func:`main`'s status (and
    120 when a stream cannot be flushed, as Python's own exit does). An exception other
    than :class:`SystemExit` takes the normal way out, traceback included.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120
    os._exit(code)
