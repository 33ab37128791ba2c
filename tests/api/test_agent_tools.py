"""The agent's tools take whatever a model writes: for any tool name and any JSON arguments,
a call returns a JSON-able result bounded in size or raises a typed ToolError the model can
read, never another exception (which would end the answer instead of informing the model)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dataloft.agent.scope import Scope
from dataloft.agent.tools import MAX_RESULT_CHARS, TOOLS, ToolError, Tools
from dataloft.api.deps import principal_of
from dataloft.app import create_app
from tests.conftest import KEY, BackendSettings
from tests.support.api import create_dataset, create_file, sync

USER = "tool_user"
ROWS = "".join(f"item{i},{'x' * 300},{i}\n" for i in range(400))
NOTES = " ".join(f"Paragraph {i} mentions the quokka budget of {i} euros." for i in range(300))


@pytest.fixture(scope="module")
def tools(backend_settings: BackendSettings, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Tools]:
    """A user with a wide table (an Inconvo upload) and a long document (an associated
    dataset)."""
    settings_ = backend_settings(tmp_path_factory.mktemp("tools"))
    with TestClient(create_app(settings_), headers={"Authorization": f"Bearer {KEY}"}) as c:
        r = c.post(f"/api/v1/datasets/user/{USER}",
                   files={"file": ("wide.csv", f"name,blob,n\n{ROWS}", "text/csv")})
        assert r.status_code == 200, r.text
        ds = create_dataset(c, visibility="protected")
        fid = create_file(c, NOTES.encode(), name="notes.txt")
        c.post(f"/api/v1/file/{fid}/update", json={"visibility": "protected"})
        sync(c, ds, fid)
        agent = next(a["id"] for a in c.get("/api/v1/assistant/list").json()["items"]
                     if a["default"])
        r = c.post(f"/api/assistants/{agent}/datasets", json={"datasetId": ds})
        assert r.status_code == 201, r.text
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        made = Tools(ctx, Scope(principal_of(ctx, KEY, USER, None), agent))
        deadline = time.monotonic() + 120
        while len(made.call("schema", {})["tables"]) < 1 or not made.call(
                "search", {"query": "quokka budget"})["results"]:
            assert time.monotonic() < deadline, "the uploads were not synced"
            time.sleep(0.2)
        yield made


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)
SQL = st.sampled_from([
    "SELECT * FROM wide", "SELECT name, n FROM wide ORDER BY n", "SELECT count(*) FROM wide",
    "SELECT * FROM nope", "DROP TABLE wide", "SELECT 1/0", "SELEC oops", "", ";",
    "SELECT * FROM read_csv('/etc/passwd')", "SELECT n FROM wide; SELECT 1",
    "SELECT repeat('y', 100000)"]) | st.text(max_size=40)
FILTERS = st.sampled_from([{"name": "item1"}, {"n": {"$gt": 5}}, {"$and": []}, {"$bad": 1},
                           {"n": {"$in": "x"}}, {"fileName": {"$regex": "("}}]) | JSON
ARGS = {
    "search": st.fixed_dictionaries({}, optional={
        "query": st.sampled_from(["quokka budget", "item1", " "]) | JSON,
        "take": JSON | st.integers(-5, 1000), "filter": FILTERS,
        "mode": st.sampled_from(["hybrid", "lexical", "vector", "semantic", "nope"]) | JSON}),
    "sql": st.fixed_dictionaries({}, optional={"sql": SQL | JSON, "present": JSON}),
    "schema": st.dictionaries(st.text(max_size=8), JSON, max_size=2),
    "list_files": st.dictionaries(st.text(max_size=8), JSON, max_size=2),
    "read_record": st.fixed_dictionaries({}, optional={"recordId": st.sampled_from(
        ["rec_nope", ""]) | JSON}),
}
CALLS = st.one_of(
    *(st.tuples(st.just(name), args) for name, args in ARGS.items()),
    st.tuples(st.sampled_from([*TOOLS, "nope", ""]), JSON))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(call=CALLS)
@example(call=("search", {"query": "quokka budget", "take": float("inf")}))
@example(call=("search", {"query": "quokka budget", "take": [None]}))
def test_any_arguments_give_a_bounded_result_or_a_typed_error(
        tools: Tools, call: tuple[str, Any]) -> None:
    name, args = call
    try:
        result = tools.call(name, args)
    except ToolError as exc:
        rendered = exc.render()
        # internal_error is the net for a tool that broke: arguments never land there
        assert rendered["error"]["type"] != "internal_error", (name, args, exc.__cause__)
        assert rendered["error"]["message"], rendered
        json.dumps(rendered)
        return
    assert len(json.dumps(result, default=str)) <= MAX_RESULT_CHARS, (name, args)


def test_a_big_result_is_cut_and_says_so(tools: Tools) -> None:
    rows = tools.call("sql", {"sql": "SELECT * FROM wide ORDER BY n"})
    assert rows["truncated"] and 0 < len(rows["rows"]) < 400
    assert len(json.dumps(rows)) <= MAX_RESULT_CHARS
    found = tools.call("search", {"query": "quokka budget", "take": 20})
    assert found["results"]
    assert len(json.dumps(found)) <= MAX_RESULT_CHARS
