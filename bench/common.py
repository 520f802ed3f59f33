"""Helpers shared by the benchmarks in this folder (``scan.py``, ``convert.py``).

* :func:`measure` runs a command under a small wrapper process (this file, called with
  the internal ``_wrap`` command) that makes itself a child subreaper, so that every
  process of the tool's tree (dicomsieve's forkserver and reader workers included) stays
  under it and is waited for by it. A sampler thread in the wrapper reads ``VmHWM`` (the
  kernel's peak RSS of a process) and ``VmRSS`` of each process of the tree from
  ``/proc`` every 20 ms: the peak RSS of each process and which process it was, and the
  peak of the sum. ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of the wrapper is kept as a
  cross-check but is only an upper bound: Linux records the RSS of the (v)forked copy of
  the wrapper at the child's ``exec`` in the child's ``maxrss``, so it never goes below
  the wrapper's own RSS.
* :class:`Run` and :class:`Measurement`: the figures of one run, and a line of a table
  (the median of its timed runs).
* The data sets: :func:`prepare_data` generates the PACS-like tree with
  ``dicomsieve.synthetic.make_bench`` (or reuses it), :func:`prepare_generated` any other
  generator of ``dicomsieve.synthetic`` with a stamp beside the folder,
  :func:`warm_page_cache`, :func:`describe_data`, :func:`make_subset`.
* Finding the tools: :func:`dicomsieve_exe`, :func:`dcm2niix_binary`.

Linux only (``/proc``, ``prctl``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
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
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

THIS: Final = Path(__file__).resolve()
PR_SET_CHILD_SUBREAPER: Final = 36
SAMPLE_INTERVAL_S: Final = 0.02


def iter_files(root: str) -> Iterator[str]:
    """Regular files under ``root`` (links not followed), in directory order."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def log(message: str) -> None:
    """Progress on stderr (stdout holds the table or the JSON)."""
    print(message, file=sys.stderr, flush=True)


def log_attempt(label: str, i: int, repeat: int) -> None:
    """``label: warm-up`` for attempt 0, ``label: run i/repeat`` for the timed ones."""
    log(f"  {label}: {'warm-up' if i == 0 else f'run {i}/{repeat}'}")


def base_environment() -> dict[str, Any]:
    """Python, CPU count and platform, for the report."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def compile_bytecode() -> str:
    """Write the ``.pyc`` files of dicomsieve's modules, as installing a package does.

    pip writes them for a package it installs from a wheel, as it did for pydicom; an
    editable install writes them on first import, unless ``PYTHONDONTWRITEBYTECODE`` is
    set (as on some CI and sandbox machines). Then every run of dicomsieve would compile
    its sources again, about 0.07 s of CPU in each of the two processes a scan starts,
    which no installed tool pays. Returns what was done, for the report.
    """
    import compileall

    import dicomsieve

    package = Path(dicomsieve.__file__).parent
    ok = compileall.compile_dir(str(package), quiet=1)
    return f"compiled ({'ok' if ok else 'with errors'}) in {package}"


def version_of(distribution: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- The wrapper (runs in its own process) ----------------------------------------------


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


def wrap(stdout_path: str, stderr_path: str, cmd: list[str]) -> dict[str, Any]:
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


# --- Tools -----------------------------------------------------------------------------


def dicomsieve_exe() -> list[str]:
    """The ``dicomsieve`` console script beside this interpreter, else on PATH."""
    exe = Path(sys.executable).parent / "dicomsieve"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("dicomsieve")
    if found:
        return [found]
    raise SystemExit("dicomsieve is not installed (pip install -e .)")


def dcm2niix_binary() -> str | None:
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


# --- Data -------------------------------------------------------------------------------


def count_files(root: Path) -> int:
    """Regular files under ``root``."""
    return sum(1 for _ in iter_files(str(root)))


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
    log(f"data: generating {files} files into {data} (about 3.4 GB per 10,000 files)")
    start = time.perf_counter()
    make_bench(partial, n_files=files)
    seconds = time.perf_counter() - start
    if data.exists():
        data.rmdir()  # empty (checked above)
    partial.rename(data)
    log(f"data: generated in {seconds:.1f} s")
    return {"generated": True, "generate_s": round(seconds, 1)}


def _tree_state(root: Path) -> tuple[int, int, int]:
    """Files, bytes and the newest modification time (ns) under ``root``."""
    files = total = newest = 0
    for path in iter_files(str(root)):
        st = os.stat(path)
        files += 1
        total += st.st_size
        newest = max(newest, st.st_mtime_ns)
    return files, total, newest


def _synthetic_fingerprint() -> dict[str, Any]:
    """What the generated bytes depend on: the generator's source, numpy and pydicom."""
    import dicomsieve.synthetic

    source = Path(dicomsieve.synthetic.__file__).read_bytes()
    return {
        "synthetic_sha256": hashlib.sha256(source).hexdigest(),
        "numpy": version_of("numpy"),
        "pydicom": version_of("pydicom"),
    }


def prepare_generated(data: Path, generator: str, params: dict[str, Any]) -> dict[str, Any]:
    """Reuse ``data`` when its stamp says it holds what ``generator(**params)`` writes now.

    The stamp is ``DATA.json`` beside the folder (not inside: every tool would see it):
    the generator, its parameters, the fingerprint of the generator (source of
    ``dicomsieve.synthetic``, numpy and pydicom versions), and the files, bytes and newest
    modification time written. A folder whose stamp differs, or whose files, bytes or
    newest modification time changed since, is generated again (into ``DATA.partial``,
    then renamed).
    """
    stamp_path = data.with_name(data.name + ".json")
    wanted = {"generator": generator, "params": params, **_synthetic_fingerprint()}
    if data.is_dir() and stamp_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            stamp = json.loads(stamp_path.read_text())
            if {k: stamp.get(k) for k in wanted} == wanted:
                files, total, newest = _tree_state(data)
                if [files, total, newest] == [stamp.get(k) for k in ("files", "bytes", "newest")]:
                    log(f"data: reusing {data} ({files:,} files)")
                    return {"generated": False, "generate_s": None}
                log(f"data: {data} changed since it was generated: generating it again")
            else:
                log(f"data: {data} was written by another generator: generating it again")
    try:
        import dicomsieve.synthetic as synthetic
    except ImportError as exc:
        raise SystemExit(f"cannot import dicomsieve.synthetic: {exc}") from exc
    make = getattr(synthetic, generator)
    stamp_path.unlink(missing_ok=True)
    if data.exists():
        shutil.rmtree(data)
    partial = data.with_name(data.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    described = ", ".join(f"{k}={v}" for k, v in params.items())
    log(f"data: generating {generator}({described}) into {data}")
    start = time.perf_counter()
    make(partial, **params)
    seconds = time.perf_counter() - start
    partial.rename(data)
    files, total, newest = _tree_state(data)
    stamp = {**wanted, "files": files, "bytes": total, "newest": newest}
    stamp_path.write_text(json.dumps(stamp, indent=2))
    log(f"data: generated {files:,} files ({total / 2**30:.2f} GiB) in {seconds:.1f} s")
    return {"generated": True, "generate_s": round(seconds, 1)}


def describe_data(data: Path) -> dict[str, Any]:
    """Total bytes and number of folders holding files."""
    total = 0
    folders = set()
    for path in iter_files(str(data)):
        total += os.stat(path).st_size
        folders.add(os.path.dirname(path))
    return {"bytes": total, "series_folders": len(folders)}


def warm_page_cache(data: Path) -> dict[str, float]:
    """Read every byte of every file once."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total = 0
    start = time.perf_counter()
    for path in iter_files(str(data)):
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(view):
                total += n
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "bytes": total}


def link_tree(paths: Sequence[str], data: Path, dest: Path) -> Path:
    """Hard links (copies where links fail) to ``paths``, at their places under ``dest``."""
    for path in paths:
        target = dest / os.path.relpath(path, data)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    return dest


def make_subset(data: Path, files: int, tmp: Path) -> Path:
    """Hard links to the first ``files`` files in path order (= make_bench(n_files=files))."""
    return link_tree(sorted(iter_files(str(data)))[:files], data, tmp / "subset")


# --- Report -----------------------------------------------------------------------------


def mib(kib: int) -> str:
    """KiB as whole MiB, for tables."""
    return f"{kib / 1024:.0f}"


# --- Entry point of the wrapper process --------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``common.py _wrap STDOUT STDERR -- CMD...``: print :func:`wrap`'s result as JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 5 or args[0] != "_wrap" or args[3] != "--":
        raise SystemExit("usage: common.py _wrap STDOUT STDERR -- CMD...")
    sys.stdout.write(json.dumps(wrap(args[1], args[2], args[4:])) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
