"""A lean route (api/lean.py) answers every request as FastAPI's own handler answers it:
one endpoint mounted both ways in one app, with the API's error handlers, asked the same
odd requests (bodies, content types, credentials) on either path."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataloft.api import errors
from dataloft.api.deps import CredentialsDep, CtxDep
from dataloft.api.lean import Lean, lean_handler
from dataloft.search.service import SearchBody


def probe(dataset_id: str, body: SearchBody, ctx: CtxDep,
          credentials: CredentialsDep) -> dict[str, Any]:
    return {"id": dataset_id, "ctx": ctx, "body": body.model_dump(),
            "credential": credentials.credential, "runAs": credentials.run_as}


LEAN_ANSWERS = [0]


class CountedLean(Lean):
    """A lean route that counts the requests its handler answers: the parity below means
    something only if the lean handler, not FastAPI's, served the lean path."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def counted(request: Request) -> Response:
            LEAN_ANSWERS[0] += 1
            return await handle(request)

        return counted


# Both kinds of error body: ours, and OpenAI's on its surface (api/errors.py, by path).
SURFACES = ["/api/v1", "/v1"]


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.state.ctx = "the context"
    for surface in SURFACES:
        router = APIRouter(prefix=surface)
        for prefix, route_class in (("plain", None), ("lean", CountedLean)):
            router.add_api_route(f"/{prefix}/{{dataset_id}}/search", probe, methods=["POST"],
                                 route_class_override=route_class)
        app.include_router(router)
    return app


CLIENT = TestClient(_app())

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
_BODY = st.one_of(
    st.fixed_dictionaries({"search": st.text(max_size=8)},
                          optional={"take": st.integers(-2, 300) | st.text(max_size=3),
                                    "mode": st.sampled_from(["hybrid", "lexical", "semantic",
                                                             "fuzzy", ""]),
                                    "filter": _JSON, "other": _JSON}
                          ).map(lambda d: json.dumps(d).encode()),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=12))
_CONTENT_TYPE = st.sampled_from([None, "application/json", "application/json; charset=utf-8",
                                 "application/vnd.api+json", "text/plain", "APPLICATION/JSON",
                                 "multipart/form-data"])
_AUTH = st.sampled_from([None, "Bearer sk_test", "Basic abc", "Bearer ", "bearer tok"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_BODY, content_type=_CONTENT_TYPE, auth=_AUTH,
       run_as=st.sampled_from([None, "user-1"]), surface=st.sampled_from(SURFACES))
def test_a_lean_route_answers_as_fastapi_does(body: bytes, content_type: str | None,
                                              auth: str | None, run_as: str | None,
                                              surface: str) -> None:
    headers = {k: v for k, v in {"Content-Type": content_type, "Authorization": auth,
                                 "X-RunAs-User-Id": run_as}.items() if v is not None}
    plain = CLIENT.post(f"{surface}/plain/ds_1/search", content=body, headers=headers)
    answered = LEAN_ANSWERS[0]
    lean = CLIENT.post(f"{surface}/lean/ds_1/search", content=body, headers=headers)
    assert LEAN_ANSWERS[0] == answered + 1
    assert (lean.status_code, lean.json()) == (plain.status_code, plain.json())
    assert lean.headers["content-type"] == plain.headers["content-type"]


def test_a_lean_route_refuses_a_parameter_it_cannot_read() -> None:
    def paged(dataset_id: str, take: int = 10) -> dict[str, Any]:
        return {}

    try:
        lean_handler(paged, 200)
    except TypeError as exc:
        assert "take" in str(exc)
    else:
        raise AssertionError("a lean route took a query parameter it would never read")


SEARCHES = ["/api/v1/dataset/{dataset_id}/search", "/v1/vector_stores/{store_id}/search",
            "/api/v1/assistant/{assistant_id}/search"]


def _searching() -> list[APIRouter]:
    from dataloft.api import assistants, datasets, openai

    return [datasets.searching, openai.searching, assistants.searching]


@pytest.mark.parametrize("path", SEARCHES)
def test_the_searches_are_lean_routes(path: str) -> None:
    """The parity test above holds only if the lean handler serves: the real routes must be
    lean (a FastAPI route would pass it trivially)."""
    [route] = [r for router in _searching() for r in router.routes
               if getattr(r, "path", "") == path]
    assert isinstance(route, Lean)
    assert route.get_route_handler().__qualname__ == "lean_handler.<locals>.handle"


def test_the_hot_routes_are_matched_first(tmp_path: Path) -> None:
    """FastAPI matches a request against the app's routes in order, at a cost per route
    passed (docs/benchmarks.md section 43): /healthz and the searches (the dataset search
    first) come before every other included router, each search on a router of its own."""
    from dataloft.app import create_app
    from tests.conftest import make_settings

    routes = create_app(make_settings(tmp_path)).router.routes
    included = [i for i, r in enumerate(routes) if hasattr(r, "original_router")]
    [health] = [i for i, r in enumerate(routes) if getattr(r, "path", "") == "/healthz"]
    assert len(included) > 10
    assert health < included[0]
    assert [routes[i].original_router for i in included[:3]] == _searching()
    assert [[getattr(r, "path", "") for r in router.routes] for router in _searching()] == [
        [path] for path in SEARCHES]
