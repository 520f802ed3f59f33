"""dicomsieve's loaded and written voxels against dcm2niix (and dicom2nifti) in world space.

Every case of ``../shared/data`` is examined once per session and paired with dcm2niix's
outputs as in ``tests/test_conformance.py`` (``conformance.run_all``); each pair is then
loaded and compared voxel by voxel with the upstream ``Ref/`` NIfTI, or with the
statistics ``ref_index.json`` records where upstream has no Ref file
(``voxel_conformance.compare_case``). Every difference must be listed, with its reason,
in ``voxel_conformance.KNOWN_VOXEL_DIFFERENCES``; listed differences that no longer occur
fail too. The same comparisons run on the NIfTI that ``convert`` writes.

``dicomsieve.regularize`` is compared with dcm2niix's ``_Tilt``/``_Eq`` outputs and
dicom2nifti's resampled ground truth (``voxel_conformance.resample_case``).

``tools/conformance_report.py`` writes the same comparisons to ``docs/conformance.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from conformance import (
    DATA_DIR,
    KNOWN_DIFFERENCES,
    CaseResult,
    load_cases,
    run_all,
)
from voxel_conformance import (
    FLOAT_ULPS,
    KNOWN_RESAMPLE_GRIDS,
    KNOWN_VOXEL_DIFFERENCES,
    VOXEL_ATOL_MM,
    CaseVoxels,
    ExamineRecorder,
    GridMap,
    RefImage,
    ResampleOutcome,
    check_known_voxel_differences,
    compare_case,
    compare_image,
    lossy_jpeg2000,
    map_grid,
    ref_records,
    resample_case,
    same_slice_pairs,
    stale_known_voxel_keys,
    syntax_volumes,
)

pytestmark = pytest.mark.shared_data

CASE_IDS = [case.case_id for case in load_cases(DATA_DIR)] if DATA_DIR.is_dir() else []
TS_CASE = "dcm_qa_ts/In"

LOSSLESS_SYNTAXES = {
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLosslessSV1,
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, process 14
    JPEGLSLossless,
    JPEG2000Lossless,
}
"""Transfer syntaxes that cannot lose information."""

LOSSY_PSNR_TARGET_DB = 60.0
"""The JPEG 2000 lossy copy of dcm_qa_ts/In/1.dcm is encoded for this PSNR..."""
LOSSY_PSNR_MIN_DB = 55.0
"""...and must decode, through dicomsieve, to at least this PSNR against the lossless
image (peak 4095, the 12-bit range): the stated tolerance for lossy syntaxes."""

RECORD_MM = 0.01
"""ref_index.json rounds sform entries to 5 decimals: over 600 voxels, 0.003 mm."""

RESAMPLE_MEAN_RTOL = 1e-3
"""dicomsieve's and dcm2niix's resampled means may differ by this share of the acquired
data range (max - min): both interpolate linearly and fill with the minimum, over grids
that cover the same stack differently."""

GROUND_TRUTH_MEDIAN_HU = 25.0
"""Median |difference| allowed on a dicom2nifti ground-truth slice inside a gap between
acquired slices: the two tools interpolate along different lines (the slice normal, the
stacking direction). The test also checks that moving dicomsieve's volume by one
resampled slice exceeds it, so that a misplaced slice could not pass."""
GROUND_TRUTH_BIAS_HU = 0.1
"""|mean signed difference| allowed on such a slice: no systematic offset."""
GROUND_TRUTH_ON_PLANE_HU = 1.0
"""Max |difference| where a ground-truth slice lies on an acquired slice (two roundings
to integers)."""


# --------------------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Examined:
    results: dict[str, CaseResult]
    recorder: ExamineRecorder


@pytest.fixture(scope="session")
def examined(
    shared_data: Path, shared_data_plain: Path, tmp_path_factory: pytest.TempPathFactory
) -> Examined:
    """Every case examined once (keeping the Examination) and paired with dcm2niix."""
    recorder = ExamineRecorder()
    results = run_all(
        load_cases(shared_data),
        shared_data_plain,
        tmp_path_factory.mktemp("voxel-zip"),
        recorder,
    )
    return Examined(results, recorder)


@pytest.fixture(scope="session")
def voxels(examined: Examined, shared_data: Path) -> dict[str, CaseVoxels]:
    """Every pair loaded and compared once, by case id."""
    return {
        case_id: compare_case(
            result, examined.recorder, shared_data, keep_arrays=case_id == TS_CASE
        )
        for case_id, result in examined.results.items()
    }


@pytest.fixture(scope="session")
def resampled(examined: Examined, shared_data: Path) -> dict[str, ResampleOutcome]:
    """``regularize(load(...))`` of every case of ``KNOWN_RESAMPLE_GRIDS``, compared once."""
    return {
        case_id: resample_case(examined.results[case_id], examined.recorder, known, shared_data)
        for case_id, known in KNOWN_RESAMPLE_GRIDS.items()
    }


def voxels_of(voxels: dict[str, CaseVoxels], case_id: str) -> CaseVoxels:
    assert case_id in voxels, f"no such case in ../shared/data: {case_id}"
    return voxels[case_id]


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize("case_id", CASE_IDS or ["shared-data-missing"])
def test_voxels_equal_or_known(
    voxels: dict[str, CaseVoxels], examined: Examined, case_id: str
) -> None:
    found = voxels_of(voxels, case_id)
    result = examined.results[case_id]
    dcm2niix = [r for r in found.results if not r.output.startswith("dicom2nifti:")]
    assert sorted(r.output for r in dcm2niix) == sorted(
        [p.ref.name for p in result.pairs] + [ref.name for ref, _ in same_slice_pairs(result)]
    ), "every matched pair and every pair of the same slices is compared once"
    problems = check_known_voxel_differences(found.results)
    assert not problems, "\n".join(problems)


def test_known_voxel_differences_name_compared_pairs(voxels: dict[str, CaseVoxels]) -> None:
    every = [r for v in voxels.values() for r in v.results]
    assert stale_known_voxel_keys(every) == []


def test_known_voxel_differences_have_one_line_reasons() -> None:
    for key, known in KNOWN_VOXEL_DIFFERENCES.items():
        assert known.reason.strip(), key
        assert "\n" not in known.reason, key
        assert known.codes, key
    for case_id, grid in KNOWN_RESAMPLE_GRIDS.items():
        assert grid.reason.strip(), case_id
        assert "\n" not in grid.reason, case_id


@pytest.mark.parametrize("case_id", CASE_IDS or ["shared-data-missing"])
def test_written_nifti_compares_like_the_volume(
    voxels: dict[str, CaseVoxels], examined: Examined, case_id: str
) -> None:
    """``convert`` writes what ``load`` gives: the written NIfTI (sform, data type, RGB24,
    4D) compares with the reference exactly as the loaded volume does."""
    found = voxels_of(voxels, case_id)
    assert len(found.written) == len(examined.results[case_id].pairs)
    for volume, written in zip(found.results[: len(found.written)], found.written, strict=True):
        assert (written.output, written.status, written.codes, written.details) == (
            volume.output,
            volume.status,
            volume.codes,
            volume.details,
        )
        assert written.ours_dtype == volume.ours_dtype


def test_every_reference_file_is_compared(
    voxels: dict[str, CaseVoxels], examined: Examined, shared_data: Path
) -> None:
    """Each upstream Ref NIfTI is compared voxel by voxel, unless its dcm2niix output
    has no dicomsieve partner (a grouping difference listed in conformance.py)."""
    compared = {
        shared_data / r.case_id.split("/")[0] / r.reference
        for v in voxels.values()
        for r in v.results
        if r.reference.startswith("Ref/")
    }
    unmatched: set[Path] = set()
    for case_id, result in examined.results.items():
        records = ref_records(result.case, shared_data)
        for ref in result.unmatched_ref:
            assert any(k.item == ref.name for k in KNOWN_DIFFERENCES.get(case_id, ()))
            path = records[ref.name].ref_file
            if path is not None:
                unmatched.add(path)
    every = set(shared_data.glob("*/Ref/*.nii.gz"))
    assert every - compared - unmatched == set()
    assert len(compared) == 54
    assert len(unmatched) == 3


def test_philips_scaling_is_the_dicom_rescale(voxels: dict[str, CaseVoxels]) -> None:
    """Where values differ only by scale, dicomsieve's scale is exactly the DICOM
    RescaleSlope/Intercept of the source files."""
    scaled = [r for v in voxels.values() for r in v.results if "SCALING" in r.codes]
    assert len(scaled) == 11
    for r in scaled:
        assert r.extra["slope"] == pytest.approx(r.extra["rescale_slope"], rel=1e-6), r.key
        assert r.extra["inter"] == pytest.approx(
            r.extra["rescale_intercept"], abs=1e-4 * max(1.0, abs(r.extra["rescale_intercept"]))
        ), r.key


# --------------------------------------------------------------------------- transfer syntaxes


def test_transfer_syntaxes_lossless_are_identical(
    examined: Examined, voxels: dict[str, CaseVoxels]
) -> None:
    """dcm_qa_ts holds one mosaic in nine files and seven transfer syntaxes, all lossless
    (none is lossy; see the next test): every file gives the same voxels and geometry."""
    volumes = syntax_volumes(examined.results[TS_CASE], voxels_of(voxels, TS_CASE).arrays)
    assert [v.file for v in volumes] == [f"{n}.dcm" for n in range(1, 10)]
    assert len({v.syntax for v in volumes}) == 7
    first = volumes[0]
    assert first.syntax == ExplicitVRLittleEndian
    assert first.array.shape == (64, 64, 35)
    for v in volumes:
        assert v.syntax in LOSSLESS_SYNTAXES, (v.file, v.syntax)
        assert v.lossy_flag in (None, "00"), v.file
        assert v.array.dtype == first.array.dtype, v.file
        assert np.array_equal(v.array, first.array), v.file
        assert np.array_equal(v.affine_lps, first.affine_lps), v.file


def test_lossy_jpeg2000_within_tolerance(
    examined: Examined, voxels: dict[str, CaseVoxels], tmp_path: Path
) -> None:
    """No lossy syntax is in dcm_qa_ts, so one is made: 1.dcm re-encoded as JPEG 2000
    (lossy, 1.2.840.10008.1.2.4.91) in a temporary folder. dicomsieve must cut the mosaic
    of the decoded pixels exactly as pydicom decodes them, keep the geometry and type, and
    stay within LOSSY_PSNR_MIN_DB of the lossless voxels."""
    first = syntax_volumes(examined.results[TS_CASE], voxels_of(voxels, TS_CASE).arrays)[0]
    source = Path(examined.results[TS_CASE].examined_path) / first.file
    check = lossy_jpeg2000(
        source, tmp_path / "lossy", first.array, first.affine_lps, LOSSY_PSNR_TARGET_DB
    )
    assert check.same_geometry
    assert check.tiles_match_decoder
    assert check.changed > 0, "the copy must really be lossy"
    assert check.psnr_db >= LOSSY_PSNR_MIN_DB


# --------------------------------------------------------------------------- resampling


RESAMPLE_IDS = list(KNOWN_RESAMPLE_GRIDS)


@pytest.mark.parametrize("case_id", RESAMPLE_IDS)
def test_resampled_grid(resampled: dict[str, ResampleOutcome], case_id: str) -> None:
    """A regular orthogonal grid on the slice normal, with the slices' in-plane spacing,
    the documented slice spacing, starting at the first slice, over the same frame as
    dcm2niix's; shapes as recorded in KNOWN_RESAMPLE_GRIDS."""
    out = resampled[case_id]
    c, known = out.comparison, out.known
    assert out.resampled
    assert (c.ours_shape, c.ref_shape) == (known.ours_shape, known.ref_shape)
    assert c.axis_angle_deg <= 0.01
    assert c.ours_zooms[:2] == pytest.approx(c.ref_zooms[:2], abs=1e-4)
    assert c.ours_zooms[2] == pytest.approx(out.expected_step, rel=1e-9)
    for axis in (0, 2):  # along the rows and the normal both start where the data starts
        assert c.ours_extent[axis][0] == pytest.approx(0.0, abs=VOXEL_ATOL_MM)
        assert c.ref_extent[axis][0] == pytest.approx(0.0, abs=RECORD_MM)
    assert c.ours_extent[0][1] == pytest.approx(c.ref_extent[0][1], abs=RECORD_MM)


@pytest.mark.parametrize("case_id", RESAMPLE_IDS)
def test_resampled_grid_covers_the_stack(
    resampled: dict[str, ResampleOutcome], case_id: str
) -> None:
    """Every acquired voxel centre lies within the span of the resampled grid's centres,
    forgiving 0.05 mm of rounding (Settings.spacing_tolerance_mm)."""
    c = resampled[case_id].comparison
    for axis in range(3):
        low, high = c.acquired_extent[axis]
        assert c.ours_extent[axis][0] <= low + VOXEL_ATOL_MM, axis
        assert c.ours_extent[axis][1] >= high - 0.05 - VOXEL_ATOL_MM, axis


@pytest.mark.parametrize("case_id", RESAMPLE_IDS)
def test_resampled_values(resampled: dict[str, ResampleOutcome], case_id: str) -> None:
    """Where a resampled slice lies on an acquired one, it is that slice bilinearly
    sampled at the new voxel centres (checked independently, in world space); values stay
    in the acquired range, the fill is the minimum, and the mean agrees with dcm2niix's."""
    out = resampled[case_id]
    c = out.comparison
    assert out.slice_checks, "at least the first slice is on the grid"
    assert out.slice_checks[0].acquired == 0
    limit = 0.5 + 1e-6 if out.ours_integer else 1e-3
    for check in out.slice_checks:
        assert check.compared > 0
        assert check.max_abs <= limit, check
    assert c.ours_stats.min == c.acquired_stats.min
    assert c.ours_stats.max <= c.acquired_stats.max
    assert c.ref_stats is not None
    spread = c.acquired_stats.max - c.acquired_stats.min
    assert abs(c.ours_stats.mean - c.ref_stats.mean) <= RESAMPLE_MEAN_RTOL * spread


def test_resampled_against_dicom2nifti_ground_truth(
    resampled: dict[str, ResampleOutcome],
) -> None:
    """sliceincrement/002 (tilted 15.5 deg, instance 4 missing) against dicom2nifti's
    resampled ground truth, where both grids hold acquired data: equal on the acquired
    plane, no bias, and in the gaps within GROUND_TRUTH_MEDIAN_HU (the interpolation
    direction differs; an along-the-stack model reproduces the ground truth to 0.5 HU)."""
    out = resampled["dicom2nifti/tests/data/failing/sliceincrement/002"]
    assert out.ground_truth == "002_ground_truth.nii.gz"
    compared = [s for s in out.overlap if s.compared > 0]
    assert [s.k for s in compared] == [1, 2, 3, 4]
    assert out.overlap[0].padding_fraction == 1.0  # 0.11 mm before the first slice
    for s in compared:
        assert abs(s.mean_signed) <= GROUND_TRUTH_BIAS_HU, s
        on_plane = abs(s.acquired_k - round(s.acquired_k)) < 1e-4 and round(s.acquired_k) == 3
        if on_plane:
            assert s.max_abs <= GROUND_TRUTH_ON_PLANE_HU, s
        else:
            assert s.median_abs <= GROUND_TRUTH_MEDIAN_HU, s
        assert out.stack_model_median[s.k] <= 0.5, (s.k, out.stack_model_median)
        assert out.misplaced_median[s.k] > GROUND_TRUTH_MEDIAN_HU, (s.k, out.misplaced_median)


# --------------------------------------------------------------------------- the comparison itself


def _ref(stored: NDArray[Any], affine: NDArray[np.float64], slope: float = 1.0) -> RefImage:
    return RefImage(Path("synthetic.nii"), stored, slope, 0.0, affine, "sform")


def _compare(our: NDArray[Any], our_affine: NDArray[np.float64], ref: RefImage) -> Any:
    return compare_image(our, our_affine, ref, case_id="c", output="o", loadable="l", reference="r")


def test_comparison_maps_flipped_axes() -> None:
    """A reference with reversed rows and a permuted axis order is equal when its
    affine says so, and differs when the affine does not."""
    rng = np.random.default_rng(0)
    ours = rng.integers(-100, 100, size=(4, 5, 3)).astype(np.int16)
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = (10.0, 20.0, 30.0)
    stored = ours[:, ::-1, :].transpose(2, 0, 1).copy()  # ref (k, i, -j)
    ref_affine = np.zeros((4, 4))
    ref_affine[:3, 0] = affine[:3, 2]
    ref_affine[:3, 1] = affine[:3, 0]
    ref_affine[:3, 2] = -affine[:3, 1]
    ref_affine[:3, 3] = affine[:3, 3] + 4 * affine[:3, 1]
    ref_affine[3, 3] = 1.0
    found = _compare(ours, affine, _ref(stored, ref_affine))
    assert (found.status, found.codes, found.axes) == ("equal", frozenset(), "i->k, j->i, k->-j")
    wrong = ref_affine.copy()
    wrong[:3, 2] = affine[:3, 1]
    wrong[:3, 3] = affine[:3, 3]
    assert _compare(ours, affine, _ref(stored, wrong)).codes == {"VALUES"}


def test_comparison_refuses_a_shifted_grid() -> None:
    ours = np.zeros((4, 4, 2), dtype=np.int16)
    affine = np.eye(4)
    shifted = np.eye(4)
    shifted[0, 3] = 0.5 + VOXEL_ATOL_MM
    found = _compare(ours, affine, _ref(ours, shifted))
    assert found.codes == {"GRID"}
    almost = np.eye(4)
    almost[0, 3] = VOXEL_ATOL_MM / 2
    grid = map_grid(almost, (4, 4, 2), affine, (4, 4, 2))
    assert isinstance(grid, GridMap)
    assert grid.max_error_mm == pytest.approx(VOXEL_ATOL_MM / 2)
    assert isinstance(map_grid(np.eye(4), (4, 4, 3), affine, (4, 4, 2)), str)


def test_comparison_classifies_scaling_and_values() -> None:
    stored = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    ours = (stored * 1.5 + 2.0).astype(np.float32)
    found = _compare(ours, np.eye(4), RefImage(Path("s"), stored, 100.0, 0.0, np.eye(4), "sform"))
    assert found.codes == {"SCALING"}
    assert found.extra["slope"] == pytest.approx(1.5)
    same = _compare(ours, np.eye(4), RefImage(Path("s"), stored, 1.5, 2.0, np.eye(4), "sform"))
    assert same.codes == frozenset()
    nudged = ours.copy()
    nudged[1, 2, 3] += np.float32(FLOAT_ULPS * 30 * np.finfo(np.float32).eps * 40)
    off = _compare(nudged, np.eye(4), RefImage(Path("s"), stored, 1.5, 2.0, np.eye(4), "sform"))
    assert off.codes == {"VALUES"}
    assert off.extra["differing"] == 1
