"""Every error leaves as {"message", "code"} with its status (on /v1, the OpenAI surface, as
OpenAI's body: dataloft/openai/errors.py). A 500 means a bug."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from dataloft.api import deps
from dataloft.errors import Busy, DataloftError
from dataloft.openai import errors as openai_errors

log = logging.getLogger("dataloft.api")

_HTTP_CODES = {
    400: "BAD_REQUEST", 401: "NOT_AUTHENTICATED", 403: "NOT_AUTHORIZED", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "CONTENT_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE", 422: "BAD_REQUEST", 429: "TOO_MANY_REQUESTS",
}


def envelope(status: int, message: str, code: str, headers: Mapping[str, str] | None = None
             ) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status, headers=headers)


def _respond(req: Request, status: int, message: str, code: str,
             headers: dict[str, str] | None = None, param: str | None = None) -> JSONResponse:
    if openai_errors.applies(req.url.path):
        return openai_errors.response(status, message, code, param, headers)
    return envelope(status, message, code, headers)


def _param(exc: RequestValidationError) -> str | None:
    for err in exc.errors()[:1]:
        loc = tuple(err.get("loc", ()))
        where = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
        return ".".join(str(p) for p in where) or None
    return None


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _bug(req: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _respond(req, 500, "internal error", "INTERNAL_ERROR")


async def _conflict(req: Request, exc: OperationalError) -> JSONResponse:
    # PostgreSQL aborted the request's transaction to break a lock cycle (40P01) or a
    # serialisation conflict (40001): it rolled back whole, and the same request can
    # succeed now. Logged loudly, since a cycle among our own writers is a lock-order bug.
    if getattr(exc.orig, "sqlstate", None) in ("40P01", "40001"):
        log.warning("transaction aborted by the database: %s", exc.orig)
        busy = Busy("a concurrent write conflicted with this one; retry it")
        return _respond(req, busy.status, busy.message, busy.code, {"Retry-After": "1"})
    return await _bug(req, exc)


def install(app: FastAPI) -> None:
    @app.exception_handler(DataloftError)
    async def _ours(req: Request, exc: DataloftError) -> JSONResponse:
        if openai_errors.applies(req.url.path):
            code = str(exc.extra.get("reason") or exc.code)
            return openai_errors.response(exc.status, exc.message, code, None, exc.headers)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(req: Request, exc: RequestValidationError) -> JSONResponse:
        if deps.key_checked_in_handler(req):
            try:
                await run_in_threadpool(deps.check_key, req)
            except DataloftError as bad_key:
                return await _ours(req, bad_key)
        return _respond(req, 400, _describe(exc), "BAD_REQUEST", param=_param(exc))

    @app.exception_handler(HTTPException)
    async def _http(req: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"ERROR_{exc.status_code}")
        return _respond(req, exc.status_code, str(exc.detail), code,
                        dict(exc.headers) if exc.headers else None)

    @app.exception_handler(DataError)
    async def _data(req: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refuses NUL in text (SQLite stores it): an id, name or filter value
        # with one is the client's input, not our bug. The request's transaction rolled back.
        if "NUL" in str(exc.orig) or "\\u0000" in str(exc.orig):  # text; JSONB
            return _respond(req, 400, "strings must not contain NUL characters", "BAD_REQUEST")
        log.exception("unhandled error", exc_info=exc)
        return _respond(req, 500, "internal error", "INTERNAL_ERROR")

    @app.exception_handler(PoolTimeout)
    async def _busy(req: Request, exc: PoolTimeout) -> JSONResponse:
        # No connection within DATALOFT_WRITE_WAIT_SECONDS (on SQLite: the one writer,
        # held by a big sync's commit): a retryable refusal, not a bug.
        log.warning("no database connection in time: %s", exc)
        busy = Busy("the database is busy; retry shortly")
        return _respond(req, busy.status, busy.message, busy.code, {"Retry-After": "5"})

    app.add_exception_handler(Exception, _bug)
    app.add_exception_handler(OperationalError, _conflict)  # type: ignore[arg-type]
