"""The web API of ``dicomsieve serve``: every route, the gate, traversal and PHI.

The app runs in-process (FastAPI's TestClient) on the synthetic demo tree, whose
objects all carry the sentinel patient identifiers of :mod:`dicomsieve.synthetic`.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import logging
import shutil
import time
import zipfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import nibabel as nib
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image

from dicomsieve.api import examine_index
from dicomsieve.index.store import Index
from dicomsieve.scan.scanner import scan
from dicomsieve.settings import Settings
from dicomsieve.synthetic import (
    PHI_BIRTH_DATE,
    PHI_PATIENT_ID,
    PHI_PATIENT_NAME,
    make_demo,
    oblique_ct_with_localizer,
    write_series,
)
from dicomsieve.web import ServeConfig, create_app
from dicomsieve.web.security import cookie_name

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
TOKEN = "test-token-0123456789abcdef"
AUTH = {"X-Dicomsieve-Token": TOKEN}
PHI = (PHI_PATIENT_NAME, PHI_PATIENT_ID, PHI_BIRTH_DATE, "PHISENTINEL")
SETTINGS = Settings(jobs=2, batch_size=16, file_timeout_s=20)


def _no_phi(text: str) -> None:
    for value in PHI:
        assert value not in text


def _index(root: Path, db: Path) -> Path:
    with Index(db) as index:
        scan([root], index, SETTINGS)
        examine_index(index, SETTINGS)
    return db


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo tree, scanned and examined into ``index.sqlite`` beside it."""
    root = tmp_path_factory.mktemp("web")
    make_demo(root / "dicom")
    _index(root / "dicom", root / "index.sqlite")
    return root


def _app(db: Path) -> FastAPI:
    return create_app(ServeConfig(db=db, token=TOKEN, port=PORT, settings=SETTINGS))


@pytest.fixture(scope="module")
def client(demo: Path) -> Iterator[TestClient]:
    with TestClient(_app(demo / "index.sqlite"), base_url=BASE, headers=AUTH) as test_client:
        yield test_client


def _wait(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError("the job did not end within 60 s")


def _series(client: TestClient, description: str) -> dict[str, Any]:
    rows = client.get("/api/series").json()["series"]
    (row,) = [r for r in rows if r["series_description"] == description]
    detail: dict[str, Any] = client.get(f"/api/series/{row['id']}").json()
    return detail


def _loadable(series: dict[str, Any], kind: str, n: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = [lo for lo in series["loadables"] if lo["kind"] == kind][n]
    return found


@pytest.fixture(scope="module")
def ids(client: TestClient) -> dict[str, Any]:
    """Database ids of the objects the routes address, and a finished convert job."""
    ct = _series(client, "CT OBLIQUE WITH LOCALIZER")
    volume = _loadable(ct, "volume")["id"]
    job = client.post("/api/convert", json={"loadables": [volume]}).json()
    assert _wait(client, job["id"])["state"] == "done"
    return {
        "series": ct["id"],
        "volume": volume,
        "localizer": _loadable(ct, "localizer")["id"],
        "job": job["id"],
    }


# Every route of the app, with what it takes. test_every_route_is_listed keeps it whole.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/", None),
    ("GET", "/static/{name}", None),
    ("GET", "/api/series", None),
    ("GET", "/api/series/{series_id:int}", None),
    ("GET", "/api/loadables/{loadable_id:int}", None),
    ("GET", "/api/loadables/{loadable_id:int}/thumbnail.png", None),
    ("GET", "/api/loadables/{loadable_id:int}/plane.png", None),
    ("GET", "/api/loadables/{loadable_id:int}/reference-lines", None),
    ("POST", "/api/import", {"path": "/nonexistent"}),
    ("POST", "/api/convert", {"loadables": [1]}),
    ("GET", "/api/jobs/{job_id}", None),
    ("GET", "/api/jobs/{job_id}/files/{number:int}", None),
    ("GET", "/api/jobs/{job_id}/archive.zip", None),
]


def _url(template: str, ids: dict[str, Any]) -> str:
    return (
        template.replace("{name}", "app.js")
        .replace("{series_id:int}", str(ids["series"]))
        .replace("{loadable_id:int}", str(ids["volume"]))
        .replace("{job_id}", ids["job"])
        .replace("{number:int}", "0")
    )


def _check_headers(response: Any) -> None:
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_every_route_is_listed(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    served = {(sorted(r.methods or ())[0], r.path) for r in app.routes if isinstance(r, APIRoute)}
    assert served == {(method, path) for method, path, _ in ROUTES}


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
def test_every_route_needs_the_token(
    client: TestClient, ids: dict[str, Any], method: str, template: str, body: Any
) -> None:
    url = _url(template, ids)
    for headers in ({}, {"X-Dicomsieve-Token": "wrong-token-0123456789"}):
        response = client.request(
            method, url, json=body, headers={"X-Dicomsieve-Token": "", **headers}
        )
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        _check_headers(response)
    # A wrong cookie is no better.
    response = client.request(
        method,
        url,
        json=body,
        headers={"X-Dicomsieve-Token": "", "Cookie": f"{cookie_name(PORT)}=nope"},
    )
    assert response.status_code == 401
    # The token in the query string is accepted only by the entry page.
    if template != "/":
        response = client.request(
            method, f"{url}?token={TOKEN}", json=body, headers={"X-Dicomsieve-Token": ""}
        )
        assert response.status_code == 401


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        f"evil.example:{PORT}",
        f"localhost:{PORT}",
        "127.0.0.1",
        f"127.0.0.1:{PORT + 1}",
        f"127.0.0.2:{PORT}",
        f"[::1]:{PORT}",
    ],
)
def test_every_route_refuses_another_host(
    client: TestClient, ids: dict[str, Any], method: str, template: str, body: Any, host: str
) -> None:
    response = client.request(method, _url(template, ids), json=body, headers={"Host": host})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden_host"
    _check_headers(response)


def test_the_entry_address_sets_the_cookie_and_drops_the_token(demo: Path) -> None:
    with TestClient(_app(demo / "index.sqlite"), base_url=BASE) as browser:
        assert browser.get("/").status_code == 401
        assert browser.get("/?token=not-the-token").status_code == 401
        entry = browser.get(f"/?token={TOKEN}", follow_redirects=False)
        assert entry.status_code == 303
        assert entry.headers["location"] == "/"
        _check_headers(entry)
        cookie = entry.headers["set-cookie"]
        assert cookie.startswith(f"{cookie_name(PORT)}={TOKEN};")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        # The client keeps the cookie: the page, its assets and the API now answer.
        page = browser.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/app.js"></script>' in page.text
        assert "<script>" not in page.text  # nothing inline
        assert "style=" not in page.text
        assert browser.get("/api/series").status_code == 200


def test_static_assets_are_served_from_the_package(client: TestClient) -> None:
    for name, media_type in (
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        _check_headers(response)
    assert "innerHTML" not in client.get("/static/app.js").text  # headers go in as text
    assert client.get("/static/index.py").status_code == 404


def test_writes_need_json_from_this_origin(client: TestClient) -> None:
    body = {"path": "/nonexistent"}
    cross = client.post("/api/import", json=body, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert cross.json()["error"] == "forbidden_origin"
    form = client.post(
        "/api/import",
        content=b"path=/tmp",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    same = client.post("/api/import", json=body, headers={"Origin": BASE})
    assert same.status_code == 400  # past the gate: the path does not exist


# ------------------------------------------------------------------- browsing


def test_the_series_table_lists_every_series_with_ids(client: TestClient) -> None:
    data = client.get("/api/series").json()
    assert (data["patients"], data["studies"]) == (1, 2)
    by_description = {row["series_description"]: row for row in data["series"]}
    ct = by_description["CT OBLIQUE WITH LOCALIZER"]
    assert (ct["modality"], ct["instances"], ct["study_date"]) == ("CT", 41, "20240102")
    assert ct["loadables"] == {"localizer": 1, "volume": 1}
    assert (ct["selected"], ct["examined"]) == (1, True)
    assert by_description["ENHANCED MR"]["frames"] == 24
    # The one answer that exists to show who the patient is.
    assert {row["patient_name"] for row in data["series"]} == {PHI_PATIENT_NAME}
    assert {row["patient_id"] for row in data["series"]} == {PHI_PATIENT_ID}


def test_a_series_lists_its_loadables_with_reasons_and_warnings(client: TestClient) -> None:
    ct = _series(client, "CT OBLIQUE WITH LOCALIZER")
    assert [(lo["kind"], lo["selected"]) for lo in ct["loadables"]] == [
        ("volume", True),
        ("localizer", False),
    ]
    volume = ct["loadables"][0]
    assert volume["shape"] == [128, 128, 40]
    assert volume["spacing"] == pytest.approx([2.0, 2.0, 3.0])
    assert volume["confidence"] == pytest.approx(0.95)
    assert "40 slices" in volume["reason"]
    assert "LOCALIZER" in ct["loadables"][1]["reason"]
    report = _series(client, "REPORT")
    (unsupported,) = report["loadables"]
    assert (unsupported["kind"], unsupported["viewable"]) == ("unsupported", False)
    assert [w["code"] for w in unsupported["warnings"]] == ["NO_PIXEL_DATA"]
    assert unsupported["warnings"][0]["files"] == 0  # a count, never file names
    assert client.get(f"/api/loadables/{unsupported['id']}/thumbnail.png").status_code == 409


def test_thumbnails_are_the_middle_slice_in_the_default_window(
    client: TestClient, ids: dict[str, Any]
) -> None:
    response = client.get(f"/api/loadables/{ids['volume']}/thumbnail.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (128, 128)
    middle = client.get(
        f"/api/loadables/{ids['volume']}/plane.png", params={"axis": 2, "index": 20}
    )
    assert response.content == middle.content  # slice 20 of 40, the header's 40/400
    screenshot = _loadable(_series(client, "SCREENSHOT"), "image")
    colour = client.get(f"/api/loadables/{screenshot['id']}/thumbnail.png")
    assert Image.open(io.BytesIO(colour.content)).mode == "RGB"
    # Without geometry, a plane has no patient directions to label its edges with.
    plane = client.get(f"/api/loadables/{screenshot['id']}/plane.png")
    assert plane.status_code == 200
    assert "x-plane-right" not in plane.headers


def test_the_viewer_gets_planes_windows_and_presets(
    client: TestClient, ids: dict[str, Any]
) -> None:
    info = client.get(f"/api/loadables/{ids['volume']}").json()
    assert [p["count"] for p in info["planes"]] == [128, 128, 40]
    assert info["time_points"] == 1
    assert info["window"] == {"name": "DICOM", "center": 40.0, "width": 400.0}
    assert {"CT brain", "CT bone", "CT lung", "data range"} <= {p["name"] for p in info["presets"]}
    assert (info["rgb"], info["invert"]) == (False, False)
    _no_phi(json.dumps(info))
    sequence = _loadable(_series(client, "DYNAMIC 4D"), "sequence")
    info4d = client.get(f"/api/loadables/{sequence['id']}").json()
    assert info4d["time_points"] == 5
    url = f"/api/loadables/{sequence['id']}/plane.png"
    assert client.get(url, params={"index": 9, "t": 4}).status_code == 200
    assert client.get(url, params={"index": 9, "t": 5}).status_code == 404
    assert client.get(url, params={"index": 10}).status_code == 404


def test_planes_are_pngs_with_square_pixels_and_orientation(
    client: TestClient, ids: dict[str, Any]
) -> None:
    url = f"/api/loadables/{ids['volume']}/plane.png"
    axial = client.get(url, params={"axis": 2, "index": 0, "wc": 40, "ww": 400})
    assert Image.open(io.BytesIO(axial.content)).size == (128, 128)
    assert axial.headers["x-plane-right"] == "L"
    # A reformat across 40 slices 3 mm apart, from 2 mm pixels: 128 x 60 pixels.
    reformat = client.get(url, params={"axis": 0, "index": 64, "wc": 40, "ww": 400})
    assert Image.open(io.BytesIO(reformat.content)).size == (128, 60)
    assert (reformat.headers["x-plane-right"], reformat.headers["x-plane-down"]) == ("P", "I")
    # The window changes the pixels: bone window against a narrow soft-tissue one.
    bone = client.get(url, params={"axis": 2, "index": 20, "wc": 400, "ww": 1800})
    narrow = client.get(url, params={"axis": 2, "index": 20, "wc": 40, "ww": 80})
    assert bone.content != narrow.content
    small = client.get(url, params={"axis": 2, "index": 20, "size": 64})
    assert Image.open(io.BytesIO(small.content)).size == (64, 64)


@pytest.mark.parametrize(
    "params",
    [
        {"axis": 3},
        {"axis": -1},
        {"index": -1},
        {"index": "x9qz"},
        {"wc": 40},
        {"ww": 400},
        {"wc": 40, "ww": 0},
        {"wc": "nan", "ww": 400},
        {"wc": 40, "ww": "inf"},
        {"size": 100000},
    ],
)
def test_bad_plane_parameters_are_refused(
    client: TestClient, ids: dict[str, Any], params: dict[str, Any]
) -> None:
    response = client.get(f"/api/loadables/{ids['volume']}/plane.png", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    for value in map(str, params.values()):
        if len(value) >= 3:
            assert value not in response.json()["message"]  # names, never echoes


def test_reference_lines_of_the_localizer_that_shares_the_volume_uid(
    client: TestClient, ids: dict[str, Any]
) -> None:
    data = client.get(f"/api/loadables/{ids['localizer']}/reference-lines").json()
    assert data["localizer"]["columns"] == 128
    assert data["volume"]["id"] == ids["volume"]
    assert data["volume"]["same_frame_of_reference"] is True
    assert data["volume"]["series_id"] == ids["series"]
    # A sagittal scout crosses every slice of the oblique axial stack.
    assert [line["slice"] for line in data["lines"]] == list(range(40))
    for line in data["lines"]:
        assert len(line["start"]) == len(line["end"]) == 2
    # Slices 3 mm apart, tilted 15 degrees: successive lines move down the scout.
    rows = [(line["start"][1] + line["end"][1]) / 2 for line in data["lines"]]
    steps = [b - a for a, b in itertools.pairwise(rows)]
    assert all(step == pytest.approx(steps[0], abs=1e-6) for step in steps)
    assert abs(steps[0]) == pytest.approx(1.5, abs=0.1)  # 3 mm on 2 mm pixels
    _no_phi(json.dumps(data))
    url = f"/api/loadables/{ids['localizer']}/reference-lines"
    assert client.get(url, params={"volume": ids["volume"]}).json()["lines"] == data["lines"]
    assert client.get(url, params={"volume": 999999}).status_code == 404
    assert client.get(url, params={"image": 1}).status_code == 404


def test_a_scout_series_draws_the_volumes_of_other_series(client: TestClient) -> None:
    scout = _series(client, "LOCALIZER 3-PLANE")
    sagittal = next(lo for lo in scout["loadables"] if "sagittal" in lo["reason"])
    data = client.get(f"/api/loadables/{sagittal['id']}/reference-lines").json()
    assert data["volume"]["series_id"] != scout["id"]
    assert data["volume"]["same_frame_of_reference"] is True
    assert len(data["lines"]) == data["volume"]["slices"]
    assert {c["kind"] for c in data["candidates"]} <= {"volume", "sequence"}
    assert len(data["candidates"]) >= 5


# ------------------------------------------------------------------- jobs


def test_import_scans_in_the_background_and_the_table_follows(
    demo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shutil.copytree(demo / "dicom" / "ct", tmp_path / "dicom" / "ct")
    with TestClient(_app(tmp_path / "index.sqlite"), base_url=BASE, headers=AUTH) as fresh:
        assert fresh.get("/api/series").json()["series"] == []
        started = fresh.post("/api/import", json={"path": str(tmp_path / "dicom")})
        assert started.status_code == 202
        end = _wait(fresh, started.json()["id"])
        assert end["state"] == "done"
        assert end["phase"] == "examining"
        assert end["done"] == end["total"] == 1
        assert end["result"]["scan"]["indexed"] == 41
        assert end["result"]["series"] == 1
        _no_phi(json.dumps(end))
        assert str(tmp_path) not in json.dumps(end)  # counts, never paths
        rows = fresh.get("/api/series").json()["series"]
        assert [r["series_description"] for r in rows] == ["CT OBLIQUE WITH LOCALIZER"]
        assert rows[0]["examined"] is True
    _no_phi(caplog.text)


@pytest.mark.parametrize(
    "path",
    ["dicom", "../dicom", "./", "/nonexistent/folder", "/tmp/\x00x", "", "~/dicom"],
)
def test_import_needs_an_existing_absolute_path(client: TestClient, path: str) -> None:
    response = client.post("/api/import", json={"path": path})
    assert response.status_code == 400
    if path.strip("./~"):
        assert path not in response.text


def test_one_import_at_a_time(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    gate = threading.Event()

    def slow_import(*_: object) -> dict[str, Any]:
        gate.wait(10)
        return {"scan": {}, "series": 0}

    monkeypatch.setattr("dicomsieve.web.routes.run_import", slow_import)
    with TestClient(_app(tmp_path / "index.sqlite"), base_url=BASE, headers=AUTH) as fresh:
        first = fresh.post("/api/import", json={"path": str(tmp_path)})
        assert first.status_code == 202
        assert fresh.get("/api/series").json()["importing"] is True
        second = fresh.post("/api/import", json={"path": str(tmp_path)})
        assert second.status_code == 409
        gate.set()
        assert _wait(fresh, first.json()["id"])["state"] == "done"


def test_convert_writes_files_served_by_number(client: TestClient, ids: dict[str, Any]) -> None:
    status = client.get(f"/api/jobs/{ids['job']}").json()
    assert status["state"] == "done"
    (output,) = status["result"]["outputs"]
    assert status["result"]["failures"] == []
    assert output["kind"] == "volume"
    assert output["file"].endswith(".nii.gz")
    assert "/" not in output["file"]
    image = client.get(f"/api/jobs/{ids['job']}/files/{output['image']}")
    assert image.status_code == 200
    assert image.content[:2] == b"\x1f\x8b"
    assert output["file"] in image.headers["content-disposition"]
    nifti = nib.Nifti1Image.from_bytes(gzip.decompress(image.content))
    assert nifti.shape == (128, 128, 40)
    sidecar = client.get(f"/api/jobs/{ids['job']}/files/{output['sidecar']}")
    assert json.loads(sidecar.content)["dicomsieve"]["kind"] == "volume"
    _no_phi(sidecar.text)
    archive = client.get(f"/api/jobs/{ids['job']}/archive.zip")
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        assert sorted(zf.namelist()) == sorted(
            [output["file"], output["file"].replace(".nii.gz", ".json")]
        )
    assert client.get(f"/api/jobs/{ids['job']}/files/2").status_code == 404


def test_convert_to_nrrd_and_refusals(client: TestClient, ids: dict[str, Any]) -> None:
    job = client.post(
        "/api/convert", json={"loadables": [ids["volume"], ids["localizer"]], "format": "nrrd"}
    )
    assert job.status_code == 202
    status = _wait(client, job.json()["id"])
    assert sorted(o["kind"] for o in status["result"]["outputs"]) == ["localizer", "volume"]
    first = client.get(f"/api/jobs/{job.json()['id']}/files/0")
    assert first.content.startswith(b"NRRD")
    report = _loadable(_series(client, "REPORT"), "unsupported")
    refusals = [
        ({"loadables": [ids["volume"]], "format": "dcm"}, 400),
        ({"loadables": []}, 400),
        ({"loadables": ["x"]}, 400),
        ({}, 400),
        ({"loadables": [999999]}, 404),
        ({"loadables": [report["id"]]}, 409),
    ]
    for body, status_code in refusals:
        assert client.post("/api/convert", json=body).status_code == status_code


# ------------------------------------------------------------------- traversal


async def _raw(app: FastAPI, raw_path: bytes, *, token: bool = True) -> tuple[int, bytes]:
    """One GET with a raw path, as a server passes it on (percent-decoded, dots kept)."""
    path, _, query = raw_path.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path.decode("latin-1")),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", f"127.0.0.1:{PORT}".encode())]
        + ([(b"x-dicomsieve-token", TOKEN.encode())] if token else []),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", PORT),
    }
    messages: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/static/../../../../etc/passwd",
        b"/static/..%2f..%2f..%2fetc%2fpasswd",
        b"/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        b"/static/..%5c..%5cpyproject.toml",
        b"/static/%2fetc%2fpasswd",
        b"/static//etc/passwd",
        b"/api/loadables/..%2f..%2fetc%2fpasswd/plane.png",
        b"/api/loadables/%2fetc%2fpasswd",
        b"/api/loadables//etc/passwd/thumbnail.png",
        b"/api/loadables/1/../../../etc/passwd",
        b"/api/series/../../etc/passwd",
        b"/api/series/1%2f..%2f..%2fetc%2fpasswd",
        b"/api/series/-1",
        b"/api/series/1.5",
        b"/api/jobs/../../../etc/passwd",
        b"/api/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd/files/0",
        b"/api/jobs/x/files/..%2f..%2fetc%2fpasswd",
        b"/etc/passwd",
        b"/..%2f..%2fetc%2fpasswd",
        b"/api/series/999999",
        b"/api/loadables/999999",
        b"/api/loadables/999999/plane.png",
        b"/api/loadables/999999/thumbnail.png",
        b"/api/loadables/999999/reference-lines",
        b"/api/jobs/unknown",
        b"/api/jobs/unknown/files/0",
        b"/api/jobs/unknown/archive.zip",
    ],
)
def test_no_path_reaches_a_file_and_unknown_ids_are_404(
    client: TestClient, ids: dict[str, Any], raw_path: bytes
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    status, body = anyio.run(_raw, app, raw_path)
    assert status == 404
    assert b"root:" not in body
    assert b"[project]" not in body
    assert json.loads(body)["error"] == "not_found"
    text = body.decode()
    assert "passwd" not in text  # the path is not echoed
    assert "pyproject" not in text
    # Without the token, the same request learns nothing either.
    status, body = anyio.run(lambda: _raw(app, raw_path, token=False))
    assert status == 401


def test_job_files_are_only_the_jobs_own(client: TestClient, ids: dict[str, Any]) -> None:
    for number in ("-1", "2", "99999999999999999999"):
        assert client.get(f"/api/jobs/{ids['job']}/files/{number}").status_code == 404


# ------------------------------------------------------------------- errors and PHI


def test_a_changed_file_is_a_coded_error_without_paths(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    files = write_series(oblique_ct_with_localizer(slices=6), tmp_path / "dicom")
    db = _index(tmp_path / "dicom", tmp_path / "index.sqlite")
    with TestClient(_app(db), base_url=BASE, headers=AUTH) as fresh:
        series = fresh.get("/api/series").json()["series"][0]
        volume = _loadable(fresh.get(f"/api/series/{series['id']}").json(), "volume")
        files[3].unlink()
        response = fresh.get(f"/api/loadables/{volume['id']}/plane.png")
        assert response.status_code == 409
        assert response.json()["error"] == "FILE_CHANGED"
        assert str(tmp_path) not in response.text
        _no_phi(response.text)
        _check_headers(response)
    assert "FILE_CHANGED" in caplog.text
    assert str(tmp_path) not in caplog.text
    _no_phi(caplog.text)


def test_an_internal_error_is_a_bare_500_and_a_log_line_without_details(
    demo: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError(f"cannot list {PHI_PATIENT_NAME} at /secret/path")

    monkeypatch.setattr("dicomsieve.web.routes.series_table", broken)
    caplog.set_level(logging.DEBUG)
    with TestClient(_app(demo / "index.sqlite"), base_url=BASE, headers=AUTH) as fresh:
        response = fresh.get("/api/series")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "the server failed; see its log",
    }
    _check_headers(response)
    assert "RuntimeError" in caplog.text
    assert "/secret/path" not in caplog.text
    _no_phi(caplog.text)


def test_phi_appears_only_in_the_series_table(demo: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Walk every route (answers and errors) with logging at DEBUG: the sentinel
    identifiers are in the table's answer and nowhere else, never in a log."""
    caplog.set_level(logging.DEBUG)
    texts: dict[str, str] = {}
    with TestClient(_app(demo / "index.sqlite"), base_url=BASE, headers=AUTH) as c:
        table = c.get("/api/series")
        assert PHI_PATIENT_NAME in table.text  # the answer that exists to show it
        for row in table.json()["series"]:
            detail = c.get(f"/api/series/{row['id']}")
            texts[f"series {row['id']}"] = detail.text
            for lo in detail.json()["loadables"]:
                base = f"/api/loadables/{lo['id']}"
                for url in (base, f"{base}/reference-lines", f"{base}/plane.png?wc=1"):
                    texts[url] = c.get(url).text
                if lo["viewable"]:
                    c.get(f"{base}/thumbnail.png")
                    c.get(f"{base}/plane.png")
        job = c.post("/api/convert", json={"loadables": [1, 2, 3]})
        texts["convert"] = job.text
        texts["job"] = json.dumps(_wait(c, job.json()["id"]))
        for name, response in (
            ("401", c.get("/api/series", headers={"X-Dicomsieve-Token": ""})),
            ("403", c.get("/api/series", headers={"Host": "evil.example"})),
            ("404", c.get("/api/loadables/999999")),
            ("400", c.post("/api/import", json={"path": f"/{PHI_PATIENT_NAME}"})),
            ("415", c.post("/api/import", content=b"x", headers={"Content-Type": "text/plain"})),
        ):
            texts[name] = response.text
    for where, text in texts.items():
        for value in PHI:
            assert value not in text, where
    _no_phi(caplog.text)


# ------------------------------------------------------------------- the command


@pytest.mark.parametrize(
    ("host", "complaint"),
    [("0.0.0.0", "name one address"), ("::", "name one address"), ("localhost", "IP address")],
)
def test_serve_needs_one_ip_address_for_host(tmp_path: Path, host: str, complaint: str) -> None:
    from click.testing import CliRunner

    from dicomsieve.cli.main import cli

    result = CliRunner().invoke(
        cli, ["serve", "--db", str(tmp_path / "index.sqlite"), "--no-browser", "--host", host]
    )
    assert result.exit_code == 2
    assert complaint in result.output
