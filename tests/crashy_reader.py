"""Readers for pool tests: they crash or hang on purpose, by file name.

They live in a module of their own so that worker processes can import them.
"""

from __future__ import annotations

import os
import signal
import time

from dicomsieve.model import FileOutcome
from dicomsieve.scan.read import read_file
from dicomsieve.settings import Settings


def crash_or_hang(path: str, settings: Settings) -> FileOutcome:
    """Kill the worker on ``*CRASH*``, sleep on ``*HANG*``, allocate on ``*GREEDY*``."""
    name = os.path.basename(path)
    if "CRASH" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "HANG" in name:
        time.sleep(3600)
    if "GREEDY" in name:
        hoard = bytearray(64 * 1024 * 1024 * 1024)  # beyond any worker memory limit
        del hoard
    return read_file(path, settings)


def crash_between_files(path: str, settings: Settings) -> FileOutcome:
    """Return an outcome that cannot be sent back for ``*UNSENDABLE*``: the worker dies
    after reading, while no file is marked as being read."""
    outcome = read_file(path, settings)
    if "UNSENDABLE" in os.path.basename(path):
        return _Unsendable(outcome)  # type: ignore[return-value]
    return outcome


class _Unsendable:
    def __init__(self, outcome: FileOutcome) -> None:
        self.outcome = outcome

    def __reduce__(self) -> tuple[object, ...]:
        os._exit(3)  # die while sending the batch's results
