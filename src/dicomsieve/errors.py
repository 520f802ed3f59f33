"""Exception classes.

Only the library boundary raises. Problems with one file are data (a state and a
code in the index, see :mod:`dicomsieve.codes`), never exceptions.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DicomSieveError", "IndexDbError", "LoadError", "ScanError"]


class DicomSieveError(Exception):
    """Root of every exception dicomsieve raises on purpose."""


class ConfigError(DicomSieveError, ValueError):
    """A setting or an argument has a value that cannot be used."""


class IndexDbError(DicomSieveError, RuntimeError):
    """The index database cannot be opened, migrated or written."""


class ScanError(DicomSieveError, RuntimeError):
    """A scan cannot run at all (its worker processes cannot start)."""


class LoadError(DicomSieveError, RuntimeError):
    """A loadable cannot be turned into pixels; ``code`` says why (a ``LoadErrorCode``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
