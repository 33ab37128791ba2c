"""/api/v1/usage/fetch (the caller's organisation) and /api/v1/org/* (instance admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from dataloft.api.deps import PrincipalDep, SessionDep
from dataloft.api.openapi import Documented, errors
from dataloft.errors import NotAuthorized
from dataloft.orgs import service as orgs
from dataloft.quotas import service as quotas

router = APIRouter(prefix="/api/v1", tags=["organisations and usage"], route_class=Documented,
                   responses=errors())


class Limits(BaseModel):
    """Each quota's limit; null: unlimited."""

    storageBytes: int | None
    records: int | None
    files: int | None


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    storageBytes: int
    records: int
    files: int
    limits: Limits


class OrgOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    createdAt: int
    updatedAt: int


class OrgCreated(OrgOut):
    key: str  # the organisation's first admin key, shown once


class OrgList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[OrgOut]


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=200)


@router.get("/usage/fetch", response_model=Usage)
def usage(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.is_end_user:
        raise NotAuthorized("end-user credentials cannot read the organisation's usage")
    return quotas.usage(session, principal.org_id)


@router.post("/org/create", response_model=OrgCreated)
def create_org(body: OrgCreate, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    orgs.require_instance_admin(principal)
    org, raw = orgs.create(session, body.name)
    return {**orgs.render(org), "key": raw}


@router.get("/org/list", response_model=OrgList)
def list_orgs(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    orgs.require_instance_admin(principal)
    return {"items": [orgs.render(o) for o in orgs.listing(session)]}


@router.get("/org/{org_id}/usage/fetch", response_model=Usage)
def org_usage(org_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    orgs.require_instance_admin(principal)
    return quotas.usage(session, orgs.get(session, org_id).id)


@router.post("/org/{org_id}/limits/update", response_model=Usage)
def update_limits(org_id: str, body: dict[str, Any], session: SessionDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    orgs.require_instance_admin(principal)
    return quotas.set_limits(session, orgs.get(session, org_id).id, body)
