"""Benchmark of ``dicomsieve scan`` against its peers, measured in the same run.

Usage::

    python bench/scan.py [--files N] [--data DIR] [--repeat K] [--json]

It prints figures and never asserts a timing. See ``bench/README.md``.

Every tool runs as a child of a small wrapper process (this file, called with the
internal ``_wrap`` command) that makes itself a child subreaper, so that every process
of the tool's tree (dicomsieve's forkserver and reader workers included) stays under it
and is waited for by it. A sampler thread in the wrapper reads ``VmHWM`` (the kernel's
peak RSS of a process) and ``VmRSS`` of each process of the tree from ``/proc`` every
20 ms: the peak RSS of each process and which process it was, and the peak of the sum.

``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of the wrapper is kept as a cross-check but is
only an upper bound: Linux records the RSS of the (v)forked copy of the wrapper at the
child's ``exec`` in the child's ``maxrss``, so it never goes below the wrapper's own RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

THIS: Final = Path(__file__).resolve()
PR_SET_CHILD_SUBREAPER: Final = 36
SAMPLE_INTERVAL_S: Final = 0.02
FLOOR_BYTES: Final = 4096
TARGETS: Final = {"pydicom": 5.0, "dcm2niix": 1.0}


# --- Internal commands, run in child processes --------------------------------------------


def _iter_files(root: str) -> Iterator[str]:
    """Regular files under ``root`` (links not followed), in directory order."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def _pydicom_loop(root: str) -> dict[str, int]:
    """``pydicom.dcmread(path, stop_before_pixels=True)`` over every file."""
    import pydicom

    ok = errors = 0
    for path in _iter_files(root):
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
    for path in _iter_files(root):
        fd = os.open(path, os.O_RDONLY)
        try:
            nbytes += len(os.read(fd, FLOOR_BYTES))
        finally:
            os.close(fd)
        files += 1
    return {"files": files, "ok": files, "errors": 0, "bytes": nbytes}


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                out.extend(int(c) for c in text.split())
    return out


def _status(pid: int) -> dict[str, str] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields if "VmHWM" in fields else None


def _kib(value: str) -> int:
    return int(value.split()[0])


class _Sampler(threading.Thread):
    """Peak RSS per process of the tree under ``root`` (this wrapper), by role."""

    def __init__(self, root: int, main_pid: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.main_pid = main_pid
        self.stop = threading.Event()
        self.hwm: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.cmdlines: dict[int, bytes] = {}
        self.peak_sum_kib = 0

    def run(self) -> None:
        while True:
            self.sample()
            if self.stop.wait(SAMPLE_INTERVAL_S):
                return

    def _role(self, pid: int, parent: int, cmdline: bytes, status: dict[str, str]) -> str:
        if pid == self.main_pid:
            return "main"
        if b"resource_tracker" in cmdline:
            return "resource tracker"
        if self.roles.get(parent) == "forkserver":
            return "worker"
        if b"forkserver" in cmdline:
            return "forkserver"
        if parent == self.main_pid:
            return f"child ({status.get('Name', '?')})"
        return f"descendant ({status.get('Name', '?')})"

    def sample(self) -> None:
        total = 0
        stack = [(c, self.root) for c in _children(self.root)]
        while stack:
            pid, parent = stack.pop()
            stack.extend((c, pid) for c in _children(pid))
            try:  # before the status: an exec in between then shows at the next sample
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            status = _status(pid)
            if status is None:
                continue
            if self.cmdlines.setdefault(pid, cmdline) != cmdline:
                # exec'd since the last sample: the peak seen before was the forked copy
                # of the parent, not this program.
                self.cmdlines[pid] = cmdline
                self.hwm[pid] = 0
            self.roles[pid] = self._role(pid, parent, cmdline, status)
            self.hwm[pid] = max(self.hwm.get(pid, 0), _kib(status["VmHWM"]))
            total += _kib(status["VmRSS"])
        self.peak_sum_kib = max(self.peak_sum_kib, total)

    def by_role(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for pid, peak in self.hwm.items():
            entry = out.setdefault(self.roles[pid], {"processes": 0, "peak_rss_kib": 0})
            entry["processes"] += 1
            entry["peak_rss_kib"] = max(entry["peak_rss_kib"], peak)
        return out


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _wrap(stdout_path: str, stderr_path: str, cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``; return its wall time, exit status and peak RSS figures."""
    subreaper = _become_subreaper()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        sampler = _Sampler(os.getpid(), child.pid)
        sampler.start()
        returncode = child.wait()
        wall = time.perf_counter() - start
    # Reap what the tool left behind (reparented to us as the subreaper).
    stragglers = 0
    deadline = time.monotonic() + 30
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:
                stragglers = len(_children(os.getpid()))
                break
            time.sleep(0.005)
    sampler.stop.set()
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": wall,
        "returncode": returncode,
        "ru_maxrss_kib": usage.ru_maxrss,
        "wrapper_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "roles": sampler.by_role(),
        "peak_sum_rss_kib": sampler.peak_sum_kib,
        "subreaper": subreaper,
        "stragglers": stragglers,
    }


def _internal(argv: list[str]) -> int:
    command = argv[0]
    if command == "_wrap":
        stdout_path, stderr_path, sep, *cmd = argv[1:]
        if sep != "--" or not cmd:
            raise SystemExit("usage: scan.py _wrap STDOUT STDERR -- CMD...")
        result = _wrap(stdout_path, stderr_path, cmd)
    elif command == "_pydicom":
        result = _pydicom_loop(argv[1])
    else:
        result = _floor_loop(argv[1])
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


# --- Measurements -----------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of one tool."""

    wall_s: float
    cpu_s: float
    ru_maxrss_kib: int
    wrapper_rss_kib: int
    peak_sum_rss_kib: int
    roles: dict[str, dict[str, int]]
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Measurement:
    """A line of the table: the timed runs of one tool on one data set."""

    key: str
    label: str
    command: list[str]
    files: int
    runs: list[Run] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall_s if self.wall_s > 0 else float("inf")

    @property
    def cpu_s(self) -> float:
        """User + system CPU seconds of the whole process tree (median run)."""
        return statistics.median(r.cpu_s for r in self.runs)

    @property
    def maxrss_kib(self) -> int:
        """Peak RSS of the largest single process of the tree (sampled VmHWM)."""
        return max((e["peak_rss_kib"] for e in self.roles.values()), default=0)

    @property
    def ru_maxrss_kib(self) -> int:
        return max(r.ru_maxrss_kib for r in self.runs)

    @property
    def peak_sum_rss_kib(self) -> int:
        return max(r.peak_sum_rss_kib for r in self.runs)

    @property
    def roles(self) -> dict[str, dict[str, int]]:
        merged: dict[str, dict[str, int]] = {}
        for run in self.runs:
            for role, entry in run.roles.items():
                cur = merged.setdefault(role, {"processes": 0, "peak_rss_kib": 0})
                cur["processes"] = max(cur["processes"], entry["processes"])
                cur["peak_rss_kib"] = max(cur["peak_rss_kib"], entry["peak_rss_kib"])
        return merged

    @property
    def largest_role(self) -> str:
        roles = self.roles
        if not roles:
            return "?"
        return max(roles, key=lambda r: roles[r]["peak_rss_kib"])

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "command": self.command,
            "files": self.files,
            "wall_s": round(self.wall_s, 4),
            "wall_s_runs": [round(r.wall_s, 4) for r in self.runs],
            "cpu_s": round(self.cpu_s, 3),
            "files_per_s": round(self.files_per_s, 1),
            "peak_rss_kib": self.maxrss_kib,
            "ru_maxrss_kib": self.ru_maxrss_kib,
            "wrapper_rss_kib": max(r.wrapper_rss_kib for r in self.runs),
            "peak_rss_process": self.largest_role,
            "peak_rss_by_process": self.roles,
            "peak_sum_rss_kib": self.peak_sum_rss_kib,
            **self.detail,
        }


def log(message: str) -> None:
    """Progress on stderr (stdout holds the table or the JSON)."""
    print(message, file=sys.stderr, flush=True)


def measure(cmd: list[str], workdir: Path) -> Run:
    """Run ``cmd`` under the wrapper; return its figures."""
    out, err = workdir / "stdout", workdir / "stderr"
    wrapper = [sys.executable, str(THIS), "_wrap", str(out), str(err), "--", *cmd]
    done = subprocess.run(wrapper, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrapper failed ({done.returncode}): {done.stderr.strip()}")
    result = json.loads(done.stdout)
    if not result["subreaper"]:
        log("  note: could not become a child subreaper; orphaned processes may be missed")
    if result["stragglers"]:
        log(f"  note: {result['stragglers']} processes still alive 30 s after the tool exited")
    stdout = out.read_text(errors="replace")
    stderr = err.read_text(errors="replace")
    out.unlink()
    err.unlink()
    return Run(
        wall_s=result["wall_s"],
        cpu_s=result["cpu_s"],
        ru_maxrss_kib=result["ru_maxrss_kib"],
        wrapper_rss_kib=result["wrapper_rss_kib"],
        peak_sum_rss_kib=result["peak_sum_rss_kib"],
        roles=result["roles"],
        returncode=result["returncode"],
        stdout=stdout,
        stderr=stderr,
    )


def _db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def _dicomsieve_exe() -> list[str]:
    exe = Path(sys.executable).parent / "dicomsieve"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("dicomsieve")
    if found:
        return [found]
    raise SystemExit("dicomsieve is not installed (pip install -e .)")


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
        cmd = [*_dicomsieve_exe(), "scan", str(data), "--db", str(db), "--json", *extra]
        if measurement is None:
            measurement = Measurement(key, label, [*cmd[:4], "FRESH.sqlite", *cmd[5:]], files)
        log(f"  {label}: {'warm-up' if i == 0 else f'run {i}/{repeat}'}")
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
    cmd = [*_dicomsieve_exe(), "scan", str(data), "--db", str(db), "--json"]
    label = "dicomsieve rescan (all unchanged)"
    measurement = Measurement("rescan", label, [*cmd[:4], "SAME.sqlite", *cmd[5:]], files)
    for i in range(repeat + 1):
        log(f"  {label}: {'warm-up' if i == 0 else f'run {i}/{repeat}'}")
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
        log(f"  {label}: {'warm-up' if i == 0 else f'run {i}/{repeat}'}")
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


def _dcm2niix_binary() -> str | None:
    """The native dcm2niix binary (the PyPI package's console script is a Python shim)."""
    try:
        import dcm2niix  # type: ignore[import-untyped, import-not-found, unused-ignore]

        path = Path(dcm2niix.bin)
        if path.is_file():
            return str(path)
    except ImportError:
        pass
    return shutil.which("dcm2niix")


def dcm2niix_version(binary: str | None) -> str | None:
    if binary is None:
        return None
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"v\d+\.\d+\.\d+\w*", done.stdout + done.stderr)
    version = match.group(0) if match else "unknown"
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        version += f" (PyPI dcm2niix {importlib.metadata.version('dcm2niix')})"
    return version


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
        log(f"  {label}: {'warm-up' if i == 0 else f'run {i}/{repeat}'}")
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


def count_files(root: Path) -> int:
    return sum(1 for _ in _iter_files(str(root)))


def prepare_data(data: Path, files: int, explicit: bool) -> dict[str, Any]:
    """Reuse ``data`` when it holds ``files`` files; else generate it with make_bench."""
    if data.is_dir() and any(data.iterdir()):
        found = count_files(data)
        if found == files:
            log(f"data: reusing {data} ({found} files)")
            return {"generated": False, "generate_s": None}
        if explicit:
            raise SystemExit(
                f"{data} holds {found} files, not {files}: remove it or pick another --data"
            )
        log(f"data: {data} holds {found} files, not {files}: generating it again")
        shutil.rmtree(data)
    try:
        from dicomsieve.synthetic import make_bench
    except ImportError as exc:
        raise SystemExit(f"cannot import dicomsieve.synthetic.make_bench: {exc}") from exc
    partial = data.with_name(data.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    log(f"data: generating {files} files into {data} (about 2 GB per 10,000 files)")
    start = time.perf_counter()
    make_bench(partial, n_files=files)
    seconds = time.perf_counter() - start
    if data.exists():
        data.rmdir()  # empty (checked above)
    partial.rename(data)
    log(f"data: generated in {seconds:.1f} s")
    return {"generated": True, "generate_s": round(seconds, 1)}


def describe_data(data: Path) -> dict[str, Any]:
    total = 0
    folders = set()
    for path in _iter_files(str(data)):
        total += os.stat(path).st_size
        folders.add(os.path.dirname(path))
    return {"bytes": total, "series_folders": len(folders)}


def warm_page_cache(data: Path) -> dict[str, float]:
    """Read every byte of every file once."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total = 0
    start = time.perf_counter()
    for path in _iter_files(str(data)):
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(view):
                total += n
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "bytes": total}


def make_subset(data: Path, files: int, tmp: Path) -> Path:
    """Hard links to the first ``files`` files in path order (= make_bench(n_files=files))."""
    subset = tmp / "subset"
    for path in sorted(_iter_files(str(data)))[:files]:
        target = subset / os.path.relpath(path, data)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    return subset


# --- Report -----------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


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
    binary = _dcm2niix_binary()
    env = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
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
