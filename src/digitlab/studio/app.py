"""The studio's web app: `create_app(folders, token, allow_origin)` -> a Starlette app.

Routes: the page at `/`, its assets at `/static/...` (shipped inside the package), the run API
(runs_api.py) and the model API (model_api.py, when present) under `/api/`. Every request goes
through security.Guard first. Errors are JSON `{"error": "one line"}`: 404 for anything the
path resolver refuses, 400 for a bad config or request, 409 for a request the run's state
does not allow.
"""

from __future__ import annotations

import importlib
import importlib.util
import secrets
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from digitlab.errors import DigitlabError
from digitlab.studio import runs_api
from digitlab.studio.paths import NotFound
from digitlab.studio.security import TOKEN_COOKIE, Guard

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def _model_routes() -> list[BaseRoute]:
    """Helper routes for drawing, inside and compare (model_api.py), if that module exists."""
    if importlib.util.find_spec("digitlab.studio.model_api") is None:
        return []
    model_api = importlib.import_module("digitlab.studio.model_api")  # its errors surface
    return list(model_api.routes())


def create_app(
    folders: list[Path], token: str | None = None, allow_origin: str | None = None
) -> Starlette:
    """The studio serving the run and sweep folders `folders` (index k is a run id's prefix).

    `token`: required on every request when set (any non-loopback bind). `allow_origin`: the
    origin POSTs must come from (default: the Host the request was sent to).
    """
    folders = [Path(f) for f in folders]
    page_token = token or secrets.token_urlsafe(24)  # guards POSTs even without a token

    async def index(request: Request) -> Response:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        html = html.replace("{{token}}", escape(page_token, quote=True))
        html = html.replace("{{auth}}", "1" if token else "")
        response = HTMLResponse(html, headers={"Content-Security-Policy": CSP})
        if token:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=404)

    async def conflict(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=409)

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc).splitlines()[0] if str(exc) else "bad request"}, 400)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or "error"
        return JSONResponse({"error": str(detail)}, status_code=status)

    routes: list[BaseRoute] = [
        Route("/", index),
        Mount("/api", routes=[*runs_api.routes(), *_model_routes()]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Guard, token=token, page_token=page_token, allow_origin=allow_origin)
        ],
        exception_handlers={
            NotFound: not_found,
            runs_api.Conflict: conflict,
            DigitlabError: bad_request,
            404: http_error,
            405: http_error,
        },
    )
    app.state.studio = runs_api.Studio(folders)
    app.state.page_token = page_token
    return app
