"""/api/v1/key/* (scoped API keys) and /api/v1/token/create (end-user tokens)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from dataloft.api.deps import CtxDep, PrincipalDep, SessionDep
from dataloft.api.listing import LISTING, respond
from dataloft.api.openapi import Documented, errors
from dataloft.datasets import service as datasets
from dataloft.errors import NotAuthorized
from dataloft.keys import service, tokens
from dataloft.keys.schemas import KeyCreated, KeyPage, TokenCreated
from dataloft.kit.principal import Principal, check_context, check_user_identifier
from dataloft.kit.wire import Ref
from dataloft.models import ApiKey

router = APIRouter(prefix="/api/v1", tags=["keys and tokens"], route_class=Documented,
                   responses=errors())


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(default="", max_length=200)
    permissions: list[str] = Field(default_factory=list, max_length=10)
    datasets: list[str] | None = Field(default=None, max_length=1000)


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    userIdentifier: str
    userContext: dict[str, Any] | None = None
    ttl: int | None = None
    permissions: list[str] | None = Field(default=None, max_length=10)


def _backend(principal: Principal) -> None:
    if principal.is_end_user:
        raise NotAuthorized("end-user credentials cannot manage keys or mint tokens")


@router.post("/key/create", response_model=KeyCreated)
def create_key(body: KeyCreate, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    _backend(principal)
    principal.require("keys:write")
    for permission in body.permissions:
        principal.require(permission)  # a key never grants more than its creator holds
    for dataset_id in body.datasets or []:
        datasets.get(session, principal, dataset_id)
    if principal.datasets is not None and (body.datasets is None
                                           or set(body.datasets) - principal.datasets):
        raise NotAuthorized("a dataset-limited key can only create keys within its datasets")
    key, raw = service.create_key(session, principal.org_id, name=body.name,
                                  permissions=body.permissions, datasets=body.datasets)
    return {"id": key.id, "key": raw}


@router.get("/key/list", response_model=KeyPage, responses=LISTING)
def list_keys(request: Request, ctx: CtxDep, session: SessionDep,
              principal: PrincipalDep) -> Any:
    _backend(principal)
    principal.require("keys:write")
    return respond(request, ctx, session, service.listing(session, principal), ApiKey.id,
                   service.render)


@router.post("/key/{key_id}/revoke", response_model=Ref)
def revoke_key(key_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    _backend(principal)
    principal.require("keys:write")
    return {"id": service.revoke_managed(session, principal, key_id).id}


@router.post("/token/create", response_model=TokenCreated)
def create_token(body: TokenCreate, ctx: CtxDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.via_token:
        raise NotAuthorized("an end-user token cannot mint tokens")
    if principal.is_end_user and body.userIdentifier != principal.user_identifier:
        raise NotAuthorized("acting for one end-user, you can only mint tokens for that user")
    token, expires = tokens.mint(
        ctx.signing_key, key_id=principal.key_id, key_permissions=principal.permissions,
        user_identifier=check_user_identifier(body.userIdentifier),
        user_context=check_context(body.userContext or {}), ttl_s=body.ttl,
        permissions=body.permissions)
    return {"token": token, "expiresAt": expires}
