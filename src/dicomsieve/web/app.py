"""The web app's factory: configuration, shared state, error answers, the page and its assets.

:func:`create_app` builds a FastAPI application for one index and one access token.
Everything it serves goes through :class:`~dicomsieve.web.security.SecurityMiddleware`.
The page is one HTML file with one script and one style sheet, written by hand and
served from the package (no CDN); the API is in :mod:`dicomsieve.web.routes`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from dicomsieve.web.jobs import Jobs
from dicomsieve.web.routes import add_api_routes
from dicomsieve.web.security import SecurityMiddleware, cookie_name, host_header
from dicomsieve.web.state import ApiError, ServeConfig, ServerState
from dicomsieve.web.volumes import VolumeCache

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_ASSET_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _assets() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once: served by name from this table, never from disk."""
    folder = resources.files("dicomsieve.web") / "static"
    out: dict[str, tuple[bytes, str]] = {}
    for item in folder.iterdir():
        suffix = Path(item.name).suffix
        if item.is_file() and suffix in _ASSET_TYPES:
            out[item.name] = (item.read_bytes(), _ASSET_TYPES[suffix])
    return out


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


def create_app(config: ServeConfig) -> FastAPI:
    """Build the web app for one index and one token.

    Parameters
    ----------
    config
        Database, token, address and port, settings, cache budget.

    Returns
    -------
    FastAPI
        An ASGI application; serve it with uvicorn on ``config.host:config.port``.
    """
    workdir = Path(tempfile.mkdtemp(prefix="dicomsieve-serve-"))
    state = ServerState(
        config=config,
        jobs=Jobs(),
        cache=VolumeCache(config.cache_bytes),
        workdir=workdir,
        assets=_assets(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.jobs.close()
        shutil.rmtree(workdir, ignore_errors=True)

    app = FastAPI(
        title="dicomsieve",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.dicomsieve = state

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.error, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the parameters, never echo their values.
        names = sorted({str(e.get("loc", ("?",))[-1]) for e in exc.errors()})
        return _error(400, "bad_request", f"invalid or missing: {', '.join(names)}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, codes.get(exc.status_code, "error"), "no such resource")

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        body, media_type = state.assets["index.html"]
        return Response(body, media_type=media_type)

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        found = state.assets.get(name)
        if found is None:
            raise ApiError(404, "not_found", "no such file")
        return Response(found[0], media_type=found[1])

    add_api_routes(app, state)
    app.add_middleware(
        SecurityMiddleware,
        token=config.token,
        allowed_host=host_header(config.host, config.port),
        cookie=cookie_name(config.port),
    )
    return app
