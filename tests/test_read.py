"""The per-file reader: sniffing, the bad-input corpus, and agreement with pydicom."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from dicom_bytes import BAD_CASES, PHI_STRINGS, BadCase, ct_dataset, encode, encode_raw
from dicomsieve.codes import FileState
from dicomsieve.scan.read import read_file, sniff
from dicomsieve.settings import Settings


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.name)
def test_bad_input_gets_one_state_and_code(
    case: BadCase, tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / case.name
    path.write_bytes(case.make())
    outcome = read_file(str(path), settings)
    assert outcome.state == case.state
    assert (None if outcome.code is None else str(outcome.code)) == case.code
    assert {str(f) for f in outcome.flags} == set(case.flags)
    assert outcome.size == path.stat().st_size
    assert (outcome.instance is not None) == (case.state == "indexed")
    for secret in PHI_STRINGS:
        assert secret not in (outcome.message or "")


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian], ids=["implicit", "big_endian"]
)
def test_other_encodings_give_the_little_endian_record(
    syntax: str, tmp_path: Path, settings: Settings
) -> None:
    ds = ct_dataset(3)
    (tmp_path / "le").write_bytes(encode(ds))
    (tmp_path / "other").write_bytes(encode(ds, syntax))
    le = read_file(str(tmp_path / "le"), settings).instance
    other = read_file(str(tmp_path / "other"), settings).instance
    assert le is not None
    assert other is not None
    assert replace(other, transfer_syntax_uid=None, pixel_data=None) == replace(
        le, transfer_syntax_uid=None, pixel_data=None
    )
    assert other.transfer_syntax_uid == syntax


def test_raw_dataset_without_preamble_is_accepted(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "raw"
    path.write_bytes(encode_raw(ct_dataset(4)))
    assert sniff(path.read_bytes()[:256]) == ("raw", False)
    outcome = read_file(str(path), settings)
    assert outcome.state == FileState.INDEXED
    assert outcome.instance is not None
    assert outcome.instance.instance_number == 5


def test_fifo_is_never_opened_for_reading(tmp_path: Path, settings: Settings) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    outcome = read_file(str(fifo), settings)
    assert time.monotonic() - started < 5
    assert outcome.state == FileState.IGNORED
    assert str(outcome.code) == "not_regular_file"


def test_truncation_at_every_offset(tmp_path: Path, settings: Settings) -> None:
    """A valid file cut anywhere: never an exception, never a record with lost pixels."""
    data = encode(ct_dataset(5))
    pixel_start = data.index(b"\xe0\x7f\x10\x00OW")
    path = tmp_path / "cut"
    for offset in range(0, len(data)):
        path.write_bytes(data[:offset])
        outcome = read_file(str(path), settings)
        if offset < 132:
            assert outcome.state == FileState.NOT_DICOM, offset
        elif offset > pixel_start:
            assert str(outcome.code) == "PARSE_TRUNCATED", offset
        elif outcome.state == FileState.INDEXED:
            # cut exactly between two elements after the identifying UIDs: a valid
            # file without pixel data, which is what it now is
            assert outcome.instance is not None
            assert outcome.instance.pixel_data is None
        else:
            assert outcome.state == FileState.ERROR, offset
            assert str(outcome.code) in {"PARSE_TRUNCATED", "PARSE_NO_IDENTITY"}, offset


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
        min_size=1,
        max_size=8,
    )
)
def test_mutated_files_always_give_an_outcome(flips: list[tuple[int, int]]) -> None:
    """Bit flips anywhere give a record or a coded state, quickly, without exceptions."""
    data = bytearray(encode(ct_dataset(6)))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    settings = Settings(jobs=1)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutant"
        path.write_bytes(bytes(data))
        started = time.monotonic()
        outcome = read_file(str(path), settings)
        assert time.monotonic() - started < 5
    assert outcome.state in set(FileState) - {FileState.MISSING, FileState.UNCHANGED}
    if outcome.state == FileState.ERROR:
        assert outcome.code is not None
        assert str(outcome.code) != "PARSE_ERROR"
    for secret in PHI_STRINGS:
        assert secret not in (outcome.message or "")


def test_pydicom_still_reads_what_we_index(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "ok"
    path.write_bytes(encode(ct_dataset(7)))
    outcome = read_file(str(path), settings)
    ds = pydicom.dcmread(path)
    assert outcome.instance is not None
    assert outcome.instance.sop_instance_uid == ds.SOPInstanceUID
    pixel = outcome.instance.pixel_data
    assert pixel is not None
    assert pixel.length == len(ds.PixelData)
    assert path.read_bytes()[pixel.offset : pixel.offset + pixel.length] == ds.PixelData
