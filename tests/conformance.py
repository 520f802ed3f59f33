"""Conformance of ``dicomsieve.examine`` with dcm2niix, compared in world space.

A pure library used by ``tests/test_conformance.py`` and ``tools/conformance_report.py``.

Every ``../shared/data/<folder>/ref_index.json`` records, for each case (a folder, a single
file or a zip file inside ``<folder>``), the outputs of a fresh dcm2niix conversion. This
module turns each case into a list of reference outputs, examines the same input with
dicomsieve, and pairs the two sides by geometry:

* the run used is ``dcm2niix_without_ignore`` (``-i n``, nothing skipped) where it exists,
  else ``dcm2niix`` (upstream's own options);
* outputs that dcm2niix derived from the images are skipped: ``_Tilt`` (gantry tilt
  corrected), ``_Eq`` (resampled to equal slice spacing) and ``_ROI<n>`` (a DICOM overlay
  plane written as its own image);
* a dcm2niix output and a dicomsieve loadable match when the same axis permutation and
  flips map the 8 corner voxels of one onto the 8 corner voxels of the other, in LPS
  millimetres, within :data:`ATOL_MM` plus :data:`RTOL` times the diagonal of the grid.
  dcm2niix's sform is RAS (``LPS = diag(-1, -1, 1) @ RAS``) and may reorder or flip the
  voxel axes, so the spatial shapes must be equal as a multiset, through that permutation.
  For 4D outputs only the 3 spatial axes are compared, and the number of volumes
  (time points, b-values...) must be equal too;
* an output without a sform (dcm2niix writes none for screenshots without geometry)
  matches a loadable without an affine and of the same spatial shape (as a multiset).

Each difference (an output or a loadable left without a partner) must be listed in
:data:`KNOWN_DIFFERENCES` with a reason; ``tests/test_conformance.py`` fails on unlisted
differences and on listed ones that no longer occur.
"""

from __future__ import annotations

import gzip
import importlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ATOL_MM",
    "DATA_DIR",
    "DERIVED_OUTPUT",
    "KNOWN_DIFFERENCES",
    "RTOL",
    "Case",
    "CaseResult",
    "KnownDifference",
    "OurLoadable",
    "Pair",
    "RefOutput",
    "check_known_differences",
    "compare",
    "examine_json",
    "geometry_match",
    "load_cases",
    "make_plain_copy",
    "max_matching",
    "near_miss",
    "prepare_input",
    "run_all",
    "stale_known_cases",
    "tolerance_mm",
]

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""``../shared/data`` next to the repository (read-only)."""

ATOL_MM = 0.05
"""Absolute tolerance on corner voxel centres, in mm."""
RTOL = 1e-4
"""Relative tolerance on corner voxel centres, as a fraction of the grid diagonal."""

DERIVED_OUTPUT = re.compile(r"_(Tilt|Eq)(_|$)|_ROI\d+$")
"""Names of dcm2niix outputs derived from the images rather than converted from them."""

RAS_FROM_LPS: NDArray[np.float64] = np.diag([-1.0, -1.0, 1.0, 1.0])

Side = Literal["dcm2niix", "dicomsieve"]
Float4x4 = NDArray[np.float64]


# --------------------------------------------------------------------------- reference side


@dataclass(frozen=True)
class RefOutput:
    """One dcm2niix output (one NIfTI) as recorded in ``ref_index.json``."""

    name: str
    shape: tuple[int, ...]
    zooms: tuple[float, ...]
    sform_ras: tuple[tuple[float, ...], ...] | None
    sidecar: Mapping[str, Any] = field(default_factory=dict)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The first three axes (voxel grid)."""
        s = (*self.shape, 1, 1, 1)
        return (s[0], s[1], s[2])

    @property
    def volumes(self) -> int:
        """Number of 3D volumes (product of the axes beyond the third)."""
        return int(np.prod(self.shape[3:])) if len(self.shape) > 3 else 1

    @property
    def affine_lps(self) -> Float4x4 | None:
        """The sform converted to LPS."""
        if self.sform_ras is None:
            return None
        return RAS_FROM_LPS @ np.asarray(self.sform_ras, dtype=np.float64)

    @property
    def series_number(self) -> int | None:
        """SeriesNumber from the JSON sidecar, when recorded."""
        value = self.sidecar.get("SeriesNumber")
        return value if isinstance(value, int) else None

    @property
    def shape_text(self) -> str:
        """``512x512x28``."""
        return "x".join(str(n) for n in self.shape)


@dataclass(frozen=True)
class Case:
    """One conversion case of a shared-data folder."""

    folder: str
    key: str
    run: str
    command: str
    outputs: tuple[RefOutput, ...]
    skipped: tuple[str, ...]
    input_summary: Mapping[str, Any] = field(default_factory=dict)

    @property
    def input_kind(self) -> Literal["dir", "file", "zip"]:
        """How the input is given: a folder, one file (``FILE:``) or a zip (``ZIP:``)."""
        if self.key.startswith("FILE:"):
            return "file"
        if self.key.startswith("ZIP:"):
            return "zip"
        return "dir"

    @property
    def rel_path(self) -> str:
        """The input path relative to the folder, without the ``FILE:``/``ZIP:`` prefix."""
        return self.key.split(":", 1)[1] if self.input_kind != "dir" else self.key

    @property
    def case_id(self) -> str:
        """``folder/relative/path``, e.g. ``dcm_qa_ct/In/GE``."""
        return f"{self.folder}/{self.rel_path}"


def _output(name: str, raw: Mapping[str, Any]) -> RefOutput:
    sform = raw.get("sform")
    if raw.get("sform_code", 1) == 0:
        sform = None
    return RefOutput(
        name=name,
        shape=tuple(int(n) for n in raw["shape"]),
        zooms=tuple(float(z) for z in raw.get("zooms") or ()),
        sform_ras=tuple(tuple(float(v) for v in row) for row in sform) if sform else None,
        sidecar=raw.get("sidecar") or {},
    )


def load_cases(data_dir: Path = DATA_DIR) -> list[Case]:
    """Every case of every ``<folder>/ref_index.json``, sorted by folder and case key."""
    cases: list[Case] = []
    for index_path in sorted(data_dir.glob("*/ref_index.json")):
        index = json.loads(index_path.read_text(encoding="utf-8"))
        folder = str(index.get("folder") or index_path.parent.name)
        for key, entry in sorted(index["cases"].items()):
            run = "dcm2niix_without_ignore" if "dcm2niix_without_ignore" in entry else "dcm2niix"
            outputs: list[RefOutput] = []
            skipped: list[str] = []
            for name, raw in sorted(entry[run].get("outputs", {}).items()):
                if DERIVED_OUTPUT.search(name):
                    skipped.append(name)
                else:
                    outputs.append(_output(name, raw))
            cases.append(
                Case(
                    folder=folder,
                    key=key,
                    run=run,
                    command=str(entry[run].get("command", "")),
                    outputs=tuple(outputs),
                    skipped=tuple(skipped),
                    input_summary=entry.get("input") or {},
                )
            )
    return cases


# --------------------------------------------------------------------------- inputs


def make_plain_copy(data_dir: Path, out: Path) -> Path:
    """Copy ``data_dir`` into ``out`` with ``.dcm.gz`` files gunzipped (as the test fixture).

    ``data_dir`` is only read.
    """
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file():
            continue
        target = out / path.relative_to(data_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".dcm.gz"):
            with gzip.open(path) as src, open(target.with_suffix(""), "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(path, target)
    return out


def _safe_name(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", case_id)


def prepare_input(case: Case, plain_root: Path, work_dir: Path) -> Path:
    """The path to examine for ``case``, inside a plain (gunzipped) copy of the data.

    A zip input is extracted into a folder of ``work_dir`` (once); a folder or a single
    file is used where it is in ``plain_root``.
    """
    source = plain_root / case.folder / case.rel_path
    if case.input_kind != "zip":
        return source
    target = work_dir / _safe_name(case.case_id)
    if not target.is_dir():
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with zipfile.ZipFile(source) as archive:
            for member in archive.infolist():
                dest = (tmp / member.filename).resolve()
                if not dest.is_relative_to(tmp.resolve()):
                    raise ValueError(f"zip member outside the target: {member.filename!r}")
            archive.extractall(tmp)
        tmp.rename(target)
    return target


# --------------------------------------------------------------------------- dicomsieve side


def examine_json(path: Path) -> dict[str, Any]:
    """dicomsieve's examine JSON for ``path``: the library if it has ``examine``, else the CLI."""
    module = importlib.import_module("dicomsieve")
    examine = getattr(module, "examine", None)
    if callable(examine):
        result = cast(Callable[[str], Any], examine)(str(path))
        return cast(dict[str, Any], result.to_dict())
    exe = Path(sys.executable).with_name("dicomsieve")
    done = subprocess.run(
        [str(exe), "examine", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return cast(dict[str, Any], json.loads(done.stdout))


@dataclass(frozen=True)
class OurLoadable:
    """One dicomsieve loadable, flattened with its series."""

    series_uid: str
    series_number: int | None
    series_description: str | None
    name: str
    kind: str
    selected: bool
    shape: tuple[int, ...]
    affine: tuple[tuple[float, ...], ...] | None
    files: tuple[str, ...]
    warnings: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def spatial_shape(self) -> tuple[int, int, int] | None:
        """``(columns, rows, slices)``, or ``None`` for an object without pixels."""
        if len(self.shape) < 3:
            return None
        return (self.shape[0], self.shape[1], self.shape[2])

    @property
    def volumes(self) -> int:
        """Time points of a sequence, 1 otherwise."""
        return int(np.prod(self.shape[3:])) if len(self.shape) > 3 else 1

    @property
    def affine_lps(self) -> Float4x4 | None:
        """``affine_lps`` as an array."""
        return None if self.affine is None else np.asarray(self.affine, dtype=np.float64)

    @property
    def warning_codes(self) -> tuple[str, ...]:
        """The codes of the loadable's warnings, in order."""
        return tuple(str(w.get("code")) for w in self.warnings)

    @property
    def shape_text(self) -> str:
        """``512x512x28``, or ``-`` without a shape."""
        return "x".join(str(n) for n in self.shape) or "-"

    @property
    def description(self) -> str:
        """Stable key in :data:`KNOWN_DIFFERENCES`: ``S201 volume 512x512x54``."""
        number = "?" if self.series_number is None else str(self.series_number)
        shape = "x".join(str(n) for n in self.shape)
        return f"S{number} {self.kind}" + (f" {shape}" if shape else "")


def flatten(exam: Mapping[str, Any]) -> list[OurLoadable]:
    """Every loadable of an examine JSON object, in series order."""
    out: list[OurLoadable] = []
    for series in exam.get("series", []):
        for lo in series.get("loadables", []):
            affine = lo.get("affine_lps")
            out.append(
                OurLoadable(
                    series_uid=str(series.get("series_instance_uid", "")),
                    series_number=series.get("series_number"),
                    series_description=series.get("series_description"),
                    name=str(lo.get("name", "")),
                    kind=str(lo.get("kind", "")),
                    selected=bool(lo.get("selected")),
                    shape=tuple(int(n) for n in lo.get("shape") or ()),
                    affine=tuple(tuple(float(v) for v in row) for row in affine)
                    if affine
                    else None,
                    files=tuple(str(f) for f in lo.get("files") or ()),
                    warnings=tuple(lo.get("warnings") or ()),
                    raw=lo,
                )
            )
    return out


# --------------------------------------------------------------------------- geometry


def corners(affine: Float4x4, shape: Sequence[int]) -> NDArray[np.float64]:
    """The 8 corner voxel centres (rows of a (8, 3) array) of a 3D grid."""
    index = np.array(
        [[i, j, k, 1.0] for i, j, k in itertools.product(*((0, n - 1) for n in shape[:3]))],
        dtype=np.float64,
    )
    return (index @ affine.T)[:, :3]


@dataclass(frozen=True)
class AxisMap:
    """How reference axis ``a`` maps to loadable axis ``perm[a]`` (``flip[a]``: reversed).

    ``max_distance_mm`` is the largest distance between corresponding corner voxel
    centres; ``first_slice_mm`` and ``last_slice_mm`` are the same over the corners of the
    loadable's first and last slice (k = 0 and k = n - 1).
    """

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    max_distance_mm: float
    first_slice_mm: float = 0.0
    last_slice_mm: float = 0.0

    def text(self) -> str:
        """``i->i, j->-j, k->k``: where each dcm2niix axis goes in the loadable (ijk)."""
        names = "ijk"
        return ", ".join(
            f"{names[a]}->{'-' if self.flip[a] else ''}{names[self.perm[a]]}" for a in range(3)
        )


def _homogeneous(index: NDArray[np.float64], affine: Float4x4) -> NDArray[np.float64]:
    ones = np.ones((len(index), 1), dtype=np.float64)
    world: NDArray[np.float64] = np.hstack([index, ones]) @ affine.T
    return world[:, :3]


def axis_maps(
    ref_affine: Float4x4, ref_shape: Sequence[int], our_affine: Float4x4, our_shape: Sequence[int]
) -> list[AxisMap]:
    """Every axis permutation and flip that maps the reference shape onto ours, with the
    corner distances it leaves (best first)."""
    ref3 = [int(n) for n in ref_shape[:3]]
    our3 = [int(n) for n in our_shape[:3]]
    ref_idx = np.array(list(itertools.product(*((0, n - 1) for n in ref3))), dtype=np.float64)
    ref_world = _homogeneous(ref_idx, ref_affine)
    maps: list[AxisMap] = []
    for perm in itertools.permutations(range(3)):
        if any(our3[perm[a]] != ref3[a] for a in range(3)):
            continue
        for flip in itertools.product((False, True), repeat=3):
            if any(f and ref3[a] == 1 for a, f in enumerate(flip)):
                continue  # flipping an axis of one voxel changes nothing
            our_idx = np.zeros_like(ref_idx)
            for a in range(3):
                col = ref_idx[:, a]
                our_idx[:, perm[a]] = (ref3[a] - 1 - col) if flip[a] else col
            dist = np.linalg.norm(_homogeneous(our_idx, our_affine) - ref_world, axis=1)
            first = our_idx[:, 2] == 0
            last = our_idx[:, 2] == our3[2] - 1
            maps.append(
                AxisMap(
                    perm=(perm[0], perm[1], perm[2]),
                    flip=(flip[0], flip[1], flip[2]),
                    max_distance_mm=float(dist.max()),
                    first_slice_mm=float(dist[first].max()),
                    last_slice_mm=float(dist[last].max()),
                )
            )
    return sorted(maps, key=lambda m: m.max_distance_mm)


def tolerance_mm(
    ref_affine: Float4x4, ref_shape: Sequence[int], atol: float = ATOL_MM, rtol: float = RTOL
) -> float:
    """``atol + rtol * diagonal`` of the reference grid (corner to farthest corner)."""
    world = corners(ref_affine, ref_shape)
    return atol + rtol * float(np.max(np.linalg.norm(world - world[0], axis=1)))


def geometry_match(
    ref_affine: Float4x4,
    ref_shape: Sequence[int],
    our_affine: Float4x4,
    our_shape: Sequence[int],
    atol: float = ATOL_MM,
    rtol: float = RTOL,
) -> AxisMap | None:
    """The axis permutation and flips under which the two grids share their corners.

    Both affines map voxel indices to the same world frame (here LPS mm). A match needs
    ``our_shape[perm[a]] == ref_shape[a]`` for every axis and every corner voxel of the
    reference at the world position of the corresponding voxel of the loadable. As both
    maps are affine, equal corners mean equal voxel centres everywhere.
    """
    maps = axis_maps(ref_affine, ref_shape, our_affine, our_shape)
    tol = tolerance_mm(ref_affine, ref_shape, atol, rtol)
    return maps[0] if maps and maps[0].max_distance_mm <= tol else None


@dataclass(frozen=True)
class NearMiss:
    """The closest loadable of the same shape to an unmatched dcm2niix output."""

    ours: OurLoadable
    axes: AxisMap

    def text(self) -> str:
        """``S2 volume 512x512x28: first slice 0.00 mm, last slice 43.88 mm``."""
        return (
            f"{self.ours.description}: corners off by up to {self.axes.max_distance_mm:.2f} mm"
            f" (first slice {self.axes.first_slice_mm:.2f} mm,"
            f" last slice {self.axes.last_slice_mm:.2f} mm)"
        )


def near_miss(ref: RefOutput, loadables: Iterable[OurLoadable]) -> NearMiss | None:
    """The loadable with the same shape and volume count whose corners come closest."""
    ref_affine = ref.affine_lps
    if ref_affine is None:
        return None
    best: NearMiss | None = None
    for lo in loadables:
        our_affine, our_shape = lo.affine_lps, lo.spatial_shape
        if our_affine is None or our_shape is None or lo.volumes != ref.volumes:
            continue
        maps = axis_maps(ref_affine, ref.spatial_shape, our_affine, our_shape)
        if maps and (best is None or maps[0].max_distance_mm < best.axes.max_distance_mm):
            best = NearMiss(lo, maps[0])
    return best


def pair_geometry(ref: RefOutput, ours: OurLoadable) -> AxisMap | Literal[False] | None:
    """An :class:`AxisMap` when the two match, ``None`` when both lack geometry and match
    by shape, ``False`` when they do not match."""
    our_shape = ours.spatial_shape
    if our_shape is None or ref.volumes != ours.volumes:
        return False
    ref_affine, our_affine = ref.affine_lps, ours.affine_lps
    if ref_affine is None or our_affine is None:
        if ref_affine is None and our_affine is None:
            return None if sorted(ref.spatial_shape) == sorted(our_shape) else False
        return False
    found = geometry_match(ref_affine, ref.spatial_shape, our_affine, our_shape)
    return False if found is None else found


# --------------------------------------------------------------------------- pairing


@dataclass(frozen=True)
class Pair:
    """A dcm2niix output and the dicomsieve loadable with the same voxel grid."""

    ref: RefOutput
    ours: OurLoadable
    axes: AxisMap | None
    """``None`` when neither has geometry (matched by shape)."""


@dataclass(frozen=True)
class CaseResult:
    """The comparison of one case."""

    case: Case
    loadables: tuple[OurLoadable, ...]
    pairs: tuple[Pair, ...]
    unmatched_ref: tuple[RefOutput, ...]
    unmatched_ours: tuple[OurLoadable, ...]
    exam: Mapping[str, Any] = field(default_factory=dict, repr=False)
    examined_path: str = ""

    def differences(self) -> Counter[tuple[Side, str]]:
        """Unmatched items as ``(side, item)`` with counts."""
        out: Counter[tuple[Side, str]] = Counter()
        for ref in self.unmatched_ref:
            out["dcm2niix", ref.name] += 1
        for ours in self.unmatched_ours:
            out["dicomsieve", ours.description] += 1
        return out

    def kinds(self) -> Counter[str]:
        """dicomsieve loadables by kind."""
        return Counter(lo.kind for lo in self.loadables)


def _echo(text: str) -> int | None:
    m = re.search(r"(?:_e|echo[ _-]?)(\d+)", text, re.IGNORECASE)
    return int(m.group(1)) if m else None


def _ref_component(ref: RefOutput) -> str:
    image_type = [str(t).upper() for t in ref.sidecar.get("ImageType") or ()]
    if re.search(r"_ph(_|$)", ref.name) or "P" in image_type or "PHASE" in image_type:
        return "phase"
    if "fieldmap" in ref.name.lower() or "FIELDMAPHZ" in image_type:
        return "field map"
    return "other"


def _our_component(ours: OurLoadable) -> str:
    name = ours.name.lower()
    if re.search(r"\bphase\b|\bph\b", name):
        return "phase"
    if re.search(r"field ?map", name):
        return "field map"
    return "other"


def _preference(ref: RefOutput, ours: OurLoadable) -> int:
    """How well two geometric matches agree otherwise: series number, component, echo."""
    score = 0
    if ref.series_number is not None and ref.series_number == ours.series_number:
        score += 4
    if _ref_component(ref) == _our_component(ours):
        score += 2
    echo_ref, echo_ours = _echo(ref.name), _echo(ours.name)
    if echo_ref is not None and echo_ref == echo_ours:
        score += 1
    return score


def max_matching(
    n_left: int, edges: Mapping[int, Sequence[int]], initial: Mapping[int, int]
) -> dict[int, int]:
    """Maximum bipartite matching (left -> right) grown from ``initial`` by augmenting paths."""
    right_of: dict[int, int] = dict(initial)
    left_of: dict[int, int] = {r: left for left, r in right_of.items()}

    def augment(left: int, seen: set[int]) -> bool:
        for r in edges.get(left, ()):
            if r in seen:
                continue
            seen.add(r)
            if r not in left_of or augment(left_of[r], seen):
                left_of[r] = left
                right_of[left] = r
                return True
        return False

    for left in range(n_left):
        if left not in right_of:
            augment(left, set())
    return right_of


def compare(case: Case, exam: Mapping[str, Any], examined_path: str = "") -> CaseResult:
    """Pair the reference outputs of ``case`` with the loadables of ``exam``."""
    ours = flatten(exam)
    refs = case.outputs
    geometry: dict[tuple[int, int], AxisMap | None] = {}
    scored: list[tuple[int, int, int]] = []
    for i, ref in enumerate(refs):
        for j, lo in enumerate(ours):
            found = pair_geometry(ref, lo)
            if found is not False:
                geometry[i, j] = found
                scored.append((-_preference(ref, lo), i, j))
    scored.sort()
    greedy: dict[int, int] = {}
    taken: set[int] = set()
    for _, i, j in scored:
        if i not in greedy and j not in taken:
            greedy[i] = j
            taken.add(j)
    edges: dict[int, list[int]] = {}
    for _, i, j in scored:
        edges.setdefault(i, []).append(j)
    matching = max_matching(len(refs), edges, greedy)
    pairs = tuple(
        Pair(ref=refs[i], ours=ours[j], axes=geometry[i, j]) for i, j in sorted(matching.items())
    )
    used = set(matching.values())
    return CaseResult(
        case=case,
        loadables=tuple(ours),
        pairs=pairs,
        unmatched_ref=tuple(r for i, r in enumerate(refs) if i not in matching),
        unmatched_ours=tuple(lo for j, lo in enumerate(ours) if j not in used),
        exam=exam,
        examined_path=examined_path,
    )


def run_all(
    cases: Iterable[Case],
    plain_root: Path,
    work_dir: Path,
    examine: Callable[[Path], Mapping[str, Any]] = examine_json,
) -> dict[str, CaseResult]:
    """Examine every case once (one call per case input) and compare; keyed by case id."""
    results: dict[str, CaseResult] = {}
    for case in cases:
        path = prepare_input(case, plain_root, work_dir)
        results[case.case_id] = compare(case, examine(path), str(path))
    return results


# --------------------------------------------------------------------------- known differences


@dataclass(frozen=True)
class KnownDifference:
    """An expected unmatched item of one case, and why.

    ``item`` is a dcm2niix output name (side ``dcm2niix``) or a loadable description such
    as ``S201 volume 512x512x54`` (side ``dicomsieve``, see
    :attr:`OurLoadable.description`); ``count`` is how many such items are unmatched.
    """

    side: Side
    item: str
    reason: str
    count: int = 1


def _d(item: str, reason: str, count: int = 1) -> KnownDifference:
    return KnownDifference("dcm2niix", item, reason, count)


def _s(item: str, reason: str, count: int = 1) -> KnownDifference:
    return KnownDifference("dicomsieve", item, reason, count)


_TILT_STEP = (
    "dcm2niix's sheared sform steps the slice distance measured along the normal ({normal} mm)"
    " along the stacking axis, where the positions step {step} mm: its last slice is {off} mm"
    " from the last file's position; dicomsieve's third column is (last - first)/(n - 1)"
)
_SAME_AS = "the same slices as dcm2niix's {name}; first slice equal, last slice placed by its file"
_NO_PIXELS = "{what} without pixel data: dicomsieve reports it as unsupported, dcm2niix skips it"

KNOWN_DIFFERENCES: dict[str, tuple[KnownDifference, ...]] = {
    "dcm_qa_ct/In/GE": (
        _d(
            "_2",
            "gaps of 1.08-7.0 mm along the normal, tilted 18.5 deg: dcm2niix steps the first"
            " gap (4.002 mm) along z, so its last slice is 43.9 mm from the last file's"
            " position; dicomsieve's mean step (5.627 mm along z) places the first and last"
            " slices, with UNEQUAL_SPACING",
        ),
        _s("S2 volume 512x512x28", _SAME_AS.format(name="_2")),
    ),
    "dcm_qa_ct/In/Philips": (
        _d(
            "1F_STEREOTAXIS_Head_201",
            _TILT_STEP.format(normal="2.371", step="2.5", off="6.85"),
        ),
        _s("S201 volume 512x512x54", _SAME_AS.format(name="1F_STEREOTAXIS_Head_201")),
        _d(
            "1A_TRAUMA_PLAIN_HEAD_DM_Head_401",
            "dcm2niix stacks the two REF_SURVIEW planning images (one position) as 2 volumes"
            " of one slice; dicomsieve offers each as a localizer",
        ),
        _s(
            "S401 localizer 512x256x1",
            "a DERIVED\\SECONDARY\\REF_SURVIEW planning image (I10, I20) offered as a localizer,"
            " not selected; dcm2niix put both in one 512x256x1x2 output",
            count=2,
        ),
    ),
    "dcm_qa_philips_enh/In/enh": (
        _s("S2001 unsupported", _NO_PIXELS.format(what="the Philips Raw Data Storage object")),
    ),
    "dcm_qa_xa30i/In/2001_AAHead_Scout": (
        _d(
            "2001_AAHead_Scout_i2001001",
            "dcm2niix stacks two parallel sagittal MPR scout images 100 mm apart into a 2-slice"
            " volume; dicomsieve keeps them as two localizers",
        ),
        _s(
            "S2001 localizer 162x162x1",
            "one of the two parallel sagittal scout images 100 mm apart that dcm2niix stacked"
            " as i2001001",
            count=2,
        ),
    ),
    "dcm_qa_xa30i/In/99_Phoenix_Document": (
        _s("S99 unsupported", _NO_PIXELS.format(what="Enhanced SR PhoenixZIPReport")),
    ),
    "dcmstack/test/data/dcmstack/2D_16Echo_qT2": (
        _d(
            "3_2D_16Echo_qT2_1",
            "TE 20 ms slices at -33.7, -23.2 and -2.2 mm (gaps 10.5 and 21 mm): dcm2niix steps"
            " 10.5 mm, so its last slice is 10.5 mm off; dicomsieve spans first to last and"
            " warns",
        ),
        _s("S3 volume 192x192x3", _SAME_AS.format(name="3_2D_16Echo_qT2_1")),
    ),
    "dicom-numpy/tests/dupe-positions.zip": (
        _d(
            "1_6.14_ROUTINE_CHEST_ABD_PELVIS",
            "gaps vary from 7.5 to 115 mm: dcm2niix steps the first gap (112.5 mm), so its last"
            " slice is at z = +500 instead of -42.5 (542.5 mm off); dicomsieve spans the 10"
            " positions with UNEQUAL_SPACING and DUPLICATE_POSITION",
        ),
        _s("S1 volume 512x512x10", _SAME_AS.format(name="1_6.14_ROUTINE_CHEST_ABD_PELVIS")),
        _s(
            "S1 image 512x512x1",
            "CT28.dcm repeats CT26.dcm (same position, InstanceNumber and pixels, another"
            " SOPInstanceUID): dicomsieve offers it apart, not selected; dcm2niix drops it",
        ),
    ),
    "dicom2nifti/tests/data/failing/gantrytilting/001": (
        _d("4_", _TILT_STEP.format(normal="4.851", step="5.0", off="0.45")),
        _s("S4 volume 512x512x4", _SAME_AS.format(name="4_")),
    ),
    "dicom2nifti/tests/data/failing/sliceincrement/001": (
        _d(
            "2_dicom2nifti",
            "gaps 5, 5 and 10 mm (a missing slice): dcm2niix steps 5 mm, so its last slice is"
            " 5 mm off; dicomsieve spans first to last with MISSING_SLICES",
        ),
        _s("S2 volume 512x512x4", _SAME_AS.format(name="2_dicom2nifti")),
    ),
    "dicom2nifti/tests/data/failing/sliceincrement/002": (
        _d(
            "3_",
            "instance 4 missing (gaps 0.778, 0.778, 1.556 mm along z) and a 15.5 deg tilt:"
            " dcm2niix steps 0.750 mm (first gap along the normal) along z, so its last slice"
            " is 0.86 mm off; dicomsieve spans first to last with MISSING_SLICES",
        ),
        _s("S3 volume 512x512x4", _SAME_AS.format(name="3_")),
    ),
    "heudiconv/heudiconv/tests/data/MRI_102TD_PHA_S.MR.Chen_Matthews_1.3.1.2022.11.16.15.50.20.357"
    ".31204541.dcm": (
        _s(
            "S3 localizer 162x162x1",
            "a frame of a derived 3-frame MPR scout in one enhanced file: dcm2niix converts"
            " nothing from it, dicomsieve offers each frame as a localizer, not selected",
            count=3,
        ),
    ),
    "heudiconv/heudiconv/tests/data/Phoenix/99+PhoenixDocument": (
        _s("S99 unsupported", _NO_PIXELS.format(what="Enhanced SR PhoenixZIPReport")),
    ),
    "heudiconv/heudiconv/tests/data/xa_4d_interrupted": (
        _d(
            "1006_BOLD_MOSAIC_64_resting",
            "the interrupted 2nd volume has 26 of 34 slices, 4 mm apart up to z = 2 then 8 mm:"
            " dcm2niix steps 4 mm, so its last slice is 32 mm off; dicomsieve spans them with"
            " MISSING_SLICES and INCOMPLETE_SEQUENCE",
        ),
        _s("S6 volume 64x64x26", _SAME_AS.format(name="1006_BOLD_MOSAIC_64_resting")),
    ),
    "dcm_qa_12bit/In": (
        _d(
            "2",
            "12bitUnsigned.dcm repeats the SOPInstanceUID of 12bitSigned_0x0F0F.dcm: the index"
            " keeps the first file and examine leaves this one out (DUPLICATE_SOP_INSTANCE)",
        ),
        _d(
            "3",
            "12bitUnsigned_0x0F0F.dcm repeats the SOPInstanceUID of 12bitSigned_0x0F0F.dcm: the"
            " index keeps the first file and examine leaves this one out",
        ),
    ),
}
"""Per case id, every expected difference between dcm2niix and dicomsieve, with a reason.

Differences where dicomsieve's answer is wrong are not listed here: their tests fail."""


def check_known_differences(
    result: CaseResult,
    table: Mapping[str, Sequence[KnownDifference]] = KNOWN_DIFFERENCES,
) -> list[str]:
    """Problems with the table for one case: unlisted differences and stale entries."""
    actual = result.differences()
    listed: Counter[tuple[Side, str]] = Counter()
    for known in table.get(result.case.case_id, ()):
        listed[known.side, known.item] += known.count
    problems: list[str] = []
    cid = result.case.case_id
    for (side, item), n in sorted((actual - listed).items()):
        problems.append(f"{cid}: {side} {item!r} unmatched x{n}, not in KNOWN_DIFFERENCES")
    for (side, item), n in sorted((listed - actual).items()):
        problems.append(
            f"{cid}: KNOWN_DIFFERENCES lists {side} {item!r} x{n} more than occur (stale)"
        )
    return problems


def stale_known_cases(
    case_ids: Iterable[str], table: Mapping[str, object] = KNOWN_DIFFERENCES
) -> list[str]:
    """Case ids of the table that are not cases of the data."""
    return sorted(set(table) - set(case_ids))
