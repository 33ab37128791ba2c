"""Governed SQL: /api/v1/dataset/{id}/schema, /api/v1/dataset/{id}/query and
/api/v1/assistant/{id}/query. No request-owned session here: a query can run for seconds
and must not hold the database writer meanwhile; the service reads the catalog and lets go.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dataloft.api.deps import CtxDep, PrincipalDep
from dataloft.api.openapi import Documented, errors
from dataloft.query.schemas import QueryAnswer, SchemaAnswer
from dataloft.query.service import QueryBody

router = APIRouter(prefix="/api/v1", tags=["sql"], route_class=Documented,
                   responses=errors(429))


@router.get("/dataset/{dataset_id}/schema", response_model=SchemaAnswer)
def dataset_schema(dataset_id: str, ctx: CtxDep, principal: PrincipalDep) -> dict[str, Any]:
    return ctx.query.schema(principal, dataset_id)


@router.post("/dataset/{dataset_id}/query", response_model=QueryAnswer)
def query_dataset(dataset_id: str, body: QueryBody, ctx: CtxDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    return ctx.query.query_dataset(principal, dataset_id, body)


@router.post("/assistant/{assistant_id}/query", response_model=QueryAnswer)
def query_assistant(assistant_id: str, body: QueryBody, ctx: CtxDep,
                    principal: PrincipalDep) -> dict[str, Any]:
    return ctx.query.query_assistant(principal, assistant_id, body)
