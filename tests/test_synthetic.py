"""The synthetic DICOM generator: read-back, geometry, encodings, determinism, trees."""

from __future__ import annotations

import io
import itertools
import math
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    MRImageStorage,
)

import dicomsieve
from dicomsieve import synthetic as syn
from dicomsieve.errors import ConfigError

Builder = Callable[[], list[Dataset]]

# Small matrices keep the whole file fast; the geometry does not depend on the size.
BUILDERS: dict[str, Builder] = {
    "ct_volume": lambda: syn.ct_volume(slices=5, rows=32, columns=32, pixel_spacing=(8.0, 8.0)),
    "ct_signed_12bit": lambda: syn.ct_volume(slices=3, rows=24, columns=32, signed_12bit=True),
    "ct_tilted": lambda: syn.ct_volume(slices=4, rows=32, columns=32, gantry_tilt=15.0),
    "localizer_ct": lambda: syn.localizer(rows=32, columns=32, pixel_spacing=(8.0, 8.0)),
    "localizer_mr": lambda: syn.localizer(
        modality="MR", orientation=syn.SAGITTAL, rows=32, columns=32
    ),
    "oblique_ct_with_localizer": lambda: syn.oblique_ct_with_localizer(
        slices=6, rows=32, columns=32, pixel_spacing=(8.0, 8.0)
    ),
    "mr_3d": lambda: syn.mr_3d(slices=4, rows=32, columns=32, pixel_spacing=(7.0, 7.0)),
    "mr_multi_echo": lambda: syn.mr_multi_echo(slices=3, echoes=3, phase=True, rows=24, columns=24),
    "mr_4d": lambda: syn.mr_4d(slices=3, time_points=4, rows=16, columns=16),
    "mr_three_plane_scout": lambda: syn.mr_three_plane_scout(rows=32, columns=32),
    "enhanced_mr": lambda: syn.enhanced_mr(slices=3, echoes=2, rows=16, columns=16),
    "enhanced_mr_dwi": lambda: syn.enhanced_mr(
        slices=2, echoes=1, b_values=(0, 1000, 1000), rows=16, columns=16
    ),
    "secondary_capture_rgb": lambda: syn.secondary_capture_rgb(rows=20, columns=30),
    "non_image_sr": lambda: syn.non_image_sr(),
    "ge_field_map": lambda: syn.ge_field_map(slices=3, rows=16, columns=16, private_block=0x21),
    "uih_vframe_dwi": lambda: syn.uih_vframe_dwi(slices=5, rows=8, columns=8, directions=2),
}
CLASSIC_IMAGES = [
    "ct_volume",
    "ct_signed_12bit",
    "ct_tilted",
    "localizer_ct",
    "localizer_mr",
    "oblique_ct_with_localizer",
    "mr_3d",
    "mr_multi_echo",
    "mr_4d",
    "mr_three_plane_scout",
    "ge_field_map",
]
COMMON = [
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "ContentTime",
]
IMAGE = [
    "AcquisitionNumber",
    "ImageType",
    "AcquisitionTime",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "FrameOfReferenceUID",
    "PatientPosition",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "WindowCenter",
    "WindowWidth",
    "PixelData",
]
CT_ONLY = ["RescaleSlope", "RescaleIntercept", "RescaleType", "GantryDetectorTilt"]
MR_ONLY = [
    "EchoTime",
    "RepetitionTime",
    "FlipAngle",
    "EchoNumbers",
    "SequenceName",
    "ProtocolName",
]


def vec(values: object) -> NDArray[np.float64]:
    return np.array(values, dtype=np.float64)


def normal(ds: Dataset) -> NDArray[np.float64]:
    iop = vec(ds.ImageOrientationPatient)
    return np.cross(iop[:3], iop[3:])


def angle(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Angle between two lines (not oriented), in degrees."""
    cos = abs(float(a @ b)) / float(np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(min(1.0, cos)))


def read_back(datasets: list[Dataset], folder: Path, **kwargs: str) -> list[Dataset]:
    return [pydicom.dcmread(p) for p in syn.write_series(datasets, folder, **kwargs)]


@pytest.mark.parametrize("name", BUILDERS)
def test_every_builder_reads_back_with_sentinel_phi(name: str, tmp_path: Path) -> None:
    built = BUILDERS[name]()
    read = read_back(built, tmp_path)
    assert len(read) == len(built)
    for ds, back in zip(built, read, strict=True):
        for keyword in COMMON:
            assert keyword in back, keyword
        assert back.PatientName == syn.PHI_PATIENT_NAME
        assert back.PatientID == syn.PHI_PATIENT_ID
        assert back.PatientBirthDate == syn.PHI_BIRTH_DATE
        assert back.SOPInstanceUID == ds.SOPInstanceUID
        assert back.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert back.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        if "PixelData" in ds:
            np.testing.assert_array_equal(back.pixel_array, ds.pixel_array)
    uids = [ds.SOPInstanceUID for ds in built]
    assert len(set(uids)) == len(uids)
    assert all(uid.is_valid for uid in uids)


@pytest.mark.parametrize("name", CLASSIC_IMAGES)
def test_classic_images_have_the_header_elements(name: str) -> None:
    for ds in BUILDERS[name]():
        for keyword in [*COMMON, *IMAGE, *(CT_ONLY if ds.Modality == "CT" else MR_ONLY)]:
            assert keyword in ds, keyword
        assert ds.SOPClassUID in (CTImageStorage, MRImageStorage)
        assert len(ds.PixelData) == ds.Rows * ds.Columns * 2


def test_ge_field_map_private_elements_sit_in_their_creators_block() -> None:
    images = syn.ge_field_map(slices=3, rows=16, columns=16, private_block=0x21)
    assert [int(ds.InstanceNumber) for ds in images] == list(range(1, 7))
    for n, ds in enumerate(images, start=1):
        assert ds[0x00430021].value == "GEMS_PARM_01"
        assert ds[0x0043212F].value == 0
        assert ds[0x00432130].value == (0 if n <= 3 else 2)
        assert ds[0x00190021].value == "GEMS_ACQU_01"
        assert ds[0x0019219E].value == "B0map"
        assert ds[0x0021214F].value == 3
        assert int(ds.ImagesInAcquisition) == 6
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "OTHER"]
        # The decoy creator owns block 0x10 with misleading values.
        assert ds[0x0043102F].value == 1
    field_map, magnitude = images[0].pixel_array, images[3].pixel_array
    assert field_map.min() < 0 < field_map.max()  # Hz, signed
    assert magnitude.min() >= 0
    np.testing.assert_array_equal(
        vec(images[0].ImagePositionPatient), vec(images[3].ImagePositionPatient)
    )
    with pytest.raises(ConfigError):
        syn.ge_field_map(private_block=0x100)


@pytest.mark.parametrize(("slices", "grid"), [(4, (2, 2)), (5, (2, 3)), (20, (4, 5))])
def test_uih_vframe_tiles_and_private_header(slices: int, grid: tuple[int, int]) -> None:
    images = syn.uih_vframe_dwi(slices=slices, rows=8, columns=6, directions=2, b_value=800.0)
    assert len(images) == 3
    for v, ds in enumerate(images):
        assert "ImagePositionPatient" not in ds
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "M", "VFRAME"]
        assert (ds.Rows, ds.Columns) == (grid[0] * 8, grid[1] * 6)
        assert ds[0x00650010].value == "Image Private Header"
        assert int(ds[0x00651050].value) == slices
        positions = [vec(item.ImagePositionPatient) for item in ds[0x00651051].value]
        assert len(positions) == slices
        steps = np.diff(positions, axis=0) @ normal(ds)
        np.testing.assert_allclose(steps, 4.2, atol=1e-3)
        assert ds[0x00651009].value == (0.0 if v == 0 else 800.0)
        gradient = vec(ds[0x00651037].value)
        assert float(np.linalg.norm(gradient)) == pytest.approx(0.0 if v == 0 else 1.0)
    unused = images[0].pixel_array[(grid[0] - 1) * 8 :, (slices % grid[1] or grid[1]) * 6 :]
    assert not unused.any()
    with pytest.raises(ConfigError):
        syn.uih_vframe_dwi(directions=0)


def test_phantom_slices_differ() -> None:
    stack = syn.ct_volume(slices=6, rows=32, columns=32, pixel_spacing=(8.0, 8.0))
    pixels = [ds.pixel_array for ds in stack]
    for a, b in itertools.pairwise(pixels):
        assert not np.array_equal(a, b)
    assert len(np.unique(pixels[3])) >= 3  # air, tissue and at least one insert


@pytest.mark.parametrize(
    "orientation",
    [
        syn.AXIAL,
        syn.CORONAL,
        syn.SAGITTAL,
        syn.rotate_orientation(syn.AXIAL, axis="x", degrees=15.0),
        syn.rotate_orientation(syn.CORONAL, axis="z", degrees=-30.0),
    ],
    ids=["axial", "coronal", "sagittal", "oblique_x15", "oblique_z-30"],
)
@pytest.mark.parametrize("spacing", [1.25, 3.0])
def test_positions_are_spaced_along_the_normal(
    orientation: syn.Orientation, spacing: float
) -> None:
    stack = syn.ct_volume(
        slices=5, rows=16, columns=16, slice_spacing=spacing, orientation=orientation
    )
    n = normal(stack[0])
    steps = np.diff([vec(ds.ImagePositionPatient) for ds in stack], axis=0)
    np.testing.assert_allclose(steps @ n, spacing, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(steps, axis=1), spacing, atol=1e-3)
    for ds in stack:
        np.testing.assert_allclose(vec(ds.ImageOrientationPatient), orientation, atol=1e-6)
    # Centred on the origin by default.
    middle = vec(stack[2].ImagePositionPatient) + 7.5 * 2.0 * (
        vec(orientation[:3]) + vec(orientation[3:])
    )
    np.testing.assert_allclose(middle, 0.0, atol=1e-3)


def test_origin_is_the_first_position() -> None:
    stack = syn.ct_volume(slices=3, rows=16, columns=16, origin=(-10.0, 20.5, 300.0))
    np.testing.assert_allclose(vec(stack[0].ImagePositionPatient), (-10.0, 20.5, 300.0))


@pytest.mark.parametrize("tilt", [-20.0, 0.0, 12.5])
def test_gantry_tilt_is_the_angle_between_normal_and_stacking(tilt: float) -> None:
    spacing = 2.5
    stack = syn.ct_volume(slices=4, rows=16, columns=16, slice_spacing=spacing, gantry_tilt=tilt)
    assert float(stack[0].GantryDetectorTilt) == tilt
    n = normal(stack[0])
    col = vec(stack[0].ImageOrientationPatient)[3:]
    steps = np.diff([vec(ds.ImagePositionPatient) for ds in stack], axis=0)
    for step in steps:
        # The table moves along z; the slices are still `spacing` apart along the normal.
        assert angle(step, vec((0.0, 0.0, 1.0))) == pytest.approx(0.0, abs=1e-3)
        assert angle(step, n) == pytest.approx(abs(tilt), abs=1e-3)
        assert float(step @ n) == pytest.approx(spacing, abs=1e-3)
        assert float(step @ col) == pytest.approx(-spacing * math.tan(math.radians(tilt)), abs=1e-3)
    np.testing.assert_allclose(vec(stack[0].ImageOrientationPatient)[:3], (1.0, 0.0, 0.0))


def test_missing_and_duplicate_slices() -> None:
    full = syn.ct_volume(slices=8, rows=16, columns=16)
    stack = syn.ct_volume(slices=8, rows=16, columns=16, missing=(2, 5), duplicate=(3,))
    assert len(stack) == 7
    assert [ds.InstanceNumber for ds in stack] == [1, 2, 4, 5, 7, 8, 4]
    positions = [tuple(ds.ImagePositionPatient) for ds in stack]
    assert tuple(full[2].ImagePositionPatient) not in positions
    assert tuple(full[5].ImagePositionPatient) not in positions
    assert positions[-1] == positions[2] == tuple(full[3].ImagePositionPatient)
    assert stack[-1].SOPInstanceUID not in {ds.SOPInstanceUID for ds in stack[:-1]}
    assert stack[-1].PixelData == stack[2].PixelData
    # Kept slices keep their UIDs: dropping some does not renumber the rest.
    assert stack[0].SOPInstanceUID == full[0].SOPInstanceUID
    assert stack[5].SOPInstanceUID == full[7].SOPInstanceUID


def test_shuffled_instance_numbers() -> None:
    plain = syn.ct_volume(slices=12, rows=16, columns=16)
    shuffled = syn.ct_volume(slices=12, rows=16, columns=16, shuffle_instance_numbers=True)
    numbers = [ds.InstanceNumber for ds in shuffled]
    assert sorted(numbers) == list(range(1, 13))
    assert numbers != sorted(numbers)
    for a, b in zip(plain, shuffled, strict=True):
        assert a.ImagePositionPatient == b.ImagePositionPatient
    again = syn.ct_volume(slices=12, rows=16, columns=16, shuffle_instance_numbers=True)
    assert [ds.InstanceNumber for ds in again] == numbers


def test_signed_12bit_pixels_give_the_same_hounsfield_units() -> None:
    unsigned = syn.ct_volume(slices=2, rows=32, columns=32, pixel_spacing=(8.0, 8.0))
    signed = syn.ct_volume(
        slices=2, rows=32, columns=32, pixel_spacing=(8.0, 8.0), signed_12bit=True
    )
    for u, s in zip(unsigned, signed, strict=True):
        assert (s.BitsAllocated, s.BitsStored, s.HighBit, s.PixelRepresentation) == (16, 12, 11, 1)
        assert (u.BitsStored, u.PixelRepresentation) == (16, 0)
        assert s.pixel_array.min() == -1000
        hu_u = u.pixel_array * float(u.RescaleSlope) + float(u.RescaleIntercept)
        hu_s = s.pixel_array * float(s.RescaleSlope) + float(s.RescaleIntercept)
        np.testing.assert_array_equal(hu_u, hu_s)


def test_oblique_ct_with_localizer_shares_series_and_matrix() -> None:
    series = syn.oblique_ct_with_localizer(slices=10, rows=32, columns=32, pixel_spacing=(8.0, 8.0))
    scout, stack = series[0], series[1:]
    assert len(stack) == 10
    assert {ds.SeriesInstanceUID for ds in series} == {scout.SeriesInstanceUID}
    assert {(ds.Rows, ds.Columns) for ds in series} == {(32, 32)}
    assert {ds.FrameOfReferenceUID for ds in series} == {scout.FrameOfReferenceUID}
    assert list(scout.ImageType) == ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    assert all("LOCALIZER" not in ds.ImageType for ds in stack)
    assert angle(normal(stack[0]), vec((0.0, 0.0, 1.0))) == pytest.approx(15.0, abs=1e-3)
    assert angle(normal(scout), normal(stack[0])) == pytest.approx(90.0, abs=1e-3)
    steps = np.diff([vec(ds.ImagePositionPatient) for ds in stack], axis=0)
    np.testing.assert_allclose(steps @ normal(stack[0]), 3.0, atol=1e-3)
    numbers = [ds.InstanceNumber for ds in series]
    assert numbers == list(range(1, 12))
    for ds in stack:
        assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == scout.SOPInstanceUID


def test_mr_multi_echo_magnitude_and_phase() -> None:
    images = syn.mr_multi_echo(
        slices=3, echoes=2, echo_times=(4.0, 9.5), phase=True, rows=16, columns=16
    )
    assert len(images) == 3 * 2 * 2
    assert len({ds.SeriesInstanceUID for ds in images}) == 1
    keys = {(tuple(ds.ImagePositionPatient), int(ds.EchoNumbers), ds.ImageType[2]) for ds in images}
    assert len(keys) == len(images)
    assert {(int(ds.EchoNumbers), float(ds.EchoTime)) for ds in images} == {(1, 4.0), (2, 9.5)}
    assert {tuple(ds.ImageType) for ds in images} == {
        ("ORIGINAL", "PRIMARY", "M", "ND"),
        ("ORIGINAL", "PRIMARY", "P", "ND"),
    }
    magnitude = [ds for ds in images if ds.ImageType[2] == "M"]
    # Signal decays with the echo time.
    assert magnitude[0].pixel_array.sum() > magnitude[1].pixel_array.sum()
    assert [ds.InstanceNumber for ds in images] == list(range(1, 13))


def test_mr_4d_time_points() -> None:
    images = syn.mr_4d(slices=3, time_points=4, rows=16, columns=16, temporal_resolution=2.0)
    assert len(images) == 12
    assert {int(ds.NumberOfTemporalPositions) for ds in images} == {4}
    by_time: dict[int, list[Dataset]] = {}
    for ds in images:
        by_time.setdefault(int(ds.TemporalPositionIdentifier), []).append(ds)
    assert sorted(by_time) == [1, 2, 3, 4]
    for t, group in by_time.items():
        assert {int(ds.AcquisitionNumber) for ds in group} == {t}
        assert {float(ds.TriggerTime) for ds in group} == {(t - 1) * 2000.0}
        assert [ds.ImagePositionPatient for ds in group] == [
            ds.ImagePositionPatient for ds in by_time[1]
        ]
    assert by_time[1][0].AcquisitionTime < by_time[4][0].AcquisitionTime
    assert not np.array_equal(by_time[1][1].pixel_array, by_time[4][1].pixel_array)


def test_three_plane_scout_has_three_orthogonal_planes() -> None:
    scout = syn.mr_three_plane_scout(rows=16, columns=16)
    assert len(scout) == 3
    assert len({ds.SeriesInstanceUID for ds in scout}) == 1
    normals = [normal(ds) for ds in scout]
    for i in range(3):
        for j in range(i + 1, 3):
            assert angle(normals[i], normals[j]) == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("echoes", "time_points", "b_values"),
    [(1, 1, ()), (3, 1, ()), (1, 4, ()), (2, 2, ()), (1, 1, (0.0, 500.0, 1000.0, 1000.0))],
)
def test_enhanced_mr_functional_groups(
    echoes: int, time_points: int, b_values: tuple[float, ...], tmp_path: Path
) -> None:
    slices = 3
    (ds,) = syn.enhanced_mr(
        slices=slices,
        echoes=echoes,
        time_points=time_points,
        b_values=b_values,
        rows=8,
        columns=12,
        slice_spacing=4.0,
    )
    frames = slices * echoes * time_points * max(1, len(b_values))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.1"
    assert ds.NumberOfFrames == frames
    (back,) = read_back([ds], tmp_path)
    assert back.pixel_array.shape == (frames, 8, 12)
    np.testing.assert_array_equal(back.pixel_array, ds.pixel_array)
    shared = back.SharedFunctionalGroupsSequence[0]
    assert shared.PixelMeasuresSequence[0].SpacingBetweenSlices == 4.0
    assert len(shared.PlaneOrientationSequence[0].ImageOrientationPatient) == 6
    assert shared.PixelValueTransformationSequence[0].RescaleType == "US"
    assert list(shared.MRImageFrameTypeSequence[0].FrameType)[:3] == ["ORIGINAL", "PRIMARY", "M"]
    per_frame = back.PerFrameFunctionalGroupsSequence
    assert len(per_frame) == frames
    dims = len(back.DimensionIndexSequence)
    seen = set()
    positions: dict[int, set[tuple[float, ...]]] = {}
    for item in per_frame:
        content = item.FrameContentSequence[0]
        index = tuple(content.DimensionIndexValues)
        assert len(index) == dims
        seen.add(index)
        assert content.StackID == "1"
        assert 1 <= content.TemporalPositionIndex <= time_points
        assert content.FrameAcquisitionDateTime.startswith(syn.DEFAULT_STUDY.study_date)
        position = tuple(float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient)
        positions.setdefault(content.InStackPositionNumber, set()).add(position)
        assert item.MREchoSequence[0].EffectiveEchoTime > 0
        assert "WindowCenter" in item.FrameVOILUTSequence[0]
        if b_values:
            diffusion = item.MRDiffusionSequence[0]
            if diffusion.DiffusionBValue > 0:
                orientation = diffusion.DiffusionGradientDirectionSequence[0]
                assert len(orientation.DiffusionGradientOrientation) == 3
        else:
            assert "MRDiffusionSequence" not in item
    assert len(seen) == frames  # every frame has its own index
    assert sorted(positions) == [1, 2, 3]
    assert all(len(p) == 1 for p in positions.values())  # one position per stack place
    z = [next(iter(positions[k]))[2] for k in (1, 2, 3)]
    np.testing.assert_allclose(np.diff(z), 4.0)


def test_secondary_capture_is_rgb_without_geometry() -> None:
    (ds,) = syn.secondary_capture_rgb(rows=20, columns=30)
    assert (ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration) == (
        3,
        "RGB",
        0,
    )
    assert ds.pixel_array.shape == (20, 30, 3)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        assert keyword not in ds


def test_structured_report_has_no_pixels() -> None:
    (ds,) = syn.non_image_sr(text="Nothing to see.")
    assert "PixelData" not in ds
    assert ds.Modality == "SR"
    assert ds.ContentSequence[0].TextValue == "Nothing to see."


@pytest.mark.parametrize(
    "syntax",
    [
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    ],
    ids=["explicit_le", "implicit_le", "explicit_be", "deflated"],
)
def test_transfer_syntaxes_keep_pixels_and_values(syntax: str, tmp_path: Path) -> None:
    built = [
        *syn.ct_volume(slices=2, rows=16, columns=16, signed_12bit=True),
        *syn.mr_3d(slices=2, rows=16, columns=16),
        *syn.enhanced_mr(slices=2, echoes=2, rows=8, columns=8),
        *syn.secondary_capture_rgb(rows=8, columns=10),
        *syn.non_image_sr(),
    ]
    before = [ds.PixelData if "PixelData" in ds else None for ds in built]
    read = read_back(built, tmp_path, transfer_syntax=syntax, name_pattern="{index}")
    for ds, back, pixels in zip(built, read, before, strict=True):
        assert back.file_meta.TransferSyntaxUID == syntax
        assert back.SOPInstanceUID == ds.SOPInstanceUID
        assert back.PatientName == syn.PHI_PATIENT_NAME
        if pixels is not None:
            np.testing.assert_array_equal(back.pixel_array, ds.pixel_array)
            assert ds.PixelData == pixels  # the caller's dataset was not byte-swapped
        if "ImagePositionPatient" in ds:
            assert back.ImagePositionPatient == ds.ImagePositionPatient
            assert back[0x00191012].value in (3, b"\x03\x00")  # private US (UN when implicit)


def test_write_series_rejects_bad_arguments(tmp_path: Path) -> None:
    stack = syn.ct_volume(slices=2, rows=8, columns=8)
    with pytest.raises(ConfigError):
        syn.write_series(stack, tmp_path, transfer_syntax=JPEGBaseline8Bit)
    with pytest.raises(ConfigError):
        syn.write_series(stack, tmp_path, name_pattern="same")
    paths = syn.write_series(stack, tmp_path / "a" / "b", name_pattern="{instance:03d}_{sop}")
    assert [p.name for p in paths] == [
        f"{n:03d}_{ds.SOPInstanceUID}" for n, ds in [(1, stack[0]), (2, stack[1])]
    ]


def test_raw_dataset_has_no_preamble_and_no_meta(tmp_path: Path) -> None:
    (ds,) = syn.localizer(rows=16, columns=16)
    path = syn.write_raw_dataset(ds, tmp_path / "raw" / "RAW0001")
    data = path.read_bytes()
    assert data[:4] == b"\x08\x00\x05\x00"  # (0008,0005), implicit VR: no preamble, no DICM
    assert b"DICM" not in data[:132]
    assert b"\x02\x00\x10\x00" not in data[:1024]  # no Transfer Syntax UID element
    back = pydicom.dcmread(path, force=True)
    assert "TransferSyntaxUID" not in back.file_meta
    assert back.SOPInstanceUID == ds.SOPInstanceUID
    assert back.PatientID == syn.PHI_PATIENT_ID
    back.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    np.testing.assert_array_equal(back.pixel_array, ds.pixel_array)


def test_same_inputs_give_the_same_uids_and_new_seeds_do_not() -> None:
    a = syn.ct_volume(slices=2, rows=8, columns=8)
    b = syn.ct_volume(slices=2, rows=8, columns=8)
    c = syn.ct_volume(study=syn.StudySpec(seed="other"), slices=2, rows=8, columns=8)
    assert [ds.SOPInstanceUID for ds in a] == [ds.SOPInstanceUID for ds in b]
    assert not {ds.SOPInstanceUID for ds in a} & {ds.SOPInstanceUID for ds in c}
    assert a[0].StudyInstanceUID != c[0].StudyInstanceUID
    assert syn.derive_uid("a", "bc") != syn.derive_uid("ab", "c")


@pytest.mark.parametrize(
    "make",
    [
        lambda: syn.ct_volume(orientation=(1.0, 0.0, 0.0, 1.0, 0.0, 0.0)),
        lambda: syn.ct_volume(slices=4, missing=(4,)),
        lambda: syn.ct_volume(slices=4, missing=(1,), duplicate=(1,)),
        lambda: syn.ct_volume(gantry_tilt=75.0),
        lambda: syn.ct_volume(slice_spacing=0.0),
        lambda: syn.mr_multi_echo(echoes=2, echo_times=(5.0,)),
        lambda: syn.StudySpec(study_date="2024-01-02"),
    ],
    ids=[
        "not_orthogonal",
        "missing_range",
        "missing_and_duplicate",
        "tilt",
        "spacing",
        "tes",
        "date",
    ],
)
def test_bad_builder_arguments_raise_config_error(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigError):
        make()


def test_rotate_orientation() -> None:
    rotated = syn.rotate_orientation(syn.AXIAL, axis="x", degrees=90.0)
    np.testing.assert_allclose(rotated, (1.0, 0.0, 0.0, 0.0, 0.0, 1.0), atol=1e-12)
    rotated = syn.rotate_orientation(syn.AXIAL, axis="z", degrees=90.0)
    np.testing.assert_allclose(rotated, (0.0, 1.0, 0.0, -1.0, 0.0, 0.0), atol=1e-12)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Path]]]:
    root = tmp_path_factory.mktemp("demo")
    return root, syn.make_demo(root)


def test_make_demo_is_deterministic(
    demo: tuple[Path, dict[str, list[Path]]], tmp_path: Path
) -> None:
    root, _ = demo
    syn.make_demo(tmp_path)
    first, second = tree(root), tree(tmp_path)
    assert sorted(first) == sorted(second)
    for name, data in first.items():
        assert data == second[name], name


def test_make_demo_writes_every_case(demo: tuple[Path, dict[str, list[Path]]]) -> None:
    root, cases = demo
    counts = {name: len(paths) for name, paths in cases.items()}
    assert counts == {
        "ct_oblique_with_localizer": 41,
        "mr_three_plane_scout": 3,
        "mr_3d": 30,
        "mr_multi_echo": 64,
        "mr_4d": 50,
        "enhanced_mr": 1,
        "secondary_capture_rgb": 1,
        "non_image_sr": 1,
    }
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == sum(counts.values()) + 1
    assert (root / "README.txt").is_file()
    assert sum(p.stat().st_size for p in files) < 20 * 1024 * 1024
    assert any(p.suffix == "" for p in cases["ct_oblique_with_localizer"])
    assert all(len(p.relative_to(root).parts) >= 3 for p in files if p.name != "README.txt")
    syntaxes = {}
    for name, paths in cases.items():
        for path in paths:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert ds.PatientName == syn.PHI_PATIENT_NAME
            syntaxes[name] = ds.file_meta.TransferSyntaxUID
    assert syntaxes["mr_4d"] == ImplicitVRLittleEndian
    assert syntaxes["non_image_sr"] == DeflatedExplicitVRLittleEndian
    oblique = [pydicom.dcmread(p) for p in cases["ct_oblique_with_localizer"]]
    assert len({ds.SeriesInstanceUID for ds in oblique}) == 1
    assert {(ds.Rows, ds.Columns) for ds in oblique} == {(128, 128)}
    assert sum("LOCALIZER" in ds.ImageType for ds in oblique) == 1


@pytest.mark.parametrize("seed", ["t0", "bench-14"], ids=["ct_first", "mr_implicit_first"])
def test_make_bench_writes_exactly_n_files(seed: str, tmp_path: Path) -> None:
    paths = syn.make_bench(tmp_path, n_files=300, seed=seed)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(paths) == len(files) == 300
    assert sorted(paths) == files
    assert all(p.suffix == "" for p in files)
    assert all(len(p.relative_to(tmp_path).parts) == 4 for p in files)  # PAT/STUDY/SE/file
    sop_uids = set()
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        sop_uids.add(ds.SOPInstanceUID)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.PatientName == syn.PHI_PATIENT_NAME
        assert syn.PHI_PATIENT_ID in ds.PatientID
    assert len(sop_uids) == 300
    syntaxes = set()
    for path in files[:: 300 // 7]:
        ds = pydicom.dcmread(path)
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
        if ds.SeriesNumber > 1:
            assert "ReferencedImageSequence" in ds
        assert any(elem.tag.is_private for elem in ds)
        # The fast writer's bytes are exactly what pydicom writes for the same dataset.
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        assert buffer.getvalue() == path.read_bytes()
    expected = ImplicitVRLittleEndian if seed == "bench-14" else ExplicitVRLittleEndian
    assert expected in syntaxes


def test_make_bench_positions_follow_instance_numbers(tmp_path: Path) -> None:
    paths = syn.make_bench(tmp_path, n_files=12, seed="t0")
    stack = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths if "SE002" in p.parts]
    assert len(stack) == 11
    assert [ds.InstanceNumber for ds in stack] == list(range(1, 12))
    z = [float(ds.ImagePositionPatient[2]) for ds in stack]
    steps = np.diff(z)
    np.testing.assert_allclose(steps, steps[0], atol=1e-3)
    assert steps[0] > 0
    assert syn.make_bench(tmp_path / "none", n_files=0) == []


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert syn.main(["bench", str(tmp_path / "bench"), "--files", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "5 files" in out
    assert len([p for p in (tmp_path / "bench").rglob("*") if p.is_file()]) == 5


def _read_back_equal(path: Path) -> Dataset:
    """The file read by pydicom, checked to be what pydicom writes for that dataset."""
    ds = pydicom.dcmread(path)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    assert buffer.getvalue() == path.read_bytes()
    return ds


def test_make_bench_ct_is_one_noisy_axial_series(tmp_path: Path) -> None:
    paths = syn.make_bench_ct(tmp_path, slices=5)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert sorted(paths) == files
    assert len(files) == 5
    assert all(p.suffix == "" for p in files)
    assert all(len(p.relative_to(tmp_path).parts) == 4 for p in files)  # PAT/STUDY/SE/file
    stack = [_read_back_equal(p) for p in paths]
    assert len({ds.SeriesInstanceUID for ds in stack}) == 1
    assert [ds.InstanceNumber for ds in stack] == [1, 2, 3, 4, 5]
    for ds in stack:
        assert ds.Modality == "CT"
        assert "LOCALIZER" not in ds.ImageType
        assert (ds.Rows, ds.Columns, ds.BitsAllocated) == (512, 512, 16)
        assert (ds.PixelRepresentation, float(ds.RescaleIntercept)) == (0, -1024.0)
        assert not ds[0x00291010].value.startswith(b"SV10")  # no CSA header for dcm2niix
    np.testing.assert_allclose(np.diff([float(ds.ImagePositionPatient[2]) for ds in stack]), 0.625)
    arrays = [ds.pixel_array for ds in stack]
    assert all(a.shape == (512, 512) and a.dtype == np.uint16 for a in arrays)
    assert not np.array_equal(arrays[0], arrays[1])  # every slice has its own pixels
    hu = arrays[2].astype(np.int32) - 1024
    assert abs(float(np.median(hu[236:276, 236:276])) - 40.0) < 10  # soft tissue, noisy
    assert 5 < float(np.std(hu[236:276, 236:276])) < 40
    assert hu[0, 0] == -1024  # outside the reconstruction circle
    raw = np.stack(arrays).tobytes()
    assert 0.3 < len(zlib.compress(raw, 6)) / len(raw) < 0.55  # like real CT


def test_make_bench_mr_series_of_small_volumes(tmp_path: Path) -> None:
    paths = syn.make_bench_mr(tmp_path, series=7, slices=3)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert sorted(paths) == files
    assert len(files) == 21
    assert all(p.suffix == "" for p in files)
    assert all(len(p.relative_to(tmp_path).parts) == 4 for p in files)
    assert len({p.parent for p in files}) == 7
    assert len({p.parts[-4] for p in files}) == 2  # five series per patient
    stack = [_read_back_equal(p) for p in paths]
    assert len({ds.SeriesInstanceUID for ds in stack}) == 7
    assert {(ds.Rows, ds.Columns, ds.Modality) for ds in stack} == {(256, 256, "MR")}
    assert not any("LOCALIZER" in ds.ImageType for ds in stack)
    orientations = {tuple(round(float(v)) for v in ds.ImageOrientationPatient) for ds in stack}
    assert len(orientations) == 3  # axial, coronal and sagittal protocols
    first, second = stack[0].pixel_array, stack[1].pixel_array
    assert first.max() > 500
    assert not np.array_equal(first, second)


def test_bench_data_sets_are_deterministic(tmp_path: Path) -> None:
    syn.make_bench_mr(tmp_path / "a", series=2, slices=2)
    syn.make_bench_mr(tmp_path / "b", series=2, slices=2)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    syn.make_bench_ct(tmp_path / "c", slices=2)
    syn.make_bench_ct(tmp_path / "d", slices=2)
    assert tree(tmp_path / "c") == tree(tmp_path / "d")
    syn.make_bench_ct(tmp_path / "e", slices=2, seed="other")
    assert tree(tmp_path / "c") != tree(tmp_path / "e")


def test_bench_data_sets_examine_to_one_volume_per_series(tmp_path: Path) -> None:
    syn.make_bench_ct(tmp_path / "ct", slices=4)
    syn.make_bench_mr(tmp_path / "mr", series=6, slices=3)
    for name, shape, count in (("ct", (512, 512, 4), 1), ("mr", (256, 256, 3), 6)):
        examination = dicomsieve.examine(tmp_path / name)
        assert len(examination.series) == count
        for series in examination.series:
            (loadable,) = series.loadables
            assert loadable.kind == dicomsieve.LoadableKind.VOLUME
            assert loadable.selected
            assert loadable.shape == shape
            assert not loadable.warnings


def test_bench_data_sets_reject_bad_sizes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        syn.make_bench_ct(tmp_path, slices=0)
    with pytest.raises(ConfigError):
        syn.make_bench_mr(tmp_path, series=0)


def test_command_line_bench_data_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert syn.main(["bench-ct", str(tmp_path / "ct"), "--slices", "2"]) == 0
    assert syn.main(["bench-mr", str(tmp_path / "mr"), "--series", "2", "--slices", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 files" in out
    assert "4 files" in out
