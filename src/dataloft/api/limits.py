"""A cap on request bodies for every route that does not stream its own (uploads do)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataloft.openai import errors as openai_errors

JSON_BODY_LIMIT = 8 * 1024 * 1024

# Exactly the routes that stream and cap their own bodies: POST /file/{id}/upload and the
# direct-to-source PUT /file/{id}/upload/{ticket}. Matched on the whole path: a substring
# test would let any path with "/upload" in an id (".../dataset/upload/record/create")
# skip the cap.
# POST /v1/files (OpenAI surface) streams its multipart body the same way, and so do the
# Inconvo uploads (POST .../datasets/{user/{id} | context/{k}/{v}}, 10 MB per file).
_SELF_LIMITED = re.compile(r"/api/v1/file/[^/]+/upload(?:/[^/]+)?/?|/v1/files/?"
                           r"|/api/v1(?:/agents/[^/]+)?/datasets/(?:user/[^/]+|context/[^/]+/[^/]+)/?")


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = JSON_BODY_LIMIT):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _SELF_LIMITED.fullmatch(_route_path(scope)):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and (len(declared) > 20 or int(declared) > self.limit):
            await self._refuse(send, _route_path(scope))
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, _route_path(scope))

    async def _refuse(self, send: Send, path: str) -> None:
        message = f"request body exceeds {self.limit} bytes"
        body: dict[str, Any] = {"message": message, "code": "CONTENT_TOO_LARGE"}
        status = 413
        if openai_errors.applies(path):
            body, status = openai_errors.body(413, message, "CONTENT_TOO_LARGE"), 400
        raw = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class _TooLarge(HTTPException):
    """Raised from receive(). An HTTPException because FastAPI re-raises those from body
    parsing, where any other exception becomes a 400 "error parsing the body"; the app's
    handler then answers 413 CONTENT_TOO_LARGE. If it reaches BodyLimit itself
    (no response started yet), BodyLimit answers the 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body exceeds {limit} bytes")
