"""The Inconvo agents API: /api/v1/agents/{agentId}/conversations/..., data-summary."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dataloft.agent import schemas, service
from dataloft.agent.loop import Answer
from dataloft.agent.scope import Scope
from dataloft.agent.summary import summary
from dataloft.agent.tools import Tools
from dataloft.api.deps import CtxDep, PrincipalDep, SessionDep, query_pairs
from dataloft.api.openapi import Documented, errors
from dataloft.context import Context
from dataloft.errors import BadRequest, DataloftError
from dataloft.kit.principal import Principal

router = APIRouter(prefix="/api/v1/agents/{agent_id}", tags=["agents (Inconvo)"],
                   route_class=Documented, responses=errors())
# With `stream: true` and `Accept: text/event-stream` the answer comes as SSE frames.
STREAMED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}}


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequest("the body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


# Endpoints holding a request session are sync: run on the event loop, their database work
# would block it while the session waits for the writer, and the whole server with it.
JsonBody = Annotated[dict[str, Any], Body()]


@router.post("/conversations", response_model=schemas.Ref)
def create_conversation(agent_id: str, body: JsonBody, session: SessionDep,
                        principal: PrincipalDep) -> dict[str, Any]:
    return service.create(session, principal, agent_id, body)


@router.get("/conversations", response_model=schemas.ConversationPage)
def list_conversations(agent_id: str, request: Request, session: SessionDep,
                       principal: PrincipalDep) -> dict[str, Any]:
    return service.listing(session, principal, agent_id, query_pairs(request))


@router.get("/conversations/{conversation_id}", response_model=schemas.Conversation)
def get_conversation(agent_id: str, conversation_id: str, session: SessionDep,
                     principal: PrincipalDep) -> dict[str, Any]:
    return service.retrieve(session, principal, agent_id, conversation_id)


@router.delete("/conversations/{conversation_id}", response_model=schemas.Deleted)
def delete_conversation(agent_id: str, conversation_id: str, session: SessionDep,
                        principal: PrincipalDep) -> dict[str, Any]:
    return service.remove(session, principal, agent_id, conversation_id)


@router.post("/conversations/{conversation_id}/response", response_model=schemas.Answer,
             responses=STREAMED)
async def create_response(agent_id: str, conversation_id: str, request: Request, ctx: CtxDep,
                          principal: PrincipalDep) -> Any:  # a dict, or the SSE stream
    body = await _body(request)
    message = body.get("message")
    if not isinstance(message, str) or not message.strip() or len(message) > 20_000:
        raise BadRequest("message: required, 1-20000 characters")
    turn = _Turn(ctx, principal, agent_id, conversation_id, message)
    await run_in_threadpool(turn.prepare)
    if body.get("stream") is True:
        return StreamingResponse(turn.frames(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})
    result = await run_in_threadpool(turn.answer, False, lambda _: None)
    return await run_in_threadpool(turn.save, result)


class _Turn:
    """One response: prepared in a read, answered outside any transaction, then saved."""

    def __init__(self, ctx: Context, principal: Principal, agent_id: str, conversation_id: str,
                 message: str) -> None:
        self.ctx, self.caller, self.message = ctx, principal, message
        self.agent_id, self.conversation_id = agent_id, conversation_id
        self.response_id = service.new_response_id()

    def prepare(self) -> None:
        with self.ctx.db.read() as session:
            self.agent, self.conv, self.history = service.prepare(
                session, self.caller, self.agent_id, self.conversation_id)
        self.principal = service.conversation_principal(self.caller, self.conv)

    def answer(self, stream: bool, progress: service.Progress,
               on_text: service.Progress | None = None) -> Answer:
        return service.answer(self.ctx, self.principal, self.agent, self.history,
                              self.message, stream=stream, progress=progress, on_text=on_text)

    def save(self, result: Answer) -> dict[str, Any]:
        with self.ctx.db.write() as session:
            return service.store(session, self.caller, self.conv, self.response_id,
                                 self.message, result)

    def frames(self) -> Iterator[str]:
        events: queue.Queue[tuple[str, Any]] = queue.Queue()

        def work() -> None:
            try:
                result = self.answer(True, lambda m: events.put(("step", m)),
                                     lambda m: events.put(("text", m)))
                events.put(("completed", self.save(result)))
            except DataloftError as exc:
                events.put(("error", exc.message))
            except Exception:  # noqa: BLE001 - the stream reports it instead of dying
                events.put(("error", "the agent failed to answer"))

        threading.Thread(target=work, name="agent-response", daemon=True).start()
        yield _sse({"type": "response.created", "id": self.response_id,
                    "conversationId": self.conv.id})
        while True:
            try:
                kind, payload = events.get(timeout=self.ctx.settings.agent_keepalive_seconds)
            except queue.Empty:
                yield ": keep-alive\n\n"
                continue
            if kind in ("step", "text"):  # `kind` tells a step from a piece of the answer
                yield _sse({"type": "response.progress", "id": self.response_id,
                            "message": payload, "kind": kind})
            elif kind == "completed":
                yield _sse({"type": "response.completed", "response": payload})
                return
            else:
                yield _sse({"type": "response.error", "id": self.response_id,
                            "error": {"message": payload}})
                return


def _sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, default=str)}\n\n"


@router.get("/conversations/{conversation_id}/response/{response_id}",
            response_model=schemas.ResponseDetail)
def get_response(agent_id: str, conversation_id: str, response_id: str, session: SessionDep,
                 principal: PrincipalDep) -> dict[str, Any]:
    return service.get_response(session, principal, agent_id, conversation_id, response_id)


@router.post("/conversations/{conversation_id}/response/{response_id}/feedback",
             response_model=schemas.Feedback)
def create_feedback(agent_id: str, conversation_id: str, response_id: str, body: JsonBody,
                    session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.create_feedback(session, principal, agent_id, conversation_id, response_id,
                                   body)


@router.patch("/conversations/{conversation_id}/response/{response_id}/feedback/{feedback_id}",
              response_model=schemas.Feedback)
def update_feedback(agent_id: str, conversation_id: str, response_id: str, feedback_id: str,
                    body: JsonBody, session: SessionDep,
                    principal: PrincipalDep) -> dict[str, Any]:
    return service.update_feedback(session, principal, agent_id, conversation_id, response_id,
                                   feedback_id, body)


@router.get("/data-summary", response_model=schemas.DataSummary)
def data_summary(agent_id: str, ctx: CtxDep, session: SessionDep,
                 principal: PrincipalDep) -> dict[str, Any]:
    found = service.agent(session, principal, agent_id)
    return {"dataSummary": summary(Tools(ctx, Scope(principal, found.id)))}
