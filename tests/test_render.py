"""Rendering for the screen: DICOM windowing, orthogonal planes, PNG images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dicomsieve.render import (
    CT_PRESETS,
    Window,
    apply_window,
    data_window,
    default_window,
    extract_plane,
    plane_count,
    presets,
    render_png,
    thumbnail_png,
    to_png,
)


def _affine(col: tuple[float, ...], row: tuple[float, ...], step: tuple[float, ...]) -> np.ndarray:
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2] = col, row, step
    return m


AXIAL = _affine((0.5, 0, 0), (0, 0.5, 0), (0, 0, 3.0))  # columns L, rows P, slices S
SAGITTAL = _affine((0, 1.0, 0), (0, 0, -1.0), (2.0, 0, 0))  # columns P, rows I, slices L


def _volume(shape: tuple[int, ...]) -> np.ndarray:
    """Each voxel holds its own index: value = i * 10000 + j * 100 + k."""
    grid = np.indices(shape[:3])
    base = grid[0] * 10000 + grid[1] * 100 + grid[2]
    if len(shape) == 4:
        base = np.stack([base + 1_000_000 * t for t in range(shape[3])], axis=-1)
    out: np.ndarray = base
    return out


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ------------------------------------------------------------------------ windows


def test_window_follows_the_dicom_linear_function() -> None:
    # PS3.3 C.11.2.1.2.1: c - 0.5 - (w - 1) / 2 and below is black, above
    # c - 0.5 + (w - 1) / 2 is white, linear in between.
    window = Window(40.0, 400.0)
    values = np.array([[-161.0, -160.5, 39.5, 239.0, 240.0, 1000.0]])
    out = apply_window(values, window)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 0, 128, 255, 255, 255]]


def test_window_of_width_one_is_a_threshold() -> None:
    out = apply_window(np.array([[99.0, 99.6, 100.0, 101.0]]), Window(100.0, 1.0))
    assert out.tolist() == [[0, 255, 255, 255]]


def test_monochrome1_is_inverted_after_windowing() -> None:
    values = np.array([[0.0, 50.0, 100.0]])
    plain = apply_window(values, Window(50.5, 101.0))
    inverted = apply_window(values, Window(50.5, 101.0), invert=True)
    assert plain.tolist() == [[0, 128, 255]]
    assert inverted.tolist() == [[255, 127, 0]]


def test_colour_passes_through_clipped() -> None:
    rgb = np.array([[[0, 128, 300]]], dtype=np.int32)
    assert apply_window(rgb, Window(0.0, 1.0)).tolist() == [[[0, 128, 255]]]


def test_default_window_is_the_first_header_pair() -> None:
    data = np.arange(10.0)
    window = default_window((40.0, 300.0), (400.0, 1500.0), data)
    assert (window.center, window.width, window.name) == (40.0, 400.0, "DICOM")


def test_default_window_without_header_values_is_the_data_range() -> None:
    data = np.array([-1000, 0, 700])
    for centers, widths in ((None, None), ((40.0,), None), ((40.0,), (0.0,))):
        window = default_window(centers, widths, data)
        assert (window.center, window.width, window.name) == (-150.0, 1700.0, "data range")
    # The data range maps the minimum to black and the maximum to white.
    assert apply_window(data, data_window(data)).tolist() == [0, 150, 255]


def test_data_window_of_constant_or_empty_data() -> None:
    assert data_window(np.full(4, 7.0)) == Window(7.0, 1.0, "data range")
    assert data_window(np.array([np.nan, 2.0, 4.0])) == Window(3.0, 2.0, "data range")
    assert data_window(np.array([], dtype=np.float32)) == Window(0.0, 1.0, "data range")


def test_presets_offer_every_header_window_then_the_range_then_ct_windows() -> None:
    data = np.array([-1000, 1000])
    ct = presets("CT", (40.0, 500.0), (400.0, 2000.0), data)
    assert [w.name for w in ct[:3]] == ["DICOM", "DICOM 2", "data range"]
    assert ct[3:] == CT_PRESETS
    assert {"CT brain", "CT bone", "CT lung", "CT soft tissue"} <= {w.name for w in ct}
    brain = next(w for w in CT_PRESETS if w.name == "CT brain")
    assert (brain.center, brain.width) == (40.0, 80.0)
    mr = presets("MR", None, None, data)
    assert [w.name for w in mr] == ["data range"]


# ------------------------------------------------------------------------ planes


def test_the_acquired_plane_is_shown_as_stored() -> None:
    volume = _volume((4, 3, 5))
    plane = extract_plane(volume, AXIAL, 2, 2)
    # [row, column]: row j down, column i to the right.
    assert plane.pixels.shape == (3, 4)
    assert plane.pixels[1, 3] == volume[3, 1, 2]
    assert plane.pixel_size == (0.5, 0.5)
    assert (plane.right, plane.down) == ("L", "P")


def test_reformats_of_an_axial_stack_have_superior_up() -> None:
    volume = _volume((4, 3, 5))
    coronal = extract_plane(volume, AXIAL, 1, 1)  # a fixed row: x across, z up
    assert coronal.pixels.shape == (5, 4)
    assert (coronal.right, coronal.down) == ("L", "I")
    assert coronal.pixel_size == (0.5, 3.0)
    # Top row is the last (most superior) slice; left column is column 0 (patient right).
    assert coronal.pixels[0, 0] == volume[0, 1, 4]
    assert coronal.pixels[4, 3] == volume[3, 1, 0]
    sagittal = extract_plane(volume, AXIAL, 0, 2)  # a fixed column: y across, z up
    assert sagittal.pixels.shape == (5, 3)
    assert (sagittal.right, sagittal.down) == ("P", "I")
    assert sagittal.pixels[0, 0] == volume[2, 0, 4]
    assert sagittal.pixels[4, 2] == volume[2, 2, 0]


def test_reformats_of_a_sagittal_stack() -> None:
    # Slices go to the patient's left; rows run down (inferior), columns posterior.
    volume = _volume((6, 5, 4))
    axial = extract_plane(volume, SAGITTAL, 1, 0)  # a fixed row: y (columns) and x (slices)
    assert (axial.right, axial.down) == ("L", "P")
    assert axial.pixels.shape == (6, 4)  # posterior down (columns), left across (slices)
    assert axial.pixels[0, 0] == volume[0, 0, 0]
    assert axial.pixels[5, 3] == volume[5, 0, 3]
    coronal = extract_plane(volume, SAGITTAL, 0, 2)  # a fixed column: z (rows) and x
    assert (coronal.right, coronal.down) == ("L", "I")
    assert coronal.pixels.shape == (5, 4)
    assert coronal.pixels[0, 0] == volume[2, 0, 0]
    assert coronal.pixel_size == (2.0, 1.0)


def test_time_points_and_bounds() -> None:
    volume = _volume((4, 3, 5, 2))
    assert plane_count(volume.shape, 2) == 5
    assert plane_count(volume.shape, 0) == 4
    second = extract_plane(volume, AXIAL, 2, 1, time=1)
    assert second.pixels[0, 0] == 1_000_000 + 1
    with pytest.raises(IndexError):
        extract_plane(volume, AXIAL, 2, 5)
    with pytest.raises(IndexError):
        extract_plane(volume, AXIAL, 2, 0, time=2)
    with pytest.raises(IndexError):
        extract_plane(_volume((4, 3, 5)), AXIAL, 2, 0, time=1)
    with pytest.raises(ValueError, match="axis"):
        extract_plane(volume, AXIAL, 3, 0)


def test_colour_planes_keep_their_channels() -> None:
    rgb = np.zeros((4, 3, 1, 3), dtype=np.uint8)
    rgb[1, 2, 0] = (10, 20, 30)
    assert plane_count(rgb.shape, 2, rgb=True) == 1
    plane = extract_plane(rgb, np.eye(4), 2, 0, rgb=True)
    assert plane.pixels.shape == (3, 4, 3)
    assert plane.pixels[2, 1].tolist() == [10, 20, 30]


# ------------------------------------------------------------------------ PNG


def test_png_pixels_are_square_in_millimetres() -> None:
    image = np.zeros((40, 128), dtype=np.uint8)  # 40 rows 3 mm apart, 128 columns 0.5 mm
    png = _png(to_png(image, (0.5, 3.0)))
    assert png.size == (128, 240)
    assert png.mode == "L"
    assert _png(to_png(image, (0.5, 3.0), max_size=120)).size == (64, 120)


def test_render_png_windows_and_encodes() -> None:
    volume = np.zeros((4, 2, 1), dtype=np.int16)
    volume[3, 1, 0] = 400
    plane = extract_plane(volume, np.eye(4), 2, 0)
    png = _png(render_png(plane, Window(200.0, 401.0)))
    assert png.size == (4, 2)
    assert png.getpixel((3, 1)) == 255
    assert png.getpixel((0, 0)) == 0
    inverted = _png(render_png(plane, Window(200.0, 401.0), invert=True))
    assert (inverted.getpixel((3, 1)), inverted.getpixel((0, 0))) == (0, 255)


def test_thumbnails_fit_the_box_and_keep_colour() -> None:
    wide = np.zeros((512, 256, 1), dtype=np.int16)  # 512 columns, 256 rows
    plane = extract_plane(wide, np.eye(4), 2, 0)
    assert _png(thumbnail_png(plane, Window(0.0, 1.0), size=128)).size == (128, 64)
    small = extract_plane(np.zeros((20, 10, 1)), np.eye(4), 2, 0)
    assert _png(thumbnail_png(small, Window(0.0, 1.0))).size == (20, 10)
    rgb = extract_plane(np.zeros((8, 6, 1, 3), dtype=np.uint8), np.eye(4), 2, 0, rgb=True)
    assert _png(thumbnail_png(rgb, Window(0.0, 1.0))).mode == "RGB"
