"""Reference lines of a volume's slices on a localizer."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomsieve.codes import LoadableKind
from dicomsieve.loadables.model import Loadable, Matrix4
from dicomsieve.loadables.reference import reference_lines


def _loadable(
    kind: LoadableKind, affine: list[list[float]], shape: tuple[int, int, int]
) -> Loadable:
    rows = tuple(tuple(float(v) for v in row) for row in affine)
    return Loadable(
        name=str(kind),
        kind=kind,
        series_instance_uid="1.2.3",
        slices=(),
        shape=shape,
        spacing=None,
        affine_lps=rows,  # type: ignore[arg-type]
    )


def _axial(z0: float, step: float, n: int, size: int = 100, spacing: float = 2.0) -> Loadable:
    # Rows along +x, columns along +y, slices along +z, centred on x = y = 0.
    half = (size - 1) * spacing / 2
    return _loadable(
        LoadableKind.VOLUME,
        [[spacing, 0, 0, -half], [0, spacing, 0, -half], [0, 0, step, z0], [0, 0, 0, 1]],
        (size, size, n),
    )


def _coronal(top: float, size: int = 128, spacing: float = 2.0) -> Loadable:
    # Coronal scout: along its rows +x, down its columns -z (head at the top).
    half = (size - 1) * spacing / 2
    return _loadable(
        LoadableKind.LOCALIZER,
        [[spacing, 0, 0, -half], [0, 0, 1, 0], [0, -spacing, 0, top], [0, 0, 0, 1]],
        (size, size, 1),
    )


def test_axial_slices_are_horizontal_lines_on_a_coronal_scout() -> None:
    scout = _coronal(top=100.0)
    volume = _axial(z0=-20.0, step=5.0, n=9)
    lines = reference_lines(scout, volume)
    assert [line.slice_index for line in lines] == list(range(9))
    for line in lines:
        z = -20.0 + 5.0 * line.slice_index
        expected_row = (100.0 - z) / 2.0
        assert line.start[1] == pytest.approx(expected_row)
        assert line.end[1] == pytest.approx(expected_row)
        # The slice spans x in [-100, 100] (100 pixels of 2 mm, widened by half a pixel):
        # on the scout (x = -127 at column 0, 2 mm per column) columns 13.5 to 113.5.
        xs = sorted((line.start[0], line.end[0]))
        assert xs == pytest.approx([13.5, 113.5])


def test_parallel_slices_have_no_line() -> None:
    scout = _loadable(
        LoadableKind.LOCALIZER,
        [[2, 0, 0, -127], [0, 2, 0, -127], [0, 0, 1, 0], [0, 0, 0, 1]],
        (128, 128, 1),
    )
    assert reference_lines(scout, _axial(z0=-20.0, step=5.0, n=4)) == []


def test_no_geometry_is_an_error() -> None:
    bare = Loadable(
        name="x",
        kind=LoadableKind.IMAGE,
        series_instance_uid="1",
        slices=(),
        shape=(4, 4, 1),
        spacing=None,
        affine_lps=None,
    )
    with pytest.raises(ValueError, match="no geometry"):
        reference_lines(bare, _axial(0.0, 1.0, 3))


@settings(max_examples=60, deadline=None)
@given(
    z=st.floats(min_value=-60, max_value=60),
    tilt=st.floats(min_value=-40, max_value=40),
)
def test_line_points_lie_in_both_planes(z: float, tilt: float) -> None:
    """Every line end is on the localizer plane and inside the slice's plane."""
    scout = _coronal(top=100.0)
    a = math.radians(tilt)
    # One axial slice tilted about x by ``tilt`` degrees, through (0, 0, z).
    col = (0.0, 2.0 * math.cos(a), 2.0 * math.sin(a))
    volume = _loadable(
        LoadableKind.VOLUME,
        [
            [2.0, col[0], 0, -99.0],
            [0, col[1], 0, -99.0 * col[1] / 2],
            [0, col[2], 1, z - 99.0 * col[2] / 2],
            [0, 0, 0, 1],
        ],
        (100, 100, 1),
    )
    lines = reference_lines(scout, volume)
    assert len(lines) == 1
    line = lines[0]
    affine: Matrix4 = scout.affine_lps  # type: ignore[assignment]
    for column, row in (line.start, line.end):
        x = affine[0][0] * column + affine[0][1] * row + affine[0][3]
        y = affine[1][0] * column + affine[1][1] * row + affine[1][3]
        zz = affine[2][0] * column + affine[2][1] * row + affine[2][3]
        # Line ends are rounded to 1e-6 pixel (2e-6 mm here).
        assert y == pytest.approx(0.0, abs=1e-5)  # on the coronal plane y = 0
        # In the slice's plane: (p - origin) . normal = 0, normal = x-axis x col.
        normal = (0.0, -col[2], col[1])
        origin = (-99.0, -99.0 * col[1] / 2, z - 99.0 * col[2] / 2)
        dot = sum(n * (p - o) for n, p, o in zip(normal, (x, y, zz), origin, strict=True))
        assert dot == pytest.approx(0.0, abs=1e-5)
