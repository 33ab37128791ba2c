"""Wire shapes of the agent conversations API, as the `inconvo` SDKs read them. Answer parts
whose inner shape the model chooses (a table's cells, a chart's spec, a trace step's tool
input and output) are open objects; everything around them is fixed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from dataloft.kit.wire import JsonObject, Out, Ref

AnswerType = Literal["text", "table", "chart", "error"]


class Table(BaseModel):
    head: list[str]
    body: list[list[str]]


class Source(BaseModel):
    model_config = ConfigDict(extra="allow")


class ConversationSummary(Out):
    id: str
    createdAt: str
    title: str | None
    userContext: JsonObject
    userIdentifier: str


class ConversationPage(Out):
    items: list[ConversationSummary]
    nextCursor: str | None


class Message(BaseModel):
    """A user message (`message`, `type: text`) or an answer (with its `id`)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    message: str
    type: AnswerType
    table: Table | None = None
    chart: JsonObject | None = None
    spec: JsonObject | None = None


class Conversation(Out):
    id: str
    messages: list[Message]
    userIdentifier: str
    userContext: JsonObject
    context: JsonObject
    title: str | None
    createdAt: str


class Deleted(Out):
    id: str
    deleted: bool


class Answer(Out):
    id: str
    conversationId: str
    message: str
    type: AnswerType
    table: Table | None = None
    chart: JsonObject | None = None
    spec: JsonObject | None = None
    sources: list[Source]


class ResponseInput(BaseModel):
    message: str
    userContext: JsonObject


class ResponseOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    type: AnswerType
    table: Table | None = None
    chart: JsonObject | None = None
    spec: JsonObject | None = None


class ResponseDetail(Out):
    id: str
    input: ResponseInput
    output: ResponseOutput
    sources: list[Source]
    trace: list[Any]


class Feedback(Out):
    id: str
    rating: str
    comment: str | None


class DataSummary(Out):
    dataSummary: str


__all__ = ["Answer", "Conversation", "ConversationPage", "DataSummary", "Deleted", "Feedback",
           "Ref", "ResponseDetail"]
