"""Benchmark of ``dicomsieve scan`` against its peers, measured in the same run.

Usage::

    python bench/scan.py [--files N] [--data DIR] [--repeat K] [--json]

It prints figures and never asserts a timing. See ``bench/README.md``.

Every tool runs under the wrapper of ``bench/common.py`` (a child subreaper that samples
the peak RSS of every process of the tool's tree); see there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
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
    log,
    log_attempt,
    make_subset,
    measure,
    mib,
    prepare_data,
    warm_page_cache,
    wrap,
)

THIS: Final = Path(__file__).resolve()
FLOOR_BYTES: Final = 4096
TARGETS: Final = {"pydicom": 5.0, "dcm2niix": 1.0}


# --- Internal commands, run in child processes --------------------------------------------


def _pydicom_loop(root: str) -> dict[str, int]:
    """``pydicom.dcmread(path, stop_before_pixels=True)`` over every file."""
    import pydicom

    ok = errors = 0
    for path in iter_files(root):
        try:
            pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            errors += 1
        else:
            ok += 1
    return {"files": ok + errors, "ok": ok, "errors": errors}


def _floor_loop(root: str) -> dict[str, int]:
    """Open each file, read its first 4 KiB, close it."""
    files = 0
    nbytes = 0
    for path in iter_files(root):
        fd = os.open(path, os.O_RDONLY)
        try:
            nbytes += len(os.read(fd, FLOOR_BYTES))
        finally:
            os.close(fd)
        files += 1
    return {"files": files, "ok": files, "errors": 0, "bytes": nbytes}


def _internal(argv: list[str]) -> int:
    command = argv[0]
    if command == "_wrap":
        stdout_path, stderr_path, sep, *cmd = argv[1:]
        if sep != "--" or not cmd:
            raise SystemExit("usage: scan.py _wrap STDOUT STDERR -- CMD...")
        result = wrap(stdout_path, stderr_path, cmd)
    elif command == "_pydicom":
        result = _pydicom_loop(argv[1])
    else:
        result = _floor_loop(argv[1])
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


# --- Measurements -----------------------------------------------------------------------


def _db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def _check_scan(run: Run, expected_files: int, what: str) -> dict[str, Any]:
    if run.returncode != 0:
        raise SystemExit(f"{what} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    if summary["files"] != expected_files:
        log(f"  warning: {what} walked {summary['files']} files, expected {expected_files}")
    return summary


def bench_dicomsieve(
    key: str,
    label: str,
    data: Path,
    files: int,
    tmp: Path,
    repeat: int,
    jobs: int | None,
) -> tuple[Measurement, Path]:
    """Fresh-database scans (one warm-up, then ``repeat`` timed); keep the last database."""
    extra = [] if jobs is None else ["--jobs", str(jobs)]
    measurement: Measurement | None = None
    last_db = tmp / "none"
    for i in range(repeat + 1):
        db = tmp / f"{key}-{i}.sqlite"
        cmd = [*dicomsieve_exe(), "scan", str(data), "--db", str(db), "--json", *extra]
        if measurement is None:
            measurement = Measurement(key, label, [*cmd[:4], "FRESH.sqlite", *cmd[5:]], files)
        log_attempt(label, i, repeat)
        run = measure(cmd, tmp)
        summary = _check_scan(run, files, label)
        if i > 0:
            measurement.runs.append(run)
            measurement.detail = {"summary": summary, "db_bytes": _db_size(db)}
        if last_db.exists():
            _remove_db(last_db)
        last_db = db
    assert measurement is not None
    return measurement, last_db


def _remove_db(db: Path) -> None:
    for p in db.parent.glob(db.name + "*"):
        p.unlink()


def bench_rescan(db: Path, data: Path, files: int, tmp: Path, repeat: int) -> Measurement:
    cmd = [*dicomsieve_exe(), "scan", str(data), "--db", str(db), "--json"]
    label = "dicomsieve rescan (all unchanged)"
    measurement = Measurement("rescan", label, [*cmd[:4], "SAME.sqlite", *cmd[5:]], files)
    for i in range(repeat + 1):
        log_attempt(label, i, repeat)
        run = measure(cmd, tmp)
        summary = _check_scan(run, files, label)
        if summary["unchanged"] != files:
            log(f"  warning: rescan found {summary['unchanged']} unchanged of {files}")
        if i > 0:
            measurement.runs.append(run)
            measurement.detail = {"summary": summary}
    return measurement


def bench_python_loop(
    key: str, label: str, data: Path, files: int, tmp: Path, repeat: int
) -> Measurement:
    cmd = [sys.executable, str(THIS), f"_{key}", str(data)]
    measurement = Measurement(key, label, [*cmd[:3], "DATA"], files)
    for i in range(repeat + 1):
        log_attempt(label, i, repeat)
        run = measure(cmd, tmp)
        if run.returncode != 0:
            raise SystemExit(f"{label} failed:\n{run.stderr[-2000:]}")
        result = json.loads(run.stdout)
        if result["files"] != files:
            log(f"  warning: {label} saw {result['files']} files, expected {files}")
        if i > 0:
            measurement.runs.append(run)
            measurement.detail = {"result": result}
    return measurement


def bench_dcm2niix(
    binary: str, data: Path, files: int, tmp: Path, repeat: int
) -> Measurement | None:
    label = "dcm2niix -b o (BIDS sidecars only)"
    measurement: Measurement | None = None
    for i in range(repeat + 1):
        outdir = tmp / f"dcm2niix-{i}"
        outdir.mkdir()
        cmd = [binary, "-b", "o", "-o", str(outdir), str(data)]
        if measurement is None:
            measurement = Measurement("dcm2niix", label, [*cmd[:4], "OUTDIR", "DATA"], files)
        log_attempt(label, i, repeat)
        run = measure(cmd, tmp)
        sidecars = sum(1 for _ in outdir.glob("*.json"))
        shutil.rmtree(outdir)
        if run.returncode != 0:
            log(f"  warning: dcm2niix exited with {run.returncode}: {run.stdout[-500:]}")
        found = re.search(r"Found (\d+) DICOM file", run.stdout)
        seen = int(found.group(1)) if found else None
        if seen is not None and seen != files:
            log(f"  warning: dcm2niix found {seen} DICOM files, expected {files}")
        if i > 0:
            measurement.runs.append(run)
            measurement.detail = {
                "returncode": run.returncode,
                "dicom_files_found": seen,
                "sidecars_written": sidecars,
            }
    return measurement


# --- Data -------------------------------------------------------------------------------


# --- Report -----------------------------------------------------------------------------


def ratio_line(
    name: str, ours: Measurement, other: Measurement | None, target: float | None
) -> str:
    if other is None:
        return f"  dicomsieve vs {name:<16} skipped"
    ratio = ours.files_per_s / other.files_per_s
    text = f"  dicomsieve vs {name:<16} {ratio:6.2f}x"
    if target is not None:
        verdict = "met" if ratio >= target else f"MISSED by {target / ratio:.2f}x"
        text += f"   (target >= {target:g}x: {verdict})"
    return text


def derived(ms: dict[str, Measurement]) -> dict[str, float | None]:
    """dicomsieve's marginal rate and fixed cost, from the N/5 and N fresh scans."""
    small, full = ms["scan_subset"], ms["scan"]
    extra_s = full.wall_s - small.wall_s
    if extra_s <= 0:
        return {"marginal_files_per_s": None, "fixed_s": None}
    marginal = (full.files - small.files) / extra_s
    return {
        "marginal_files_per_s": round(marginal, 1),
        "fixed_s": round(full.wall_s - full.files / marginal, 3),
    }


def derived_line(values: dict[str, float | None], small: int, full: int) -> str:
    marginal, fixed = values["marginal_files_per_s"], values["fixed_s"]
    if marginal is None or fixed is None:
        return "dicomsieve marginal rate: n/a (the N/5 scan was not faster than the N scan)"
    return (
        f"dicomsieve marginal rate between {small:,} and {full:,} files: {marginal:.0f} "
        f"files/s;\nfixed cost per run about {fixed:.2f} s (start-up, forkserver, workers)."
    )


def ratios(ms: dict[str, Measurement]) -> dict[str, float | None]:
    ours = ms["scan"]
    out: dict[str, float | None] = {}
    for key in ("pydicom", "dcm2niix", "floor", "scan_jobs1"):
        other = ms.get(key)
        out[f"scan_vs_{key}"] = round(ours.files_per_s / other.files_per_s, 3) if other else None
    return out


def render(report: dict[str, Any], ms: dict[str, Measurement]) -> str:
    env, data = report["environment"], report["data"]
    lines = [
        f"dicomsieve scan benchmark: {data['files']:,} files, {data['bytes'] / 2**30:.2f} GiB, "
        f"{data['series_folders']} series folders in {data['path']}"
        + (f" (generated in {data['generate_s']} s)" if data["generated"] else " (cached)"),
        f"Python {env['python']}, {env['cpus']} CPUs, {env['platform']}",
        f"dicomsieve {env['dicomsieve']}, pydicom {env['pydicom']}, "
        f"dcm2niix {env['dcm2niix'] or 'not installed (skipped)'}",
        f"dicomsieve bytecode: {env['bytecode']}",
        "Page cache warm for everyone: every byte of every file was read once "
        f"({report['page_cache_warmup']['seconds']} s),",
        "and each line below ran one untimed warm-up pass first.",
        f"Wall time: median of {report['repeat']} timed run(s), from process start to exit "
        "(start-up included).",
        "CPU s: user + system of the whole process tree. Peak RSS: the largest VmHWM of any",
        "process of the tool's tree (all kept under a subreaper wrapper, sampled every 20 ms),",
        "with which process it was; sum: peak of the tree's total RSS (shared pages counted",
        "in each process).",
        "",
    ]
    header = (
        f"{'measurement':<40} {'files':>7} {'wall s':>8} {'CPU s':>7} {'files/s':>9} "
        f"{'peak RSS MiB (process)':>24} {'sum MiB':>8}"
    )
    lines += [header, "-" * len(header)]
    for m in ms.values():
        rss = f"{mib(m.maxrss_kib)} ({m.largest_role})"
        lines.append(
            f"{m.label:<40} {m.files:>7} {m.wall_s:>8.2f} {m.cpu_s:>7.2f} {m.files_per_s:>9.0f} "
            f"{rss:>24} {mib(m.peak_sum_rss_kib):>8}"
        )
    ours = ms["scan"]
    lines += [
        "",
        "Ratios (files/s of dicomsieve scan over the other; > 1 means dicomsieve is faster):",
        ratio_line("pydicom loop", ours, ms.get("pydicom"), TARGETS["pydicom"]),
        ratio_line("dcm2niix -b o", ours, ms.get("dcm2niix"), TARGETS["dcm2niix"]),
        ratio_line("floor (4 KiB)", ours, ms.get("floor"), None),
        ratio_line("itself, --jobs 1", ours, ms.get("scan_jobs1"), None),
        "",
        derived_line(report["derived"], ms["scan_subset"].files, ours.files),
        "",
        "Memory (peak RSS per process, MiB):",
    ]
    mem = report["memory"]
    small, full = ms["scan_subset"], ms["scan"]
    roles = sorted(set(small.roles) | set(full.roles))
    lines.append(f"  {'process':<20} {small.files:>8,} files {full.files:>8,} files")
    for role in roles:
        a = small.roles.get(role, {}).get("peak_rss_kib", 0)
        b = full.roles.get(role, {}).get("peak_rss_kib", 0)
        count = max(
            small.roles.get(role, {}).get("processes", 0),
            full.roles.get(role, {}).get("processes", 0),
        )
        name = f"{role} (x{count})" if count > 1 else role
        lines.append(f"  {name:<20} {mib(a):>14} {mib(b):>14}")
    lines += [
        f"  {'max of any process':<20} {mib(small.maxrss_kib):>14} {mib(full.maxrss_kib):>14}",
        f"  {'sum (sampled)':<20} {mib(small.peak_sum_rss_kib):>14} "
        f"{mib(full.peak_sum_rss_kib):>14}",
        f"  {'database MiB':<20} {mem['db_bytes_subset'] / 2**20:>14.1f} "
        f"{mem['db_bytes_full'] / 2**20:>14.1f}",
        f"  5x the files: peak RSS of the largest process x{mem['maxrss_growth']:.2f}, "
        f"of the main process x{mem['main_growth']:.2f}, database x{mem['db_growth']:.2f}.",
    ]
    return "\n".join(lines)


# --- Main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/scan.py",
        description="Time `dicomsieve scan` against a pydicom loop, dcm2niix -b o and a "
        "read floor on a synthetic tree; print files per second and peak RSS.",
    )
    parser.add_argument("--files", type=int, default=10_000, help="files in the data set")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder caching the generated tree (default: $TMPDIR/dicomsieve-bench-N); "
        "reused when it holds N files",
    )
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per line (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    if args.files < 5:
        parser.error("--files must be at least 5")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("_wrap", "_pydicom", "_floor"):
        return _internal(argv)
    args = parse_args(argv)
    explicit = args.data is not None
    data: Path = (
        args.data or Path(tempfile.gettempdir()) / f"dicomsieve-bench-{args.files}"
    ).resolve()
    data_info = prepare_data(data, args.files, explicit)
    files, subset_files = args.files, args.files // 5
    binary = dcm2niix_binary()
    env = {
        **base_environment(),
        "bytecode": compile_bytecode(),
        "dicomsieve": importlib.metadata.version("dicomsieve"),
        "pydicom": importlib.metadata.version("pydicom"),
        "dcm2niix": dcm2niix_version(binary),
        "dcm2niix_binary": binary,
    }
    if binary is None:
        log("dcm2niix not found: skipping it (pip install dcm2niix)")
    log("warming the page cache (reading every file once)")
    warm = warm_page_cache(data)
    ms: dict[str, Measurement] = {}
    with tempfile.TemporaryDirectory(prefix="dicomsieve-bench-", dir=data.parent) as t:
        tmp = Path(t)
        ms["scan"], db = bench_dicomsieve(
            "scan", "dicomsieve scan (jobs = CPUs)", data, files, tmp, args.repeat, None
        )
        ms["rescan"] = bench_rescan(db, data, files, tmp, args.repeat)
        _remove_db(db)
        ms["scan_jobs1"], db = bench_dicomsieve(
            "scan_jobs1", "dicomsieve scan --jobs 1", data, files, tmp, args.repeat, 1
        )
        _remove_db(db)
        ms["pydicom"] = bench_python_loop(
            "pydicom", "pydicom dcmread loop (no pixels)", data, files, tmp, args.repeat
        )
        if binary is not None:
            found = bench_dcm2niix(binary, data, files, tmp, args.repeat)
            if found is not None:
                ms["dcm2niix"] = found
        ms["floor"] = bench_python_loop(
            "floor", "floor: open + read 4 KiB (Python)", data, files, tmp, args.repeat
        )
        subset = make_subset(data, subset_files, tmp)
        ms["scan_subset"], db = bench_dicomsieve(
            "scan_subset",
            f"dicomsieve scan, first {subset_files} files",
            subset,
            subset_files,
            tmp,
            args.repeat,
            None,
        )
        _remove_db(db)
    small, full = ms["scan_subset"], ms["scan"]
    db_small = small.detail["db_bytes"]
    db_full = full.detail["db_bytes"]
    main_small = small.roles.get("main", {}).get("peak_rss_kib", 0)
    main_full = full.roles.get("main", {}).get("peak_rss_kib", 0)
    report: dict[str, Any] = {
        "environment": env,
        "data": {"path": str(data), "files": files, **describe_data(data), **data_info},
        "page_cache_warmup": warm,
        "repeat": args.repeat,
        "measurements": {k: m.to_json() for k, m in ms.items()},
        "ratios": ratios(ms),
        "derived": derived(ms),
        "targets": {f"scan_vs_{k}": v for k, v in TARGETS.items()},
        "memory": {
            "files_subset": subset_files,
            "files_full": files,
            "maxrss_kib_subset": small.maxrss_kib,
            "maxrss_kib_full": full.maxrss_kib,
            "main_rss_kib_subset": main_small,
            "main_rss_kib_full": main_full,
            "db_bytes_subset": db_small,
            "db_bytes_full": db_full,
            "maxrss_growth": full.maxrss_kib / max(small.maxrss_kib, 1),
            "main_growth": main_full / max(main_small, 1),
            "db_growth": db_full / max(db_small, 1),
        },
    }
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        print(render(report, ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
