"""The loader's own reader of uncompressed pixels agrees with pydicom on every file.

The fast path (``dicomsieve.load.loader._native_frames``) reads native little-endian
greyscale frames at the offset the scan recorded, clears unused high bits or extends the
sign. For every such file in ``../shared/data`` and in pydicom's own test files, every
frame must equal pydicom's ``pixel_array``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest

from dicomsieve.codes import FileState
from dicomsieve.load.loader import _native, _native_frames
from dicomsieve.scan.read import read_file
from dicomsieve.settings import Settings

SETTINGS = Settings()
PYDICOM_DATA = Path(pydicom.data.__file__).parent
# pydicom ships this one broken on purpose (an IS value of "1A"): pydicom refuses to
# decode it; it is the only file allowed to be refused.
PYDICOM_REFUSES = {"badVR.dcm"}


def _compare(folder: Path) -> tuple[int, list[str]]:
    compared, problems = 0, []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        outcome = read_file(str(path), SETTINGS)
        record = outcome.instance
        if outcome.state is not FileState.INDEXED or record is None or not _native(record):
            continue
        frames = record.number_of_frames or 1
        ours = list(_native_frames(str(path), record, list(range(frames))))
        try:
            with warnings.catch_warnings():  # pydicom's remarks on odd files are not ours
                warnings.simplefilter("ignore")
                theirs = np.asarray(pydicom.dcmread(path).pixel_array)
        except Exception as exc:
            if path.name not in PYDICOM_REFUSES:
                problems.append(f"{path}: pydicom cannot decode it ({type(exc).__name__})")
            continue
        if frames == 1:
            theirs = theirs[None]
        stacked = np.stack(ours)
        if stacked.dtype != theirs.dtype or not np.array_equal(stacked, theirs):
            problems.append(f"{path}: frames differ from pydicom's")
        compared += 1
    return compared, problems


@pytest.mark.shared_data
def test_native_frames_equal_pydicom_on_shared_data(shared_data_plain: Path) -> None:
    compared, problems = _compare(shared_data_plain)
    assert not problems, "\n".join(problems)
    assert compared > 300  # most of the shared files are native little endian


def test_native_frames_equal_pydicom_on_pydicom_test_files() -> None:
    compared, problems = _compare(PYDICOM_DATA)
    assert not problems, "\n".join(problems)
    assert compared > 10
