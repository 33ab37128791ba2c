"""One error base class carrying its HTTP status; one envelope: {"message", "code"}.

The codes are those the official @chatbotkit/sdk maps (NOT_FOUND, BAD_REQUEST, ...).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DataloftError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, **self.extra}


class BadRequest(DataloftError):
    status = 400
    code = "BAD_REQUEST"


class EmptyFile(BadRequest):
    """Zero bytes, in any upload form: one refusal, so a client learns it one way."""

    def __init__(self, message: str = "the file is empty (0 bytes); send its content"):
        super().__init__(message, reason="empty_file")


class NotAuthenticated(DataloftError):
    status = 401
    code = "NOT_AUTHENTICATED"


class NotAuthorized(DataloftError):
    status = 403
    code = "NOT_AUTHORIZED"


class NotFound(DataloftError):
    status = 404
    code = "NOT_FOUND"


class MethodNotAllowed(DataloftError):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(DataloftError):
    status = 409
    code = "CONFLICT"


class Gone(DataloftError):
    status = 410
    code = "GONE"


class ContentTooLarge(DataloftError):
    status = 413
    code = "CONTENT_TOO_LARGE"


class QuotaExceeded(DataloftError):
    """An organisation's storage, record or file quota would be passed."""

    status = 413
    code = "QUOTA_EXCEEDED"


class UnsupportedMediaType(DataloftError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class TooManyRequests(DataloftError):
    status = 429
    code = "TOO_MANY_REQUESTS"


class Busy(DataloftError):
    """The database's writer stayed taken past DATALOFT_WRITE_WAIT_SECONDS: try again."""

    status = 503
    code = "SERVICE_BUSY"


def not_found(kind: str, ident: str) -> NotFound:
    return NotFound(f"{kind} {ident!r} was not found")
