"""Conversations (Inconvo agents API): who converses, what is stored, how an answer is made.

A conversation's principal is its end-user (`userIdentifier` + `userContext`), fixed at
creation: a backend key acts for that user, an end-user token may only converse as itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from dataloft.agent import repository, retrieval
from dataloft.agent.llm import ChatClient
from dataloft.agent.loop import Answer, Loop
from dataloft.agent.scope import Deps, Scope
from dataloft.agent.tools import Tools
from dataloft.assistants import service as assistants
from dataloft.errors import BadRequest, not_found
from dataloft.keys import service as keys
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.pagination import decode_cursor, encode_cursor
from dataloft.kit.principal import Principal, check_context, check_user_identifier
from dataloft.models import AgentFeedback, AgentResponse, Assistant, Conversation

log = logging.getLogger("dataloft.agent")
HISTORY_TURNS = 10
RATINGS = ("positive", "negative")


def agent(session: Session, principal: Principal, agent_id: str) -> Assistant:
    return assistants.get(session, principal, agent_id)


def _context(raw: object) -> dict[str, str]:
    if isinstance(raw, dict):  # a boolean-typed context field travels as "true"/"false"
        raw = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in raw.items()}
    return check_context({} if raw is None else raw)


def create(session: Session, principal: Principal, agent_id: str,
           body: dict[str, Any]) -> dict[str, Any]:
    found = agent(session, principal, agent_id)
    user = body.get("userIdentifier")
    if not isinstance(user, str):
        raise BadRequest("userIdentifier: required, a string")
    check_user_identifier(user)
    raw_context = body.get("userContext")
    assistants.check_user_context(found, raw_context)
    context = _context(raw_context)
    if principal.is_end_user and (user != principal.user_identifier
                                  or (raw_context is not None
                                      and context != principal.user_context)):
        raise BadRequest("an end-user token may only converse as itself: userIdentifier and "
                         "userContext must be the token's")
    if principal.is_end_user:
        context = dict(principal.user_context)
    row = Conversation(id=new_id("conv"), org_id=principal.org_id, assistant_id=found.id,
                       user_identifier=user, user_context=context)
    repository.add(session, row)
    return {"id": row.id}


def _conversation(session: Session, principal: Principal, agent_id: str,
                  conversation_id: str) -> tuple[Assistant, Conversation]:
    found = agent(session, principal, agent_id)
    conv = repository.conversation(session, principal.org_id, found.id, conversation_id)
    if conv is None or (principal.is_end_user and (
            conv.user_identifier != principal.user_identifier
            or conv.user_context != principal.user_context)):
        raise not_found("conversation", conversation_id)
    return found, conv


def listing(session: Session, principal: Principal, agent_id: str,
            pairs: list[tuple[str, str]]) -> dict[str, Any]:
    found = agent(session, principal, agent_id)
    q = dict(pairs)
    try:
        limit = int(q.get("limit") or 20)
    except ValueError as exc:
        raise BadRequest("limit must be an integer") from exc
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100")
    user = q.get("userIdentifier")
    wanted = {k[len("userContext["):-1]: v for k, v in pairs
              if k.startswith("userContext[") and k.endswith("]")}
    if principal.is_end_user:
        user = principal.user_identifier
    before = decode_cursor(q["cursor"]) if q.get("cursor") else None
    items: list[Conversation] = []
    # The context filter is applied here, so read on until a page is full.
    while len(items) <= limit:
        batch = repository.conversations(session, principal.org_id, found.id, user, before,
                                         limit + 1)
        items += [c for c in batch if _matches(c, principal, wanted)]
        if len(batch) <= limit:
            break
        before = batch[-1].id
    page, more = items[:limit], len(items) > limit
    return {"items": [_summary(c) for c in page],
            "nextCursor": encode_cursor(page[-1].id) if more and page else None}


def _matches(conv: Conversation, principal: Principal, wanted: dict[str, str]) -> bool:
    if principal.is_end_user and conv.user_context != principal.user_context:
        return False
    return all(k in conv.user_context and str(conv.user_context[k]) == v
               for k, v in wanted.items())


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _summary(conv: Conversation) -> dict[str, Any]:
    return {"id": conv.id, "createdAt": _iso(conv.created_at), "title": conv.title,
            "userContext": conv.user_context, "userIdentifier": conv.user_identifier}


def retrieve(session: Session, principal: Principal, agent_id: str,
             conversation_id: str) -> dict[str, Any]:
    _, conv = _conversation(session, principal, agent_id, conversation_id)
    messages: list[dict[str, Any]] = []
    for r in repository.responses(session, conv.id):
        messages.append({"message": r.input, "type": "text"})
        messages.append({"id": r.id, **_message(r.output)})
    return {"id": conv.id, "messages": messages, "userIdentifier": conv.user_identifier,
            "userContext": conv.user_context, "context": conv.user_context,
            "title": conv.title, "createdAt": _iso(conv.created_at)}


def remove(session: Session, principal: Principal, agent_id: str,
           conversation_id: str) -> dict[str, Any]:
    _, conv = _conversation(session, principal, agent_id, conversation_id)
    repository.delete(session, conv)
    return {"id": conv.id, "deleted": True}


def _message(output: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"message": output["text"], "type": output["type"]}
    for key in ("table", "chart", "spec"):
        if output.get(key) is not None:
            out[key] = output[key]
    return out


# --- answering ------------------------------------------------------------------------------

Progress = Callable[[str], None]


def prepare(session: Session, principal: Principal, agent_id: str,
            conversation_id: str) -> tuple[Assistant, Conversation, list[dict[str, Any]]]:
    found, conv = _conversation(session, principal, agent_id, conversation_id)
    history: list[dict[str, Any]] = []
    for r in list(repository.responses(session, conv.id))[-HISTORY_TURNS:]:
        history += [{"role": "user", "content": r.input},
                    {"role": "assistant", "content": r.output.get("text") or ""}]
    return found, conv, history


def conversation_principal(caller: Principal, conv: Conversation) -> Principal:
    if caller.is_end_user:
        return caller
    return keys.acting_for(caller, conv.user_identifier, conv.user_context)


def answer(deps: Deps, principal: Principal, found: Assistant, history: list[dict[str, Any]],
           question: str, *, stream: bool, progress: Progress,
           on_text: Progress | None = None) -> Answer:
    """The agent's answer; a failure of any kind is an `error` answer, never an exception."""
    tools = Tools(deps, Scope(principal, found.id))
    settings = deps.settings
    try:
        if not settings.llm_url:
            progress("Searching your data")
            return retrieval.answer(tools, question)
        client = ChatClient(settings.llm_url, settings.llm_api_key,
                            settings.llm_timeout_seconds)
        loop = Loop(tools, client, found.model or settings.llm_model, found.instructions,
                    settings.agent_max_iterations, settings.agent_deadline_seconds)
        return loop.run(history, question, stream=stream, progress=progress, on_text=on_text)
    except Exception:  # an answer, not a 500: the trace and the log say what happened
        log.exception("the agent failed to answer")
        return Answer("The agent failed to answer because of an internal error.", "error")


def store(session: Session, principal: Principal, stale: Conversation, response_id: str,
          question: str, result: Answer) -> dict[str, Any]:
    """Save the turn, in a transaction of its own (the answer took its time outside one)."""
    conv = repository.conversation(session, principal.org_id, stale.assistant_id, stale.id)
    if conv is None:
        raise not_found("conversation", stale.id)
    output: dict[str, Any] = {"text": result.text, "type": result.type, "table": result.table,
                              "sources": result.sources}
    if result.chart is not None:
        legacy = {k: v for k, v in result.chart.items() if k != "spec"}
        output["chart"], output["spec"] = legacy, result.chart["spec"]
    row = AgentResponse(id=response_id, org_id=conv.org_id, conversation_id=conv.id,
                        input=question, output=output, trace=result.trace)
    repository.add(session, row)
    if conv.title is None:
        conv.title = question[:80]
    conv.updated_at = now_ms()
    return render_response(row)


def render_response(row: AgentResponse) -> dict[str, Any]:
    return {"id": row.id, "conversationId": row.conversation_id, **_message(row.output),
            "sources": row.output.get("sources") or []}


def new_response_id() -> str:
    return new_id("resp")


def get_response(session: Session, principal: Principal, agent_id: str, conversation_id: str,
                 response_id: str) -> dict[str, Any]:
    _, conv = _conversation(session, principal, agent_id, conversation_id)
    row = repository.response(session, conv.id, response_id)
    if row is None:
        raise not_found("response", response_id)
    out = row.output
    output = {"text": out["text"], "type": out["type"],
              **{k: out[k] for k in ("table", "chart", "spec") if out.get(k) is not None}}
    return {"id": row.id, "input": {"message": row.input, "userContext": conv.user_context},
            "output": output, "sources": out.get("sources") or [], "trace": row.trace}


# --- feedback -------------------------------------------------------------------------------

def _rating(raw: object, required: bool) -> str | None:
    if raw is None and not required:
        return None
    if raw not in RATINGS:
        raise BadRequest("rating must be 'positive' or 'negative'")
    return str(raw)


def _comment(raw: object) -> str | None:
    if raw is not None and (not isinstance(raw, str) or len(raw) > 10_000):
        raise BadRequest("comment must be a string of at most 10000 characters")
    return raw


def create_feedback(session: Session, principal: Principal, agent_id: str, conversation_id: str,
                    response_id: str, body: dict[str, Any]) -> dict[str, Any]:
    _, conv = _conversation(session, principal, agent_id, conversation_id)
    if repository.response(session, conv.id, response_id) is None:
        raise not_found("response", response_id)
    row = AgentFeedback(id=new_id("fb"), org_id=conv.org_id, response_id=response_id,
                        rating=_rating(body.get("rating"), True),
                        comment=_comment(body.get("comment")))
    repository.add(session, row)
    return _feedback(row)


def update_feedback(session: Session, principal: Principal, agent_id: str,
                    conversation_id: str, response_id: str, feedback_id: str,
                    body: dict[str, Any]) -> dict[str, Any]:
    _, conv = _conversation(session, principal, agent_id, conversation_id)
    row = repository.feedback(session, response_id, feedback_id)
    if row is None or repository.response(session, conv.id, response_id) is None:
        raise not_found("feedback", feedback_id)
    rating = _rating(body.get("rating"), False)
    if rating is not None:
        row.rating = rating
    if "comment" in body:
        row.comment = _comment(body["comment"])
    row.updated_at = now_ms()
    return _feedback(row)


def _feedback(row: AgentFeedback) -> dict[str, Any]:
    return {"id": row.id, "rating": row.rating, "comment": row.comment}
