"""/api/v1/usage/fetch (the caller's organisation) and /api/v1/org/* (instance admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from dataloft.api.deps import PrincipalDep, SessionDep
from dataloft.errors import NotAuthorized
from dataloft.orgs import service as orgs
from dataloft.quotas import service as quotas

router = APIRouter(prefix="/api/v1", tags=["organisations and usage"])


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=200)


@router.get("/usage/fetch")
def usage(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.is_end_user:
        raise NotAuthorized("end-user credentials cannot read the organisation's usage")
    return quotas.usage(session, principal.org_id)


@router.post("/org/create")
def create_org(body: OrgCreate, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    orgs.require_instance_admin(principal)
    org, raw = orgs.create(session, body.name)
    return {**orgs.render(org), "key": raw}


@router.get("/org/list")
def list_orgs(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    orgs.require_instance_admin(principal)
    return {"items": [orgs.render(o) for o in orgs.listing(session)]}


@router.get("/org/{org_id}/usage/fetch")
def org_usage(org_id: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    orgs.require_instance_admin(principal)
    return quotas.usage(session, orgs.get(session, org_id).id)


@router.post("/org/{org_id}/limits/update")
def update_limits(org_id: str, body: dict[str, Any], session: SessionDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    orgs.require_instance_admin(principal)
    return quotas.set_limits(session, orgs.get(session, org_id).id, body)
