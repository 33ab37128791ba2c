"""/api/v1/dataset/{id}/record/*."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from dataloft.api.deps import CtxDep, PrincipalDep, SessionDep
from dataloft.api.listing import LISTING, respond, with_meta_filter
from dataloft.api.openapi import Documented, errors
from dataloft.datasets import records as service
from dataloft.datasets.records import RecordCreate, RecordUpdate
from dataloft.datasets.schemas import RecordOut, RecordPage
from dataloft.kit.pagination import PageParams, stream
from dataloft.kit.wire import Ref
from dataloft.models import Record
from dataloft.search.service import record_columns

router = APIRouter(prefix="/api/v1/dataset/{dataset_id}/record", tags=["records"],
                   route_class=Documented, responses=errors())
_EXPORT: dict[int | str, dict[str, Any]] = {200: {
    **LISTING[200], "content": {**LISTING[200]["content"],
                                "text/csv": {"schema": {"type": "string"}}}}}


@router.post("/create", response_model=Ref)
def create_record(dataset_id: str, body: RecordCreate, ctx: CtxDep, session: SessionDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    return {"id": service.create(session, ctx.index, ctx.embedder, principal, dataset_id,
                                 body).id}


def _records(request: Request, ctx: CtxDep, session: SessionDep, principal: PrincipalDep,
             dataset_id: str) -> Any:
    return with_meta_filter(service.listing(session, principal, dataset_id), Record.meta,
                            record_columns(), list(request.query_params.multi_items()),
                            ctx.dialect)


@router.get("/list", response_model=RecordPage, responses=LISTING)
def list_records(dataset_id: str, request: Request, ctx: CtxDep, session: SessionDep,
                 principal: PrincipalDep) -> Any:
    stmt = _records(request, ctx, session, principal, dataset_id)
    return respond(request, ctx, session, stmt, Record.id, service.render)


@router.get("/export", response_model=RecordPage, responses=_EXPORT)
def export_records(dataset_id: str, request: Request, ctx: CtxDep, session: SessionDep,
                   principal: PrincipalDep) -> Any:
    stmt = _records(request, ctx, session, principal, dataset_id)
    if "text/csv" not in request.headers.get("accept", "").lower():
        return respond(request, ctx, session, stmt, Record.id, service.render)
    params = PageParams.from_query(list(request.query_params.multi_items()))

    def rows() -> Any:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["id", "text", "source", "meta", "createdAt", "updatedAt"])
        for item in stream(ctx.db.read, stmt, Record.id, params, service.render):
            writer.writerow([item["id"], item["text"], item["source"] or "",
                             json.dumps(item["meta"], ensure_ascii=False),
                             item["createdAt"], item["updatedAt"]])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(rows(), media_type="text/csv")


@router.get("/{record_id}/fetch", response_model=RecordOut)
def fetch_record(dataset_id: str, record_id: str, session: SessionDep,
                 principal: PrincipalDep) -> dict[str, Any]:
    return service.render(service.get(session, principal, dataset_id, record_id))


@router.post("/{record_id}/update", response_model=Ref)
def update_record(dataset_id: str, record_id: str, ctx: CtxDep, session: SessionDep,
                  principal: PrincipalDep, body: RecordUpdate | None = None) -> dict[str, Any]:
    record = service.update(session, ctx.index, ctx.embedder, principal, dataset_id,
                            record_id, body or RecordUpdate())
    return {"id": record.id}


@router.post("/{record_id}/delete", response_model=Ref)
def delete_record(dataset_id: str, record_id: str, ctx: CtxDep, session: SessionDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    return {"id": service.delete(session, ctx.index, principal, dataset_id, record_id).id}
