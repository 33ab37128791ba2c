"""Every error leaves as {"message", "code"} with its status. A 500 means a bug."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from dataloft.errors import DataloftError

log = logging.getLogger("dataloft.api")

_HTTP_CODES = {
    400: "BAD_REQUEST", 401: "NOT_AUTHENTICATED", 403: "NOT_AUTHORIZED", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "CONTENT_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE", 422: "BAD_REQUEST", 429: "TOO_MANY_REQUESTS",
}


def envelope(status: int, message: str, code: str, headers: Mapping[str, str] | None = None
             ) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status, headers=headers)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(DataloftError)
    async def _ours(_req: Request, exc: DataloftError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(400, _describe(exc), "BAD_REQUEST")

    @app.exception_handler(HTTPException)
    async def _http(_req: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"ERROR_{exc.status_code}")
        return envelope(exc.status_code, str(exc.detail), code, exc.headers)

    @app.exception_handler(DataError)
    async def _data(_req: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refuses NUL in text (SQLite stores it): an id, name or filter value
        # with one is the client's input, not our bug. The request's transaction rolled back.
        if "NUL" in str(exc.orig) or "\\u0000" in str(exc.orig):  # text; JSONB
            return envelope(400, "strings must not contain NUL characters", "BAD_REQUEST")
        log.exception("unhandled error", exc_info=exc)
        return envelope(500, "internal error", "INTERNAL_ERROR")

    @app.exception_handler(Exception)
    async def _bug(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return envelope(500, "internal error", "INTERNAL_ERROR")
