"""/api/v1/assistant/*."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from dataloft.api import lean
from dataloft.api.deps import (
    CredentialsDep,
    CtxDep,
    PrincipalDep,
    SessionDep,
    principal_in,
)
from dataloft.api.listing import LISTING, respond
from dataloft.api.openapi import Documented, errors
from dataloft.assistants import service
from dataloft.assistants.schemas import AssistantOut, AssistantPage
from dataloft.assistants.service import AssistantCreate
from dataloft.kit.wire import Ref
from dataloft.knowledge import search as knowledge
from dataloft.knowledge.schemas import KnowledgeAnswer
from dataloft.models import Assistant
from dataloft.search.service import SearchBody


def _router() -> APIRouter:
    return APIRouter(prefix="/api/v1/assistant", tags=["assistants"], route_class=Documented,
                     responses=errors())


router = _router()


@router.post("/create", response_model=Ref)
def create_assistant(session: SessionDep, principal: PrincipalDep,
                     body: AssistantCreate | None = None) -> dict[str, Any]:
    return {"id": service.create(session, principal, body or AssistantCreate()).id}


@router.get("/list", response_model=AssistantPage, responses=LISTING)
def list_assistants(request: Request, ctx: CtxDep, session: SessionDep,
                    principal: PrincipalDep) -> Any:
    return respond(request, ctx, session, service.listing(principal), Assistant.id,
                   lambda assistant: service.render(assistant, principal))


@router.get("/{assistant_id}/fetch", response_model=AssistantOut)
def fetch_assistant(assistant_id: str, session: SessionDep,
                    principal: PrincipalDep) -> dict[str, Any]:
    return service.render(service.get(session, principal, assistant_id), principal)


@router.post("/{assistant_id}/update", response_model=Ref)
def update_assistant(assistant_id: str, session: SessionDep, principal: PrincipalDep,
                     body: AssistantCreate | None = None) -> dict[str, Any]:
    return {"id": service.update(session, principal, assistant_id, body or AssistantCreate()).id}


@router.post("/{assistant_id}/delete", response_model=Ref)
def delete_assistant(assistant_id: str, session: SessionDep,
                     principal: PrincipalDep) -> dict[str, Any]:
    return {"id": service.delete(session, principal, assistant_id).id}


def search_assistant(assistant_id: str, body: SearchBody, ctx: CtxDep,
                     credentials: CredentialsDep) -> dict[str, Any]:
    # A POST that only reads: a read snapshot, never the writer (SQLite has one, and the
    # query embedding may wait on a slow endpoint for tens of seconds). The key is resolved
    # in it, as the dataset search does.
    with ctx.db.read() as session:
        principal = principal_in(session, ctx, credentials)
        hits = knowledge.search_knowledge(session, ctx.index, ctx.embedder, principal,
                                          assistant_id, body, ctx.dialect)
        return {"id": assistant_id, "records": [knowledge.render(r, s, body.search)
                                                for r, s in hits]}


searching = lean.searching(_router(), "/{assistant_id}/search", search_assistant,
                           KnowledgeAnswer)
