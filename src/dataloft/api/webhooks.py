"""/api/v1/webhook/*: signed endpoints for the event log, and their deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from dataloft.api.deps import CtxDep, PrincipalDep, SessionDep
from dataloft.api.listing import LISTING, respond
from dataloft.api.openapi import Documented, errors
from dataloft.kit.wire import Ref
from dataloft.models import Webhook, WebhookDelivery
from dataloft.webhooks import repository
from dataloft.webhooks import service as webhooks
from dataloft.webhooks.schemas import (
    DeliveryPage,
    WebhookCreate,
    WebhookOut,
    WebhookPage,
    WebhookSecret,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["webhooks"], route_class=Documented,
                   responses=errors())


@router.post("/webhook/create", response_model=WebhookSecret)
def create_webhook(body: WebhookCreate, ctx: CtxDep, session: SessionDep,
                   principal: PrincipalDep) -> dict[str, Any]:
    hook = webhooks.create(session, principal, body, ctx.settings.url_fetch_allowlist)
    return {"id": hook.id, "secret": hook.secret}


@router.get("/webhook/list", response_model=WebhookPage, responses=LISTING)
def list_webhooks(request: Request, ctx: CtxDep, session: SessionDep,
                  principal: PrincipalDep) -> Any:
    return respond(request, ctx, session, webhooks.listing(principal), Webhook.id,
                   webhooks.render)


@router.get("/webhook/{webhook_id}/fetch", response_model=WebhookOut)
def fetch_webhook(webhook_id: str, session: SessionDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    return webhooks.render(webhooks.get(session, principal, webhook_id))


@router.post("/webhook/{webhook_id}/update", response_model=Ref)
def update_webhook(webhook_id: str, ctx: CtxDep, session: SessionDep, principal: PrincipalDep,
                   body: WebhookUpdate | None = None) -> dict[str, Any]:
    hook = webhooks.update(session, principal, webhook_id, body or WebhookUpdate(),
                           ctx.settings.url_fetch_allowlist)
    return {"id": hook.id}


@router.post("/webhook/{webhook_id}/delete", response_model=Ref)
def delete_webhook(webhook_id: str, session: SessionDep,
                   principal: PrincipalDep) -> dict[str, Any]:
    return {"id": webhooks.delete(session, principal, webhook_id).id}


@router.post("/webhook/{webhook_id}/rotate", response_model=WebhookSecret)
def rotate_webhook(webhook_id: str, session: SessionDep,
                   principal: PrincipalDep) -> dict[str, Any]:
    hook = webhooks.rotate(session, principal, webhook_id)
    return {"id": hook.id, "secret": hook.secret}


@router.get("/webhook/{webhook_id}/delivery/list", response_model=DeliveryPage,
            responses=LISTING)
def list_deliveries(webhook_id: str, request: Request, ctx: CtxDep, session: SessionDep,
                    principal: PrincipalDep) -> Any:
    hook = webhooks.get(session, principal, webhook_id)
    return respond(request, ctx, session, repository.deliveries(hook.id), WebhookDelivery.id,
                   webhooks.render_delivery)
