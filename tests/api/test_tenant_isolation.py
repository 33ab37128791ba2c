"""Two tenants: nothing of org A is reachable by org B, on any route.

The route table is the OpenAPI description (`app.openapi()["paths"]`): every operation in it
must have a rule here, so a new route cannot be forgotten. Org A is rich (files of every
visibility and owner scope, datasets, synced records, events, Inconvo user and context
uploads, an assistant, a key, an end-user token, an open direct-upload ticket); org B uses
the same end-user names and context values. As B's admin key, B's key acting for an
end-user, B's end-user token and without credentials, every route is called with every A id
in each path parameter (and in bodies where a route takes ids), and each answer must be:

- the expected refusal (404 for A's ids, which is what an id that never existed gets);
- indistinguishable from the same request with a never-existing id in place of A's (same
  status, same body but for the id echoed back), so no answer confirms that an A id exists;
- free of any A id, name, alias, marker text or count the request did not itself carry.

Listings as B never show A items, and afterwards every A listing, fetch and download is
byte-for-byte what it was before. The one thing outside A that may read A: an anonymous
download of a `public` file. (B's *credentialed* download of that public file answers 404:
with a credential the download runs the org policy; noted, and asserted.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dataloft.app import create_app
from dataloft.assistants import service as assistants
from dataloft.keys import service as keys
from dataloft.kit.ids import new_id
from dataloft.models import Assistant, Dataset, Event, File, Job, Org, Record
from tests.conftest import KEY
from tests.support.cli import cli_env, cli_json

A_MARKERS = ("aqmarkpriv", "aqmarkprot", "aqmarkpub", "aqmarkuser", "aqmarkinconvo",
             "aqmarkctx", "aqmarkhand")
A_USER = "u1"
A_CONTEXT = {"team": "red"}


def auth(raw: str | None, user: str | None = None,
         context: dict[str, str] | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {raw}"} if raw else {}
    if user:
        h["X-RunAs-User-Id"] = user
        if context:
            h["X-User-Context"] = json.dumps(context)
    return h


def ok(r: Any) -> Any:
    assert r.status_code == 200, (r.request.method, str(r.request.url), r.status_code, r.text)
    return r.json()


def wait_for_jobs(client: TestClient, timeout: float = 60.0) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ctx.db.read() as s:
            # The retention job is always queued for its next run (jobs/retention.py).
            if not s.scalar(select(func.count()).select_from(Job).where(
                    Job.state.in_(("queued", "running")), Job.kind != "retention.prune")):
                return
        time.sleep(0.03)
    raise AssertionError("jobs did not finish")


@dataclass
class Tenant:
    org: str
    admin: str
    files: dict[str, str] = field(default_factory=dict)  # label -> id
    datasets: dict[str, str] = field(default_factory=dict)
    records: list[tuple[str, str]] = field(default_factory=list)  # (dataset id, record id)
    agents: list[str] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)
    token: str = ""
    ticket: str = ""
    upload_url: str = ""
    filenames: list[str] = field(default_factory=list)  # Inconvo uploads
    batches: list[str] = field(default_factory=list)  # OpenAI file batches
    webhooks: list[str] = field(default_factory=list)
    turns: list[tuple[str, str, str]] = field(default_factory=list)  # conv, response, feedback
    secrets: set[str] = field(default_factory=set)


def _file(c: TestClient, h: dict[str, str], name: str, data: bytes | None,
          ctype: str = "text/plain", **fields: Any) -> str:
    fid = ok(c.post("/api/v1/file/create", headers=h, json={"name": name, **fields}))["id"]
    if data is not None:
        ok(c.post(f"/api/v1/file/{fid}/upload", headers={**h, "Content-Type": ctype},
                  content=data))
    return str(fid)


def _sync(c: TestClient, h: dict[str, str], ds: str, fid: str, kind: str = "source") -> None:
    ok(c.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", headers=h, json={"type": kind}))
    if kind == "source":
        ok(c.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", headers=h, json={}))


def build_a(c: TestClient, made: tuple[str, str] | None = None) -> Tenant:
    """Org A: the bootstrap organisation, or `made` = (org id, admin key) from the CLI."""
    ctx = c.app.state.ctx  # type: ignore[attr-defined]
    if made is None:
        with ctx.db.read() as s:
            made = (str(s.scalar(select(Org.id).order_by(Org.id).limit(1))), KEY)
    a = Tenant(org=made[0], admin=made[1])
    h, hu = auth(a.admin), auth(a.admin, A_USER)
    m = A_MARKERS
    a.files["priv"] = _file(c, h, "a-payroll-secret.txt", f"{m[0]} salaries".encode(),
                            alias="a-secret-file-alias", description="a-desc-secret")
    a.files["prot"] = _file(c, h, "a-prices-secret.csv", f"item,note\nx,{m[1]}\n".encode(),
                            "text/csv", visibility="protected")
    a.files["pub"] = _file(c, h, "a-brochure-secret.txt", f"{m[2]} brochure".encode(),
                           visibility="public")
    a.files["user"] = _file(c, hu, "a-diary-secret.txt", f"{m[3]} diary".encode())
    a.files["userpub"] = _file(c, hu, "a-userpub-secret.txt", f"{m[3]} shared".encode(),
                               visibility="public")
    a.files["empty"] = _file(c, h, "a-empty-secret.bin", None)
    a.filenames = ["a-u1-secret.csv", "a-ctx-secret.csv"]
    ok(c.post(f"/api/v1/datasets/user/{A_USER}", headers=h, files={"file": (
        a.filenames[0], f"k,v\nx,{m[4]}\n".encode(), "text/csv")}))
    ok(c.post("/api/v1/datasets/context/team/red", headers=h, files={"file": (
        a.filenames[1], f"k,v\ny,{m[5]}\n".encode(), "text/csv")}))
    a.datasets["priv"] = ok(c.post("/api/v1/dataset/create", headers=h, json={
        "name": "a-ds-secret", "alias": "a-secret-ds-alias",
        "description": "a-ds-desc-secret"}))["id"]
    a.datasets["prot"] = ok(c.post("/api/v1/dataset/create", headers=h, json={
        "name": "a-ds-prot-secret", "visibility": "protected"}))["id"]
    a.datasets["user"] = ok(c.post("/api/v1/dataset/create", headers=hu, json={
        "name": "a-ds-user-secret"}))["id"]
    for label in ("priv", "prot", "pub"):
        _sync(c, h, a.datasets["priv"], a.files[label])
    _sync(c, h, a.datasets["prot"], a.files["pub"], "reference")
    _sync(c, h, a.datasets["prot"], a.files["prot"])
    _sync(c, h, a.datasets["user"], a.files["user"])
    ok(c.post(f"/api/v1/dataset/{a.datasets['priv']}/record/create", headers=h,
              json={"text": f"{m[6]} by hand", "meta": {"secret": "a-meta-secret"}}))
    a.agents.append(ok(c.post("/api/v1/assistant/create", headers=h, json={
        "name": "a-assistant-secret", "instructions": "a-instructions-secret"}))["id"])
    for ds, flt in ((a.datasets["priv"], {"secret": "a-meta-secret"}), (a.datasets["prot"], None)):
        r = c.post(f"/api/assistants/{a.agents[0]}/datasets", headers=h,
                   json={"datasetId": ds, "filter": flt})
        assert r.status_code == 201, r.text
    made = ok(c.post("/api/v1/key/create", headers=h, json={
        "name": "a-key-secret", "datasets": [a.datasets["priv"]]}))
    a.token = ok(c.post("/api/v1/token/create", headers=h, json={
        "userIdentifier": A_USER, "userContext": A_CONTEXT}))["token"]
    conv = ok(c.post(f"/api/v1/agents/{a.agents[0]}/conversations", headers=h, json={
        "userIdentifier": A_USER, "userContext": A_CONTEXT}))["id"]
    resp = ok(c.post(f"/api/v1/agents/{a.agents[0]}/conversations/{conv}/response", headers=h,
                     json={"message": f"{m[0]} a-question-secret"}))["id"]
    fb = ok(c.post(f"/api/v1/agents/{a.agents[0]}/conversations/{conv}/response/{resp}/feedback",
                   headers=h, json={"rating": "positive", "comment": "a-comment-secret"}))["id"]
    a.turns.append((conv, resp, fb))
    ticket = ok(c.post(f"/api/v1/file/{a.files['empty']}/upload", headers=h, json={
        "file": {"type": "text/plain", "size": 5, "name": "a-ticket-secret.txt"}}))
    a.upload_url = ticket["uploadRequest"]["url"]
    a.ticket = urlsplit(a.upload_url).path.rsplit("/", 1)[1]
    a.batches.append(ok(c.post(f"/v1/vector_stores/{a.datasets['priv']}/file_batches",
                               headers=h, json={"file_ids": [a.files["priv"]]}))["id"])
    wait_for_jobs(c)
    with ctx.db.read() as s:
        for f in s.scalars(select(File).where(File.org_id == a.org)):
            a.files.setdefault(f.name or f.id, f.id)
        for d in s.scalars(select(Dataset).where(Dataset.org_id == a.org)):
            a.datasets.setdefault(d.name or d.id, d.id)
        a.records = [(r.dataset_id, r.id) for r in
                     s.scalars(select(Record).where(Record.org_id == a.org))]
        a.agents += [x for x in s.scalars(select(Assistant.id).where(Assistant.org_id == a.org))
                     if x not in a.agents]
        a.key_ids = [k.id for k in keys.list_keys(s, a.org)]
        events = list(s.scalars(select(Event.id).where(Event.org_id == a.org)))
        failed = s.scalar(select(func.count()).select_from(Event).where(
            Event.org_id == a.org, Event.type == "sync.failed"))
    assert made["id"] in a.key_ids and failed == 0 and len(a.records) >= 6
    # Created last: its endpoint never answers, and no A event it wants follows.
    hook = ok(c.post("/api/v1/webhook/create", headers=h, json={
        "url": "http://127.0.0.1:9/a-hook-secret", "events": ["sync.failed"],
        "description": "a-webhook-secret"}))
    a.webhooks.append(hook["id"])
    a.secrets = {a.org, a.ticket, *a.files.values(), *a.datasets.values(), *a.agents,
                 *(x for turn in a.turns for x in turn), "a-question-secret", "a-comment-secret",
                 *a.key_ids, *events, *(r for _, r in a.records), *A_MARKERS, *a.filenames,
                 "a-payroll-secret", "a-prices-secret", "a-brochure-secret", "a-diary-secret",
                 "a-userpub-secret", "a-empty-secret", "a-ds-secret", "a-ds-prot-secret",
                 "a-ds-user-secret", "a-secret-file-alias", "a-secret-ds-alias",
                 "a-desc-secret", "a-ds-desc-secret", "a-meta-secret", "a-assistant-secret",
                 "a-instructions-secret", "a-key-secret", "a-ticket-secret", made["key"][:12],
                 *a.batches, *a.webhooks, hook["secret"], "a-hook-secret",
                 "a-webhook-secret"}
    return a


def build_b(c: TestClient, made: tuple[str, str] | None = None) -> Tenant:
    """Org B: written straight to the database, or `made` = (org id, admin key)."""
    ctx = c.app.state.ctx  # type: ignore[attr-defined]
    if made is None:
        with ctx.db.write() as s:
            org = Org(id=new_id("org"), name="tenant-b")
            s.add(org)
            s.flush()
            _, raw = keys.create_key(s, org.id, name="b admin")
            assistants.ensure_defaults(s)
        made = (org.id, raw)
    b = Tenant(org=made[0], admin=made[1])
    h = auth(b.admin)
    b.files["own"] = _file(c, h, "b-own.txt", b"bqmark own words")
    b.datasets["own"] = ok(c.post("/api/v1/dataset/create", headers=h, json={"name": "b"}))["id"]
    _sync(c, h, b.datasets["own"], b.files["own"])
    wait_for_jobs(c)
    with ctx.db.read() as s:
        b_default = s.scalar(select(Assistant.id).where(Assistant.org_id == b.org))
    r = c.post(f"/api/assistants/{b_default}/datasets", headers=h,
               json={"datasetId": b.datasets["own"]})
    assert r.status_code == 201, r.text
    b.token = ok(c.post("/api/v1/token/create", headers=h, json={
        "userIdentifier": A_USER, "userContext": A_CONTEXT,
        "permissions": ["files:write", "datasets:write"]}))["token"]
    with ctx.db.read() as s:
        b.records = [(r.dataset_id, r.id) for r in
                     s.scalars(select(Record).where(Record.org_id == b.org))]
        b.agents = list(s.scalars(select(Assistant.id).where(Assistant.org_id == b.org)))
        b.key_ids = [k.id for k in keys.list_keys(s, b.org)]
    return b


# --------------------------------------------------------------------------- the rules


@dataclass
class Attempt:
    method: str
    url: str
    a_values: tuple[str, ...] = ()  # A's values in url/body: each gets a never-existing twin
    kw: dict[str, Any] = field(default_factory=dict)  # json / content / files / headers
    admin: frozenset[int] = frozenset({404})  # what B's admin key must get
    anon: frozenset[int] = frozenset({401})
    end_user: frozenset[int] | None = None  # B's token / B acting for u1; None: admin | 403
    public: bool = False  # an anonymous 200 may show A's bytes (a public download)


Rule = Callable[["Env"], Iterator[Attempt]]


@dataclass
class Env:
    a: Tenant
    b: Tenant

    def a_files(self) -> list[str]:
        return sorted(set(self.a.files.values()))

    def a_datasets(self) -> list[str]:
        return sorted(set(self.a.datasets.values()))


OK = frozenset({200})
CONFLICT = frozenset({409})
# Aliases are unique per owner scope (issue #11 finding 5): an end-user's first create with
# an alias the org scope holds succeeds; a second principal of the same user then clashes.
OWN_SCOPE = frozenset({200, 409})
FORBIDDEN = frozenset({403})
MULTIPART_CSV = {"files": {"file": ("b-upload.csv", b"k,v\nb,bqmark\n", "text/csv")}}


def per_file(method: str, tail: str, **kw: Any) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for fid in e.a_files():
            yield Attempt(method, f"/api/v1/file/{fid}{tail}", (fid,), dict(kw))
    return rule


def per_webhook(method: str, tail: str, **kw: Any) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for hook in e.a.webhooks:
            yield Attempt(method, f"/api/v1/webhook/{hook}{tail}", (hook,), dict(kw))
    return rule


def per_dataset(method: str, tail: str, **kw: Any) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for ds in e.a_datasets():
            yield Attempt(method, f"/api/v1/dataset/{ds}{tail}", (ds,), dict(kw))
    return rule


def dataset_file(method: str, verb: str, **kw: Any) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        b_ds, b_file = e.b.datasets["own"], e.b.files["own"]
        for n, ds in enumerate(e.a_datasets()):
            # Each A dataset with B's file, and A's own pairs (both A: still 404).
            pairs = [(ds, b_file, (ds,)), (ds, e.a.files["priv"], (ds, e.a.files["priv"]))]
            if n == 0:
                pairs.append((ds, e.a.files["user"], (ds, e.a.files["user"])))
            for d, fid, a_vals in pairs:
                yield Attempt(method, f"/api/v1/dataset/{d}/file/{fid}/{verb}", a_vals,
                              dict(kw))
        for fid in e.a_files():  # A's file into B's own dataset
            yield Attempt(method, f"/api/v1/dataset/{b_ds}/file/{fid}/{verb}", (fid,),
                          dict(kw))
    return rule


def per_record(method: str, verb: str, **kw: Any) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        b_ds, b_rec = e.b.records[0]
        one_per_dataset = {ds: rec for ds, rec in e.a.records}
        for ds, rec in one_per_dataset.items():
            for d, r, vals in ((ds, rec, (ds, rec)), (b_ds, rec, (rec,)), (ds, b_rec, (ds,))):
                yield Attempt(method, f"/api/v1/dataset/{d}/record/{r}/{verb}", vals, dict(kw))
    return rule


def per_assistant(method: str, verb: str, **kw: Any) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for agt in e.a.agents:
            yield Attempt(method, f"/api/v1/assistant/{agt}/{verb}", (agt,), dict(kw))
    return rule


def knowledge(method: str, **kw: Any) -> Rule:
    """One association: A's assistant with A's and B's datasets, B's assistant with A's."""
    def rule(e: Env) -> Iterator[Attempt]:
        b_agt, b_ds = e.b.agents[0], e.b.datasets["own"]
        for agt in e.a.agents:
            for ds in (*e.a_datasets(), "a-secret-ds-alias"):
                yield Attempt(method, f"/api/assistants/{agt}/datasets/{ds}", (agt, ds),
                              dict(kw))
            yield Attempt(method, f"/api/assistants/{agt}/datasets/{b_ds}", (agt,), dict(kw))
        for ds in (*e.a_datasets(), "a-secret-ds-alias"):
            yield Attempt(method, f"/api/assistants/{b_agt}/datasets/{ds}", (ds,), dict(kw))
    return rule


def associate(e: Env) -> Iterator[Attempt]:
    b_agt, b_ds = e.b.agents[0], e.b.datasets["own"]
    for agt in e.a.agents:  # B's dataset (or A's) under A's assistant
        for ds, vals in ((b_ds, (agt,)), (e.a.datasets["priv"], (agt, e.a.datasets["priv"]))):
            yield Attempt("POST", f"/api/assistants/{agt}/datasets", vals,
                          {"json": {"datasetId": ds}})
    for ds in (*e.a_datasets(), "a-secret-ds-alias"):  # A's dataset under B's assistant
        yield Attempt("POST", f"/api/assistants/{b_agt}/datasets", (ds,),
                      {"json": {"datasetId": ds, "filter": {"x": 1}}})


def assistant_search(e: Env) -> Iterator[Attempt]:
    for agt in e.a.agents:
        yield Attempt("POST", f"/api/v1/assistant/{agt}/search", (agt,),
                      {"json": {"search": A_MARKERS[0], "take": 200}})
    # B's own assistant: A's words find nothing, A's file id filters to nothing.
    for mode in ("lexical", "semantic", "hybrid"):
        yield Attempt("POST", f"/api/v1/assistant/{e.b.agents[0]}/search", (), {"json": {
            "search": " ".join(A_MARKERS), "take": 200, "mode": mode}},
            admin=OK, end_user=OK)
    yield Attempt("POST", f"/api/v1/assistant/{e.b.agents[0]}/search", (e.a.files["priv"],),
                  {"json": {"search": "bqmark", "filter": {"fileId": e.a.files["priv"]}}},
                  admin=OK, end_user=OK)


def knowledge_list(e: Env) -> Iterator[Attempt]:
    for agt in e.a.agents:
        yield Attempt("GET", f"/api/assistants/{agt}/datasets", (agt,))
    for params in ({}, {"start": 0, "limit": 1}, {"start": 5, "count": 2}):
        yield Attempt("GET", f"/api/assistants/{e.b.agents[0]}/datasets", (),
                      {"params": params}, admin=OK, end_user=OK)


def plain(method: str, url: str, admin: frozenset[int] = OK, end_user: frozenset[int] = OK,
          anon: frozenset[int] = frozenset({401}), **kw: Any) -> Rule:
    """A route without A ids: B may use it; the answer must still hold nothing of A."""
    def rule(e: Env) -> Iterator[Attempt]:
        yield Attempt(method, url, (), dict(kw), admin=admin, end_user=end_user, anon=anon)
    return rule


def listing(url: str, end_user: frozenset[int] = OK) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for params in ({"take": 100}, {"take": 2, "order": "asc"},
                       {"meta.fileId": e.a.files["priv"]}, {"filter": json.dumps(
                           {"name": "a-payroll-secret.txt"})}):
            yield Attempt("GET", url, (), {"params": params}, admin=OK, end_user=end_user)
        yield Attempt("GET", url, (), {"headers": {"Accept": "application/jsonl"}}, admin=OK,
                      end_user=end_user)
    return rule


def scoped(agent_mount: bool, kind: str, method: str) -> Rule:
    """The Inconvo routes. On the agent-less mount B reaches its own scopes of the same
    names (B's answers must hold nothing of A's); under A's agents, nothing exists."""
    scope = f"user/{A_USER}" if kind == "user" else "context/team/red"

    def rule(e: Env) -> Iterator[Attempt]:
        kw: dict[str, Any] = dict(MULTIPART_CSV) if method == "POST" else {}
        # End-users may be refused writes to a context scope (403) before any lookup; the
        # twin comparison shows that refusal does not depend on what A has.
        refused = frozenset({403, 404})
        for agent in (e.a.agents if agent_mount else [None]):
            base = f"/api/v1/agents/{agent}/datasets/{scope}" if agent else \
                f"/api/v1/datasets/{scope}"
            vals = (agent,) if agent else ()
            if method == "DELETE":
                for name in e.a.filenames:
                    yield Attempt("DELETE", f"{base}/{name}", (*vals, name), kw,
                                  end_user=refused)
            elif agent:
                yield Attempt(method, base, vals, kw, end_user=refused)
            else:
                yield Attempt(method, base, vals, kw, admin=OK, end_user=OK if method == "GET"
                              or kind == "user" else frozenset({200, 403}))
    return rule


def direct_put(e: Env) -> Iterator[Attempt]:
    q = parse_qs(urlsplit(e.a.upload_url).query)
    # On S3 A's ticket is a presigned URL to the bucket: B still tries our PUT route.
    expires = q["expires"][0] if "expires" in q else "9999999999999"
    forged = f"?expires={expires}&signature={'0' * 64}"
    for fid in e.a_files():
        # A's ticket on every A file, with a signature B cannot make.
        yield Attempt("PUT", f"/api/v1/file/{fid}/upload/{e.a.ticket}{forged}",
                      (fid, e.a.ticket), {"content": b"bbbbb"}, admin=frozenset({403}),
                      anon=frozenset({403}), end_user=frozenset({403}))


def download(e: Env) -> Iterator[Attempt]:
    public = {e.a.files["pub"], e.a.files["userpub"]}
    for fid in e.a_files():
        # B's credentials run the org policy: 404 even for A's public files (noted).
        yield Attempt("GET", f"/api/v1/file/{fid}/download", (fid,), public=fid in public,
                      anon=frozenset({200}) if fid in public else frozenset({401}))


def v1_per_file(method: str, tail: str = "") -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for fid in e.a_files():
            yield Attempt(method, f"/v1/files/{fid}{tail}", (fid,))
    return rule


def v1_per_store(method: str, tail: str = "", **kw: Any) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for ds in e.a_datasets():
            yield Attempt(method, f"/v1/vector_stores/{ds}{tail}", (ds,), dict(kw))
    return rule


def v1_store_file(method: str, tail: str = "", **kw: Any) -> Rule:
    """A's stores with B's file and A's own; B's own store with each of A's files."""
    def rule(e: Env) -> Iterator[Attempt]:
        b_ds, b_file, a_file = e.b.datasets["own"], e.b.files["own"], e.a.files["priv"]
        for ds in e.a_datasets():
            yield Attempt(method, f"/v1/vector_stores/{ds}/files/{b_file}{tail}", (ds,),
                          dict(kw))
            yield Attempt(method, f"/v1/vector_stores/{ds}/files/{a_file}{tail}",
                          (ds, a_file), dict(kw))
        for fid in e.a_files():
            yield Attempt(method, f"/v1/vector_stores/{b_ds}/files/{fid}{tail}", (fid,),
                          dict(kw))
    return rule


def v1_batch(method: str, tail: str = "") -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for batch in e.a.batches:
            for ds in (e.a.datasets["priv"], e.b.datasets["own"]):
                vals = (ds, batch) if ds == e.a.datasets["priv"] else (batch,)
                yield Attempt(method, f"/v1/vector_stores/{ds}/file_batches/{batch}{tail}",
                              vals)
    return rule


def v1_listing(url: str) -> Rule:
    def rule(e: Env) -> Iterator[Attempt]:
        for params in ({"limit": 100}, {"limit": 2, "order": "asc"}, {"purpose": "assistants"}):
            yield Attempt("GET", url, (), {"params": params}, admin=OK, end_user=OK)
    return rule


def v1_rules() -> dict[tuple[str, str], Rule]:
    """The OpenAI-compatible surface: the same rules, in OpenAI's error body."""
    vs = "/v1/vector_stores/{store_id}"
    return {
        ("POST", "/v1/files"): plain("POST", "/v1/files", data={"purpose": "assistants"},
                                     files={"file": ("b.txt", b"bqmark", "text/plain")}),
        ("GET", "/v1/files"): v1_listing("/v1/files"),
        ("GET", "/v1/files/{file_id}"): v1_per_file("GET"),
        ("DELETE", "/v1/files/{file_id}"): v1_per_file("DELETE"),
        ("GET", "/v1/files/{file_id}/content"): v1_per_file("GET", "/content"),
        ("POST", "/v1/vector_stores"): lambda e: (
            *plain("POST", "/v1/vector_stores", json={"name": "b-vs"})(e),
            *(Attempt("POST", "/v1/vector_stores", (fid,), {"json": {"file_ids": [fid]}})
              for fid in e.a_files())),
        ("GET", "/v1/vector_stores"): v1_listing("/v1/vector_stores"),
        ("GET", vs): v1_per_store("GET"),
        ("POST", vs): v1_per_store("POST", json={"name": "pwned"}),
        ("DELETE", vs): v1_per_store("DELETE"),
        ("POST", f"{vs}/search"): lambda e: (
            *v1_per_store("POST", "/search", json={"query": A_MARKERS[0],
                                                   "max_num_results": 50})(e),
            Attempt("POST", f"/v1/vector_stores/{e.b.datasets['own']}/search", (),
                    {"json": {"query": " ".join(A_MARKERS), "max_num_results": 50}},
                    admin=OK, end_user=frozenset({404}))),
        ("POST", f"{vs}/files"): lambda e: (
            *v1_per_store("POST", "/files", json={"file_id": e.b.files["own"]})(e),
            *(Attempt("POST", f"/v1/vector_stores/{e.b.datasets['own']}/files", (fid,),
                      {"json": {"file_id": fid}}) for fid in e.a_files())),
        ("GET", f"{vs}/files"): v1_per_store("GET", "/files"),
        ("GET", f"{vs}/files/{{file_id}}"): v1_store_file("GET"),
        ("POST", f"{vs}/files/{{file_id}}"): v1_store_file("POST", json={
            "attributes": {"pwned": True}}),
        ("DELETE", f"{vs}/files/{{file_id}}"): v1_store_file("DELETE"),
        ("GET", f"{vs}/files/{{file_id}}/content"): v1_store_file("GET", "/content"),
        ("POST", f"{vs}/file_batches"): lambda e: (
            *v1_per_store("POST", "/file_batches", json={"file_ids": [e.b.files["own"]]})(e),
            *(Attempt("POST", f"/v1/vector_stores/{e.b.datasets['own']}/file_batches", (fid,),
                      {"json": {"file_ids": [fid]}}) for fid in e.a_files())),
        ("GET", f"{vs}/file_batches/{{batch_id}}"): v1_batch("GET"),
        ("POST", f"{vs}/file_batches/{{batch_id}}/cancel"): v1_batch("POST", "/cancel"),
        ("GET", f"{vs}/file_batches/{{batch_id}}/files"): v1_batch("GET", "/files"),
    }


def rules() -> dict[tuple[str, str], Rule]:
    p = "/api/v1"
    return {
        ("POST", f"{p}/file/create"): plain("POST", f"{p}/file/create", end_user=OWN_SCOPE,
                                            json={"name": "b-file", "alias": "b-alias"}),
        ("POST", f"{p}/dataset/file/create"): plain("POST", f"{p}/dataset/file/create",
                                                    json={"name": "b-file-2"}),
        ("GET", f"{p}/file/list"): listing(f"{p}/file/list"),
        ("GET", f"{p}/file/{{file_id}}/fetch"): per_file("GET", "/fetch"),
        ("POST", f"{p}/file/{{file_id}}/update"): per_file("POST", "/update", json={
            "name": "pwned", "visibility": "public"}),
        ("POST", f"{p}/file/{{file_id}}/delete"): per_file("POST", "/delete", json={}),
        ("POST", f"{p}/file/{{file_id}}/sync"): per_file("POST", "/sync", json={}),
        ("POST", f"{p}/file/{{file_id}}/upload"): lambda e: (
            *per_file("POST", "/upload", content=b"pwned",
                      headers={"Content-Type": "text/plain"})(e),
            *(Attempt("POST", f"{p}/file/{fid}/upload", (fid,), {"json": {"file": body}})
              for fid in (e.a.files["priv"], e.a.files["empty"])
              for body in ({"type": "text/plain", "size": 5},
                           "data:text/plain;base64,cHduZWQ="))),
        ("PUT", f"{p}/file/{{file_id}}/upload/{{ticket_id}}"): direct_put,
        ("POST", f"{p}/file/{{file_id}}/upload/confirm"): per_file("POST", "/upload/confirm",
                                                                    json={}),
        ("GET", f"{p}/file/{{file_id}}/download"): download,
        ("POST", f"{p}/dataset/create"): plain("POST", f"{p}/dataset/create", end_user=OWN_SCOPE,
                                               json={"name": "b-ds", "alias": "b-ds-alias"}),
        ("GET", f"{p}/dataset/list"): listing(f"{p}/dataset/list"),
        ("GET", f"{p}/dataset/{{dataset_id}}/fetch"): per_dataset("GET", "/fetch"),
        ("POST", f"{p}/dataset/{{dataset_id}}/update"): per_dataset("POST", "/update", json={
            "name": "pwned", "visibility": "public"}),
        ("POST", f"{p}/dataset/{{dataset_id}}/delete"): per_dataset("POST", "/delete", json={}),
        ("GET", f"{p}/dataset/{{dataset_id}}/file/list"): per_dataset("GET", "/file/list"),
        ("POST", f"{p}/dataset/{{dataset_id}}/file/{{file_id}}/attach"): dataset_file(
            "POST", "attach", json={"type": "source"}),
        ("POST", f"{p}/dataset/{{dataset_id}}/file/{{file_id}}/detach"): dataset_file(
            "POST", "detach", json={"deleteRecords": True}),
        ("POST", f"{p}/dataset/{{dataset_id}}/file/{{file_id}}/sync"): dataset_file(
            "POST", "sync", json={}),
        ("POST", f"{p}/dataset/{{dataset_id}}/search"): lambda e: (
            *per_dataset("POST", "/search", json={"search": A_MARKERS[0], "take": 200})(e),
            # In B's own dataset: A's words find nothing, A's file id filters to nothing.
            *(Attempt("POST", f"{p}/dataset/{e.b.datasets['own']}/search", (), {"json": body},
                      admin=OK, end_user=frozenset({404}))
              for body in ({"search": " ".join(A_MARKERS), "take": 200, "mode": mode}
                           for mode in ("lexical", "semantic", "hybrid"))),
            Attempt("POST", f"{p}/dataset/{e.b.datasets['own']}/search", (e.a.files["priv"],),
                    {"json": {"search": "bqmark", "filter": {"fileId": e.a.files["priv"]}}},
                    admin=OK, end_user=frozenset({404}))),
        ("GET", f"{p}/dataset/{{dataset_id}}/event/list"): per_dataset("GET", "/event/list"),
        ("GET", f"{p}/dataset/{{dataset_id}}/schema"): per_dataset("GET", "/schema"),
        ("POST", f"{p}/dataset/{{dataset_id}}/query"): lambda e: (
            *per_dataset("POST", "/query", json={"sql": "SELECT * FROM records"})(e),
            # In B's own dataset, A's table names are unknown tables, like any other name.
            *(Attempt("POST", f"{p}/dataset/{e.b.datasets['own']}/query", (), {"json": body},
                      admin=frozenset({400}), end_user=frozenset({404}))
              for body in ({"sql": "SELECT * FROM a_upload"},
                           {"sql": "SELECT * FROM read_csv('/etc/passwd')"}))),
        ("GET", f"{p}/event/list"): listing(f"{p}/event/list"),
        ("GET", f"{p}/event/log/list"): listing(f"{p}/event/log/list"),
        ("GET", f"{p}/event/log/export"): lambda e: (
            *listing(f"{p}/event/log/export")(e),
            *(Attempt("GET", f"{p}/event/log/export", (), {"params": {"format": f}},
                      admin=OK, end_user=OK) for f in ("json", "jsonl", "csv"))),
        # Live streams end after event_stream_max_seconds here, so their bodies are read.
        ("POST", f"{p}/event/log/subscribe"): plain("POST", f"{p}/event/log/subscribe",
                                                    json={"historyLength": 1000}),
        ("GET", f"{p}/event/stream"): plain("GET", f"{p}/event/stream", headers={
            "Last-Event-ID": "evt_" + "0" * 26}),
        ("POST", f"{p}/webhook/create"): plain("POST", f"{p}/webhook/create",
                                               end_user=frozenset({403}),
                                               json={"url": "http://127.0.0.1:9/b",
                                                     "events": ["sync.failed"]}),
        ("GET", f"{p}/webhook/list"): listing(f"{p}/webhook/list", end_user=frozenset({403})),
        **{(method, f"{p}/webhook/{{webhook_id}}{tail}"): per_webhook(method, tail, **kw)
           for method, tail, kw in (("GET", "/fetch", {}), ("POST", "/delete", {"json": {}}),
                                    ("POST", "/rotate", {"json": {}}),
                                    ("POST", "/update", {"json": {"description": "pwned"}}),
                                    ("GET", "/delivery/list", {}))},
        ("POST", f"{p}/dataset/{{dataset_id}}/record/create"): per_dataset(
            "POST", "/record/create", json={"text": "pwned"}),
        ("GET", f"{p}/dataset/{{dataset_id}}/record/list"): per_dataset("GET", "/record/list"),
        ("GET", f"{p}/dataset/{{dataset_id}}/record/export"): lambda e: (
            a for kw in ({}, {"headers": {"Accept": "text/csv"}},
                         {"headers": {"Accept": "application/jsonl"}})
            for a in per_dataset("GET", "/record/export", **kw)(e)),
        ("GET", f"{p}/dataset/{{dataset_id}}/record/{{record_id}}/fetch"): per_record(
            "GET", "fetch"),
        ("POST", f"{p}/dataset/{{dataset_id}}/record/{{record_id}}/update"): per_record(
            "POST", "update", json={"text": "pwned"}),
        ("POST", f"{p}/dataset/{{dataset_id}}/record/{{record_id}}/delete"): per_record(
            "POST", "delete", json={}),
        ("POST", f"{p}/assistant/create"): plain("POST", f"{p}/assistant/create",
                                                 end_user=frozenset({200, 403}),
                                                 json={"name": "b-assistant"}),
        ("GET", f"{p}/assistant/list"): listing(f"{p}/assistant/list"),
        ("GET", f"{p}/assistant/{{assistant_id}}/fetch"): per_assistant("GET", "fetch"),
        ("POST", f"{p}/assistant/{{assistant_id}}/query"): per_assistant(
            "POST", "query", json={"sql": "SELECT 1"}),
        ("POST", f"{p}/assistant/{{assistant_id}}/update"): per_assistant(
            "POST", "update", json={"name": "pwned"}),
        ("POST", f"{p}/assistant/{{assistant_id}}/delete"): per_assistant(
            "POST", "delete", json={}),
        ("POST", f"{p}/key/create"): lambda e: (
            Attempt("POST", f"{p}/key/create", (ds,), {"json": {"datasets": [ds]}})
            for ds in e.a_datasets()),
        ("GET", f"{p}/key/list"): listing(f"{p}/key/list", end_user=frozenset({403})),
        ("POST", f"{p}/key/{{key_id}}/revoke"): lambda e: (
            Attempt("POST", f"{p}/key/{k}/revoke", (k,), {"json": {}}) for k in e.a.key_ids),
        ("POST", f"{p}/token/create"): plain("POST", f"{p}/token/create",
                                             end_user=frozenset({200, 403}), json={
                                                 "userIdentifier": A_USER,
                                                 "userContext": A_CONTEXT}),
        ("POST", f"{p}/assistant/{{assistant_id}}/search"): assistant_search,
        ("GET", "/api/assistants/{assistant_id}/datasets"): knowledge_list,
        ("POST", "/api/assistants/{assistant_id}/datasets"): associate,
        ("GET", "/api/assistants/{assistant_id}/datasets/{dataset_id}"): knowledge("GET"),
        ("PUT", "/api/assistants/{assistant_id}/datasets/{dataset_id}"): knowledge(
            "PUT", json={"filter": None}),
        ("DELETE", "/api/assistants/{assistant_id}/datasets/{dataset_id}"): knowledge("DELETE"),
        ("GET", "/api/datasets/{dataset_id}"): lambda e: (
            Attempt("GET", f"/api/datasets/{ds}", (ds,))
            for ds in (*e.a_datasets(), "a-secret-ds-alias")),
        ("GET", "/healthz"): plain("GET", "/healthz", anon=OK),
        ("GET", f"{p}/usage/fetch"): plain("GET", f"{p}/usage/fetch", end_user=FORBIDDEN),
        ("POST", f"{p}/org/create"): plain("POST", f"{p}/org/create", admin=FORBIDDEN,
                                           end_user=FORBIDDEN, json={"name": "b-org"}),
        ("GET", f"{p}/org/list"): plain("GET", f"{p}/org/list", admin=FORBIDDEN,
                                        end_user=FORBIDDEN),
        ("GET", f"{p}/org/{{org_id}}/usage/fetch"): lambda e: iter([Attempt(
            "GET", f"{p}/org/{e.a.org}/usage/fetch", (e.a.org,), admin=FORBIDDEN)]),
        ("POST", f"{p}/org/{{org_id}}/limits/update"): lambda e: iter([Attempt(
            "POST", f"{p}/org/{e.a.org}/limits/update", (e.a.org,), {"json": {"files": 0}},
            admin=FORBIDDEN)]),
        **{(method, f"{p}{mount}/datasets/{kind}/{tail}{extra}"): scoped(bool(mount), k,
                                                                        method)
           for mount in ("", "/agents/{agent_id}")
           for k, kind, tail in (("user", "user", "{user_identifier}"),
                                 ("context", "context", "{context_key}/{context_value}"))
           for method, extra in (("GET", ""), ("POST", ""), ("DELETE", "/{filename}"))},
        **v1_rules(),
        **agent_rules(),
    }


def agent_rules() -> dict[tuple[str, str], Rule]:
    """The agent's conversations: under A's agents nothing exists; under B's agent, A's
    conversations, responses and feedback are unknown ids; B's own listing shows none."""
    base = "/api/v1/agents/{agent_id}"
    conv = f"{base}/conversations/{{conversation_id}}"
    resp = f"{conv}/response/{{response_id}}"

    def per_agent(method: str, tail: str, **kw: Any) -> Rule:
        def rule(e: Env) -> Iterator[Attempt]:
            for agt in e.a.agents:
                yield Attempt(method, f"/api/v1/agents/{agt}{tail}", (agt,), dict(kw))
        return rule

    def per_turn(method: str, tail: str, **kw: Any) -> Rule:
        def rule(e: Env) -> Iterator[Attempt]:
            for c, r, f in e.a.turns:
                path = tail.format(c=c, r=r, f=f)
                ids = tuple(x for x in (c, r, f) if x in path)
                for agt in (*e.a.agents, e.b.agents[0]):
                    vals = ids if agt == e.b.agents[0] else (agt, *ids)
                    yield Attempt(method, f"/api/v1/agents/{agt}{path}", vals, dict(kw))
        return rule

    def own_listing(e: Env) -> Iterator[Attempt]:
        yield from per_agent("GET", "/conversations")(e)
        for params in ({"userIdentifier": A_USER}, {"userContext[team]": "red"}, {}):
            yield Attempt("GET", f"/api/v1/agents/{e.b.agents[0]}/conversations", (),
                          {"params": params}, admin=OK, end_user=OK)

    return {
        ("POST", f"{base}/conversations"): per_agent(
            "POST", "/conversations", json={"userIdentifier": A_USER}),
        ("GET", f"{base}/conversations"): own_listing,
        ("GET", f"{base}/data-summary"): per_agent("GET", "/data-summary"),
        ("GET", conv): per_turn("GET", "/conversations/{c}"),
        ("DELETE", conv): per_turn("DELETE", "/conversations/{c}"),
        ("POST", f"{conv}/response"): per_turn("POST", "/conversations/{c}/response",
                                               json={"message": "hi"}),
        ("GET", resp): per_turn("GET", "/conversations/{c}/response/{r}"),
        ("POST", f"{resp}/feedback"): per_turn("POST", "/conversations/{c}/response/{r}/feedback",
                                               json={"rating": "negative"}),
        ("PATCH", f"{resp}/feedback/{{feedback_id}}"): per_turn(
            "PATCH", "/conversations/{c}/response/{r}/feedback/{f}", json={"rating": "negative"}),
    }


# --------------------------------------------------------------------------- running them


def fake(value: str) -> str:
    """A value of the same shape that never existed anywhere."""
    prefix, sep, _ = value.partition("_")
    if sep and re.fullmatch(r"[a-z]+", prefix):
        return f"{prefix}_{'0' * 26}"
    return "zz-never-existed.csv"


@dataclass
class Run:
    client: TestClient
    env: Env
    problems: list[str] = field(default_factory=list)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def principals(self) -> dict[str, dict[str, str]]:
        b = self.env.b
        return {"B admin": auth(b.admin), "B acting for u1": auth(b.admin, A_USER, A_CONTEXT),
                "B token for u1": auth(b.token), "anonymous": {}}

    def send(self, att: Attempt, headers: dict[str, str], swap: dict[str, str]) -> Any:
        url, kw = att.url, dict(att.kw)
        for key in ("json", "params"):
            if key in kw:
                text = json.dumps(kw[key])
                for old, new in swap.items():
                    text = text.replace(old, new)
                kw[key] = json.loads(text)
        for old, new in swap.items():
            url = url.replace(old, new)
        kw["headers"] = {**headers, **att.kw.get("headers", {})}
        with self.lock:
            self.calls += 1
        return self.client.request(att.method, url, **kw)

    def leaks(self, who: str, att: Attempt, r: Any) -> None:
        if who == "anonymous" and att.public and r.status_code == 200:
            return  # a public download: the one read of A from outside
        carried = att.url + json.dumps({k: v for k, v in att.kw.items() if k != "files"},
                                       default=str)
        text = r.text + " " + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        found = sorted(s for s in self.env.a.secrets if s in text and s not in carried)
        if found:
            self.problems.append(f"[{who}] {att.method} {att.url}: leaks {found}: "
                                 f"{r.status_code} {r.text[:300]}")

    def check(self, att: Attempt) -> None:
        for who, headers in self.principals().items():
            if who == "anonymous":
                want = att.anon
            elif who == "B admin":
                want = att.admin
            else:
                want = att.end_user if att.end_user is not None else att.admin | {403}
            r = self.send(att, headers, {})
            if r.status_code not in want:
                self.problems.append(f"[{who}] {att.method} {att.url}: expected "
                                     f"{sorted(want)}, got {r.status_code} {r.text[:300]}")
            if r.status_code >= 400 and not envelope(r):
                self.problems.append(f"[{who}] {att.method} {att.url}: not an error "
                                     f"envelope: {r.text[:200]}")
            self.leaks(who, att, r)
            if not att.a_values or r.status_code == 200:
                continue
            # The same request with never-existing values in place of A's must answer alike.
            swap = {v: fake(v) for v in att.a_values}
            twin = self.send(att, headers, swap)
            body = twin.text
            for old, new in swap.items():
                body = body.replace(new, old)
            if (twin.status_code, body) != (r.status_code, r.text):
                self.problems.append(
                    f"[{who}] {att.method} {att.url}: A's id is distinguishable from a "
                    f"never-existing one: {r.status_code} {r.text[:200]} vs "
                    f"{twin.status_code} {twin.text[:200]}")


def envelope(r: Any) -> bool:
    """Our error body, or on /v1 OpenAI's: {"error": {"message", "type", "param", "code"}}."""
    try:
        body = r.json()
    except ValueError:
        return False
    if urlsplit(str(r.request.url)).path.startswith("/v1/"):
        return (isinstance(body, dict) and set(body) == {"error"}
                and {"message", "type", "param", "code"} <= set(body["error"]))
    return isinstance(body, dict) and {"message", "code"} <= set(body)


def snapshot(c: TestClient, a: Tenant) -> dict[str, Any]:
    """Everything A's admin can read, as it reads it."""
    h = auth(a.admin)
    snap: dict[str, Any] = {}

    def get(url: str, **kw: Any) -> None:
        r = c.get(url, headers={**h, **kw.pop("headers", {})}, **kw)
        snap[url + json.dumps(kw.get("params", {}))] = (r.status_code, r.text)

    for url in ("/api/v1/file/list", "/api/v1/dataset/list", "/api/v1/event/list",
                "/api/v1/assistant/list", "/api/v1/key/list"):
        get(url, headers={"Accept": "application/jsonl"})
    for fid in sorted(set(a.files.values())):
        get(f"/api/v1/file/{fid}/fetch")
        r = c.get(f"/api/v1/file/{fid}/download", headers=h)
        snap[f"download {fid}"] = (r.status_code, hashlib.sha256(r.content).hexdigest())
    for ds in sorted(set(a.datasets.values())):
        for tail in ("fetch", "file/list", "event/list"):
            get(f"/api/v1/dataset/{ds}/{tail}", params={"take": 100})
        get(f"/api/v1/dataset/{ds}/record/export", headers={"Accept": "application/jsonl"})
    for agt in a.agents:
        get(f"/api/v1/assistant/{agt}/fetch")
        get(f"/api/assistants/{agt}/datasets")
    for ds in sorted(set(a.datasets.values())):
        get(f"/api/datasets/{ds}")
    for scope in (f"user/{A_USER}", "context/team/red"):
        get(f"/api/v1/datasets/{scope}")
    # A's credentials still work: nothing was revoked.
    get("/api/v1/file/list", headers={"Authorization": f"Bearer {a.token}"})
    return snap


@pytest.fixture(scope="module", params=["bootstrap", "cli"])
def env(tmp_path_factory: pytest.TempPathFactory, backend_settings: Any,
        request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, Env]]:
    """bootstrap: A is the first-start organisation, B written to the database; cli: both
    made by `dataloft orgs create`, as an operator makes them, while the server runs."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    tmp: Path = tmp_path_factory.mktemp("tenants")
    settings = backend_settings(tmp, workers=2, event_stream_max_seconds=0.3,
                                url_fetch_allow="127.0.0.1:9")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        if request.param == "bootstrap":
            yield c, Env(build_a(c), build_b(c))
            return
        made = [cli_json(cli_env(settings), "orgs", "create", name)
                for name in ("tenant-a", "tenant-b")]
        yield c, Env(build_a(c, (made[0]["id"], made[0]["key"])),
                     build_b(c, (made[1]["id"], made[1]["key"])))


def test_every_route_has_a_rule(env: tuple[TestClient, Env]) -> None:
    client, _ = env
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    table = {(m.upper(), p) for p, ops in paths.items() for m in ops
             if m in ("get", "post", "put", "patch", "delete")}
    assert len(table) >= 45, sorted(table)
    missing, stale = table - set(rules()), set(rules()) - table
    assert not missing, f"routes without an isolation rule (add one): {sorted(missing)}"
    assert not stale, f"rules for routes that no longer exist: {sorted(stale)}"


def test_nothing_of_org_a_is_reachable_from_org_b(env: tuple[TestClient, Env]) -> None:
    client, e = env
    before = snapshot(client, e.a)
    run = Run(client, e)
    attempts = []
    for (method, path), rule in rules().items():
        made = list(rule(e))
        assert made, f"the rule for {method} {path} makes no call"
        attempts += made
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run.check, attempts))
    # A's aliases are free in B: aliases are per org, and B's answer holds nothing of A's.
    for kind, alias in (("file", "a-secret-file-alias"), ("dataset", "a-secret-ds-alias")):
        r = client.post(f"/api/v1/{kind}/create", headers=auth(e.b.admin),
                        json={"name": f"b-{kind}-same-alias", "alias": alias})
        assert r.status_code == 200 and set(r.json()) == {"id"}, r.text
    # Same user name, same file name, B's own scope: B's upload is B's, A's stays A's.
    h = auth(e.b.admin)
    ok(client.post(f"/api/v1/datasets/user/{A_USER}", headers=h, files={
        "file": (e.a.filenames[0], b"k,v\nb,bqmark\n", "text/csv")}))
    wait_for_jobs(client)
    for who, headers in run.principals().items():
        if who == "anonymous":
            continue
        r = client.get(f"/api/v1/datasets/user/{A_USER}", headers=headers)
        assert r.json() == {"files": [e.a.filenames[0], "b-upload.csv"]}, (who, r.text)
        for url in ("/api/v1/file/list", "/api/v1/dataset/list", "/api/v1/event/list"):
            r = client.get(url, headers=headers, params={"take": 100})
            ids = {item["id"] for item in r.json()["items"]}
            assert ids and not ids & e.a.secrets, (who, url, ids & e.a.secrets)
    assert not run.problems, (f"{len(run.problems)} isolation failures in {run.calls} calls:\n"
                              + "\n".join(run.problems[:40]))
    after = snapshot(client, e.a)
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert not changed, f"org A changed: {changed[:10]}"
    assert run.calls > 700, run.calls


def test_a_signed_upload_url_is_bound_to_its_file(env: tuple[TestClient, Env]) -> None:
    client, e = env
    h = auth(e.a.admin)
    target = _file(client, h, "a-direct.txt", None)
    made = ok(client.post(f"/api/v1/file/{target}/upload", headers=h, json={
        "file": {"type": "text/plain", "size": 5}}))
    if not made["uploadRequest"]["url"].startswith("http://testserver/"):
        pytest.skip("a presigned PUT to the bucket: S3 binds it to its key (moto does not "
                    "verify signatures)")
    url = urlsplit(made["uploadRequest"]["url"])
    path, query = url.path, "?" + url.query
    ticket = path.rsplit("/", 1)[1]
    others = [e.a.files["priv"], e.a.files["pub"], e.b.files["own"], f"file_{'0' * 26}"]
    for other in others:
        r = client.put(path.replace(target, other) + query, content=b"xxxxx")
        assert r.status_code == 403 and r.json()["code"] == "NOT_AUTHORIZED", r.text
    q = parse_qs(url.query)
    tampered = [path.replace(ticket, f"upl_{'0' * 26}") + query,
                path + f"?expires={int(q['expires'][0]) + 1}&signature={q['signature'][0]}",
                path + f"?expires={q['expires'][0]}&signature={'f' * 64}"]
    for bad in tampered:
        assert client.put(bad, content=b"xxxxx").status_code == 403, bad
    # Nothing was consumed or changed on the way: the real URL works, once.
    for fid in (e.a.files["priv"], e.a.files["pub"], e.b.files["own"]):
        r = client.get(f"/api/v1/file/{fid}/fetch", headers=auth(
            e.b.admin if fid == e.b.files["own"] else e.a.admin))
        assert r.json()["version"] == 1, r.text
    assert client.put(path + query, content=b"hello").status_code == 200
    assert client.get(f"/api/v1/file/{target}/download", headers=h).content == b"hello"
    assert client.put(path + query, content=b"hello").status_code == 410
