"""dicomsieve's examine against dcm2niix on every case of ``../shared/data``.

Every case is examined once per session (one examine call per case input). Two kinds of
test use the results:

* ``test_every_difference_is_known``: each dcm2niix output and each dicomsieve loadable
  without a partner in world space must be listed in ``conformance.KNOWN_DIFFERENCES``
  with a reason, and every listed difference must still occur;
* named tests of the cases whose answer is fixed (gantry tilt, localizers, multi-echo,
  4D), asserting dicomsieve's own answer.

``tools/conformance_report.py`` writes the same comparison to ``docs/conformance.md``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray

from conformance import (
    DATA_DIR,
    KNOWN_DIFFERENCES,
    CaseResult,
    OurLoadable,
    check_known_differences,
    load_cases,
    near_miss,
    run_all,
    stale_known_cases,
    tolerance_mm,
)

pytestmark = pytest.mark.shared_data

CASE_IDS = [case.case_id for case in load_cases(DATA_DIR)] if DATA_DIR.is_dir() else []


@pytest.fixture(scope="session")
def conformance(
    shared_data: Path, shared_data_plain: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, CaseResult]:
    """Every case examined once and compared with dcm2niix, by case id."""
    return run_all(
        load_cases(shared_data), shared_data_plain, tmp_path_factory.mktemp("conformance-zip")
    )


def result_of(conformance: dict[str, CaseResult], case_id: str) -> CaseResult:
    assert case_id in conformance, f"no such case in ../shared/data: {case_id}"
    return conformance[case_id]


def under(result: CaseResult, folder: str) -> list[OurLoadable]:
    """Loadables with a file under ``folder`` (relative to the examined path)."""
    root = str(Path(result.examined_path) / folder) + "/"
    return [lo for lo in result.loadables if any(f.startswith(root) for f in lo.files)]


def read(path: str, *keywords: str) -> pydicom.Dataset:
    """Some header elements of one file, read with pydicom."""
    return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(keywords))


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]


def warning_near(lo: OurLoadable, code: str, value: float, tol: float) -> bool:
    """``lo`` has a ``code`` warning whose message holds a number within ``tol`` of ``value``."""
    return any(
        w.get("code") == code
        and any(abs(abs(x) - value) <= tol for x in numbers(str(w.get("message", ""))))
        for w in lo.warnings
    )


def series_warning_codes(result: CaseResult) -> set[str]:
    return {
        str(w.get("code")) for s in result.exam.get("series", []) for w in s.get("warnings", [])
    }


def paired_with(result: CaseResult, lo: OurLoadable) -> list[str]:
    return [p.ref.name for p in result.pairs if p.ours is lo]


def kinds(loadables: Iterable[OurLoadable]) -> Counter[str]:
    return Counter(lo.kind for lo in loadables)


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize("case_id", CASE_IDS or ["shared-data-missing"])
def test_every_difference_is_known(conformance: dict[str, CaseResult], case_id: str) -> None:
    problems = check_known_differences(result_of(conformance, case_id))
    assert not problems, "\n".join(problems)


def test_known_differences_name_real_cases(conformance: dict[str, CaseResult]) -> None:
    assert stale_known_cases(conformance) == []


def test_known_differences_have_one_line_reasons() -> None:
    for case_id, entries in KNOWN_DIFFERENCES.items():
        for known in entries:
            assert known.reason.strip(), (case_id, known.item)
            assert "\n" not in known.reason, (case_id, known.item)
            assert known.count >= 1, (case_id, known.item)


# --------------------------------------------------------------------------- CT gantry tilt


def test_philips_tilted_volume(conformance: dict[str, CaseResult]) -> None:
    result = result_of(conformance, "dcm_qa_ct/In/Philips")
    found = under(result, "S21610/S2010")
    assert [(lo.kind, lo.shape) for lo in found] == [("volume", (512, 512, 54))]
    volume = found[0]
    assert volume.selected
    assert warning_near(volume, "GANTRY_TILT", 18.5, 0.05), volume.warnings


def test_philips_surview_is_a_localizer(conformance: dict[str, CaseResult]) -> None:
    result = result_of(conformance, "dcm_qa_ct/In/Philips")
    found = under(result, "S21610/S1000")
    assert [(lo.kind, lo.shape, lo.selected) for lo in found] == [
        ("localizer", (512, 256, 1), False)
    ]


def test_philips_exam_summary(conformance: dict[str, CaseResult]) -> None:
    result = result_of(conformance, "dcm_qa_ct/In/Philips")
    found = under(result, "S21610/S4010")
    assert not any(lo.selected for lo in found)
    by_file = {Path(f).name: lo.kind for lo in found for f in lo.files}
    assert by_file == {
        "I10": "localizer",  # DERIVED\SECONDARY\REF_SURVIEW with geometry
        "I20": "localizer",
        "I30": "image",  # RGB screenshots without geometry
        "I40": "image",
        "I50": "image",
    }
    assert kinds(found) == {"localizer": 2, "image": 3}


def test_philips_no_file_lost(conformance: dict[str, CaseResult]) -> None:
    result = result_of(conformance, "dcm_qa_ct/In/Philips")
    root = Path(result.examined_path)
    images = {
        str(p) for p in root.rglob("*") if p.is_file() and p.name not in ("DICOMDIR", "DIRFILE")
    }
    placed = [f for lo in result.loadables for f in lo.files]
    left_out = [f for s in result.exam["series"] for f in s.get("left_out", [])]
    assert len(placed) == len(set(placed)), "a file is in two loadables"
    assert set(placed) | set(left_out) == images


def test_ge_tilted_unequal_volume(conformance: dict[str, CaseResult]) -> None:
    result = result_of(conformance, "dcm_qa_ct/In/GE")
    assert [(lo.kind, lo.shape) for lo in result.loadables] == [("volume", (512, 512, 28))]
    volume = result.loadables[0]
    assert volume.selected
    assert warning_near(volume, "GANTRY_TILT", 18.5, 0.05), volume.warnings
    assert "UNEQUAL_SPACING" in volume.warning_codes
    # dcm2niix logs "Instance Number order is not spatial" here, but InstanceNumber rises
    # strictly with the position along the normal (1..28): no INSTANCE_ORDER_NOT_SPATIAL.
    numbers = [int(read(f, "InstanceNumber").InstanceNumber) for f in volume.files]
    assert numbers == list(range(1, 29))
    assert "INSTANCE_ORDER_NOT_SPATIAL" not in volume.warning_codes


def test_tilt_without_tag(conformance: dict[str, CaseResult]) -> None:
    result = result_of(conformance, "dicom2nifti/tests/data/failing/gantrytilting/001")
    assert [(lo.kind, lo.shape) for lo in result.loadables] == [("volume", (512, 512, 4))]
    volume = result.loadables[0]
    assert warning_near(volume, "GANTRY_TILT", 14.0, 0.1), volume.warnings


def position(path: str) -> NDArray[np.float64]:
    """ImagePositionPatient of a single-frame file."""
    return np.array([float(v) for v in read(path, "ImagePositionPatient").ImagePositionPatient])


@pytest.mark.parametrize(
    ("case_id", "output", "loadable", "last_slice_mm"),
    [
        ("dcm_qa_ct/In/Philips", "1F_STEREOTAXIS_Head_201", "S201 volume 512x512x54", 6.85),
        ("dcm_qa_ct/In/GE", "_2", "S2 volume 512x512x28", 43.89),
        ("dicom2nifti/tests/data/failing/gantrytilting/001", "4_", "S4 volume 512x512x4", 0.45),
        (
            "dicom2nifti/tests/data/failing/sliceincrement/001",
            "2_dicom2nifti",
            "S2 volume 512x512x4",
            5.0,
        ),
        ("dicom2nifti/tests/data/failing/sliceincrement/002", "3_", "S3 volume 512x512x4", 0.86),
        (
            "dicom-numpy/tests/dupe-positions.zip",
            "1_6.14_ROUTINE_CHEST_ABD_PELVIS",
            "S1 volume 512x512x10",
            542.5,
        ),
        (
            "dcmstack/test/data/dcmstack/2D_16Echo_qT2",
            "3_2D_16Echo_qT2_1",
            "S3 volume 192x192x3",
            10.5,
        ),
    ],
)
def test_irregular_stack_spans_its_files(
    conformance: dict[str, CaseResult],
    case_id: str,
    output: str,
    loadable: str,
    last_slice_mm: float,
) -> None:
    """Tilted or irregular stacks: the affine puts the first and last slice at their files'
    positions. dcm2niix's raw output agrees on the first slice and misses the last one by
    the distance given in KNOWN_DIFFERENCES (it steps one gap, or the gap measured along
    the normal, along the stacking axis)."""
    result = result_of(conformance, case_id)
    ref = next(o for o in result.case.outputs if o.name == output)
    ref_affine = ref.affine_lps
    assert ref_affine is not None
    miss = near_miss(ref, result.loadables)
    assert miss is not None
    assert miss.ours.description == loadable
    tol = tolerance_mm(ref_affine, ref.spatial_shape)
    assert miss.axes.first_slice_mm <= tol
    assert miss.axes.last_slice_mm == pytest.approx(last_slice_mm, abs=0.01)
    affine = miss.ours.affine_lps
    assert affine is not None
    last = miss.ours.shape[2] - 1
    for k, path in ((0, miss.ours.files[0]), (last, miss.ours.files[-1])):
        placed = (affine @ np.array([0.0, 0.0, k, 1.0]))[:3]
        assert np.allclose(placed, position(path), atol=0.01), (k, path)


@pytest.mark.parametrize(
    ("case", "codes"),
    [
        ("001", {"MISSING_SLICES"}),
        ("002", {"MISSING_SLICES", "GANTRY_TILT"}),
    ],
)
def test_slice_increment(conformance: dict[str, CaseResult], case: str, codes: set[str]) -> None:
    result = result_of(conformance, f"dicom2nifti/tests/data/failing/sliceincrement/{case}")
    assert [(lo.kind, lo.shape) for lo in result.loadables] == [("volume", (512, 512, 4))]
    assert codes <= set(result.loadables[0].warning_codes), result.loadables[0].warnings


def test_duplicate_positions(conformance: dict[str, CaseResult]) -> None:
    # 11 GE CT slices; CT26 and CT28 are the same image (same position, same instance
    # number, same pixels) under two SOPInstanceUIDs. The answer: one 10-slice volume
    # over the 10 distinct positions (gaps 7.5 to 115 mm), with DUPLICATE_POSITION.
    result = result_of(conformance, "dicom-numpy/tests/dupe-positions.zip")
    volumes = [lo for lo in result.loadables if lo.kind == "volume"]
    assert [lo.shape for lo in volumes] == [(512, 512, 10)]
    codes = set(volumes[0].warning_codes) | series_warning_codes(result)
    assert "DUPLICATE_POSITION" in codes
    placed = {Path(f).name for lo in result.loadables for f in lo.files}
    left_out = {Path(f).name for s in result.exam["series"] for f in s.get("left_out", [])}
    assert placed | left_out == {f"CT{n}.dcm" for n in (2, *range(20, 30))}


# --------------------------------------------------------------------------- MR localizers


@pytest.mark.parametrize(("case", "count"), [("2001", 5), ("3001", 3), ("4001", 3)])
def test_three_plane_scouts(conformance: dict[str, CaseResult], case: str, count: int) -> None:
    result = result_of(conformance, f"dcm_qa_xa30i/In/{case}_AAHead_Scout")
    assert [(lo.kind, lo.shape, lo.selected) for lo in result.loadables] == [
        ("localizer", (162, 162, 1), False)
    ] * count


def test_3d_scout_by_description(conformance: dict[str, CaseResult]) -> None:
    result = result_of(conformance, "dcm_qa_xa30i/In/1001_AAHead_Scout")
    assert [(lo.kind, lo.shape, lo.selected) for lo in result.loadables] == [
        ("localizer", (160, 160, 128), False)
    ]
    assert paired_with(result, result.loadables[0]) == ["1001_AAHead_Scout"]


# --------------------------------------------------------------------------- multi-echo, 4D


@pytest.mark.parametrize("export", ["cl", "enh"])
def test_philips_dual_echo_magnitude_phase(conformance: dict[str, CaseResult], export: str) -> None:
    result = result_of(conformance, f"dcm_qa_philips_enh/In/{export}")
    volumes = [lo for lo in result.loadables if lo.kind == "volume"]
    assert [lo.shape for lo in volumes] == [(80, 80, 53)] * 4
    stem = f"2001_WIP_fcMRI_Field_Mapping_{export}"
    assert sorted(p.ref.name for p in result.pairs if p.ours.kind == "volume") == [
        f"{stem}_e1",
        f"{stem}_e1_ph",
        f"{stem}_e2",
        f"{stem}_e2_ph",
    ]
    others = [lo.kind for lo in result.loadables if lo.kind != "volume"]
    assert others == (["unsupported"] if export == "enh" else [])  # enh: Raw Data Storage


def test_siemens_enhanced_two_echoes(conformance: dict[str, CaseResult]) -> None:
    result = result_of(conformance, "dcm_qa_xa30/In/8_gre_field_mapping")
    assert [(lo.kind, lo.shape) for lo in result.loadables] == [("volume", (64, 64, 33))] * 2
    assert sorted(p.ref.name for p in result.pairs) == [
        "8_gre_field_mapping_e1",
        "8_gre_field_mapping_e2",
    ]


@pytest.mark.parametrize(
    ("case_id", "shape"),
    [
        ("dcm_qa_nih/In/20180918GE/mr_0004", (64, 64, 15, 10)),
        ("dcm_qa_canon_61/In/cl", (80, 80, 40, 13)),
        ("dcm_qa_canon_61/In/enh", (80, 80, 40, 13)),
    ],
)
def test_4d_series(
    conformance: dict[str, CaseResult], case_id: str, shape: tuple[int, ...]
) -> None:
    result = result_of(conformance, case_id)
    assert [(lo.kind, lo.shape) for lo in result.loadables] == [("sequence", shape)]
    assert len(result.pairs) == 1
    assert not result.unmatched_ref


# --------------------------------------------------------------------------- vendor private


def test_ge_field_map_and_magnitude(conformance: dict[str, CaseResult]) -> None:
    """GE B0map: 32 files, ImageType ORIGINAL\\PRIMARY\\OTHER and PrivateImageType 0 on
    all; the pulse sequence (B0rf/B0map) and LocationsInAcquisition 16 make instances
    1-16 the field map (Hz, signed) and 17-32 the magnitude, as dcm2niix splits them."""
    result = result_of(conformance, "dcm_qa_fmap/In/GE/6_CV_Neuro")
    assert [(lo.kind, lo.shape, lo.selected) for lo in result.loadables] == [
        ("volume", (128, 128, 16), True)
    ] * 2
    by_name = {lo.name: lo for lo in result.loadables}
    assert set(by_name) == {"B0map [field map]", "B0map [magnitude]"}
    field_map, magnitude = by_name["B0map [field map]"], by_name["B0map [magnitude]"]
    assert "field map images (split by GE private image type)" in str(field_map.raw["reason"])
    assert "magnitude images (split by GE private image type)" in str(magnitude.raw["reason"])
    for lo, numbers in ((field_map, range(1, 17)), (magnitude, range(17, 33))):
        assert lo.warning_codes == ()
        found = {int(read(f, "InstanceNumber").InstanceNumber) for f in lo.files}
        assert found == set(numbers), lo.name
    assert {p.ref.name: p.ours.name for p in result.pairs} == {
        "GE_6_CV_Neuro_HH_Adv": "B0map [magnitude]",
        "GE_6_CV_Neuro_HH_Adv_fieldmaphz": "B0map [field map]",
    }
    assert not result.unmatched_ref
    assert not result.unmatched_ours


def test_uih_vframe_dwi(conformance: dict[str, CaseResult]) -> None:
    """UIH VFRAME DWI: 17 files of 320x256, each 20 tiles of 64x64 in 4 rows of 5, placed
    by the tile positions of the private header (no ImagePositionPatient): one 4D
    sequence, b = 0 first, on dcm2niix's grid in world space."""
    result = result_of(conformance, "dcm_qa_uih/In/DTI_134434/dti_tra_dir16_AP_SaveBySlc__140028")
    assert [(lo.kind, lo.shape, lo.selected) for lo in result.loadables] == [
        ("sequence", (64, 64, 20, 17), True)
    ]
    (seq,) = result.loadables
    assert seq.warning_codes == ()
    assert seq.raw["mosaic_slices"] == 20
    numbers = [int(read(f, "InstanceNumber").InstanceNumber) for f in seq.files]
    assert numbers == list(range(1, 18)), "b = 0 (instance 1) first, then in time order"
    assert [p.ref.name for p in result.pairs] == ["dti_tra_dir16_AP_9_134431"]
    (pair,) = result.pairs
    assert pair.axes is not None
    assert pair.axes.max_distance_mm < 0.01
    affine = seq.affine_lps
    assert affine is not None
    sequence = pydicom.dcmread(seq.files[0], stop_before_pixels=True)[0x00651051].value
    for k, item in enumerate(sequence):
        placed = (affine @ np.array([0.0, 0.0, k, 1.0]))[:3]
        assert np.allclose(placed, [float(v) for v in item.ImagePositionPatient], atol=1e-3)
