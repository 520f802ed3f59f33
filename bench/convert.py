"""Benchmark of ``dicomsieve convert`` against its peers, measured in the same run.

Usage::

    python bench/convert.py [--scenario ct|mr|pacs ...] [--repeat K] [--json] [--keep]
                            [--profile [TOP]] [--ct-slices N] [--mr-series N]
                            [--mr-slices N] [--cache DIR] [--files N] [--data DIR]

It prints figures and the issue's targets (PASS or MISS) and never fails on a timing.
See ``bench/README.md``.

Scenarios (default: ``ct`` then ``mr``):

* ``ct``: one axial CT series of 1,000 slices of 512x512 without a localizer
  (``dicomsieve.synthetic.make_bench_ct``), so that every tool does the same work;
* ``mr``: 10,000 MR files in 200 series of 50 slices of 256x256
  (``dicomsieve.synthetic.make_bench_mr``);
* ``pacs``: the mixed PACS-like tree of ``scan.py`` (``make_bench``) or any folder.

Every tool runs end to end as a subprocess under the wrapper of ``bench/common.py`` (a
child subreaper that samples the peak RSS of every process of the tool's tree):

* ``dicomsieve convert DATA -o OUT --format nii.gz|nii --json`` (scan into a temporary
  index, examine, load, write);
* ``dcm2niix -z y|n -b y -o OUT DATA`` (the native binary of the PyPI package);
* SimpleITK: ``ImageSeriesReader`` per GDCM series of each folder, ``WriteImage`` to
  ``.nii.gz`` (this file, internal command ``_sitk``);
* ``ct`` and ``mr``: the floor, one Python process that reads every file whole and writes
  its bytes into one file per folder (internal ``_floor``);
* ``pacs``: dicom2nifti, ``dicom2nifti.convert_directory(DATA, OUT)`` (internal
  ``_dicom2nifti``);
* dicomsieve's own breakdown: the library calls of the CLI in one process (internal
  ``_phases``): scan, examine, then load and write of each loadable, each timed, with
  the main process's peak RSS per phase (``VmHWM``, reset between phases through
  ``/proc/self/clear_refs``).

``pacs`` then runs ``dicomsieve convert`` (and ``dcm2niix -z y``) on the largest series
folder alone and on the first half of its files, to see how peak memory follows the size
of a volume.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import importlib.metadata
import inspect
import json
import math
import os
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from common import (
    Measurement,
    Run,
    base_environment,
    compile_bytecode,
    dcm2niix_binary,
    dcm2niix_version,
    describe_data,
    dicomsieve_exe,
    iter_files,
    link_tree,
    log,
    log_attempt,
    measure,
    mib,
    prepare_data,
    prepare_generated,
    version_of,
    warm_page_cache,
)

THIS: Final = Path(__file__).resolve()
DEFAULT_FILES: Final = 2000
SCENARIOS: Final = ("ct", "mr", "pacs")
DEFAULT_SCENARIOS: Final = ("ct", "mr")
CT_SLICES: Final = 1000
MR_SERIES: Final = 200
MR_SLICES: Final = 50
# The targets: each a ratio that must be at most this.
TARGETS: Final = {
    "ct_nii_time": 0.8,  # dicomsieve .nii wall time / dcm2niix -z n's
    "ct_niigz_time": 0.15,  # dicomsieve .nii.gz wall time / dcm2niix -z y's
    "ct_niigz_size": 1.3,  # dicomsieve's .nii.gz bytes / dcm2niix -z y's
    "ct_peak_rss": 1.2,  # peak RSS of the largest process / the volume's bytes
    "mr_nii_time": 1.0,  # dicomsieve .nii wall time / dcm2niix -z n's
}
# The estimate of the floor (reading and writing the bytes plus starting Python)
# on the CT, as a fraction of dcm2niix -z n's wall time.
CT_FLOOR_ESTIMATE: Final = 0.55
IMAGE_SUFFIXES: Final = (".nii.gz", ".nii")
PROFILE_TOP: Final = 15
DATA: Final = "DATA"
OUT: Final = "OUT"


# --- Internal commands, run in child processes --------------------------------------------


def _sitk_convert(root: str, outdir: str) -> dict[str, Any]:
    """Every GDCM series of every folder through ImageSeriesReader, written as .nii.gz."""
    sitk: Any = importlib.import_module("SimpleITK")

    written = slices = 0
    errors: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        if not names:
            continue
        for series_id in sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder):
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, series_id)
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files)
            try:
                image = reader.Execute()
                written += 1
                sitk.WriteImage(image, os.path.join(outdir, f"{written:05d}.nii.gz"))
            except RuntimeError as exc:
                errors.append(f"{folder}: {str(exc).strip().splitlines()[-1][:200]}")
                continue
            slices += len(files)
    return {"volumes": written, "slices": slices, "errors": errors}


def _floor_copy(root: str, outdir: str) -> dict[str, Any]:
    """Read every file whole and write its bytes into one file per folder.

    What any conversion has to do at least (read the input, write as many bytes), in
    one Python process: the floor of a tool that starts Python.
    """
    files = written = volumes = 0
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        if not names:
            continue
        volumes += 1
        with open(os.path.join(outdir, f"{volumes:05d}.nii"), "wb") as out:
            for name in sorted(names):
                with open(os.path.join(folder, name), "rb") as f:
                    data = f.read()
                out.write(data)
                files += 1
                written += len(data)
    return {"files": files, "bytes": written, "volumes": volumes}


def _dicom2nifti_convert(root: str, outdir: str) -> dict[str, Any]:
    """``dicom2nifti.convert_directory`` with its defaults (gzip, reorient)."""
    dicom2nifti: Any = importlib.import_module("dicom2nifti")
    dicom2nifti.convert_directory(root, outdir)
    return {}


def _reset_peak() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class _Phase:
    """Wall time and the peak RSS of this process over the phases of one kind."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.peak_kib = 0
        self.calls = 0

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        _reset_peak()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.peak_kib = max(self.peak_kib, _peak_kib())
            self.calls += 1

    def to_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "peak_rss_kib": self.peak_kib, "calls": self.calls}


def _phases(root: str, outdir: str, fmt: str, profile_path: str | None) -> dict[str, Any]:
    """What ``dicomsieve convert ROOT -o OUTDIR`` does, phase by phase, in this process."""
    started = time.perf_counter()
    import dicomsieve.api as api
    from dicomsieve import Index, Settings, scan

    imported = time.perf_counter() - started
    phases = {name: _Phase() for name in ("scan", "examine", "load", "write")}
    largest: dict[str, Any] = {"bytes": 0, "shape": None, "dtype": None}
    real_load, real_write = vars(api)["load"], vars(api)["write_volume"]

    def timed_load(*args: Any, **kwargs: Any) -> Any:
        with phases["load"].timed():
            volume = real_load(*args, **kwargs)
        if volume.array.nbytes > largest["bytes"]:
            largest.update(
                bytes=volume.array.nbytes,
                shape=list(volume.array.shape),
                dtype=str(volume.array.dtype),
            )
        return volume

    def timed_write(*args: Any, **kwargs: Any) -> Any:
        with phases["write"].timed():
            return real_write(*args, **kwargs)

    # convert_examination looks these up in its module: the calls are the CLI's.
    setattr(api, "load", timed_load)  # noqa: B010
    setattr(api, "write_volume", timed_write)  # noqa: B010
    if "stored_pixels" in vars(api):
        # NIfTI of native pixels: the headers are checked ("load"), then the stored
        # values go from the files to the output ("write"), with no volume in between.
        real_stored, real_write_stored = vars(api)["stored_pixels"], vars(api)["write_stored"]

        def timed_stored(*args: Any, **kwargs: Any) -> Any:
            with phases["load"].timed():
                stored = real_stored(*args, **kwargs)
            if stored is not None and stored.nbytes > largest["bytes"]:
                largest.update(
                    bytes=stored.nbytes, shape=list(stored.shape), dtype=str(stored.dtype)
                )
            return stored

        def timed_write_stored(*args: Any, **kwargs: Any) -> Any:
            with phases["write"].timed():
                return real_write_stored(*args, **kwargs)

        setattr(api, "stored_pixels", timed_stored)  # noqa: B010
        setattr(api, "write_stored", timed_write_stored)  # noqa: B010
    settings = Settings()
    profiler = cProfile.Profile() if profile_path else None
    resettable = _reset_peak()
    with (
        tempfile.TemporaryDirectory(prefix="dicomsieve-") as tmp,
        Index(Path(tmp) / "index.sqlite") as index,
    ):
        if profiler is not None:
            profiler.enable()
        with phases["scan"].timed():
            summary = scan([root], index, settings)
        known: dict[str, Any] = {}
        examined: dict[str, Any] = {}
        if "known" in inspect.signature(api.examine_index).parameters:
            examined["known"] = known  # as the CLI: the records examine read, kept
        with phases["examine"].timed():
            examination = api.examine_index(index, settings, **examined)
        options: dict[str, Any] = {"fmt": fmt}
        if "index" in inspect.signature(api.convert_examination).parameters:
            options["index"] = index  # as the CLI: unchanged files' headers from the index
        if examined:
            options["known"] = known
        start = time.perf_counter()
        result = api.convert_examination(examination, outdir, settings, **options)
        convert_s = time.perf_counter() - start
        if profiler is not None and profile_path is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
    return {
        "imports_s": imported,
        "phases": {name: p.to_json() for name, p in phases.items()},
        "load_write_s": convert_s,
        "peak_reset_supported": resettable,
        "files": summary.files,
        "outputs": len(result.outputs),
        "failures": [f.to_dict() for f in result.failures],
        "largest_volume": largest,
    }


def _internal(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "_sitk":
        result = _sitk_convert(args[0], args[1])
    elif command == "_floor":
        result = _floor_copy(args[0], args[1])
    elif command == "_dicom2nifti":
        result = _dicom2nifti_convert(args[0], args[1])
    else:
        profile = args[3] if len(args) > 3 else None
        result = _phases(args[0], args[1], args[2], profile)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


# --- Input description ------------------------------------------------------------------


@dataclass
class Inputs:
    """Image files of the data set and their pixel data (as stored, uncompressed)."""

    files: int
    images: int
    slices: int
    pixel_bytes: int
    largest_folder: str
    largest_folder_files: list[str]
    largest_folder_pixel_bytes: int
    matrices: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "image_files": self.images,
            "slices": self.slices,
            "pixel_bytes": self.pixel_bytes,
            "largest_folder": self.largest_folder,
            "largest_folder_files": len(self.largest_folder_files),
            "largest_folder_pixel_bytes": self.largest_folder_pixel_bytes,
            "matrices": self.matrices,
        }


def describe_inputs(data: Path) -> Inputs:
    """Rows x Columns x Samples x BitsAllocated/8 x frames of every image file (pydicom)."""
    import pydicom

    tags = ["Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "NumberOfFrames"]
    files = images = slices = pixel_bytes = 0
    per_folder: dict[str, list[str]] = {}
    folder_bytes: dict[str, int] = {}
    matrices: set[str] = set()
    for path in iter_files(str(data)):
        files += 1
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags)
            rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
            samples = int(ds.get("SamplesPerPixel") or 1)
            bits = int(ds.get("BitsAllocated") or 16)
            frames = int(ds.get("NumberOfFrames") or 1)
        except Exception:
            continue
        if not rows or not columns:
            continue
        images += 1
        slices += frames
        nbytes = rows * columns * samples * ((bits + 7) // 8) * frames
        pixel_bytes += nbytes
        folder = os.path.dirname(path)
        per_folder.setdefault(folder, []).append(path)
        folder_bytes[folder] = folder_bytes.get(folder, 0) + nbytes
        matrices.add(f"{rows}x{columns}")
    if not per_folder:
        raise SystemExit(f"no DICOM image files under {data}")
    largest = max(sorted(per_folder), key=lambda f: len(per_folder[f]))
    return Inputs(
        files,
        images,
        slices,
        pixel_bytes,
        largest,
        sorted(per_folder[largest]),
        folder_bytes[largest],
        sorted(matrices),
    )


# --- Measurements -----------------------------------------------------------------------


@dataclass
class Tool:
    """A line of the table: how to run it on (data, outdir) and how to read its result."""

    key: str
    label: str
    argv: list[str]  # DATA and OUT stand for the input and output folders
    shown: list[str]
    reference: str  # pacs: the dicomsieve line it is compared with; ct, mr: the dcm2niix line
    check: Callable[[Run, Path], dict[str, Any]]

    def command(self, data: Path, outdir: Path) -> list[str]:
        places = {DATA: str(data), OUT: str(outdir)}
        return [places.get(arg, arg) for arg in self.argv]


def _image_files(outdir: Path) -> list[Path]:
    return sorted(p for p in outdir.rglob("*") if p.is_file() and p.name.endswith(IMAGE_SUFFIXES))


def _outdir_bytes(outdir: Path) -> int:
    return sum(p.stat().st_size for p in outdir.rglob("*") if p.is_file())


def _image_bytes(outdir: Path) -> int:
    return sum(p.stat().st_size for p in _image_files(outdir))


def _check_dicomsieve(run: Run, outdir: Path) -> dict[str, Any]:
    # Exit status 1: some loadable failed, the others were written (and listed).
    lines = run.stdout.strip().splitlines()
    if run.returncode not in (0, 1) or not lines:
        raise SystemExit(f"dicomsieve convert failed ({run.returncode}):\n{run.stderr[-2000:]}")
    result = json.loads(lines[-1])
    for failure in result["failures"]:
        log(f"  warning: dicomsieve could not convert {failure['loadable']}: {failure['code']}")
    return {
        "failures": result["failures"],
        "outputs_reported": len(result["outputs"]),
        "largest_volume": _largest_image(Path(o["path"]) for o in result["outputs"]),
    }


def _largest_image(paths: Iterable[Path]) -> dict[str, Any]:
    """Shape, type and bytes of the largest image among NIfTI files (headers only)."""
    import nibabel as nib

    best: dict[str, Any] = {"bytes": 0, "shape": None, "dtype": None}
    for path in paths:
        header: Any = nib.load(path).header
        shape = [int(n) for n in header.get_data_shape()]
        dtype = header.get_data_dtype()
        nbytes = dtype.itemsize * math.prod(shape)
        if nbytes > best["bytes"]:
            best = {"bytes": nbytes, "shape": shape, "dtype": str(dtype)}
    return best


def _check_dcm2niix(run: Run, outdir: Path) -> dict[str, Any]:
    if run.returncode != 0:
        log(f"  warning: dcm2niix exited with {run.returncode}: {run.stdout[-500:]}")
    found = re.search(r"Found (\d+) DICOM file", run.stdout)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    if errors:
        log(f"  note: dcm2niix printed {len(errors)} error lines, the first: {errors[0][:200]}")
    return {
        "returncode": run.returncode,
        "dicom_files_found": int(found.group(1)) if found else None,
        "error_lines": len(errors),
    }


def _check_python(name: str) -> Callable[[Run, Path], dict[str, Any]]:
    def check(run: Run, outdir: Path) -> dict[str, Any]:
        if run.returncode != 0:
            raise SystemExit(f"{name} failed ({run.returncode}):\n{run.stderr[-2000:]}")
        detail: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
        errors = detail.get("errors") or []
        if errors:
            log(f"  note: {name} could not convert {len(errors)} series")
        # dicom2nifti logs every series it refuses, with a traceback.
        detail["error_lines"] = sum(
            1 for line in run.stderr.splitlines() if line.startswith(("ERROR", "Traceback"))
        )
        return detail

    return check


def tools(binary: str | None, have_sitk: bool, have_dicom2nifti: bool) -> list[Tool]:
    """The lines of the table, in the order they are run and shown."""
    exe = dicomsieve_exe()
    py = [sys.executable, str(THIS)]
    out: list[Tool] = []
    for fmt, key in (("nii.gz", "dicomsieve"), ("nii", "dicomsieve_nii")):
        argv = ["convert", DATA, "-o", OUT, "--format", fmt, "--json"]
        out.append(
            Tool(
                key,
                f"dicomsieve convert ({fmt})",
                [*exe, *argv],
                ["dicomsieve", *argv],
                key,
                _check_dicomsieve,
            )
        )
    if binary is not None:
        for z, ref in (("y", "dicomsieve"), ("n", "dicomsieve_nii")):
            argv = ["-z", z, "-b", "y", "-o", OUT, DATA]
            out.append(
                Tool(
                    f"dcm2niix_z{z}",
                    f"dcm2niix -z {z} -b y",
                    [binary, *argv],
                    ["dcm2niix", *argv],
                    ref,
                    _check_dcm2niix,
                )
            )
    if have_sitk:
        out.append(
            Tool(
                "sitk",
                "SimpleITK ImageSeriesReader",
                [*py, "_sitk", DATA, OUT],
                ["python", "bench/convert.py", "_sitk", DATA, OUT],
                "dicomsieve",
                _check_python("SimpleITK"),
            )
        )
    if have_dicom2nifti:
        out.append(
            Tool(
                "dicom2nifti",
                "dicom2nifti convert_directory",
                [*py, "_dicom2nifti", DATA, OUT],
                ["python", "bench/convert.py", "_dicom2nifti", DATA, OUT],
                "dicomsieve",
                _check_python("dicom2nifti"),
            )
        )
    return out


class Outputs:
    """Output folders: a new one per run, removed after it unless kept (the last run)."""

    def __init__(self, tmp: Path, keep: Path | None) -> None:
        self.tmp = tmp
        self.keep = keep
        self.count = 0

    def new(self) -> Path:
        self.count += 1
        path = self.tmp / f"out-{self.count}"
        path.mkdir()
        return path

    def done(self, path: Path, key: str, last: bool) -> None:
        if last and self.keep is not None:
            target = self.keep / key
            if target.exists():
                shutil.rmtree(target)
            shutil.move(str(path), str(target))
        else:
            shutil.rmtree(path)


def bench_tools(
    lines: list[Tool],
    data: Path,
    slices: int,
    outputs: Outputs,
    tmp: Path,
    repeat: int,
    keep_prefix: str = "",
) -> dict[str, Measurement]:
    """Round 0 is an untimed warm-up of every tool; rounds 1..repeat are timed. The tools
    take turns within each round, so that a change of load on the machine hits all."""
    ms = {t.key: Measurement(t.key, t.label, t.shown, slices) for t in lines}
    for i in range(repeat + 1):
        for tool in lines:
            log_attempt(tool.label, i, repeat)
            outdir = outputs.new()
            os.sync()  # untimed: no tool pays for the write-back of the one before
            run = measure(tool.command(data, outdir), tmp)
            detail = tool.check(run, outdir)
            detail["volumes_written"] = len(_image_files(outdir))
            detail["output_bytes"] = _outdir_bytes(outdir)
            detail["image_bytes"] = _image_bytes(outdir)
            outputs.done(outdir, f"{keep_prefix}{tool.key}", last=i == repeat)
            if i > 0:
                ms[tool.key].runs.append(run)
                ms[tool.key].detail = detail
    return ms


def scenario_tools(binary: str | None, have_sitk: bool) -> list[Tool]:
    """The lines of a ``ct`` or ``mr`` scenario, each compared with a dcm2niix line."""
    exe = dicomsieve_exe()
    py = [sys.executable, str(THIS)]
    out: list[Tool] = []
    for fmt, key, ref in (
        ("nii", "dicomsieve_nii", "dcm2niix_zn"),
        ("nii.gz", "dicomsieve", "dcm2niix_zy"),
    ):
        argv = ["convert", DATA, "-o", OUT, "--format", fmt, "--json"]
        out.append(
            Tool(
                key,
                f"dicomsieve convert ({fmt})",
                [*exe, *argv],
                ["dicomsieve", *argv],
                ref,
                _check_dicomsieve,
            )
        )
    if binary is not None:
        for z in ("n", "y"):
            argv = ["-z", z, "-b", "y", "-o", OUT, DATA]
            out.append(
                Tool(
                    f"dcm2niix_z{z}",
                    f"dcm2niix -z {z} -b y",
                    [binary, *argv],
                    ["dcm2niix", *argv],
                    f"dcm2niix_z{z}",
                    _check_dcm2niix,
                )
            )
    if have_sitk:
        out.append(
            Tool(
                "sitk",
                "SimpleITK reader+writer (.nii.gz)",
                [*py, "_sitk", DATA, OUT],
                ["python", "bench/convert.py", "_sitk", DATA, OUT],
                "dcm2niix_zy",
                _check_python("SimpleITK"),
            )
        )
    out.append(
        Tool(
            "floor",
            "floor: Python reads, writes",
            [*py, "_floor", DATA, OUT],
            ["python", "bench/convert.py", "_floor", DATA, OUT],
            "dcm2niix_zn",
            _check_python("the floor"),
        )
    )
    return out


def phases_tool(fmt: str = "nii.gz") -> Tool:
    """dicomsieve's breakdown: the CLI's library calls in one process, each timed."""
    py = [sys.executable, str(THIS)]

    def check(run: Run, outdir: Path) -> dict[str, Any]:
        if run.returncode != 0:
            raise SystemExit(f"the breakdown run failed ({run.returncode}):\n{run.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
        return result

    return Tool(
        "phases",
        "dicomsieve, phase by phase (one process)",
        [*py, "_phases", DATA, OUT, fmt],
        ["python", "bench/convert.py", "_phases", "DATA", "OUT", fmt],
        "dicomsieve",
        check,
    )


def breakdown(m: Measurement) -> dict[str, Any]:
    """Median over the timed runs of each phase; start-up = wall - phases."""
    runs = [json.loads(r.stdout.strip().splitlines()[-1]) for r in m.runs]

    def med(*keys: str) -> float:
        values = []
        for r in runs:
            value: Any = r
            for key in keys:
                value = value[key]
            values.append(float(value))
        return round(statistics.median(values), 3)

    out: dict[str, Any] = {"wall_s": round(m.wall_s, 3), "cpu_s": round(m.cpu_s, 3)}
    for name in ("scan", "examine", "load", "write"):
        out[name] = {
            "seconds": med("phases", name, "seconds"),
            "main_peak_rss_kib": max(int(r["phases"][name]["peak_rss_kib"]) for r in runs),
            "calls": runs[-1]["phases"][name]["calls"],
        }
    out["load_write_s"] = med("load_write_s")
    out["imports_s"] = med("imports_s")
    phases = out["scan"]["seconds"] + out["examine"]["seconds"] + out["load_write_s"]
    out["startup_and_rest_s"] = round(m.wall_s - phases, 3)
    out["load_write_other_s"] = round(
        out["load_write_s"] - out["load"]["seconds"] - out["write"]["seconds"], 3
    )
    out["peak_rss_by_process"] = m.roles
    out["peak_reset_supported"] = runs[-1]["peak_reset_supported"]
    out["largest_volume"] = runs[-1]["largest_volume"]
    out["outputs"] = runs[-1]["outputs"]
    out["format"] = m.command[-1]
    return out


# --- Memory against the size of a volume --------------------------------------------------


def memory_scaling(
    inputs: Inputs,
    data: Path,
    lines: list[Tool],
    outputs: Outputs,
    tmp: Path,
    repeat: int,
) -> dict[str, Any]:
    """dicomsieve (and dcm2niix -z y) on the largest folder, whole and its first half."""
    folder = inputs.largest_folder_files
    wanted = [t for t in lines if t.key in ("dicomsieve", "dcm2niix_zy")]
    sizes: list[dict[str, Any]] = []
    for name, count in (("half", max(1, len(folder) // 2)), ("full", len(folder))):
        subset = link_tree(folder[:count], data, tmp / f"series-{name}")
        sub_inputs = describe_inputs(subset)
        log(f"memory: the largest folder, {name} ({count} files)")
        ms = bench_tools(wanted, subset, sub_inputs.slices, outputs, tmp, repeat, f"{name}-")
        shutil.rmtree(subset)
        entry: dict[str, Any] = {
            "name": name,
            "files": count,
            "slices": sub_inputs.slices,
            "pixel_bytes": sub_inputs.pixel_bytes,
            "measurements": {k: m.to_json() for k, m in ms.items()},
        }
        ours = ms["dicomsieve"]
        entry["volume_bytes"] = ours.detail["largest_volume"]["bytes"]
        entry["volume_shape"] = ours.detail["largest_volume"]["shape"]
        entry["volume_dtype"] = ours.detail["largest_volume"]["dtype"]
        entry["dicomsieve_main_peak_kib"] = ours.roles.get("main", {}).get("peak_rss_kib", 0)
        entry["dicomsieve_wall_s"] = round(ours.wall_s, 3)
        if "dcm2niix_zy" in ms:
            entry["dcm2niix_peak_kib"] = ms["dcm2niix_zy"].maxrss_kib
            entry["dcm2niix_wall_s"] = round(ms["dcm2niix_zy"].wall_s, 3)
        sizes.append(entry)
    half, full = sizes
    d_pixels = full["pixel_bytes"] - half["pixel_bytes"]
    result: dict[str, Any] = {"folder": inputs.largest_folder, "sizes": sizes}

    def slope(key: str) -> float | None:
        if d_pixels <= 0 or key not in full or key not in half:
            return None
        return round(float(full[key] - half[key]) * 1024 / float(d_pixels), 2)

    # Peak RSS added per byte of pixel data (as stored) added: 1.0 = one copy of the
    # stored pixels; dicomsieve's own array may be wider (int32 for unsigned CT).
    result["dicomsieve_peak_per_pixel_byte"] = slope("dicomsieve_main_peak_kib")
    result["dcm2niix_peak_per_pixel_byte"] = slope("dcm2niix_peak_kib")
    result["dicomsieve_volume_per_pixel_byte"] = round(
        float(full["volume_bytes"]) / max(float(full["pixel_bytes"]), 1.0), 2
    )
    return result


# --- Profile ----------------------------------------------------------------------------


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3."):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3." else tail
    return filename


def profile(
    data: Path, outputs: Outputs, tmp: Path, top: int, fmt: str = "nii.gz"
) -> dict[str, Any]:
    """One breakdown run under cProfile (the main process only: not the scan workers)."""
    import subprocess

    stats_path = tmp / "convert.pstats"
    outdir = outputs.new()
    cmd = [sys.executable, str(THIS), "_phases", str(data), str(outdir), fmt, str(stats_path)]
    log(f"profile: one breakdown run (.{fmt}) under cProfile")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    outputs.done(outdir, "profile", last=False)
    if done.returncode != 0:
        raise SystemExit(f"the profiled run failed:\n{done.stderr[-2000:]}")
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    stats = pstats.Stats(str(stats_path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in raw.values())

    def rows(index: int) -> list[dict[str, Any]]:
        ranked = sorted(raw.items(), key=lambda kv: kv[1][index], reverse=True)[:top]
        return [
            {
                "function": f"{_short(file)}:{line}({func})" if line else func,
                "calls": nc,
                "tottime_s": round(tt, 3),
                "cumtime_s": round(ct, 3),
            }
            for (file, line, func), (_cc, nc, tt, ct, _callers) in ranked
        ]

    return {
        "format": fmt,
        "total_s": round(total, 3),
        "phases": phases["phases"],
        "load_write_s": phases["load_write_s"],
        "by_tottime": rows(2),
        "by_cumtime": rows(3),
    }


# --- Targets --------------------------------------------------------------------------


def _target(key: str, text: str, value: float | None, suffix: str = "") -> dict[str, Any]:
    """One target line: ``text`` with the ratio, the target and PASS or MISS."""
    limit = TARGETS[key]
    if value is None:
        return {
            "key": key,
            "value": None,
            "target": limit,
            "met": None,
            "line": f"{text.format('n/a')} (target <= {limit}x): n/a{suffix}",
        }
    met = value <= limit  # judged on the measured ratio, not on its rounded print
    shown = f"{value:.3f}" if round(value, 2) == limit else f"{value:.2f}"
    return {
        "key": key,
        "value": round(value, 4),
        "target": limit,
        "met": met,
        "line": f"{text.format(shown)} (target <= {limit}x): {'PASS' if met else 'MISS'}{suffix}",
    }


def _over(ms: dict[str, Measurement], a: str, b: str) -> float | None:
    if a not in ms or b not in ms or ms[b].wall_s <= 0:
        return None
    return ms[a].wall_s / ms[b].wall_s


def targets(name: str, ms: dict[str, Measurement], inputs: Inputs) -> list[dict[str, Any]]:
    """The issue's targets for the ``ct`` or ``mr`` scenario, and the floor's ratio."""
    out: list[dict[str, Any]] = []
    label = name.upper()
    if name == "ct":
        out.append(
            _target(
                "ct_nii_time",
                "CT .nii: {}x dcm2niix -z n",
                _over(ms, "dicomsieve_nii", "dcm2niix_zn"),
            )
        )
        out.append(
            _target(
                "ct_niigz_time",
                "CT .nii.gz: {}x dcm2niix -z y",
                _over(ms, "dicomsieve", "dcm2niix_zy"),
            )
        )
        size = None
        if "dcm2niix_zy" in ms and ms["dcm2niix_zy"].detail["image_bytes"] > 0:
            size = ms["dicomsieve"].detail["image_bytes"] / ms["dcm2niix_zy"].detail["image_bytes"]
        out.append(_target("ct_niigz_size", "CT .nii.gz size {}x dcm2niix's", size))
        volume = inputs.largest_folder_pixel_bytes
        for key, fmt in (("dicomsieve_nii", ".nii"), ("dicomsieve", ".nii.gz")):
            peak = ms[key].maxrss_kib * 1024 / volume if volume else None
            process = ms[key].largest_role
            out.append(
                _target(
                    "ct_peak_rss",
                    f"CT peak RSS ({fmt}) {{}}x the volume's bytes",
                    peak,
                    f" ({mib(ms[key].maxrss_kib)} MiB, {process} process; the volume "
                    f"{volume / 2**20:.0f} MiB as stored)",
                )
            )
    else:
        out.append(
            _target(
                "mr_nii_time",
                f"{label} .nii: {{}}x dcm2niix -z n",
                _over(ms, "dicomsieve_nii", "dcm2niix_zn"),
            )
        )
    floor = _over(ms, "floor", "dcm2niix_zn")
    estimate = f"; the issue estimates about {CT_FLOOR_ESTIMATE}x on the CT" if name == "ct" else ""
    out.append(
        {
            "key": "floor",
            "value": None if floor is None else round(floor, 4),
            "target": None,
            "met": None,
            "line": f"{label} floor (Python reads every file and writes its bytes, one process): "
            + ("n/a" if floor is None else f"{floor:.2f}x dcm2niix -z n")
            + f" (no target{estimate})",
        }
    )
    return out


# --- Report -----------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "n/a"


def render_environment(env: dict[str, Any]) -> list[str]:
    load = env.get("load_average")
    return [
        f"Python {env['python']}, {env['cpus']} CPUs, {env['platform']}"
        + (f", load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start" if load else ""),
        f"dicomsieve {env['dicomsieve']}, pydicom {env['pydicom']}, nibabel {env['nibabel']}, "
        f"numpy {env['numpy']}",
        f"dcm2niix {env['dcm2niix'] or 'not installed (skipped)'} (pigz: "
        f"{env['pigz'] or 'not on PATH, internal zlib'}), SimpleITK "
        f"{env['SimpleITK'] or 'not installed (skipped)'}, dicom2nifti "
        f"{env['dicom2nifti'] or 'not installed (skipped)'}",
        f"dicomsieve bytecode: {env['bytecode']}",
    ]


def _data_line(title: str, report: dict[str, Any]) -> str:
    data, inputs = report["data"], report["inputs"]
    pixel_mb = inputs["pixel_bytes"] / 1e6
    return (
        f"{title}: {data['files']:,} files ({inputs['slices']:,} image slices of "
        f"{', '.join(inputs['matrices'])}, {pixel_mb:,.0f} MB of pixel data), "
        f"{data['bytes'] / 2**30:.2f} GiB, {data['series_folders']} series folders in "
        f"{data['path']}"
        + (f" (generated in {data['generate_s']} s)" if data["generated"] else " (cached)")
    )


def _rounds_lines(report: dict[str, Any]) -> list[str]:
    load = report.get("load_average")
    return [
        "Page cache warm for everyone: every byte of every file was read once "
        f"({report['page_cache_warmup']['seconds']} s). One untimed round of every line, then",
        f"{report['repeat']} timed round(s), the lines taking turns; wall time is the median, "
        "from process start to exit" + (f" (load average before: {load[0]:.2f})." if load else "."),
        "CPU s: user + system of the whole process tree. Peak RSS: the largest VmHWM of any "
        "process of the tree.",
    ]


def render_breakdown(bd: dict[str, Any]) -> list[str]:
    wall = bd["wall_s"]
    vol = bd["largest_volume"]
    fmt = bd.get("format", "nii.gz")
    out = [
        "",
        f"dicomsieve, phase by phase ({bd['outputs']} volumes, .{fmt}; the library calls of "
        "`dicomsieve convert` in one process,",
        "each timed; main peak: the main process's VmHWM over the phase, reset at its "
        "start" + ("" if bd["peak_reset_supported"] else " (reset NOT supported here)") + "):",
        f"  {'phase':<34} {'wall s':>7} {'share':>6} {'main peak MiB':>14}",
    ]

    def row(name: str, seconds: float, peak: str = "") -> str:
        return f"  {name:<34} {seconds:>7.2f} {seconds / wall:>6.0%} {peak:>14}"

    out += [
        row("start-up (interpreter, imports)", bd["startup_and_rest_s"]),
        row(
            "scan (walk, read headers, index)",
            bd["scan"]["seconds"],
            mib(bd["scan"]["main_peak_rss_kib"]),
        ),
        row("examine", bd["examine"]["seconds"], mib(bd["examine"]["main_peak_rss_kib"])),
        row(
            f"load or check headers ({bd['load']['calls']})",
            bd["load"]["seconds"],
            mib(bd["load"]["main_peak_rss_kib"]),
        ),
        row(
            f"write (.{fmt} + sidecar{'; reads' if fmt != 'nrrd' else ''})",
            bd["write"]["seconds"],
            mib(bd["write"]["main_peak_rss_kib"]),
        ),
        row("load + write (with naming)", bd["load_write_s"]),
        row("total (wall)", wall),
        f"  largest volume {'x'.join(str(n) for n in vol['shape'] or [])} {vol['dtype']}: "
        f"{vol['bytes'] / 2**20:.0f} MiB; main peak while loading: "
        f"{bd['load']['main_peak_rss_kib'] * 1024 / max(vol['bytes'], 1):.2f}x that",
    ]
    return out


def render_profile(prof: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, title in (("by_tottime", "own time"), ("by_cumtime", "cumulative time")):
        out += [
            "",
            f"cProfile of one breakdown run (.{prof.get('format', 'nii.gz')}; main process "
            f"only; {prof['total_s']:.1f} s profiled), top {len(prof[key])} by {title}:",
            f"  {'own s':>7} {'cum s':>7} {'calls':>8}  function",
        ]
        out += [
            f"  {r['tottime_s']:>7.2f} {r['cumtime_s']:>7.2f} {r['calls']:>8}  {r['function']}"
            for r in prof[key]
        ]
    return out


SCENARIO_TITLES: Final = {
    "ct": "CT scenario, one axial series without a localizer",
    "mr": "MR scenario, many small series without localizers",
    "pacs": "PACS scenario, the mixed tree",
}


def render_scenario(
    name: str, report: dict[str, Any], ms: dict[str, Measurement], lines: list[Tool]
) -> str:
    """The table of a ``ct`` or ``mr`` scenario, its breakdown and its target lines."""
    inputs = report["inputs"]
    pixel_mb = inputs["pixel_bytes"] / 1e6
    volume = inputs["largest_folder_pixel_bytes"]
    out = [
        _data_line(SCENARIO_TITLES[name], report),
        *_rounds_lines(report),
        "MB/s: pixel data as stored over wall time. RSS÷vol: peak RSS over the bytes of the "
        f"largest series' pixels as stored ({volume / 2**20:.1f} MiB).",
        "÷ref: wall time over that of the dcm2niix line with the same output (.nii and the "
        "floor: -z n; .nii.gz: -z y).",
        "",
    ]
    header = (
        f"{'tool':<34} {'volumes':>7} {'image MiB':>9} {'out MiB':>8} {'wall s':>7} "
        f"{'CPU s':>7} {'MB/s':>6} {'peak RSS MiB (process)':>23} {'RSS÷vol':>7} {'÷ref':>6}"
    )
    out += [header, "-" * len(header)]
    for tool in lines:
        m = ms.get(tool.key)
        if m is None:
            continue
        ref = ms.get(tool.reference)
        rss = f"{mib(m.maxrss_kib)} ({m.largest_role})"
        out.append(
            f"{m.label:<34} {m.detail['volumes_written']:>7} "
            f"{m.detail['image_bytes'] / 2**20:>9.0f} {m.detail['output_bytes'] / 2**20:>8.0f} "
            f"{m.wall_s:>7.2f} {m.cpu_s:>7.2f} {pixel_mb / m.wall_s:>6.0f} {rss:>23} "
            f"{ratio(m.maxrss_kib * 1024, volume):>7} "
            f"{ratio(m.wall_s, ref.wall_s) if ref is not None else 'n/a':>6}"
        )
    if "breakdown" in report:
        out += render_breakdown(report["breakdown"])
    if "profile" in report:
        out += render_profile(report["profile"])
    out += ["", f"Targets ({name.upper()}):"]
    out += [f"  {t['line']}" for t in report["targets"]]
    return "\n".join(out)


def render(report: dict[str, Any], ms: dict[str, Measurement], lines: list[Tool]) -> str:
    """The ``pacs`` scenario: table, breakdown, memory against a volume, profile."""
    inputs = report["inputs"]
    pixel_mb = inputs["pixel_bytes"] / 1e6
    out = [
        _data_line(SCENARIO_TITLES["pacs"], report),
        *_rounds_lines(report),
        "slices/s and MB/s (of pixel data as stored) count every image of the input, whatever "
        "each tool chose to",
        "write; volumes: the images it wrote. time÷ds, RSS÷ds: this line over the dicomsieve "
        "line with the same",
        "output (.nii for dcm2niix -z n, .nii.gz for the others): time÷ds > 1 means dicomsieve "
        "is faster,",
        "RSS÷ds < 1 that the other needs less memory.",
        "",
    ]
    header = (
        f"{'tool':<32} {'volumes':>7} {'out MiB':>8} {'wall s':>7} {'CPU s':>7} "
        f"{'slices/s':>8} {'MB/s':>6} {'peak RSS MiB (process)':>23} {'time÷ds':>7} "
        f"{'RSS÷ds':>6}"
    )
    out += [header, "-" * len(header)]
    for tool in lines:
        m = ms.get(tool.key)
        if m is None or tool.key == "phases":
            continue
        ref = ms[tool.reference]
        rss = f"{mib(m.maxrss_kib)} ({m.largest_role})"
        out.append(
            f"{m.label:<32} {m.detail['volumes_written']:>7} "
            f"{m.detail['output_bytes'] / 2**20:>8.0f} {m.wall_s:>7.2f} {m.cpu_s:>7.2f} "
            f"{m.files_per_s:>8.0f} {pixel_mb / m.wall_s:>6.0f} {rss:>23} "
            f"{ratio(m.wall_s, ref.wall_s):>7} {ratio(m.maxrss_kib, ref.maxrss_kib):>6}"
        )
    bd = report.get("breakdown")
    if bd is not None:
        out += render_breakdown(bd)
    mem = report.get("memory")
    if mem is not None:
        out += [
            "",
            f"Memory against the size of one volume: {mem['folder']}",
            "alone, the first half of its files, then all (pixels: as stored; volume: "
            "dicomsieve's array):",
            f"  {'files':>6} {'pixels MiB':>10} {'volume':>22} {'MiB':>5} "
            f"{'dicomsieve peak MiB':>19} {'wall s':>7} {'dcm2niix peak MiB':>17} {'wall s':>7}",
        ]
        for size in mem["sizes"]:
            shape = "x".join(str(n) for n in size["volume_shape"] or [])
            out.append(
                f"  {size['files']:>6} {size['pixel_bytes'] / 2**20:>10.0f} "
                f"{shape + ' ' + str(size['volume_dtype']):>22} "
                f"{size['volume_bytes'] / 2**20:>5.0f} "
                f"{mib(size['dicomsieve_main_peak_kib']):>19} "
                f"{size['dicomsieve_wall_s']:>7.2f} "
                f"{mib(size.get('dcm2niix_peak_kib', 0)):>17} "
                f"{size.get('dcm2niix_wall_s', 0):>7.2f}"
            )
        out.append(
            "  peak RSS added per byte of stored pixels added (1.0 = one copy): "
            f"dicomsieve {mem['dicomsieve_peak_per_pixel_byte']} (its array: "
            f"{mem['dicomsieve_volume_per_pixel_byte']} bytes per stored byte), "
            f"dcm2niix -z y {mem['dcm2niix_peak_per_pixel_byte']}"
        )
    prof = report.get("profile")
    if prof is not None:
        out += render_profile(prof)
    return "\n".join(out)


# --- Main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/convert.py",
        description="Time `dicomsieve convert` (scan + examine + load + write NIfTI) against "
        "dcm2niix and SimpleITK (and dicom2nifti on the PACS tree) in the same run; print "
        "wall time, peak RSS, output sizes and the targets of the issue.",
    )
    parser.add_argument(
        "--scenario",
        nargs="+",
        choices=SCENARIOS,
        default=None,
        help="ct: one 1,000-slice 512x512 CT series; mr: 10,000 MR files in 200 series of 50 "
        "slices; pacs: the mixed PACS-like tree (or --data). Default: ct mr",
    )
    parser.add_argument(
        "--ct-slices",
        type=int,
        default=CT_SLICES,
        help=f"slices of the ct scenario (default {CT_SLICES:,})",
    )
    parser.add_argument(
        "--mr-series",
        type=int,
        default=MR_SERIES,
        help=f"series of the mr scenario (default {MR_SERIES})",
    )
    parser.add_argument(
        "--mr-slices",
        type=int,
        default=MR_SLICES,
        help=f"slices per series of the mr scenario (default {MR_SLICES})",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder holding the generated ct and mr data sets (default: $TMPDIR)",
    )
    parser.add_argument(
        "--files",
        type=int,
        default=None,
        help=f"pacs: files in the generated tree (default {DEFAULT_FILES:,}, about 0.7 GB)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="pacs: folder of DICOM files, used as it is when --files is not given; else it "
        "caches the generated tree (default: $TMPDIR/dicomsieve-bench-N), reused when it "
        "holds N files",
    )
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per line (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the outputs of each line's last run (the folders are printed on stderr)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=PROFILE_TOP,
        default=None,
        metavar="TOP",
        help=f"profile one breakdown run per scenario with cProfile; print the top TOP "
        f"functions (default {PROFILE_TOP})",
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="pacs: skip the runs on the largest series folder (half and whole)",
    )
    args = parser.parse_args(argv)
    if args.scenario is None:
        args.scenario = list(DEFAULT_SCENARIOS)
    args.scenario = list(dict.fromkeys(args.scenario))
    if (args.files is not None or args.data is not None) and "pacs" not in args.scenario:
        parser.error("--files and --data apply to the pacs scenario: add --scenario pacs")
    if args.files is not None and args.files < 1:
        parser.error("--files must be at least 1")
    if min(args.ct_slices, args.mr_series, args.mr_slices) < 1:
        parser.error("--ct-slices, --mr-series and --mr-slices must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def resolve_data(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    if args.data is not None and args.files is None:
        data = args.data.resolve()
        if data.is_dir() and any(data.iterdir()):
            log(f"data: using {data} as it is")
            return data, {"generated": False, "generate_s": None}
    files = args.files or DEFAULT_FILES
    explicit = args.data is not None
    data = (args.data or Path(tempfile.gettempdir()) / f"dicomsieve-bench-{files}").resolve()
    return data, prepare_data(data, files, explicit)


def resolve_generated(name: str, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The cached data set of the ``ct`` or ``mr`` scenario, generated when absent or changed."""
    cache = (args.cache or Path(tempfile.gettempdir())).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    if name == "ct":
        data = cache / f"dicomsieve-bench-ct-{args.ct_slices}"
        return data, prepare_generated(data, "make_bench_ct", {"slices": args.ct_slices})
    data = cache / f"dicomsieve-bench-mr-{args.mr_series}x{args.mr_slices}"
    params = {"series": args.mr_series, "slices": args.mr_slices}
    return data, prepare_generated(data, "make_bench_mr", params)


def _keep_folder(args: argparse.Namespace, name: str, data: Path) -> Path | None:
    if not args.keep:
        return None
    return Path(tempfile.mkdtemp(prefix=f"dicomsieve-convert-out-{name}-", dir=data.parent))


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _start_report(
    name: str,
    args: argparse.Namespace,
    data: Path,
    data_info: dict[str, Any],
) -> tuple[dict[str, Any], Inputs, Path | None]:
    log(f"{name}: reading the headers of every file (pixel data size)")
    inputs = describe_inputs(data)
    log(f"{name}: warming the page cache (reading every file once)")
    warm = warm_page_cache(data)
    keep = _keep_folder(args, name, data)
    report: dict[str, Any] = {
        "scenario": name,
        "data": {"path": str(data), **describe_data(data), **data_info, "files": inputs.files},
        "inputs": inputs.to_json(),
        "page_cache_warmup": warm,
        "repeat": args.repeat,
        "load_average": _load_average(),
        "kept_outputs": str(keep) if keep else None,
    }
    return report, inputs, keep


def run_generated(
    name: str, args: argparse.Namespace, env: dict[str, Any], binary: str | None
) -> tuple[dict[str, Any], str]:
    """The ``ct`` or ``mr`` scenario: the lines, dicomsieve's breakdown (.nii), the targets."""
    data, data_info = resolve_generated(name, args)
    report, inputs, keep = _start_report(name, args, data.resolve(), data_info)
    lines = scenario_tools(binary, env["SimpleITK"] is not None)
    with tempfile.TemporaryDirectory(prefix="dicomsieve-bench-", dir=data.parent) as t:
        tmp = Path(t)
        outputs = Outputs(tmp, keep)
        everything = [*lines, phases_tool("nii")]
        ms = bench_tools(everything, data, inputs.slices, outputs, tmp, args.repeat)
        report["breakdown"] = breakdown(ms.pop("phases"))
        if args.profile is not None:
            report["profile"] = profile(data, outputs, tmp, args.profile, "nii")
    report["measurements"] = {k: m.to_json() for k, m in ms.items()}
    report["targets"] = targets(name, ms, inputs)
    if keep is not None:
        log(f"{name}: outputs kept in {keep}")
    return report, render_scenario(name, report, ms, lines)


def run_pacs(
    args: argparse.Namespace, env: dict[str, Any], binary: str | None
) -> tuple[dict[str, Any], str]:
    """The mixed tree: the lines, the breakdown (.nii.gz), memory against a volume."""
    data, data_info = resolve_data(args)
    report, inputs, keep = _start_report("pacs", args, data, data_info)
    lines = tools(binary, env["SimpleITK"] is not None, env["dicom2nifti"] is not None)
    with tempfile.TemporaryDirectory(prefix="dicomsieve-bench-", dir=data.parent) as t:
        tmp = Path(t)
        outputs = Outputs(tmp, keep)
        everything = [*lines, phases_tool()]
        ms = bench_tools(everything, data, inputs.slices, outputs, tmp, args.repeat)
        report["breakdown"] = breakdown(ms["phases"])
        if not args.no_memory:
            report["memory"] = memory_scaling(inputs, data, lines, outputs, tmp, args.repeat)
        if args.profile is not None:
            report["profile"] = profile(data, outputs, tmp, args.profile)
    report["measurements"] = {k: m.to_json() for k, m in ms.items() if k != "phases"}
    report["ratios"] = {
        t.key: {
            "reference": t.reference,
            "time_over_dicomsieve": round(ms[t.key].wall_s / ms[t.reference].wall_s, 3),
            "peak_rss_over_dicomsieve": round(
                ms[t.key].maxrss_kib / max(ms[t.reference].maxrss_kib, 1), 3
            ),
        }
        for t in lines
    }
    if keep is not None:
        log(f"pacs: outputs kept in {keep}")
    return report, render(report, ms, lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("_sitk", "_dicom2nifti", "_phases", "_floor"):
        return _internal(argv)
    args = parse_args(argv)
    binary = dcm2niix_binary()
    env = {
        **base_environment(),
        "bytecode": compile_bytecode(),
        "load_average": _load_average(),
        "dicomsieve": importlib.metadata.version("dicomsieve"),
        "pydicom": version_of("pydicom"),
        "numpy": version_of("numpy"),
        "nibabel": version_of("nibabel"),
        "dcm2niix": dcm2niix_version(binary),
        "dcm2niix_binary": binary,
        "pigz": shutil.which("pigz"),
        "SimpleITK": version_of("SimpleITK") if _importable("SimpleITK") else None,
        "dicom2nifti": version_of("dicom2nifti") if _importable("dicom2nifti") else None,
    }
    for name, found in (
        ("dcm2niix", binary),
        ("SimpleITK", env["SimpleITK"]),
        ("dicom2nifti", env["dicom2nifti"]),
    ):
        if found is None:
            log(f"{name} not found: skipping it (pip install -e '.[bench]')")
    reports: dict[str, Any] = {}
    sections = ["\n".join(["dicomsieve convert benchmark", *render_environment(env)])]
    for name in args.scenario:
        log(f"=== scenario {name} ===")
        if name == "pacs":
            report, text = run_pacs(args, env, binary)
        else:
            report, text = run_generated(name, args, env, binary)
        reports[name] = report
        sections.append(text)
    if args.json:
        result = {"environment": env, "targets": TARGETS, "scenarios": reports}
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        print("\n\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
