"""The Inconvo datasets API: /api/v1/agents/{agentId}/datasets/{user|context}/..., and the
seed's agent-less /api/v1/datasets/... paths, which act on the org's default agent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from dataloft.api.deps import CtxDep, PrincipalDep, SessionDep
from dataloft.api.openapi import Documented, errors
from dataloft.context import Context
from dataloft.errors import BadRequest, EmptyFile
from dataloft.files import multipart
from dataloft.files.streams import blob_writer
from dataloft.files.upload import capped_body
from dataloft.kit.principal import Principal
from dataloft.scoped import service
from dataloft.scoped.schemas import Names, Removed, Stored
from dataloft.scoped.service import MAX_BYTES, Scope

# Mounted twice (see app.py): under /api/v1/agents/{agent_id} and, acting on the org's
# default agent, under /api/v1 (the seed's agent-less paths).
router = APIRouter(tags=["scoped datasets (Inconvo)"], route_class=Documented,
                   responses=errors())


def _agent_id(request: Request) -> str | None:
    return request.path_params.get("agent_id")


AgentDep = Annotated[str | None, Depends(_agent_id)]


def agent_path(agent_id: str) -> None:
    """Declares {agent_id} of the agents mount, so the OpenAPI description shows it."""

_UPLOAD_BODY = {"requestBody": {"content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "notes": {"type": "string"}}}}}}}


async def _upload(request: Request, ctx: Context, principal: Principal, agent_id: str | None,
                  scope: Scope) -> dict[str, Any]:
    principal.require("files:write")
    if request.headers.get("content-type", "").split(";")[0].strip() != "multipart/form-data":
        raise BadRequest("send the file as multipart/form-data with a 'file' part")
    # Every blob call (S3 parts, commit, read-back, delete) runs on the threadpool, never
    # on the event loop: a slow bucket must not stall every other request.
    async with blob_writer(ctx.blobs, MAX_BYTES) as writer:
        form = await multipart.parse(request.headers["content-type"],
                                     capped_body(request, MAX_BYTES + 64 * 1024), "file",
                                     writer.write)
        if form.file is None:
            raise BadRequest("the multipart body has no 'file' part")
        # The raw name: the seed's filename is the file's identity in its scope, so '../x.csv'
        # or 'a\x00.csv' is refused rather than quietly stored as (or over) 'x.csv'.
        filename = service.clean_filename(form.file.raw_filename)
        if writer.size == 0:
            raise EmptyFile()
        blob = await run_in_threadpool(writer.commit)
    notes = form.fields.get("notes")

    def save() -> dict[str, Any]:
        content_type = service.sniff_tabular(b"".join(ctx.blobs.open(blob.key)), filename)
        with ctx.db.write() as session:
            return service.store(session, principal, agent_id, scope, filename, notes, blob,
                                 content_type, ctx.settings.job_max_attempts)

    try:
        result = await run_in_threadpool(save)
    except BaseException:
        await run_in_threadpool(ctx.blobs.delete, blob.key)
        raise
    ctx.notify()
    return result


# --- user scope -------------------------------------------------------------------------------

@router.post("/datasets/user/{user_identifier}", response_model=Stored,
             openapi_extra=_UPLOAD_BODY, responses=errors(415))
async def upload_user_file(user_identifier: str, request: Request, ctx: CtxDep, agent: AgentDep,
                           principal: PrincipalDep) -> dict[str, Any]:
    return await _upload(request, ctx, principal, agent, Scope.user(user_identifier))


@router.get("/datasets/user/{user_identifier}", response_model=Names)
def list_user_files(user_identifier: str, session: SessionDep, agent: AgentDep,
                    principal: PrincipalDep) -> dict[str, Any]:
    return service.names(session, principal, agent, Scope.user(user_identifier))


@router.delete("/datasets/user/{user_identifier}/{filename}", response_model=Removed)
def delete_user_file(user_identifier: str, filename: str, ctx: CtxDep, session: SessionDep,
                     agent: AgentDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.remove(session, ctx.index, principal, agent, Scope.user(user_identifier),
                          filename)


# --- context scope ----------------------------------------------------------------------------

@router.post("/datasets/context/{context_key}/{context_value}", response_model=Stored,
             openapi_extra=_UPLOAD_BODY, responses=errors(415))
async def upload_context_file(context_key: str, context_value: str, request: Request,
                              ctx: CtxDep, agent: AgentDep,
                              principal: PrincipalDep) -> dict[str, Any]:
    return await _upload(request, ctx, principal, agent, Scope.context(context_key,
                                                                       context_value))


@router.get("/datasets/context/{context_key}/{context_value}", response_model=Names)
def list_context_files(context_key: str, context_value: str, session: SessionDep,
                       agent: AgentDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.names(session, principal, agent, Scope.context(context_key, context_value))


@router.delete("/datasets/context/{context_key}/{context_value}/{filename}",
               response_model=Removed)
def delete_context_file(context_key: str, context_value: str, filename: str, ctx: CtxDep,
                        session: SessionDep, agent: AgentDep,
                        principal: PrincipalDep) -> dict[str, Any]:
    return service.remove(session, ctx.index, principal, agent,
                          Scope.context(context_key, context_value), filename)
