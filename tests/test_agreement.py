"""The fast reader yields the same records as pydicom on every real DICOM file we have.

Files: every file in ``../shared/data`` (``.dcm.gz`` gunzipped) and every DICOM file
that pydicom's own package ships. For each, the fast reader's record must equal the
record built from pydicom's ``dcmread``; files the fast reader hands to pydicom are
counted, and files it refuses must be ones pydicom also reads wrongly (truncated).
"""

from __future__ import annotations

import os
from pathlib import Path

import pydicom.data
import pytest

from dicomsieve.model import InstanceRecord
from dicomsieve.scan.fastread import Fallback, ReadFailure, Window, parse_header
from dicomsieve.scan.pydread import read_with_pydicom
from dicomsieve.scan.read import sniff
from dicomsieve.scan.record import build_instance
from dicomsieve.settings import Settings

PYDICOM_DATA = Path(pydicom.data.__file__).parent
# pydicom ships these broken on purpose; the fast reader must refuse them with this code.
KNOWN_BROKEN = {"rtplan_truncated.dcm": "PARSE_TRUNCATED"}


def _records(path: Path, settings: Settings) -> tuple[InstanceRecord | None, ...] | str | None:
    """(fast, pydicom) records, ``"fallback"``, a failure code, or None for non-DICOM."""
    with open(path, "rb") as handle:
        head = handle.read(settings.header_chunk_bytes)
    kind, explicit = sniff(head)
    if kind == "not_dicom":
        return None
    size = path.stat().st_size
    cap = settings.inflate_cap(size)
    fd = os.open(path, os.O_RDONLY)
    try:
        fast = parse_header(
            Window(fd, size, head, settings.header_chunk_bytes),
            max_depth=settings.max_sequence_depth,
            inflate_cap=cap,
            raw_explicit=explicit,
        )
    except Fallback:
        return "fallback"
    except ReadFailure as failure:
        return str(failure.code)
    finally:
        os.close(fd)
    slow = read_with_pydicom(str(path), size=size, raw=kind == "raw", max_depth=64, inflate_cap=cap)
    return (
        build_instance(fast.tree, fast.transfer_syntax, fast.pixel),
        build_instance(slow.tree, slow.transfer_syntax, slow.pixel),
    )


def _check_folder(folder: Path, settings: Settings) -> dict[str, int]:
    counts = {"compared": 0, "fallback": 0, "refused": 0}
    mismatches = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        result = _records(path, settings)
        if result is None:
            continue
        if result == "fallback":
            counts["fallback"] += 1
        elif isinstance(result, str):
            assert KNOWN_BROKEN.get(path.name) == result, f"{path}: fast reader refused: {result}"
            counts["refused"] += 1
        else:
            fast, slow = result
            counts["compared"] += 1
            if fast != slow:
                mismatches.append(str(path))
    assert not mismatches, f"{len(mismatches)} files differ, e.g. {mismatches[:3]}"
    return counts


def test_agrees_with_pydicom_on_pydicom_test_files() -> None:
    counts = _check_folder(PYDICOM_DATA, Settings())
    assert counts["compared"] >= 150
    # charset files with ISO 2022 code extensions and a few odd encodings go to pydicom
    assert counts["fallback"] <= 30


@pytest.mark.shared_data
def test_agrees_with_pydicom_on_shared_data(shared_data_plain: Path) -> None:
    folders = sorted(p for p in shared_data_plain.iterdir() if p.is_dir())
    assert len(folders) >= 19
    total = 0
    for folder in folders:
        counts = _check_folder(folder, Settings())
        total += counts["compared"]
        assert counts["fallback"] == 0, f"{folder.name}: {counts}"
    assert total >= 1500
