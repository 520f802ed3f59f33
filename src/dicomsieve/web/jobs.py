"""Background jobs of the web app: import (scan, then examine) and convert.

A job runs in a worker thread with its own index connection and reports its progress
by replacing its frozen :class:`JobStatus`; the page polls it. Statuses carry counts,
codes and output names only: never a path, never a patient identifier. Files written by
a conversion stay in the job's folder and are served by their number in the job.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from dicomsieve.api import convert_examination, examine_index
from dicomsieve.errors import DicomSieveError
from dicomsieve.index.store import Index
from dicomsieve.loadables.model import Examination, Loadable, SeriesExamination
from dicomsieve.scan.scanner import ScanSummary, scan
from dicomsieve.settings import Settings
from dicomsieve.web.volumes import LOAD_ERROR_HINTS, stored_loadable

__all__ = ["JobStatus", "Jobs", "run_convert", "run_import"]

log = logging.getLogger(__name__)

RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"


@dataclass(frozen=True, slots=True)
class JobStatus:
    """Where a job stands.

    Attributes
    ----------
    id
        Random, unguessable.
    kind
        ``import`` or ``convert``.
    state
        ``running``, ``done`` or ``failed``.
    phase
        What it is doing (``scanning``, ``examining``, ``converting``...).
    done, total
        Progress within the phase (``total`` is ``None`` until known).
    result
        The outcome once done (counts, output names).
    error
        A stable code when failed.
    files
        Files written (served by their number; never shown as paths).
    """

    id: str
    kind: str
    state: str = RUNNING
    phase: str = "waiting"
    done: int = 0
    total: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    files: tuple[Path, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer of ``GET /api/jobs/{id}``."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "result": self.result,
            "error": self.error,
        }


Update = Callable[..., None]
"""Called by a running job with :class:`JobStatus` fields to change."""


class Jobs:
    """The jobs of one server: started in worker threads, looked up by id.

    Worker threads are daemons: stopping the server does not wait for a long scan (its
    batches are transactions, so the index stays consistent).

    Parameters
    ----------
    workers
        Jobs that may run at once; more wait their turn.
    """

    def __init__(self, workers: int = 2) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobStatus] = {}
        self._slots = threading.BoundedSemaphore(workers)
        self._closed = threading.Event()

    def get(self, job_id: str) -> JobStatus | None:
        """The status of a job, or ``None`` for an unknown id."""
        with self._lock:
            return self._jobs.get(job_id)

    def running(self, kind: str) -> bool:
        """Whether a job of ``kind`` is running."""
        with self._lock:
            return any(j.kind == kind and j.state == RUNNING for j in self._jobs.values())

    def start(self, kind: str, work: Callable[[Update], JobStatus | dict[str, Any]]) -> JobStatus:
        """Run ``work(update)`` in a worker thread.

        Parameters
        ----------
        kind
            ``import`` or ``convert``.
        work
            Does the job, calling ``update(**fields)`` with progress; returns the result
            (or a final :class:`JobStatus`, to attach files). Any exception fails the
            job with a code; its message is not kept (it could quote a path).

        Returns
        -------
        JobStatus
            The new job, running.
        """
        job = JobStatus(id=secrets.token_hex(12), kind=kind)
        with self._lock:
            self._jobs[job.id] = job

        def update(**changes: Any) -> None:
            with self._lock:
                self._jobs[job.id] = replace(self._jobs[job.id], **changes)

        def run() -> None:
            with self._slots:
                if self._closed.is_set():
                    update(state=FAILED, error="SERVER_STOPPING")
                    return
                attempt()

        def attempt() -> None:
            try:
                outcome = work(update)
            except DicomSieveError as exc:
                log.warning("%s job failed: %s", kind, type(exc).__name__)
                update(state=FAILED, error=type(exc).__name__)
            except Exception as exc:  # a worker thread must report, not die silently
                log.error("%s job failed: %s", kind, type(exc).__name__)
                update(state=FAILED, error="INTERNAL_ERROR")
            else:
                if isinstance(outcome, JobStatus):
                    update(state=DONE, result=outcome.result, files=outcome.files)
                else:
                    update(state=DONE, result=outcome)

        threading.Thread(target=run, name=f"dicomsieve-{kind}", daemon=True).start()
        return job

    def close(self) -> None:
        """Start no waiting job; running ones end with the process."""
        self._closed.set()


def run_import(db: Path, root: Path, settings: Settings, update: Update) -> dict[str, Any]:
    """Scan ``root`` into the index at ``db``, then examine every series.

    Parameters
    ----------
    db
        The index database (opened here, in the job's thread).
    root
        The folder or file to scan.
    settings
        Scan limits and examine tolerances.
    update
        Receives the progress: ``phase``, ``done``, ``total``.

    Returns
    -------
    dict
        ``scan``: the scan summary (counts, as ``dicomsieve scan --json``), ``series``:
        how many series the index holds.
    """

    def scanning(summary: ScanSummary) -> None:
        update(phase="scanning", done=summary.files, total=summary.total or None)

    update(phase="scanning")
    with Index(db) as index:
        summary = scan([root], index, settings, progress=scanning)
        uids = index.series_uids()
        update(phase="examining", done=0, total=len(uids))
        for n, uid in enumerate(uids, start=1):
            examine_index(index, settings, series_uid=uid)
            update(done=n)
    return {"scan": summary.to_json(), "series": len(uids)}


def run_convert(
    db: Path,
    loadable_ids: Sequence[int],
    fmt: str,
    outdir: Path,
    settings: Settings,
    update: Update,
) -> JobStatus:
    """Load and write the chosen loadables as ``fmt`` into ``outdir``.

    Each chosen loadable is converted as if it were the only one selected in its series,
    so that names and sidecars are those of ``dicomsieve convert``.

    Parameters
    ----------
    db
        The index database (opened here, in the job's thread).
    loadable_ids
        Database ids of stored loadables; unknown ones are reported, not fatal.
    fmt
        ``nii.gz``, ``nii`` or ``nrrd``.
    outdir
        The job's own folder.
    settings
        Limits for re-reading headers.
    update
        Receives the progress: ``phase``, ``done``, ``total``.

    Returns
    -------
    JobStatus
        ``result``: ``outputs`` (loadable, kind, file name, number of the image and of
        the sidecar in ``files``) and ``failures`` (loadable, kind, code, hint).
    """
    update(phase="loading", total=len(loadable_ids))
    chosen: dict[str, dict[int, Loadable]] = {}
    order: list[str] = []
    missing = 0
    with Index(db) as index:
        for loadable_id in loadable_ids:
            found = stored_loadable(index, loadable_id)
            if found is None:
                missing += 1
                continue
            uid = found.ref.series_instance_uid
            if uid not in chosen:
                order.append(uid)
                chosen[uid] = {}
            chosen[uid][found.ref.ordinal] = found.loadable
        series = []
        for uid in order:
            stored = index.stored_examination(uid)
            if stored is None:
                continue
            picked = chosen[uid]
            series.append(
                SeriesExamination(
                    series_instance_uid=stored.series_instance_uid,
                    series_number=stored.series_number,
                    series_description=stored.series_description,
                    modality=stored.modality,
                    loadables=tuple(
                        replace(lo, selected=n in picked) for n, lo in enumerate(stored.loadables)
                    ),
                    warnings=stored.warnings,
                    left_out=stored.left_out,
                )
            )
    update(phase="converting", done=0)

    def progress(done: int, total: int) -> None:
        update(done=done, total=total)

    result = convert_examination(
        Examination(tuple(series)), outdir, settings, fmt=fmt, progress=progress
    )
    files: list[Path] = []
    outputs = []
    for out in result.outputs:
        files.extend((Path(out.path), Path(out.sidecar)))
        outputs.append(
            {
                "loadable": out.loadable,
                "kind": out.kind,
                "file": Path(out.path).name,
                "image": len(files) - 2,
                "sidecar": len(files) - 1,
            }
        )
    failures = [
        {
            "loadable": f.loadable,
            "kind": f.kind,
            "code": f.code,
            "hint": LOAD_ERROR_HINTS.get(f.code, ""),
        }
        for f in result.failures
    ]
    if missing:
        failures.append(
            {"loadable": "", "kind": "", "code": "UNKNOWN_LOADABLE", "hint": f"{missing} id(s)"}
        )
    return JobStatus(
        id="",
        kind="convert",
        result={"outputs": outputs, "failures": failures},
        files=tuple(files),
    )
