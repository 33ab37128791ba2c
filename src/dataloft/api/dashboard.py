"""The dashboard: static files shipped in the package (src/dataloft/web), served at `/`
and under `/ui/`. No build step and nothing from a CDN: the chart libraries are vendored
by scripts/vendor_web.sh. The API routes are registered first and keep their paths."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(str(files("dataloft") / "web"))
# The browser may talk to this server only: scripts, styles, images and fetches from
# 'self'. Vega compiles its expressions with Function (unsafe-eval) and vega-embed adds
# its own <style>; nothing else is relaxed.
POLICY = ("default-src 'self'; script-src 'self' 'unsafe-eval'; "
          "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
          "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(WEB / "index.html", headers=HEADERS)


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/")


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=WEB), name="ui")
