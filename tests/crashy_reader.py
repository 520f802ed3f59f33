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
