"""The JSON and image API of the web app, over the library.

Every resource is addressed by a database id (series, loadable) or a random job id;
no route takes a file path in its URL, and the only files it reads are the indexed DICOM
files of a stored loadable and the outputs of this server's own conversions. Patient
names and ids appear in one answer only: ``GET /api/series``, the table that exists to
show them.

| route | answer |
|---|---|
| ``GET /api/series`` | patients, studies and series with counts (the table) |
| ``GET /api/series/{id}`` | a series' loadables, examined now unless stored and current |
| ``GET /api/loadables/{id}`` | what the viewer needs: planes, time points, windows |
| ``GET /api/loadables/{id}/thumbnail.png`` | middle slice, DICOM default window |
| ``GET /api/loadables/{id}/plane.png`` | one plane (``axis``, ``index``, ``t``, ``wc``, ``ww``) |
| ``GET /api/loadables/{id}/reference-lines`` | a localizer's volume and its slice lines |
| ``POST /api/import`` | scan a folder then examine, in the background |
| ``POST /api/convert`` | convert loadables to NIfTI or NRRD, in the background |
| ``GET /api/jobs/{id}`` | a job's progress and result |
| ``GET /api/jobs/{id}/files/{n}`` | one written file |
| ``GET /api/jobs/{id}/archive.zip`` | every written file |
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from dicomsieve.api import examine_index
from dicomsieve.codes import LoadableKind
from dicomsieve.errors import LoadError
from dicomsieve.index.browse import (
    SliceDisplay,
    loadable_ids,
    localizer_partners,
    series_info,
    series_table,
    slice_display,
)
from dicomsieve.index.store import Index
from dicomsieve.load.loader import load
from dicomsieve.load.volume import Volume
from dicomsieve.loadables.model import ExamineWarning, Loadable
from dicomsieve.loadables.reference import reference_lines
from dicomsieve.render import (
    Window,
    default_window,
    extract_plane,
    presets,
    render_png,
    thumbnail_png,
)
from dicomsieve.web.jobs import JobStatus, run_convert, run_import
from dicomsieve.web.state import ApiError, ServerState
from dicomsieve.web.volumes import (
    LOAD_ERROR_HINTS,
    StoredLoadable,
    middle_slice,
    slice_ref,
    stored_loadable,
)

__all__ = ["add_api_routes"]

log = logging.getLogger(__name__)

_PNG: Final = "image/png"
_AXIS_NAMES: Final = ("column", "row", "slice")
_MEDIA_TYPES: Final = {
    ".gz": "application/gzip",
    ".nii": "application/octet-stream",
    ".nrrd": "application/octet-stream",
    ".json": "application/json",
}


class ImportRequest(BaseModel):
    """``POST /api/import``: an absolute path on this machine."""

    path: str = Field(min_length=1, max_length=4096)


class ConvertRequest(BaseModel):
    """``POST /api/convert``: loadable ids and an output format."""

    loadables: list[int] = Field(min_length=1, max_length=1000)
    format: Literal["nii.gz", "nii", "nrrd"] = "nii.gz"


def _warning(w: ExamineWarning) -> dict[str, Any]:
    # Files are counted, not named: the page addresses nothing by path.
    return {"code": str(w.code), "level": str(w.level), "message": w.message, "files": len(w.files)}


def _loadable_json(loadable_id: int, lo: Loadable) -> dict[str, Any]:
    return {
        "id": loadable_id,
        "name": lo.name,
        "kind": str(lo.kind),
        "selected": lo.selected,
        "confidence": round(lo.confidence, 3),
        "reason": lo.reason,
        "shape": list(lo.shape),
        "spacing": list(lo.spacing) if lo.spacing is not None else None,
        "geometry": lo.affine_lps is not None,
        "viewable": lo.kind is not LoadableKind.UNSUPPORTED and len(lo.shape) >= 3,
        "warnings": [_warning(w) for w in lo.warnings],
    }


def _invert(display: SliceDisplay | None) -> bool:
    return display is not None and display.photometric_interpretation == "MONOCHROME1"


def add_api_routes(app: FastAPI, state: ServerState) -> None:
    """Add the API routes of one server to ``app``, bound to its state.

    Parameters
    ----------
    app
        The application.
    state
        Configuration, jobs, cache and work folder of the app.
    """
    settings = state.config.settings
    archive_lock = threading.Lock()

    def found_loadable(index: Index, loadable_id: int) -> StoredLoadable:
        found = stored_loadable(index, loadable_id)
        if found is None:
            raise ApiError(404, "not_found", "no such loadable (examined again since?)")
        return found

    def viewable(found: StoredLoadable) -> None:
        lo = found.loadable
        if lo.kind is LoadableKind.UNSUPPORTED or len(lo.shape) < 3:
            raise ApiError(409, "NOT_LOADABLE", LOAD_ERROR_HINTS["NOT_LOADABLE"])

    def load_error(loadable_id: int, exc: LoadError) -> ApiError:
        # The code only: a load error's message names files.
        log.warning("loadable %d could not be loaded: %s", loadable_id, exc.code)
        return ApiError(409, exc.code, LOAD_ERROR_HINTS.get(exc.code, ""))

    def loaded(found: StoredLoadable) -> Volume:
        viewable(found)
        key = ("volume", found.ref.loadable_id, found.loadable)
        try:
            return state.cache.get_or_load(
                key, lambda: load(found.loadable, settings), lambda v: int(v.array.nbytes)
            )
        except LoadError as exc:
            raise load_error(found.ref.loadable_id, exc) from None

    def display(index: Index, lo: Loadable, k: int, t: int = 0) -> SliceDisplay | None:
        ref = slice_ref(lo, k, t)
        if ref.instance_id is None:
            return None
        return slice_display(index, ref.instance_id, ref.frame_number)

    @app.get("/api/series")
    def list_series() -> dict[str, Any]:
        with state.index() as index:
            rows = series_table(index)
        return {
            "series": [
                {
                    "id": r.series_id,
                    "series_number": r.series_number,
                    "series_description": r.series_description,
                    "modality": r.modality,
                    "instances": r.instances,
                    "frames": r.frames,
                    "duplicates": r.duplicates,
                    "study_id": r.study_id,
                    "study_date": r.study_date,
                    "study_description": r.study_description,
                    "patient": r.patient_ref,
                    "patient_id": r.patient_id,
                    "patient_name": r.patient_name,
                    "loadables": r.loadables,
                    "selected": r.selected,
                    "examined": r.examined,
                }
                for r in rows
            ],
            "patients": len({r.patient_ref for r in rows}),
            "studies": len({r.study_id for r in rows}),
            "importing": state.jobs.running("import"),
        }

    @app.get("/api/series/{series_id:int}")
    def series_detail(series_id: int) -> dict[str, Any]:
        with state.index() as index:
            info = series_info(index, series_id)
            if info is None:
                raise ApiError(404, "not_found", "no such series")
            examination = examine_index(index, settings, series_uid=info.series_instance_uid)
            ids = loadable_ids(index, series_id)
        if not examination.series or len(ids) != len(examination.series[0].loadables):
            raise ApiError(409, "changed", "the series changed while it was examined; reload")
        result = examination.series[0]
        return {
            "id": info.series_id,
            "series_number": info.series_number,
            "series_description": info.series_description,
            "modality": info.modality,
            "study_date": info.study_date,
            "study_description": info.study_description,
            "loadables": [
                _loadable_json(i, lo) for i, lo in zip(ids, result.loadables, strict=True)
            ],
            "warnings": [_warning(w) for w in result.warnings],
            "left_out": len(result.left_out),
        }

    @app.get("/api/loadables/{loadable_id:int}")
    def loadable_detail(loadable_id: int) -> dict[str, Any]:
        with state.index() as index:
            found = found_loadable(index, loadable_id)
            volume = loaded(found)
            lo = found.loadable
            shape = volume.array.shape
            time_points = shape[3] if len(lo.shape) == 4 else 1
            shown = display(index, lo, shape[2] // 2)
        centers = shown.window_center if shown else None
        widths = shown.window_width if shown else None
        window = default_window(centers, widths, volume.array)
        choices = presets(found.ref.modality, centers, widths, volume.array)
        out = _loadable_json(loadable_id, lo)
        out.update(
            series_id=found.ref.series_id,
            series_number=found.ref.series_number,
            series_description=found.ref.series_description,
            modality=found.ref.modality,
            rgb=volume.is_rgb,
            invert=_invert(shown),
            planes=[{"axis": a, "name": _AXIS_NAMES[a], "count": int(shape[a])} for a in range(3)],
            time_points=int(time_points),
            window=window.to_dict(),
            presets=[w.to_dict() for w in choices],
        )
        return out

    @app.get("/api/loadables/{loadable_id:int}/thumbnail.png")
    def thumbnail(loadable_id: int) -> Response:
        with state.index() as index:
            found = found_loadable(index, loadable_id)
            viewable(found)
            lo = found.loadable
            part = middle_slice(lo)
            shown = display(index, part, 0)
        k = lo.shape[2] // 2 if lo.mosaic_slices is not None else 0

        def make() -> bytes:
            try:
                volume = load(part, settings)
            except LoadError as exc:
                raise load_error(loadable_id, exc) from None
            plane = extract_plane(volume.array, volume.affine_lps, 2, k, rgb=volume.is_rgb)
            window = default_window(
                shown.window_center if shown else None,
                shown.window_width if shown else None,
                plane.pixels,
            )
            return thumbnail_png(plane, window, invert=_invert(shown))

        png = state.cache.get_or_load(("thumbnail", loadable_id, lo), make, len)
        return Response(png, media_type=_PNG)

    @app.get("/api/loadables/{loadable_id:int}/plane.png")
    def plane_png(
        loadable_id: int,
        axis: Annotated[int, Query(ge=0, le=2)] = 2,
        index: Annotated[int, Query(ge=0)] = 0,
        t: Annotated[int, Query(ge=0)] = 0,
        wc: Annotated[float | None, Query()] = None,
        ww: Annotated[float | None, Query(gt=0)] = None,
        size: Annotated[int, Query(ge=16, le=2048)] = 1024,
    ) -> Response:
        if (wc is None) != (ww is None) or not all(v is None or math.isfinite(v) for v in (wc, ww)):
            raise ApiError(400, "bad_request", "give both wc and ww, finite, or neither")
        with state.index() as db:
            found = found_loadable(db, loadable_id)
            volume = loaded(found)
            try:
                plane = extract_plane(
                    volume.array, volume.affine_lps, axis, index, time=t, rgb=volume.is_rgb
                )
            except IndexError:
                raise ApiError(404, "out_of_range", "no such plane or time point") from None
            k = index if axis == 2 else volume.array.shape[2] // 2
            shown = display(db, found.loadable, k, t)
        if wc is not None and ww is not None:
            window = Window(wc, ww)
        else:
            window = default_window(
                shown.window_center if shown else None,
                shown.window_width if shown else None,
                plane.pixels,
            )
        png = render_png(plane, window, invert=_invert(shown), max_size=size)
        # Patient directions of the image's right and bottom edges, when it has geometry.
        edges = (
            {"x-plane-right": plane.right, "x-plane-down": plane.down}
            if found.loadable.affine_lps is not None
            else {}
        )
        return Response(png, media_type=_PNG, headers=edges)

    @app.get("/api/loadables/{loadable_id:int}/reference-lines")
    def lines(
        loadable_id: int,
        volume: Annotated[int | None, Query(ge=0)] = None,
        image: Annotated[int | None, Query(ge=0)] = None,
    ) -> dict[str, Any]:
        with state.index() as index:
            localizer = found_loadable(index, loadable_id)
            viewable(localizer)
            candidates = localizer_partners(index, localizer.ref)
            picked = candidates
            if volume is not None:
                picked = [p for p in candidates if p.loadable_id == volume]
                if not picked:
                    raise ApiError(404, "not_found", "no such volume in this study")
            partner = stored_loadable(index, picked[0].loadable_id) if picked else None
        lo = localizer.loadable
        images = lo.shape[2]
        k = images // 2 if image is None else image
        if k >= images:
            raise ApiError(404, "out_of_range", "no such image in this localizer")
        same_frame = (
            partner is not None
            and localizer.ref.frame_of_reference_uid is not None
            and partner.ref.frame_of_reference_uid == localizer.ref.frame_of_reference_uid
        )
        drawn: list[dict[str, Any]] = []
        if partner is not None:
            try:
                found_lines = reference_lines(lo, partner.loadable, slice_index=k)
            except ValueError:
                found_lines = []
            drawn = [
                {"slice": line.slice_index, "start": list(line.start), "end": list(line.end)}
                for line in found_lines
            ]
        return {
            "localizer": {
                "id": loadable_id,
                "name": lo.name,
                "columns": lo.shape[0],
                "rows": lo.shape[1],
                "images": images,
                "image": k,
                "geometry": lo.affine_lps is not None,
            },
            "volume": None
            if partner is None
            else {
                "id": partner.ref.loadable_id,
                "name": partner.loadable.name,
                "kind": str(partner.loadable.kind),
                "series_id": partner.ref.series_id,
                "series_number": partner.ref.series_number,
                "series_description": partner.ref.series_description,
                "slices": partner.loadable.shape[2],
                "same_frame_of_reference": same_frame,
            },
            "candidates": [
                {
                    "id": p.loadable_id,
                    "name": p.name,
                    "kind": p.kind,
                    "series_number": p.series_number,
                    "series_description": p.series_description,
                }
                for p in candidates
            ],
            "lines": drawn,
        }

    @app.post("/api/import", status_code=202)
    def start_import(body: ImportRequest) -> dict[str, Any]:
        if "\x00" in body.path or not os.path.isabs(body.path):
            raise ApiError(400, "bad_path", "give an absolute path to a folder or file")
        root = Path(os.path.normpath(body.path))
        if not root.exists():
            raise ApiError(400, "bad_path", "no folder or file at that path")
        if state.jobs.running("import"):
            raise ApiError(409, "busy", "an import is running")
        db = state.config.db
        job = state.jobs.start("import", lambda update: run_import(db, root, settings, update))
        log.info("import job %s started", job.id)
        return job.to_dict()

    @app.post("/api/convert", status_code=202)
    def start_convert(body: ConvertRequest) -> dict[str, Any]:
        ids = list(dict.fromkeys(body.loadables))
        with state.index() as index:
            for loadable_id in ids:
                found = stored_loadable(index, loadable_id)
                if found is None:
                    raise ApiError(404, "not_found", "no such loadable")
                if found.loadable.kind is LoadableKind.UNSUPPORTED:
                    raise ApiError(409, "NOT_LOADABLE", LOAD_ERROR_HINTS["NOT_LOADABLE"])
        outdir = Path(tempfile.mkdtemp(prefix="convert-", dir=state.workdir))
        db, fmt = state.config.db, body.format
        job = state.jobs.start(
            "convert", lambda update: run_convert(db, ids, fmt, outdir, settings, update)
        )
        log.info("convert job %s started: %d loadable(s)", job.id, len(ids))
        return job.to_dict()

    def job_of(job_id: str) -> JobStatus:
        job = state.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", "no such job")
        return job

    def written(path: Path) -> Path:
        # Belt and braces: a job's files are in this server's work folder.
        resolved = path.resolve()
        if not resolved.is_relative_to(state.workdir.resolve()) or not resolved.is_file():
            raise ApiError(404, "not_found", "no such file")
        return resolved

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        return job_of(job_id).to_dict()

    @app.get("/api/jobs/{job_id}/files/{number:int}")
    def job_file(job_id: str, number: int) -> FileResponse:
        job = job_of(job_id)
        if number >= len(job.files):
            raise ApiError(404, "not_found", "no such file")
        path = written(job.files[number])
        return FileResponse(
            path,
            media_type=_MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
            filename=path.name,
        )

    @app.get("/api/jobs/{job_id}/archive.zip")
    def job_archive(job_id: str) -> FileResponse:
        job = job_of(job_id)
        if job.state != "done" or not job.files:
            raise ApiError(404, "not_found", "nothing to download (yet)")
        paths = [written(p) for p in job.files]
        archive = paths[0].parent / f".archive-{job.id}.zip"
        with archive_lock:
            if not archive.exists():
                partial = archive.with_suffix(".partial")
                with zipfile.ZipFile(partial, "w") as zf:
                    for path in paths:
                        stored = path.name.endswith(".gz")
                        zf.write(
                            path,
                            path.name,
                            compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                        )
                partial.replace(archive)
        return FileResponse(archive, media_type="application/zip", filename="dicomsieve.zip")
