"""OpenAI's error body, {"error": {"message", "type", "param", "code"}}, for /v1 routes.

Statuses are those the `openai` SDK maps to its exception classes (400, 401, 403, 404, 409,
422, 429, >= 500); the few others we raise (405, 410, 413, 415) leave as 400, which is how
OpenAI answers an invalid request.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

PREFIX = "/v1/"
_MAPPED = {400, 401, 403, 404, 409, 422, 429}
_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "invalid_request_error", 409: "invalid_request_error", 422: "invalid_request_error",
    429: "rate_limit_error",
}


def applies(path: str) -> bool:
    return path.startswith(PREFIX) or path == PREFIX.rstrip("/")


def status_for(status: int) -> int:
    return status if status in _MAPPED or status >= 500 else 400


def body(status: int, message: str, code: str | None,
         param: str | None = None) -> dict[str, dict[str, str | None]]:
    kind = _TYPES.get(status_for(status), "server_error")
    return {"error": {"message": message, "type": kind, "param": param,
                      "code": code.lower() if code else None}}


def response(status: int, message: str, code: str | None, param: str | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body(status, message, code, param), status_code=status_for(status),
                        headers=headers)
