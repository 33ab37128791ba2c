"""Every record an agent tool returns is one the access policy lets the conversation's
principal see, and inside the agent's automatic scope, over random worlds.

Worlds come from the policy model (tests/api/test_policy_model.py: users, contexts, files of
every scope and visibility, Inconvo uploads, attachments, datasets, principals of every kind)
plus random association filters of the org's default agent. The oracle is that model's
(`sees_record`, written from the rules, not from `kit.policy`) and the agent's scope rule:
an associated dataset under its filter, or the agent's upload dataset of the principal's own
user scope or of one of its context pairs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dataloft.agent.scope import Scope
from dataloft.agent.tools import ToolError, Tools
from dataloft.api.deps import principal_of
from dataloft.app import create_app
from dataloft.kit.filters import matches, parse_filter
from dataloft.models import Record
from tests.api.test_policy_model import (
    SHARED,
    Who,
    World,
    WorldSpec,
    build_world,
    ok,
    sees_dataset,
    sees_file,
    sees_record,
    world_specs,
)

FILTERS = (None, {"name": "row0"}, {"name": {"$ne": "row1"}}, {"fileType": "text/plain"})
MARKER = re.compile(r"kwf\d+r\d+q|kwm\d+q")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, backend_settings: Any
           ) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("agent_policy")
    with TestClient(create_app(backend_settings(tmp, workers=2)),
                    raise_server_exceptions=False) as c:
        yield c


@st.composite
def agent_worlds(draw: st.DrawFn) -> tuple[WorldSpec, list[tuple[int, Any]]]:
    spec = draw(world_specs())
    ds = [i for i, d in enumerate(spec.datasets) if d.org == 0]
    links = draw(st.lists(st.tuples(st.sampled_from(ds), st.sampled_from(FILTERS)),
                          unique_by=lambda x: x[0], max_size=3)) if ds else []
    return spec, links


def _associate(client: TestClient, world: World, spec: WorldSpec,
               links: list[tuple[int, Any]]) -> dict[str, Any]:
    """Associate org 0's datasets with its default agent; → {dataset id: filter}."""
    org = world.orgs[0]
    admin = {"Authorization": f"Bearer {org.admin}"}
    names = {d["id"]: d for d in ok(client.get("/api/v1/dataset/list", headers=admin))["items"]}
    by_name = {d["name"]: i for i, d in names.items()}
    out: dict[str, Any] = {}
    for i, flt in links:
        ds = by_name[f"ds{i}"]
        r = client.post(f"/api/assistants/{org.agent}/datasets", headers=admin,
                        json={"datasetId": ds, "filter": flt})
        assert r.status_code == 201, r.text
        out[ds] = flt
    return out


def _in_scope(world: World, who: Who, record: Record, associated: dict[str, Any]) -> bool:
    if record.dataset_id in associated:
        flt = parse_filter(associated[record.dataset_id])
        return flt is None or matches(flt, record.meta, {"fileId": record.file_id,
                                                         "source": record.source,
                                                         "createdAt": record.created_at})
    if who.user is None:
        return False
    mine = {f"user:{who.user}", *(f"context:{k}:{v}" for k, v in who.context)}
    return any(world.scope_ds.get((who.org, s)) == record.dataset_id for s in mine)


def _principal(client: TestClient, headers: dict[str, str]) -> Any:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    return principal_of(ctx, headers["Authorization"][7:], headers.get("X-RunAs-User-Id"),
                        headers.get("X-User-Context"))


def _returned_records(tools: Tools, records: dict[str, Record]) -> set[str]:
    """Every record id the tools hand out by id: search hits and read_record answers."""
    seen = {r["recordId"] for r in tools.call("search", {"query": SHARED, "take": 20})[
        "results"]}
    for rid in records:
        try:
            seen.add(tools.call("read_record", {"recordId": rid})["recordId"])
        except ToolError as exc:
            assert exc.kind == "not_found", exc.render()
    return seen


def _returned_rows(tools: Tools) -> set[str]:
    """The row markers of every table `schema` lists, as `sql` returns them (a row carries
    no record id: a file attached to two datasets has the same marker in both)."""
    markers: set[str] = set()
    for table in tools.call("schema", {})["tables"]:
        rows = tools.call("sql", {"sql": f'SELECT * FROM "{table["name"]}"'})["rows"]
        markers |= {m for row in rows for m in MARKER.findall(json.dumps(row))}
    return markers


@settings(max_examples=int(os.environ.get("AGENT_POLICY_EXAMPLES", "8")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(drawn=agent_worlds())
def test_tools_return_only_what_the_policy_allows(client: TestClient,
                                                  drawn: tuple[WorldSpec, list[Any]]) -> None:
    spec, links = drawn
    world = build_world(client, spec)
    associated = _associate(client, world, spec, links)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.read() as session:
        records = {r.id: r for r in session.scalars(select(Record).where(
            Record.org_id.in_([o.id for o in world.orgs])))}
    for desc, who, headers in world.principals:
        if who.org != world.orgs[0].id:
            continue
        tools = Tools(ctx, Scope(_principal(client, headers), world.orgs[0].agent))
        def allowed(rid: str) -> bool:
            return (sees_record(world.truth, who, rid)  # noqa: B023 - used at once
                    and _in_scope(world, who, records[rid], associated))  # noqa: B023

        for rid in _returned_records(tools, records):
            assert allowed(rid), (desc, rid, records[rid].text, associated)
        for marker in _returned_rows(tools):
            holders = [rid for rid, r in records.items() if marker in r.text]
            assert any(allowed(rid) for rid in holders), (desc, marker, associated)
        reach = _reach(world, who, associated)
        for fid in {f["fileId"] for f in tools.call("list_files", {})["files"]}:
            assert sees_file(world.truth, who, fid), (desc, fid)
            assert any((d, fid) in world.truth.links for d in reach), (desc, fid, reach)


def _reach(world: World, who: Who, associated: dict[str, Any]) -> set[str]:
    """The datasets of the agent's scope the principal may read: the associated ones and
    the agent's upload datasets of its own user scope and of its context pairs."""
    mine = ([f"user:{who.user}"] if who.user is not None else []) + [
        f"context:{k}:{v}" for k, v in who.context]
    found = {*associated, *(world.scope_ds.get((who.org, s)) for s in mine)}
    return {d for d in found if d is not None and sees_dataset(world.truth, who, d)}
