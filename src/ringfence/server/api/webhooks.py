"""/v1/webhooks (admin only): subscribe URLs to events, remove them, and see every delivery."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ringfence.core import webhook as hooks
from ringfence.core.model import Token
from ringfence.server.api.deps import MAX_ID, caller, services
from ringfence.server.problems import responses

router = APIRouter(prefix="/v1", tags=["webhooks"])
WebhookId = Path(max_length=40, description="the webhook's id, wh_…")
DELIVERY_STATES = "^(pending|delivered|failed|cancelled)$"


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    configs: list[str] = Field(description="name patterns whose events it receives")
    description: str
    created_at: str
    created_by: str


class WebhookCreated(WebhookOut):
    secret: str = Field(description="signs every delivery (X-Ringfence-Signature); shown only this once")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class WebhookCreate(BaseModel):
    url: str = Field(max_length=hooks.MAX_URL, description="an absolute http:// or https:// URL")
    events: list[str] = Field(default_factory=lambda: list(hooks.EVENTS),
                              description="of " + ", ".join(hooks.EVENTS) + " (default: all)")
    configs: list[str] = Field(default_factory=lambda: ["*"], description="name patterns, e.g. payments/*")
    description: str = Field("", max_length=500)
    secret: str | None = Field(None, description="16 to 200 characters; left out, the server makes one")


class DeliveryOut(BaseModel):
    id: int
    webhook_id: str
    event_id: str = Field(description="the same on every attempt: X-Ringfence-Event-Id")
    event: str
    state: str = Field(description="pending, delivered, failed (gave up) or cancelled (webhook deleted)")
    attempts: int
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None
    last_status: int | None = Field(description="the HTTP status of the last attempt; null when none came")
    last_error: str
    log: list[dict[str, Any]] = Field(description="every attempt: attempt, at, status, error, ms")


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


@router.post("/webhooks", response_model=WebhookCreated, status_code=201, responses=responses(),
             summary="Subscribe a URL to events; the signing secret is in the response, once")
async def create_webhook(request: Request, body: WebhookCreate, token: Token = Depends(caller)) -> JSONResponse:
    webhook, secret = await run_in_threadpool(services(request).webhooks.create, token, body.model_dump())
    return JSONResponse({**webhook.to_json(), "secret": secret}, status_code=201)


@router.get("/webhooks", response_model=WebhookList, responses=responses(), summary="Every webhook (no secrets)")
def list_webhooks(request: Request, token: Token = Depends(caller)) -> JSONResponse:
    return JSONResponse({"items": [w.to_json() for w in services(request).webhooks.all(token)]})


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, responses=responses(404), summary="One webhook")
def get_webhook(request: Request, webhook_id: str = WebhookId, token: Token = Depends(caller)) -> JSONResponse:
    return JSONResponse(services(request).webhooks.get(token, webhook_id).to_json())


@router.delete("/webhooks/{webhook_id}", response_model=WebhookOut, responses=responses(404),
               summary="Remove a webhook; what it had still to deliver is cancelled")
def delete_webhook(request: Request, webhook_id: str = WebhookId, token: Token = Depends(caller)) -> JSONResponse:
    return JSONResponse(services(request).webhooks.delete(token, webhook_id).to_json())


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryList, responses=responses(404),
            summary="A webhook's deliveries, newest first, with every attempt")
def deliveries(
    request: Request, webhook_id: str = WebhookId, token: Token = Depends(caller),
    state: str | None = Query(None, pattern=DELIVERY_STATES),
    before: int | None = Query(None, ge=1, le=MAX_ID), limit: int = Query(100, ge=1, le=1000),
) -> JSONResponse:
    found = services(request).webhooks.deliveries(token, webhook_id, state=state, before=before, limit=limit)
    return JSONResponse({"items": [d.to_json() for d in found]})
