"""The world-space matcher of ``tests/conformance.py``, on synthetic affines (no shared data)."""

from __future__ import annotations

import itertools
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from conformance import (
    Case,
    KnownDifference,
    RefOutput,
    check_known_differences,
    compare,
    geometry_match,
    load_cases,
    max_matching,
    prepare_input,
    stale_known_cases,
)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def oblique_lps(spacing: tuple[float, float, float] = (0.5, 0.5, 2.0)) -> NDArray[np.float64]:
    """A double-oblique LPS affine (i = column, j = row, k = slice)."""
    a, b = np.radians(20.0), np.radians(-12.0)
    rot_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rot_z = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = rot_z @ rot_x @ np.diag(spacing)
    out[:3, 3] = (-120.5, 88.25, 40.0)
    return out


def sheared_lps() -> NDArray[np.float64]:
    """A tilted-gantry affine: the slice step is not along the slice normal."""
    out = np.eye(4)
    out[:3, 0] = (0.48, 0.0, 0.0)
    out[:3, 1] = (0.0, 0.455, -0.152)
    out[:3, 2] = (0.0, 0.0, 2.37)  # stacking along z, rows tilted by 18.5 degrees
    out[:3, 3] = (-123.5, 218.1, 664.1)
    return out


def reindexed(
    affine: NDArray[np.float64],
    shape: tuple[int, int, int],
    perm: tuple[int, ...],
    flip: tuple[bool, ...],
) -> tuple[NDArray[np.float64], tuple[int, int, int]]:
    """The affine and shape of the same grid stored with axes permuted and flipped.

    Stored axis ``a`` is original axis ``perm[a]``, reversed when ``flip[a]``.
    """
    m = np.zeros((4, 4))
    m[3, 3] = 1.0
    for a in range(3):
        n = shape[perm[a]]
        if flip[a]:
            m[perm[a], a] = -1.0
            m[perm[a], 3] = n - 1
        else:
            m[perm[a], a] = 1.0
    new_shape = (shape[perm[0]], shape[perm[1]], shape[perm[2]])
    return affine @ m, new_shape


@pytest.mark.parametrize(
    ("perm", "flip"),
    [
        (p, f)
        for p in itertools.permutations(range(3))
        for f in itertools.product((False, True), repeat=3)
    ],
)
def test_any_permutation_and_flip_matches(perm: tuple[int, ...], flip: tuple[bool, ...]) -> None:
    ours = oblique_lps()
    shape = (64, 48, 20)
    ref, ref_shape = reindexed(ours, shape, perm, flip)
    found = geometry_match(ref, ref_shape, ours, shape)
    assert found is not None
    assert found.max_distance_mm < 1e-9
    assert found.perm == perm
    assert found.flip == flip


def test_sheared_affine_matches_itself_flipped() -> None:
    ours = sheared_lps()
    shape = (512, 512, 54)
    ref, ref_shape = reindexed(ours, shape, (0, 1, 2), (False, True, False))
    assert geometry_match(ref, ref_shape, ours, shape) is not None


def test_orthogonal_approximation_of_a_sheared_grid_does_not_match() -> None:
    ours = sheared_lps()
    rigid = ours.copy()
    normal = np.cross(ours[:3, 0], ours[:3, 1])
    rigid[:3, 2] = normal / np.linalg.norm(normal) * 2.37
    shape = (512, 512, 54)
    assert geometry_match(rigid, shape, ours, shape) is None


def test_one_voxel_shift_does_not_match() -> None:
    ours = oblique_lps()
    ref = ours.copy()
    ref[:3, 3] += ours[:3, 2]  # starts one slice later
    assert geometry_match(ref, (64, 48, 20), ours, (64, 48, 20)) is None


def test_same_corners_with_other_slice_count_does_not_match() -> None:
    ours = oblique_lps()
    ref = ours.copy()
    ref[:3, 2] = ours[:3, 2] * 19 / 38  # 39 slices spanning the same extent
    assert geometry_match(ref, (64, 48, 39), ours, (64, 48, 20)) is None


def test_tolerance() -> None:
    ours = oblique_lps()
    ref = ours.copy()
    ref[:3, 3] += (0.03, 0.0, 0.0)
    assert geometry_match(ref, (64, 48, 20), ours, (64, 48, 20)) is not None
    ref[:3, 3] += (0.1, 0.0, 0.0)
    assert geometry_match(ref, (64, 48, 20), ours, (64, 48, 20)) is None


def test_single_slice_ignores_slice_step() -> None:
    ours = oblique_lps()
    ref = ours.copy()
    ref[:3, 2] *= -3.0  # one slice: the slice step is arbitrary
    assert geometry_match(ref, (64, 48, 1), ours, (64, 48, 1)) is not None


# --------------------------------------------------------------------------- compare()


def ref_output(
    name: str,
    lps: NDArray[np.float64] | None,
    shape: tuple[int, ...],
    sidecar: dict[str, Any] | None = None,
) -> RefOutput:
    sform = None if lps is None else tuple(tuple(row) for row in (LPS_TO_RAS @ lps).tolist())
    return RefOutput(name, shape, (), sform, sidecar or {})


def loadable(
    name: str,
    kind: str,
    shape: list[int],
    lps: NDArray[np.float64] | None,
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "selected": kind in ("volume", "sequence"),
        "confidence": 0.9,
        "reason": "test",
        "files": [],
        "frames": None,
        "shape": shape,
        "spacing": None,
        "affine_lps": None if lps is None else lps.tolist(),
        "warnings": [],
    }


def exam(*series: tuple[int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "series": [
            {
                "series_instance_uid": f"1.2.{number}",
                "series_number": number,
                "series_description": "",
                "modality": "MR",
                "loadables": loadables,
                "warnings": [],
                "left_out": [],
            }
            for number, loadables in series
        ]
    }


def case_of(*outputs: RefOutput) -> Case:
    return Case("folder", "In/x", "dcm2niix", "dcm2niix", outputs, ())


def test_compare_pairs_permuted_4d_and_geometryless() -> None:
    vol = oblique_lps()
    ras_sorted, ras_shape = reindexed(vol, (64, 48, 20), (2, 1, 0), (True, True, False))
    result = compare(
        case_of(
            ref_output("a_4d", ras_sorted, (*ras_shape, 5)),
            ref_output("shot", None, (650, 512, 1)),
            ref_output("only_ref", vol, (64, 48, 21)),
        ),
        exam(
            (3, [loadable("seq", "sequence", [64, 48, 20, 5], vol)]),
            (4, [loadable("screen", "image", [650, 512, 1], None)]),
            (5, [loadable("sr", "unsupported", [], None)]),
            (6, [loadable("same grid, 3D", "volume", [64, 48, 20], vol)]),
        ),
    )
    assert [(p.ref.name, p.ours.name) for p in result.pairs] == [
        ("a_4d", "seq"),
        ("shot", "screen"),
    ]
    assert [r.name for r in result.unmatched_ref] == ["only_ref"]
    assert sorted(lo.description for lo in result.unmatched_ours) == [
        "S5 unsupported",
        "S6 volume 64x48x20",
    ]


def test_compare_prefers_series_number_and_phase() -> None:
    vol = oblique_lps()
    shape = (80, 80, 53)
    outputs = (
        ref_output("x_e1", vol, shape, {"SeriesNumber": 7, "ImageType": ["M"]}),
        ref_output("x_e1_ph", vol, shape, {"SeriesNumber": 7, "ImageType": ["P"]}),
        ref_output("y", vol, shape, {"SeriesNumber": 8}),
    )
    result = compare(
        case_of(*outputs),
        exam(
            (8, [loadable("y volume", "volume", list(shape), vol)]),
            (
                7,
                [
                    loadable("echo 1 phase", "volume", list(shape), vol),
                    loadable("echo 1", "volume", list(shape), vol),
                ],
            ),
        ),
    )
    assert {(p.ref.name, p.ours.name) for p in result.pairs} == {
        ("x_e1", "echo 1"),
        ("x_e1_ph", "echo 1 phase"),
        ("y", "y volume"),
    }


def test_max_matching_reroutes_a_greedy_choice() -> None:
    # Left 0 took right 0 greedily; left 1 can only use right 0, so left 0 moves to right 1.
    assert max_matching(2, {0: [0, 1], 1: [0]}, {0: 0}) == {0: 1, 1: 0}
    assert max_matching(3, {0: [0], 1: [0], 2: []}, {}) == {0: 0}


def test_known_differences_unlisted_and_stale() -> None:
    vol = oblique_lps()
    result = compare(
        case_of(ref_output("lost", vol, (4, 4, 4))),
        exam((2, [loadable("loc", "localizer", [4, 4, 1], vol)])),
    )
    table = {
        "folder/In/x": (
            KnownDifference("dcm2niix", "lost", "reason"),
            KnownDifference("dicomsieve", "S2 localizer 4x4x1", "reason"),
        )
    }
    assert check_known_differences(result, table) == []
    assert len(check_known_differences(result, {})) == 2
    stale = {"folder/In/x": (*table["folder/In/x"], KnownDifference("dcm2niix", "gone", "r"))}
    problems = check_known_differences(result, stale)
    assert len(problems) == 1
    assert "stale" in problems[0]
    assert stale_known_cases(["folder/In/x"], {"folder/In/x": 1, "nope/x": 2}) == ["nope/x"]


# --------------------------------------------------------------------------- cases and inputs


def test_load_cases_picks_run_and_skips_derived(tmp_path: Path) -> None:
    output = {"shape": [4, 4, 4], "zooms": [1, 1, 1], "sform_code": 1, "sform": np.eye(4).tolist()}
    index = {
        "folder": "demo",
        "cases": {
            "In/a": {
                "input": {},
                "dcm2niix": {"command": "dcm2niix -i y", "outputs": {"x": output}},
                "dcm2niix_without_ignore": {
                    "command": "dcm2niix -i n",
                    "outputs": {
                        "x": output,
                        "x_Tilt_1": output,
                        "x_Eq_1": output,
                        "x_ROI1": output,
                        "loc": {**output, "sform_code": 0},
                    },
                },
            },
            "ZIP:t/z.zip": {"input": {}, "dcm2niix": {"command": "c", "outputs": {}}},
            "FILE:t/one.dcm": {"input": {}, "dcm2niix": {"command": "c", "outputs": {}}},
        },
    }
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "ref_index.json").write_text(json.dumps(index))
    cases = {c.case_id: c for c in load_cases(tmp_path)}
    assert sorted(cases) == ["demo/In/a", "demo/t/one.dcm", "demo/t/z.zip"]
    a = cases["demo/In/a"]
    assert a.run == "dcm2niix_without_ignore"
    assert [o.name for o in a.outputs] == ["loc", "x"]
    assert a.outputs[0].sform_ras is None
    assert sorted(a.skipped) == ["x_Eq_1", "x_ROI1", "x_Tilt_1"]
    assert cases["demo/t/z.zip"].input_kind == "zip"
    assert cases["demo/t/one.dcm"].input_kind == "file"


def test_prepare_input_extracts_zip(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "demo" / "t").mkdir(parents=True)
    with zipfile.ZipFile(plain / "demo" / "t" / "z.zip", "w") as archive:
        archive.writestr("CT1.dcm", b"x")
    case = Case("demo", "ZIP:t/z.zip", "dcm2niix", "c", (), ())
    work = tmp_path / "work"
    first = prepare_input(case, plain, work)
    assert (first / "CT1.dcm").read_bytes() == b"x"
    assert prepare_input(case, plain, work) == first
    folder = Case("demo", "In/a", "dcm2niix", "c", (), ())
    assert prepare_input(folder, plain, work) == plain / "demo" / "In" / "a"
