"""/api/assistants/{id}/datasets… and /api/datasets/{id}: Informer's dataset knowledge (seed 003),
HAL documents at the paths the seed gives."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from dataloft.api.deps import PrincipalDep, SessionDep
from dataloft.api.openapi import Documented, errors
from dataloft.errors import BadRequest
from dataloft.knowledge import associations, hal
from dataloft.knowledge.schemas import HalDataset, Knowledge, KnowledgePage

router = APIRouter(prefix="/api", tags=["dataset knowledge (Informer)"], route_class=Documented,
                   responses=errors())

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Every integer parameter is bounded: an offset past any real list is still a page (empty),
# but one past the database's 64-bit integers is a 400, not an OverflowError.
MAX_START = 2**31 - 1
Limit = Annotated[int | None, Query(ge=1, le=MAX_LIMIT)]


class KnowledgeCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    datasetId: str = Field(min_length=1, max_length=200)
    filter: Any = None


class KnowledgeUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    filter: Any = None


@router.get("/assistants/{assistant_id}/datasets", response_model=KnowledgePage)
def list_knowledge(assistant_id: str, session: SessionDep, principal: PrincipalDep,
                   start: Annotated[int, Query(ge=0, le=MAX_START)] = 0, limit: Limit = None,
                   count: Limit = None) -> dict[str, Any]:
    # `count` is accepted too: it is the name the page itself gives to its size.
    if limit is not None and count is not None and limit != count:
        raise BadRequest("give the page size once: limit and count differ")
    size = limit or count or DEFAULT_LIMIT
    _, links, total = associations.page(session, principal, assistant_id, start, size)
    return hal.knowledge_page(session, assistant_id, links, start, size, total)


@router.post("/assistants/{assistant_id}/datasets", status_code=201, response_model=Knowledge)
def create_knowledge(assistant_id: str, body: KnowledgeCreate, response: Response,
                     session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    link, dataset = associations.associate(session, principal, assistant_id, body.datasetId,
                                           body.filter)
    response.headers["Location"] = f"{hal.links_path(assistant_id)}/{dataset.id}"
    return hal.knowledge(session, link, dataset)


@router.get("/assistants/{assistant_id}/datasets/{dataset_id}", response_model=Knowledge)
def get_knowledge(assistant_id: str, dataset_id: str, session: SessionDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    link, dataset = associations.get(session, principal, assistant_id, dataset_id)
    return hal.knowledge(session, link, dataset)


@router.put("/assistants/{assistant_id}/datasets/{dataset_id}", response_model=Knowledge)
def update_knowledge(assistant_id: str, dataset_id: str, body: KnowledgeUpdate,
                     session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require("assistant:write")
    # PUT replaces the filter, so a body without one must not silently widen access.
    if "filter" not in body.model_fields_set:
        raise BadRequest("filter is required: the new filter, or null for full access")
    link, dataset = associations.update_filter(session, principal, assistant_id, dataset_id,
                                               body.filter)
    return hal.knowledge(session, link, dataset)


@router.delete("/assistants/{assistant_id}/datasets/{dataset_id}", status_code=204)
def delete_knowledge(assistant_id: str, dataset_id: str, session: SessionDep,
                     principal: PrincipalDep) -> Response:
    associations.dissociate(session, principal, assistant_id, dataset_id)
    return Response(status_code=204)


@router.get("/datasets/{dataset_id}", response_model=HalDataset)
def get_dataset(dataset_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return hal.dataset(session, associations.find_dataset(session, principal, dataset_id))
