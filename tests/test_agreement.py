"""The fast reader yields the same records as pydicom on every real DICOM file we have.

Files: every file in ``../shared/data`` (``.dcm.gz`` gunzipped) and every DICOM file
that pydicom's own package ships. For each, the fast reader's record must equal the
record built from pydicom's ``dcmread``; files the fast reader hands to pydicom are
counted, and files it refuses must be ones pydicom also reads wrongly (truncated).
"""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pydicom.data
import pytest

from dicom_bytes import un_sequence
from dicomsieve import synthetic as syn
from dicomsieve.model import InstanceRecord
from dicomsieve.scan.fastread import Fallback, ReadFailure, Window, parse_header
from dicomsieve.scan.pydread import read_with_pydicom
from dicomsieve.scan.read import read_file, sniff
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


def test_agrees_with_pydicom_on_vendor_private_elements(tmp_path: Path) -> None:
    """GE and UIH private elements, in another block than 0x10 (behind a decoy creator
    for GE), in every transfer syntax, and a UIH sequence written as UN: the readers
    agree, and the values are found through their creator."""
    for syntax in syn.TRANSFER_SYNTAXES:
        for block in (0x10, 0x2A):
            folder = tmp_path / f"{syntax}-{block:x}"
            syn.write_series(
                syn.ge_field_map(private_block=block), folder / "ge", transfer_syntax=syntax
            )
            syn.write_series(
                syn.uih_vframe_dwi(private_block=block), folder / "uih", transfer_syntax=syntax
            )
    un = syn.uih_vframe_dwi(series_number=10, private_block=0x31)
    for ds in un:
        un_sequence(ds, 0x00653151)
    syn.write_series(un, tmp_path / "un")
    counts = _check_folder(tmp_path, Settings())
    assert counts == {"compared": 16 * 8 + 4 * 8 + 4, "fallback": 0, "refused": 0}
    settings = Settings()
    for path in sorted(tmp_path.rglob("*.dcm")):
        record = read_file(str(path), settings).instance
        assert record is not None
        if "uih" in path.parts or "un" in path.parts:
            assert record.mosaic_slices == 6, path
            assert record.mosaic_grid == (2, 3), path
            assert record.mosaic_positions is not None
            assert len(record.mosaic_positions) == 6
            assert record.diffusion_b_value in (0.0, 1000.0)
        else:
            expected = "field map" if (record.instance_number or 0) <= 8 else "magnitude"
            assert record.private_image_type == expected, path
