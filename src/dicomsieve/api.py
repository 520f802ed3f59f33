"""The top of the library: examine a folder or an index in one call.

>>> import dicomsieve
>>> examination = dicomsieve.examine("/path/to/dicom")  # doctest: +SKIP
>>> [lo.name for lo in examination.selected()]  # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from dicomsieve.index.store import Index
from dicomsieve.loadables.examine import examine_series
from dicomsieve.loadables.model import Examination, SeriesExamination, SourceInstance
from dicomsieve.scan.scanner import scan
from dicomsieve.settings import Settings

__all__ = ["EXAMINE_RULES_VERSION", "examine", "examine_index"]

EXAMINE_RULES_VERSION = "1"
"""Bumped whenever the rules change what examine produces; stored results of an older
version are recomputed."""

_TOLERANCES = (
    "orientation_tolerance_deg",
    "position_tolerance_mm",
    "spacing_tolerance_mm",
    "spacing_tolerance_rel",
    "tilt_tolerance_deg",
    "orthonormal_tolerance",
    "pixel_spacing_tolerance_mm",
)

PathLike = str | os.PathLike[str]


def _salt(settings: Settings) -> str:
    known = {f.name for f in fields(settings)}
    values = ",".join(
        f"{name}={getattr(settings, name)!r}" for name in _TOLERANCES if name in known
    )
    return f"rules={EXAMINE_RULES_VERSION};{values}"


def examine_index(
    index: Index,
    settings: Settings | None = None,
    *,
    series_uid: str | None = None,
    reuse: bool = True,
) -> Examination:
    """Examine indexed series, storing each result in the index.

    Parameters
    ----------
    index
        An open index.
    settings
        Tolerances; the defaults when ``None``.
    series_uid
        Only this series.
    reuse
        Return a stored result when the series and the tolerances have not changed
        since it was computed.

    Returns
    -------
    Examination
    """
    settings = settings or Settings()
    salt = _salt(settings)
    uids = [series_uid] if series_uid is not None else index.series_uids()
    results: list[SeriesExamination] = []
    for uid in uids:
        fingerprint = index.series_fingerprint(uid, salt)
        if fingerprint is None:
            continue
        stored = index.stored_examination(uid, fingerprint) if reuse else None
        if stored is None:
            sources = [
                SourceInstance(s.path, s.record, s.instance_id, s.duplicate_of)
                for s in index.instances(uid)
            ]
            stored = examine_series(sources, settings)
            index.store_examination(stored, fingerprint)
        results.append(stored)
    return Examination(tuple(results))


def examine(
    source: PathLike | Sequence[PathLike] | Index,
    settings: Settings | None = None,
    *,
    series_uid: str | None = None,
) -> Examination:
    """Examine DICOM files into loadables.

    Parameters
    ----------
    source
        Files or folders (scanned into a temporary index that is deleted afterwards),
        or an open :class:`~dicomsieve.Index` (examined as indexed; results are stored
        in it).
    settings
        Scan limits and examine tolerances; the defaults when ``None``.
    series_uid
        Only this series.

    Returns
    -------
    Examination
        ``.series`` with each series' loadables; ``.selected()`` for the default answer.
    """
    settings = settings or Settings()
    if isinstance(source, Index):
        return examine_index(source, settings, series_uid=series_uid)
    paths = [source] if isinstance(source, str | os.PathLike) else list(source)
    with (
        tempfile.TemporaryDirectory(prefix="dicomsieve-") as tmp,
        Index(Path(tmp) / "index.sqlite") as index,
    ):
        scan([os.fspath(p) for p in paths], index, settings)
        return examine_index(index, settings, series_uid=series_uid)
