"""Properties of examine, with hypothesis.

Clean stacks are built as records in memory (a template record read once from a
synthetic file, with the geometry replaced), so each example costs no I/O. The mixed
pool for the order and coverage properties is written and read once per session.
"""

from __future__ import annotations

import functools
import math
import random
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from dicomsieve import synthetic as syn
from dicomsieve.codes import LoadableKind
from dicomsieve.loadables import Examination, SourceInstance, examine_instances
from dicomsieve.model import InstanceRecord
from dicomsieve.settings import Settings
from test_examine_rules import assert_invariants, read_instances, relabel

SETTINGS = Settings()
PROPERTY = settings(max_examples=40, deadline=None)
Vec = NDArray[np.float64]
Orientation = tuple[float, float, float, float, float, float]

LOCALIZER_TYPES = [
    ("ORIGINAL", "PRIMARY", "LOCALIZER"),
    ("ORIGINAL", "PRIMARY", "AXIAL"),  # only the orientation tells
]


# --- Records in memory ------------------------------------------------------------------


@functools.cache
def template() -> InstanceRecord:
    """One CT slice as the scan reads it: every field a real record has."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = syn.write_series(syn.ct_volume(slices=1, rows=16, columns=16), tmp)
        (instance,) = read_instances(paths)
    return instance.record


def _rotation(a: float, b: float, c: float) -> Vec:
    ca, sa = math.cos(a), math.sin(a)
    cb, sb = math.cos(b), math.sin(b)
    cc, sc = math.cos(c), math.sin(c)
    rz = np.array([[ca, -sa, 0.0], [sa, ca, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cc, -sc], [0.0, sc, cc]])
    out: Vec = rz @ ry @ rx
    return out


angles = st.floats(-math.pi, math.pi, allow_nan=False)


@st.composite
def orientations(draw: st.DrawFn) -> Orientation:
    """Orthonormal direction cosines of a random rotation, to 6 places as scanners write."""
    r = _rotation(draw(angles), draw(angles), draw(angles))
    values = [round(float(v), 6) + 0.0 for v in (*r[:, 0], *r[:, 1])]
    return (values[0], values[1], values[2], values[3], values[4], values[5])


def normal_of(orientation: Orientation) -> Vec:
    n = np.cross(orientation[:3], orientation[3:])
    out: Vec = n / np.linalg.norm(n)
    return out


coordinates = st.floats(-500.0, 500.0, allow_nan=False)
origins = st.tuples(coordinates, coordinates, coordinates)
pixel_spacings = st.tuples(st.floats(0.2, 3.0), st.floats(0.2, 3.0))


def stack(
    *,
    series: str,
    orientation: Orientation,
    spacing: float,
    slices: int,
    origin: tuple[float, float, float],
    pixel_spacing: tuple[float, float],
    first_instance_number: int = 1,
) -> list[SourceInstance]:
    """A clean stack: ``slices`` records ``spacing`` mm apart along the normal."""
    step = normal_of(orientation) * spacing
    out = []
    for k in range(slices):
        position = np.array(origin) + k * step
        record = replace(
            template(),
            sop_instance_uid=f"{series}.{k + 1}",
            series_instance_uid=series,
            instance_number=first_instance_number + k,
            image_position=(float(position[0]), float(position[1]), float(position[2])),
            image_orientation=orientation,
            pixel_spacing=pixel_spacing,
            slice_thickness=spacing,
        )
        out.append(SourceInstance(f"/virtual/{series}/IM{k:04d}", record, instance_id=k + 1))
    return out


def examine(instances: list[SourceInstance], rng: random.Random | None = None) -> Examination:
    shuffled = list(instances)
    if rng is not None:
        rng.shuffle(shuffled)
    examination = examine_instances(shuffled, SETTINGS)
    assert_invariants(instances, examination)
    return examination


# --- Clean volumes ----------------------------------------------------------------------


@PROPERTY
@given(
    orientation=orientations(),
    spacing=st.floats(0.5, 5.0),
    slices=st.integers(2, 60),
    origin=origins,
    pixel_spacing=pixel_spacings,
    rng=st.randoms(use_true_random=False),
)
def test_a_clean_volume_is_never_split_and_its_affine_hits_every_slice(
    orientation: Orientation,
    spacing: float,
    slices: int,
    origin: tuple[float, float, float],
    pixel_spacing: tuple[float, float],
    rng: random.Random,
) -> None:
    instances = stack(
        series="2.25.7001",
        orientation=orientation,
        spacing=spacing,
        slices=slices,
        origin=origin,
        pixel_spacing=pixel_spacing,
    )
    examination = examine(instances, rng)
    (series,) = examination.series
    assert series.warnings == ()
    (volume,) = series.loadables
    assert volume.kind is LoadableKind.VOLUME
    assert volume.selected
    assert volume.warnings == ()
    assert volume.files == tuple(inst.path for inst in instances), "ascending along the normal"
    assert volume.shape == (16, 16, slices)
    assert volume.affine_lps is not None
    affine = np.array(volume.affine_lps)
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    # Cosines written to 6 places are unit vectors to ~1e-6; examine may normalise them.
    np.testing.assert_allclose(affine[:3, 0], row * pixel_spacing[1], atol=1e-5)
    np.testing.assert_allclose(affine[:3, 1], col * pixel_spacing[0], atol=1e-5)
    for k, inst in enumerate(instances):
        mapped = affine @ np.array([0.0, 0.0, float(k), 1.0])
        position = inst.record.image_position
        assert position is not None
        np.testing.assert_allclose(mapped[:3], position, rtol=0, atol=1e-4)
        assert mapped[3] == 1.0


def _angle_deg(a: Vec, b: Vec) -> float:
    cos = abs(float(a @ b)) / float(np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(min(1.0, cos)))


@PROPERTY
@example(  # the smallest majority: two slices and one image at right angles, no token
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    scout_orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
    spacing=1.0,
    slices=2,
    origin=(0.0, 0.0, 0.0),
    scout_origin=(0.0, 0.0, 0.0),
    pixel_spacing=(1.0, 1.0),
    scout_type=LOCALIZER_TYPES[1],
    scout_first=False,
    rng=random.Random(0),
)
@given(
    orientation=orientations(),
    scout_orientation=orientations(),
    spacing=st.floats(0.5, 5.0),
    slices=st.integers(2, 40),
    origin=origins,
    scout_origin=origins,
    pixel_spacing=pixel_spacings,
    scout_type=st.sampled_from(LOCALIZER_TYPES),
    scout_first=st.booleans(),
    rng=st.randoms(use_true_random=False),
)
def test_a_clean_volume_and_a_same_matrix_localizer_are_one_volume_and_one_localizer(
    orientation: Orientation,
    scout_orientation: Orientation,
    spacing: float,
    slices: int,
    origin: tuple[float, float, float],
    scout_origin: tuple[float, float, float],
    pixel_spacing: tuple[float, float],
    scout_type: tuple[str, ...],
    scout_first: bool,
    rng: random.Random,
) -> None:
    # "Another orientation": planes at least 10 degrees apart; else one at right angles.
    if _angle_deg(normal_of(orientation), normal_of(scout_orientation)) < 10.0:
        n = [round(float(v), 6) + 0.0 for v in normal_of(orientation)]
        scout_orientation = (orientation[0], orientation[1], orientation[2], n[0], n[1], n[2])
    series = "2.25.7002"
    instances = stack(
        series=series,
        orientation=orientation,
        spacing=spacing,
        slices=slices,
        origin=origin,
        pixel_spacing=pixel_spacing,
        first_instance_number=2 if scout_first else 1,
    )
    scout_record = replace(
        instances[0].record,
        sop_instance_uid=f"{series}.999",
        instance_number=1 if scout_first else slices + 1,
        image_type=scout_type,
        image_position=scout_origin,
        image_orientation=scout_orientation,
        slice_thickness=1.0,
    )
    scout = SourceInstance(f"/virtual/{series}/SCOUT", scout_record, instance_id=999)
    examination = examine([*instances, scout], rng)
    (result,) = examination.series
    assert sorted(str(lo.kind) for lo in result.loadables) == ["localizer", "volume"]
    (volume,) = [lo for lo in result.loadables if lo.kind is LoadableKind.VOLUME]
    (localizer,) = [lo for lo in result.loadables if lo.kind is LoadableKind.LOCALIZER]
    assert volume.selected
    assert not localizer.selected
    assert volume.files == tuple(inst.path for inst in instances)
    assert localizer.files == (scout.path,)
    assert volume.warnings == ()


# --- A pool of everything: order and coverage -------------------------------------------


@functools.cache
def pool() -> tuple[SourceInstance, ...]:
    """Every kind of series, small, read once (examine never opens the files)."""
    axial = syn.ct_volume(series_number=20, slices=4, rows=8, columns=8)
    sagittal = relabel(
        syn.ct_volume(
            series_uid=axial[0].SeriesInstanceUID,
            slices=4,
            rows=8,
            columns=8,
            orientation=syn.SAGITTAL,
            first_instance_number=5,
        ),
        "sagittal",
    )
    other_matrix = relabel(
        syn.ct_volume(
            series_uid=axial[0].SeriesInstanceUID, slices=3, rows=10, columns=10, origin=(0, 0, 50)
        ),
        "other-matrix",
    )
    datasets = [
        *syn.oblique_ct_with_localizer(
            series_number=10, slices=6, rows=8, columns=8, pixel_spacing=(16.0, 16.0)
        ),
        *syn.ct_volume(
            series_number=11,
            slices=7,
            rows=8,
            columns=8,
            missing=(2,),
            duplicate=(4,),
            shuffle_instance_numbers=True,
        ),
        *syn.ct_volume(series_number=12, slices=5, rows=8, columns=8, gantry_tilt=10.0),
        *syn.mr_multi_echo(series_number=13, slices=3, echoes=2, phase=True, rows=8, columns=8),
        *syn.mr_4d(series_number=14, slices=3, time_points=3, rows=8, columns=8),
        *syn.mr_three_plane_scout(series_number=15, rows=8, columns=8),
        *syn.enhanced_mr(series_number=16, slices=3, echoes=2, rows=8, columns=8),
        *syn.secondary_capture_rgb(series_number=17, rows=8, columns=8),
        *syn.non_image_sr(series_number=18),
        *syn.ct_volume(series_number=19, slices=1, rows=8, columns=8),
        *axial,
        *sagittal,
        *other_matrix,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        instances = read_instances(syn.write_series(datasets, Path(tmp) / "pool"))
    # Two files holding an already indexed SOPInstanceUID.
    for original in (instances[3], instances[30]):
        copy = SourceInstance(
            original.path + ".copy",
            original.record,
            instance_id=1000 + (original.instance_id or 0),
            duplicate_of=original.instance_id,
        )
        instances.append(copy)
    return tuple(instances)


@functools.cache
def canonical() -> dict[str, object]:
    examination = examine_instances(list(pool()), SETTINGS)
    return examination.to_dict()


@PROPERTY
@given(order=st.deferred(lambda: st.permutations(range(len(pool())))))
def test_the_input_order_never_changes_the_result(order: list[int]) -> None:
    instances = [pool()[i] for i in order]
    examination = examine_instances(instances, SETTINGS)
    assert examination.to_dict() == canonical()


@PROPERTY
@given(
    chosen=st.deferred(lambda: st.sets(st.integers(0, len(pool()) - 1), min_size=1)),
    rng=st.randoms(use_true_random=False),
)
def test_every_instance_lands_in_a_loadable_or_is_left_out(
    chosen: set[int], rng: random.Random
) -> None:
    # Any subset: partial volumes, lone echoes, incomplete time points, orphan copies.
    examine([pool()[i] for i in sorted(chosen)], rng)
