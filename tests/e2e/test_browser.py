"""End to end: a real ``dicomsieve serve`` driven by Debian's headless Chromium.

The flow of issue 5: import the example data, open the series whose localizer shares
the volume's SeriesInstanceUID, see the localizer listed apart and not selected, open
the viewer and scroll a slice, open the localizer view and see the reference lines
drawn, convert the volume and download the file. Screenshots of each step are saved
under ``test-artifacts/e2e/``.

Playwright drives ``/usr/bin/chromium`` (never a browser it downloads). Without it the
tests skip, except under ``CI=true``, where its absence fails them.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from dicomsieve.synthetic import PHI_BIRTH_DATE, PHI_PATIENT_ID, PHI_PATIENT_NAME, make_demo

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
URL_LINE = re.compile(r"^http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{32,})$")
PHI = (PHI_PATIENT_NAME, PHI_PATIENT_ID, PHI_BIRTH_DATE)
TIMEOUT_MS = 30_000


def _chromium() -> Path:
    if CHROMIUM.is_file():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing: install Debian's chromium package")
    pytest.skip(f"{CHROMIUM} not found (Debian's chromium package); end-to-end tests skipped")


@dataclass(frozen=True)
class Server:
    """A running ``dicomsieve serve`` and what it printed."""

    url: str
    port: int
    token: str
    data: Path
    process: subprocess.Popen[str]
    stdout: list[str]
    stderr: Path


def _command() -> list[str]:
    script = Path(sys.executable).with_name("dicomsieve")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from dicomsieve.cli.main import main; main()"]


def _pump(stream: IO[str], lines: list[str], first: queue.Queue[str]) -> None:
    for n, line in enumerate(stream):
        lines.append(line)
        if n == 0:
            first.put(line)
    first.put("")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _chromium()
    root = tmp_path_factory.mktemp("e2e")
    make_demo(root / "dicom")
    stderr = root / "serve.stderr"
    with open(stderr, "w") as err:
        process = subprocess.Popen(
            [
                *_command(),
                "serve",
                "--db",
                str(root / "index.sqlite"),
                "--port",
                "0",
                "--no-browser",
                "--jobs",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert process.stdout is not None
    lines: list[str] = []
    first: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process.stdout, lines, first), daemon=True)
    reader.start()
    try:
        url = first.get(timeout=30).strip()
        match = URL_LINE.match(url)
        assert match, f"the first line on stdout is not the address: {url!r}"
        yield Server(url, int(match[1]), match[2], root, process, lines, stderr)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            process.kill()
            process.wait(timeout=5)
        reader.join(timeout=5)
        process.stdout.close()


def _get(server: Server, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A GET with a raw path (no normalisation) on the real server."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_real_server_keeps_its_gate(server: Server) -> None:
    host = f"127.0.0.1:{server.port}"
    token = {"Host": host, "X-Dicomsieve-Token": server.token}
    assert _get(server, "/api/series", {"Host": host})[0] == 401
    assert (
        _get(server, "/api/series", {**token, "Host": f"rebound.example:{server.port}"})[0] == 403
    )
    assert _get(server, "/api/series", token)[0] == 200
    for raw in (
        "/static/../../../../etc/passwd",
        "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/api/loadables/..%2F..%2Fetc%2Fpasswd/plane.png",
        "/api/jobs/../../etc/passwd",
    ):
        status, body = _get(server, raw, token)
        assert status == 404, raw
        assert b"root:" not in body


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)  # type: ignore[attr-defined]


def _yellow_pixels(png: bytes) -> int:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((r > 200) & (g > 150) & (b < 90)).sum())


def test_import_inspect_view_localizer_convert(server: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(_chromium()), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(
                accept_downloads=True, viewport={"width": 1400, "height": 1000}
            )
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: problems.append(str(e)))

            # The printed address logs in and drops the token from the address bar.
            page.goto(server.url)
            assert "token" not in page.url
            expect(page.locator("#series-table")).to_contain_text("The index is empty")

            # Import the example data: progress, then the table.
            page.fill("#import-path", str(server.data / "dicom"))
            page.click("#import-button")
            expect(page.locator("#import-status")).to_have_attribute(
                "data-state", "done", timeout=60_000
            )
            rows = page.locator("tr[data-series-id]")
            expect(rows).to_have_count(8)
            expect(page.locator("#import-status")).to_contain_text("191 indexed")
            _shot(page, "01-import-and-table.png")

            # Search and sort.
            page.fill("#series-filter", "oblique")
            expect(rows).to_have_count(1)
            page.fill("#series-filter", "")
            expect(rows).to_have_count(8)
            page.get_by_role("button", name="Modality").click()
            expect(rows.first.locator("td").nth(6)).to_have_text("CT")

            # The series whose localizer shares the volume's SeriesInstanceUID.
            page.get_by_role("link", name="CT OBLIQUE WITH LOCALIZER").click()
            volumes = page.locator('section[data-group="volume"] article')
            localizers = page.locator('section[data-group="localizer"] article')
            expect(volumes).to_have_count(1)
            expect(localizers).to_have_count(1)  # listed apart, in its own section
            expect(volumes.first).to_have_attribute("data-selected", "true")
            expect(localizers.first).to_have_attribute("data-selected", "false")
            expect(localizers.first).to_contain_text("not selected")
            expect(volumes.first.locator("input.choose")).to_be_checked()
            expect(localizers.first.locator("input.choose")).not_to_be_checked()
            for thumb in page.locator("img.thumb").all():
                expect(thumb).to_have_js_property("complete", True)
                assert thumb.evaluate("img => img.naturalWidth") > 0
            _shot(page, "02-series-localizer-apart.png")

            # The viewer: three planes; the mouse wheel scrolls the slice.
            volumes.first.get_by_role("link", name="View").click()
            slice_image = page.locator('img.plane[data-axis="2"]')
            expect(slice_image).to_have_attribute("data-index", "20")
            expect(page.locator("img.plane")).to_have_count(3)
            expect(page.locator("#window-preset")).to_contain_text("CT bone")
            page.locator('figure.panel[data-axis="2"] .frame').hover()
            page.mouse.wheel(0, 120)
            expect(slice_image).to_have_attribute("data-index", "21")
            expect(page.locator('.slice-label[data-axis="2"]')).to_have_text("Slice: 22 / 40")
            page.select_option("#window-preset", label="CT bone (400 / 1800)")
            expect(page.locator("#window-width")).to_have_value("1800")
            expect(slice_image).to_have_attribute("data-ww", "1800")  # drawn again
            _shot(page, "03-viewer-scrolled.png")

            # The localizer view: every slice of the volume drawn as a line on the scout.
            page.go_back()
            localizers.first.get_by_role("link", name="Localizer view").click()
            lines = page.locator("line.ref-line")
            expect(lines).to_have_count(40)
            scout = page.locator("#localizer-image")
            expect(scout).to_have_attribute("data-index", "0")
            expect(page.locator("#volume-slice")).to_have_attribute("data-index", "20")
            expect(page.locator("line.ref-line.current")).to_have_count(1)
            frame = page.locator("#localizer")
            overlay, image = frame.locator("svg.overlay").bounding_box(), scout.bounding_box()
            assert overlay is not None
            assert image is not None
            assert overlay["width"] == pytest.approx(image["width"], abs=1)
            assert overlay["height"] == pytest.approx(image["height"], abs=1)
            assert _yellow_pixels(frame.screenshot()) > 500  # the lines are on screen
            lines.nth(5).click(force=True)
            expect(page.locator("#volume-slice")).to_have_attribute("data-index", "5")
            expect(page.locator("#volume-slice-label")).to_have_text("slice 6 / 40")
            _shot(page, "04-localizer-reference-lines.png")

            # Convert the volume and download it.
            page.go_back()
            expect(volumes).to_have_count(1)
            page.click("#convert-button")
            expect(page.locator("#convert-status")).to_have_attribute("data-state", "done")
            expect(page.locator("#convert-status")).to_contain_text("wrote 1 image")
            with page.expect_download() as info:
                page.locator("a.download").first.click()
            download = info.value
            target = ARTIFACTS / download.suggested_filename
            download.save_as(target)
            _shot(page, "05-converted.png")
            context.close()
        finally:
            browser.close()
    assert target.name.endswith(".nii.gz")
    nifti = nib.Nifti1Image.from_bytes(gzip.decompress(target.read_bytes()))
    assert nifti.shape == (128, 128, 40)
    assert problems == []  # no script error, no Content-Security-Policy violation


def test_the_server_printed_and_logged_no_patient_data(server: Server) -> None:
    # Runs last in this module: what the server wrote so far, after the whole flow.
    assert URL_LINE.match(server.stdout[0].strip())
    text = "".join(server.stdout) + server.stderr.read_text()
    for value in PHI:
        assert value not in text
