"""What /openapi.json says about the API, and the offline /docs and /redoc pages.

Routes declare their response model (each slice's `schemas.py`) and the error envelope on
the statuses they answer with; /openapi.json drops FastAPI's default 422, which this
server never sends (api/errors.py answers a validation error with 400).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.routing import APIRoute, _effective_route_context_var
from fastapi.staticfiles import StaticFiles
from fastapi.utils import create_model_field
from pydantic import BaseModel, Field

from dataloft.openai.schemas import ErrorResponse as OpenAIErrorResponse


class ErrorBody(BaseModel):
    """The one error envelope of the native API (dataloft/errors.py)."""
    message: str = Field(description="What went wrong, for a person to read.")
    code: str = Field(description="A stable upper-case code, e.g. NOT_FOUND.")


_WHY = {
    400: "The request is invalid: a malformed body, parameter or filter.",
    401: "No valid API key or end-user token.",
    403: "The credential lacks the permission or the dataset.",
    404: "No such resource, or not one the caller may see.",
    409: "The resource's state forbids it now (e.g. no content uploaded yet); retry later "
         "or change the state first.",
    410: "The upload URL has expired.",
    413: "The body is larger than the server accepts.",
    415: "The file's type is not accepted here.",
    429: "Too many at once: retry after the time the Retry-After header gives.",
}
COMMON = (400, 401, 403, 404, 409, 413)


def errors(*statuses: int, common: tuple[int, ...] = COMMON,
           model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the error statuses a route answers with, in the envelope."""
    return {status: {"model": model, "description": _WHY[status]}
            for status in sorted({*common, *statuses})}


# /v1 answers in OpenAI's body, and folds the statuses its SDK does not map into 400.
OPENAI_ERRORS = errors(common=(400, 401, 403, 404, 409), model=OpenAIErrorResponse)


class Documented(APIRoute):
    """Documents `response_model` but serialises what the endpoint returns exactly as
    FastAPI would without one (by the return annotation, `dict[str, Any]` or `Any`): the
    render() dicts are the wire format the SDK suites hold us to, and validating them
    through a model would reorder keys, fill absent ones with null or turn 1 into 1.0.
    The tests validate real responses against the documented schemas instead."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # A route mounted by include_router gets its handler built against an effective
        # copy of its state (FastAPI >= 0.13x), which is what the base class reads.
        context = _effective_route_context_var.get()
        route: Any = (context if context is not None and context.original_route is self
                      else self)
        documented = route.response_field
        route.response_field = _runtime_field(route)
        try:
            return super().get_route_handler()
        finally:
            route.response_field = documented


def _runtime_field(route: Any) -> Any:
    annotation = get_typed_return_annotation(route.endpoint)
    if not annotation or (isinstance(annotation, type) and issubclass(annotation, Response)):
        return None
    return create_model_field(name="Response_" + route.unique_id, type_=annotation,
                              mode="serialization")


def install(app: FastAPI) -> None:
    """The OpenAPI fix-ups, and /docs and /redoc served from the package's own assets."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return _without_422(generate())

    app.openapi = openapi  # type: ignore[method-assign]
    assets = files("dataloft") / "web" / "docs"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=title, oauth2_redirect_url=None,
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            # validatorUrl: Swagger UI would otherwise fetch a badge from swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True})

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title=title,
                              redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
                              with_google_fonts=False)


ASSETS = "/docs-assets"


def _without_422(doc: dict[str, Any]) -> dict[str, Any]:
    """No 422 (validation errors answer 400), and 413 only where a body is read."""
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                responses = operation.get("responses", {})
                responses.pop("422", None)
                if "requestBody" not in operation:
                    responses.pop("413", None)
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc
