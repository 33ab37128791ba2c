"""Lean routes: the hot read routes (search) answered without FastAPI's per-request
machinery. FastAPI's handler solves a dependency graph, parses and validates the body, times
each step for its telemetry and serialises the answer through the return type: ~1 ms of
server CPU per search on a 2-core box (docs/benchmarks.md section 42). A lean route's
endpoint is declared as any other, so /openapi.json documents it unchanged; its parameters
may only be the context, the request's credentials, string path parameters and one required
body model, which are read here in FastAPI's order, and the endpoint runs in the thread pool
as FastAPI runs it. Errors leave as FastAPI's would (a domain error, or a
RequestValidationError shaped as FastAPI shapes it, which api/errors.py answers after
checking the key): tests/unit/test_lean_route.py asks both kinds of route the same odd
requests."""

from __future__ import annotations

import email.message
import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from dataloft.api.deps import CredentialsDep, CtxDep, credentials_of, key_in_handler

_EMPTY = object()


class Lean(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return lean_handler(self.endpoint, self.status_code or 200)


def searching(router: APIRouter, path: str, endpoint: Callable[..., Any],
              answer: type[Any]) -> APIRouter:
    """`router`, a new one, holding one lean POST route (a search) whose endpoint resolves
    its key in its handler (deps.key_in_handler): app.py includes these routers before
    every other, the hot routes first (docs/benchmarks.md section 43)."""
    router.add_api_route(path, key_in_handler(endpoint), methods=["POST"],
                         response_model=answer, route_class_override=Lean)
    return router


def lean_handler(endpoint: Callable[..., Any], status: int
                 ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    ctx_name = credentials_name = body_name = None
    body_model: TypeAdapter[Any] | None = None
    path: list[str] = []
    hints = get_type_hints(endpoint, include_extras=True)
    # Serialised by its return annotation, as api/openapi.py's Documented routes are.
    answer_type = TypeAdapter(hints.get("return", Any))
    for name in inspect.signature(endpoint).parameters:
        hint = hints.get(name)
        if hint == CtxDep:
            ctx_name = name
        elif hint == CredentialsDep:
            credentials_name = name
        elif isinstance(hint, type) and issubclass(hint, BaseModel) and body_name is None:
            body_name, body_model = name, TypeAdapter(hint)
        elif hint is str:
            path.append(name)
        else:
            raise TypeError(f"a lean route takes no {name}: {hint}")

    async def handle(request: Request) -> Response:
        # FastAPI's order: the body is read and parsed, then the dependencies run (a
        # missing key raises there), then the body is validated.
        raw = _parsed(await request.body(), request.headers.get("content-type")) \
            if body_name else None
        kwargs: dict[str, Any] = {name: request.path_params[name] for name in path}
        if ctx_name:
            kwargs[ctx_name] = request.app.state.ctx
        if credentials_name:
            kwargs[credentials_name] = credentials_of(request)
        if body_name and body_model:
            kwargs[body_name] = _validated(body_model, raw)
        answer = await run_in_threadpool(endpoint, **kwargs)
        return Response(answer_type.dump_json(answer), status_code=status,
                        media_type="application/json")

    return handle


def _parsed(raw: bytes, content_type: str | None) -> Any:
    """A body as FastAPI reads one (fastapi/routing.py): _EMPTY when empty, parsed as JSON
    only under a JSON content type, else the bytes as they came."""
    if not raw:
        return _EMPTY
    # What nearly every client sends, known without email's header parser (~25 us).
    if content_type == "application/json" or (content_type and _is_json(content_type)):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body", exc.pos),
                  "msg": "JSON decode error", "input": {}, "ctx": {"error": exc.msg}}],
                body=exc.doc) from exc
        except Exception as exc:  # not UTF-8, as FastAPI answers it
            raise HTTPException(400, "There was an error parsing the body") from exc
    return raw


def _is_json(content_type: str) -> bool:
    """application/json or application/*+json, parameters allowed, as FastAPI reads it."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


def _validated(model: TypeAdapter[Any], value: Any) -> Any:
    """A required body, validated as FastAPI validates a body field (a type adapter with
    from_attributes: model_validate's error for a non-object differs), errors in "body"."""
    if value is _EMPTY:
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    try:
        return model.validate_python(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)],
            body=value) from exc
