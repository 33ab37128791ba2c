"""/api/v1/dataset/*: datasets, their files, sync, search and events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from dataloft.api import lean
from dataloft.api.deps import (
    CredentialsDep,
    CtxDep,
    PrincipalDep,
    SessionDep,
    WaitQuery,
    principal_in,
)
from dataloft.api.files import SYSTEM_FIELDS as FILE_FIELDS
from dataloft.api.files import Confirmed
from dataloft.api.listing import LISTING, respond, with_meta_filter
from dataloft.api.openapi import Documented, errors
from dataloft.datasets import service
from dataloft.datasets.schemas import (
    AttachBody,
    DatasetCreate,
    DatasetFilePage,
    DatasetOut,
    DatasetPage,
    DatasetUpdate,
    DetachBody,
)
from dataloft.events import service as events
from dataloft.events.schemas import EventPage
from dataloft.files import service as files
from dataloft.kit.wire import Ref
from dataloft.models import Dataset, Event, File
from dataloft.search import service as search
from dataloft.search.schemas import SearchAnswer
from dataloft.search.service import SearchBody
from dataloft.sync import service as sync
from dataloft.sync import status
from dataloft.sync import wait as waiting
from dataloft.sync.schemas import SyncAnswer


def _router() -> APIRouter:
    return APIRouter(prefix="/api/v1", tags=["datasets"], route_class=Documented,
                     responses=errors())


router = _router()


@router.post("/dataset/create", response_model=Ref)
def create_dataset(session: SessionDep, principal: PrincipalDep,
                   body: DatasetCreate | None = None) -> dict[str, Any]:
    return {"id": service.create(session, principal, body or DatasetCreate()).id}


@router.get("/dataset/list", response_model=DatasetPage, responses=LISTING)
def list_datasets(request: Request, ctx: CtxDep, session: SessionDep,
                  principal: PrincipalDep) -> Any:
    stmt = with_meta_filter(service.listing(principal), Dataset.meta,
                            {"createdAt": Dataset.created_at, "name": Dataset.name},
                            list(request.query_params.multi_items()), ctx.dialect)
    return respond(request, ctx, session, stmt, Dataset.id, service.render)


@router.get("/dataset/{dataset_id}/fetch", response_model=DatasetOut)
def fetch_dataset(dataset_id: str, session: SessionDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    return service.render(service.get(session, principal, dataset_id))


@router.post("/dataset/{dataset_id}/update", response_model=Ref)
def update_dataset(dataset_id: str, session: SessionDep, principal: PrincipalDep,
                   body: DatasetUpdate | None = None) -> dict[str, Any]:
    return {"id": service.update(session, principal, dataset_id, body or DatasetUpdate()).id}


@router.post("/dataset/{dataset_id}/delete", response_model=Ref)
def delete_dataset(dataset_id: str, ctx: CtxDep, session: SessionDep,
                   principal: PrincipalDep) -> dict[str, Any]:
    return {"id": service.delete(session, ctx.index, principal, dataset_id).id}


@router.get("/dataset/{dataset_id}/file/list", response_model=DatasetFilePage,
            responses=LISTING)
def list_dataset_files(dataset_id: str, request: Request, ctx: CtxDep, session: SessionDep,
                       principal: PrincipalDep) -> Any:
    service.get(session, principal, dataset_id)
    stmt = with_meta_filter(service.attached_files(principal, dataset_id), File.meta,
                            FILE_FIELDS, list(request.query_params.multi_items()), ctx.dialect)

    def render(file: File) -> dict[str, Any]:
        # Its own short read: the JSONL stream renders outside the request's session.
        with ctx.db.read() as own:
            return {**files.render(file),
                    "attachment": status.attachment(own, dataset_id, file.id)}

    return respond(request, ctx, session, stmt, File.id, render)


@router.post("/dataset/{dataset_id}/file/{file_id}/attach", response_model=Ref,
             dependencies=Confirmed)
def attach_file(dataset_id: str, file_id: str, session: SessionDep, principal: PrincipalDep,
                body: AttachBody | None = None) -> dict[str, Any]:
    service.attach(session, principal, dataset_id, file_id, body or AttachBody())
    return {"id": file_id}


@router.post("/dataset/{dataset_id}/file/{file_id}/detach", response_model=Ref)
def detach_file(dataset_id: str, file_id: str, ctx: CtxDep, session: SessionDep,
                principal: PrincipalDep, body: DetachBody | None = None) -> dict[str, Any]:
    service.detach(session, ctx.index, principal, dataset_id, file_id, body or DetachBody())
    return {"id": file_id}


@router.post("/dataset/{dataset_id}/file/{file_id}/sync", response_model=SyncAnswer,
             dependencies=Confirmed, responses=errors(429))
async def sync_file(dataset_id: str, file_id: str, ctx: CtxDep, principal: PrincipalDep,
                    wait: WaitQuery = None) -> dict[str, Any]:
    def ask() -> list[tuple[str, str]]:
        with ctx.db.write() as session:
            link = sync.request_sync(session, principal, dataset_id, file_id,
                                     ctx.settings.sync_cooldown_seconds,
                                     ctx.settings.job_max_attempts)
            pair = (link.dataset_id, link.file_id)
        ctx.notify()
        return [pair]

    pairs = await run_in_threadpool(ask)
    answer: dict[str, Any] = {"id": file_id, "status": "queued"}
    if wait is not None:
        found, done = await waiting.wait_for(ctx.db, pairs, wait)
        answer.update(status=waiting.least(found) or "queued", done=done,
                      attachment=found[0] if found else None)
    return answer


def search_dataset(dataset_id: str, body: SearchBody, ctx: CtxDep,
                   credentials: CredentialsDep) -> dict[str, Any]:
    # A POST that only reads: one read snapshot (REPEATABLE READ on PostgreSQL), so the
    # ranked ids and the records loaded for them never straddle a sync's commit. The key
    # is resolved in that snapshot too: one thread-pool hop and one transaction per search
    # instead of two of each (docs/decisions.md), and a revoked key still fails at once.
    with ctx.db.read() as session:
        principal = principal_in(session, ctx, credentials)
        hits = search.search(session, ctx.index, ctx.embedder, principal, dataset_id, body,
                             ctx.dialect)
        return {"id": dataset_id,
                "records": [search.render(r, s, body.search) for r, s in hits]}


searching = lean.searching(_router(), "/dataset/{dataset_id}/search", search_dataset,
                           SearchAnswer)


@router.get("/dataset/{dataset_id}/event/list", response_model=EventPage,
            responses=LISTING)
def list_dataset_events(dataset_id: str, request: Request, ctx: CtxDep, session: SessionDep,
                        principal: PrincipalDep) -> Any:
    service.get(session, principal, dataset_id)
    stmt = with_meta_filter(events.listing(principal, dataset_id), Event.data, events.FIELDS,
                            list(request.query_params.multi_items()), ctx.dialect,
                            rewrite=events.promote)
    return respond(request, ctx, session, stmt, Event.id, events.render)
