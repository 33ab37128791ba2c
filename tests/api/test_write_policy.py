"""Issue #11, findings 3, 4, 5 and 11: writes are limited like reads, on both backends.

- 3: a dataset-limited key changes or deletes a file only when every dataset using it (by
  attachment, or by records left after a detach) is within its datasets.
- 4: `keys:write` sees and revokes only keys whose rights are a subset of the caller's.
- 5: an alias held by an item the caller cannot see is free for it; a file sync names no
  dataset the caller cannot see.
- 11: end-users and limited keys read an assistant's instructions only with
  `assistant:write`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dataloft.app import create_app
from dataloft.assistants import service as assistants
from dataloft.keys import service as keys
from dataloft.kit.ids import new_id
from dataloft.models import ApiKey, Job, Org, Record
from tests.conftest import BackendSettings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, backend_settings: BackendSettings
           ) -> Iterator[TestClient]:
    with TestClient(create_app(backend_settings(tmp_path_factory.mktemp("writes"))),
                    raise_server_exceptions=False) as c:
        yield c


def bearer(raw: str, user: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {raw}"}
    if user is not None:
        h["X-RunAs-User-Id"] = user
    return h


def ok(r: Any) -> Any:
    assert r.status_code == 200, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json()


@dataclass
class Org_:
    id: str
    raw: str  # the admin key
    client: TestClient

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.raw)

    def key(self, permissions: list[str], datasets: list[str] | None = None) -> str:
        ctx = self.client.app.state.ctx  # type: ignore[attr-defined]
        with ctx.db.write() as s:
            _, raw = keys.create_key(s, self.id, permissions=permissions, datasets=datasets)
        return raw

    def records(self, dataset_id: str) -> int:
        ctx = self.client.app.state.ctx  # type: ignore[attr-defined]
        with ctx.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(Record)
                                .where(Record.dataset_id == dataset_id)) or 0)

    def settle(self) -> None:
        ctx = self.client.app.state.ctx  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with ctx.db.read() as s:
                busy = s.scalar(select(func.count()).select_from(Job).where(
                    Job.org_id == self.id, Job.state.in_(("queued", "running"))))
            if not busy:
                return
            time.sleep(0.03)
        raise AssertionError("jobs did not finish")

    def dataset(self, name: str, **fields: Any) -> str:
        return str(ok(self.client.post("/api/v1/dataset/create", headers=self.admin,
                                       json={"name": name, **fields}))["id"])

    def file(self, content: bytes, *datasets: str, headers: dict[str, str] | None = None,
             **fields: Any) -> str:
        h = headers or self.admin
        fid = str(ok(self.client.post("/api/v1/file/create", headers=h,
                                      json={"name": "f.txt", **fields}))["id"])
        ok(self.client.post(f"/api/v1/file/{fid}/upload", content=content,
                            headers={**h, "Content-Type": "text/plain"}))
        for ds in datasets:
            self.attach(ds, fid)
        return fid

    def attach(self, ds: str, fid: str) -> None:
        ok(self.client.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", headers=self.admin,
                            json={"type": "source"}))
        ok(self.client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", headers=self.admin,
                            json={}))
        self.settle()


def new_org(client: TestClient) -> Org_:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.write() as session:
        org = Org(id=new_id("org"), name="writes")
        session.add(org)
        session.flush()
        _, raw = keys.create_key(session, org.id, name="admin")
        assistants.ensure_defaults(session)
    return Org_(org.id, raw, client)


TEXT = b"alpha paragraph one.\n\nbeta paragraph two.\n\ngamma paragraph three."


# --------------------------------------------------------------------------- finding 3


def test_limited_key_cannot_change_a_file_a_hidden_dataset_uses(client: TestClient) -> None:
    o = new_org(client)
    mine, hidden = o.dataset("mine"), o.dataset("hidden")
    shared = o.file(TEXT, mine, hidden)
    own = o.file(TEXT, mine)
    before = o.records(hidden)
    assert before > 0
    h = bearer(o.key(["files:write", "datasets:write"], [mine]))
    assert client.get(f"/api/v1/file/{shared}/fetch", headers=h).status_code == 200
    tries = {
        "update": client.post(f"/api/v1/file/{shared}/update", headers=h, json={"name": "x"}),
        "upload": client.post(f"/api/v1/file/{shared}/upload", content=b"overwritten",
                              headers={**h, "Content-Type": "text/plain"}),
        "direct": client.post(f"/api/v1/file/{shared}/upload", headers=h,
                              json={"file": {"type": "text/plain", "size": 3}}),
        "delete": client.post(f"/api/v1/file/{shared}/delete", headers=h),
    }
    for what, r in tries.items():
        assert r.status_code == 403, (what, r.status_code, r.text)
        assert hidden not in r.text, (what, r.text)
    o.settle()
    assert o.records(hidden) == before
    got = client.get(f"/api/v1/file/{shared}/download", headers=o.admin)
    assert got.content == TEXT
    # A file used only within its datasets is the key's to change.
    ok(client.post(f"/api/v1/file/{own}/update", headers=h, json={"name": "renamed"}))
    ok(client.post(f"/api/v1/file/{own}/delete", headers=h))


def test_records_left_by_a_detach_count_as_use(client: TestClient) -> None:
    o = new_org(client)
    mine, hidden = o.dataset("mine"), o.dataset("hidden")
    fid = o.file(TEXT, mine, hidden)
    ok(client.post(f"/api/v1/dataset/{hidden}/file/{fid}/detach", headers=o.admin,
                   json={"deleteRecords": False}))
    before = o.records(hidden)
    assert before > 0
    h = bearer(o.key(["files:write"], [mine]))
    r = client.post(f"/api/v1/file/{fid}/delete", headers=h)
    assert r.status_code == 403, r.text
    assert o.records(hidden) == before


def test_limited_key_cannot_replace_or_delete_a_shared_scope_file(client: TestClient) -> None:
    o = new_org(client)
    ok(client.post("/api/v1/datasets/user/u1", headers=o.admin,
                   files={"file": ("sales.csv", b"k,v\na,1\nb,2\n", "text/csv")}))
    o.settle()
    scope_ds = ok(client.get("/api/v1/dataset/list", headers=o.admin,
                             params={"take": 100}))["items"]
    scope_id = next(d["id"] for d in scope_ds if d["name"] and "u1" in d["name"])
    fid = next(f["id"] for f in ok(client.get("/api/v1/file/list", headers=o.admin))["items"]
               if f["name"] == "sales.csv")
    hidden = o.dataset("hidden")
    o.attach(hidden, fid)
    before = o.records(hidden)
    assert before > 0
    h = bearer(o.key(["files:write"], [scope_id]))
    r = client.post("/api/v1/datasets/user/u1", headers=h,
                    files={"file": ("sales.csv", b"k,v\nz,9\n", "text/csv")})
    assert r.status_code == 403, r.text
    r = client.delete("/api/v1/datasets/user/u1/sales.csv", headers=h)
    assert r.status_code == 403, r.text
    o.settle()
    assert o.records(hidden) == before
    assert client.get(f"/api/v1/file/{fid}/download", headers=o.admin).content == \
        b"k,v\na,1\nb,2\n"


# --------------------------------------------------------------------------- finding 4


def _listed(client: TestClient, h: dict[str, str]) -> set[str]:
    return {k["id"] for k in ok(client.get("/api/v1/key/list", headers=h,
                                           params={"take": 100}))["items"]}


def _key_id(client: TestClient, o: Org_, raw: str) -> str:
    prefix = raw[:12]
    return next(k["id"] for k in ok(client.get("/api/v1/key/list", headers=o.admin,
                                               params={"take": 100}))["items"]
                if k["prefix"] == prefix)


def test_keys_write_manages_only_lesser_keys(client: TestClient) -> None:
    o = new_org(client)
    a, b = o.dataset("a"), o.dataset("b")
    raw = {
        "other_admin": o.key(["admin"]),
        "kw": o.key(["keys:write", "files:write"]),
        "lim": o.key(["keys:write", "files:write"], [a]),
        "sub": o.key(["files:write"]),
        "sub_a": o.key(["files:write"], [a]),
        "sub_b": o.key(["files:write"], [b]),
        "more": o.key(["files:write", "datasets:write"], [a]),
        "instance": o.key(["instance:admin"]),
    }
    ids = {name: _key_id(client, o, r) for name, r in raw.items() if name != "instance"}
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.read() as s:
        ids["instance"] = next(k.id for k in s.scalars(select(ApiKey).where(
            ApiKey.org_id == o.id)) if "instance:admin" in k.permissions)
    kw, lim = bearer(raw["kw"]), bearer(raw["lim"])
    assert _listed(client, kw) == {ids[n] for n in ("kw", "lim", "sub", "sub_a", "sub_b")}
    assert _listed(client, lim) == {ids[n] for n in ("lim", "sub_a")}
    for h, target in ((kw, "other_admin"), (kw, "more"), (lim, "other_admin"), (lim, "kw"),
                      (lim, "sub"), (lim, "sub_b")):
        r = client.post(f"/api/v1/key/{ids[target]}/revoke", headers=h)
        assert r.status_code == 404, (target, r.text)
    # Nothing was revoked: every key still authenticates.
    for name, r_ in raw.items():
        assert client.get("/api/v1/file/list", headers=bearer(r_)).status_code == 200, name
    ok(client.post(f"/api/v1/key/{ids['sub_a']}/revoke", headers=lim))
    ok(client.post(f"/api/v1/key/{ids['sub_b']}/revoke", headers=kw))
    assert client.get("/api/v1/file/list", headers=bearer(raw["sub_a"])).status_code == 401
    # The admin manages every key but an instance admin's (org admin does not imply it).
    assert _listed(client, o.admin) >= set(ids.values()) - {ids["instance"]}
    assert ids["instance"] not in _listed(client, o.admin)
    r = client.post(f"/api/v1/key/{ids['instance']}/revoke", headers=o.admin)
    assert r.status_code == 404, r.text


# --------------------------------------------------------------------------- finding 11


def test_instructions_need_assistant_write_for_end_users_and_limited_keys(
        client: TestClient) -> None:
    o = new_org(client)
    agent = ok(client.post("/api/v1/assistant/create", headers=o.admin,
                           json={"name": "a", "instructions": "the secret sauce"}))["id"]
    ds = o.dataset("d")

    def token(permissions: list[str]) -> dict[str, str]:
        return bearer(ok(client.post("/api/v1/token/create", headers=o.admin, json={
            "userIdentifier": "u1", "permissions": permissions}))["token"])

    cases = {
        "admin": (o.admin, True),
        "reader key": (bearer(o.key([])), True),
        "runas of admin": (bearer(o.raw, "u1"), True),
        "token": (token([]), False),
        "limited key": (bearer(o.key(["files:write"], [ds])), False),
        "limited key with assistant:write": (bearer(o.key(["assistant:write"], [ds])), True),
        "runas of limited key": (bearer(o.key(["files:write"], [ds]), "u1"), False),
    }
    for name, (h, shown) in cases.items():
        fetched = ok(client.get(f"/api/v1/assistant/{agent}/fetch", headers=h))
        listed = [a for a in ok(client.get("/api/v1/assistant/list", headers=h))["items"]
                  if a["id"] == agent]
        expected = "the secret sauce" if shown else None
        assert fetched["instructions"] == expected, (name, fetched)
        assert listed[0]["instructions"] == expected, (name, listed)
        assert "secret sauce" in json.dumps(listed) or not shown


# --------------------------------------------------------------------------- finding 5


def test_an_alias_held_by_an_invisible_item_is_free(client: TestClient) -> None:
    o = new_org(client)
    u1, u2 = bearer(o.raw, "u1"), bearer(o.raw, "u2")
    for kind in ("file", "dataset"):
        ok(client.post(f"/api/v1/{kind}/create", headers=u2, json={"alias": "diary"}))
        mine = ok(client.post(f"/api/v1/{kind}/create", headers=u1, json={"alias": "diary"}))
        # Within one's own scope an alias is still unique.
        r = client.post(f"/api/v1/{kind}/create", headers=u1, json={"alias": "diary"})
        assert r.status_code == 409 and "diary" in r.text, r.text
        other = ok(client.post(f"/api/v1/{kind}/create", headers=u1, json={}))["id"]
        r = client.post(f"/api/v1/{kind}/{other}/update", headers=u1, json={"alias": "diary"})
        assert r.status_code == 409, r.text
        ok(client.post(f"/api/v1/{kind}/{mine['id']}/update", headers=u1,
                       json={"alias": "diary"}))
    # A limited key: an org item outside its datasets holds the alias.
    inside, outside = o.dataset("inside"), o.dataset("outside", alias="budget")
    o.file(TEXT, outside, alias="payroll")
    lim = bearer(o.key(["files:write", "datasets:write"], [inside]))
    ok(client.post("/api/v1/file/create", headers=lim, json={"alias": "payroll"}))
    ok(client.post(f"/api/v1/dataset/{inside}/update", headers=lim, json={"alias": "budget"}))
    # The admin sees both holders: a third is refused.
    r = client.post("/api/v1/file/create", headers=o.admin, json={"alias": "payroll"})
    assert r.status_code == 409, r.text


def test_file_sync_names_no_invisible_dataset(client: TestClient) -> None:
    o = new_org(client)
    mine, hidden = o.dataset("mine"), o.dataset("hidden")
    fid = o.file(TEXT, mine, hidden)
    lim = bearer(o.key(["files:write", "datasets:write"], [mine]))
    r = client.post(f"/api/v1/file/{fid}/sync", headers=lim)
    assert r.status_code == 200, r.text
    assert hidden not in r.text
    # An end-user's own file attached to an org dataset it cannot see.
    u1 = bearer(o.raw, "u1")
    own = o.file(TEXT, headers=u1)
    o.attach(hidden, own)
    r = client.post(f"/api/v1/file/{own}/sync", headers=u1)
    assert hidden not in r.text, r.text
    assert r.status_code in (200, 403), r.text
