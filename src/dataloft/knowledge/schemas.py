"""Wire shapes of Informer's dataset knowledge (hal.py: HAL documents, seed 003) and of an
assistant's search answer (search.render()), key for key (kit/wire.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dataloft.kit.wire import JsonObject, Out, absent
from dataloft.search.schemas import SearchHit


class Link(Out):
    href: str


class SelfLinks(Out):
    self_: Link = Field(alias="self")


class KnowledgeLinks(SelfLinks):
    dataset: Link = Field(alias="inf:dataset")


class PageLinks(SelfLinks):
    next: Link = absent("Absent on the last page.")
    prev: Link = absent("Absent on the first page.")


class FieldOut(Out):
    name: str
    label: str
    dataType: str


class FilterOut(Out):
    field: str
    label: str
    dataType: str
    operators: list[str] = Field(description="The filter-language operators that make "
                                             "sense for the field's type.")


class SearchConfig(Out):
    method: Literal["POST"]
    href: str
    modes: list[str]
    embeddingModel: str | None


class SqlConfig(Out):
    method: Literal["POST"]
    href: str


class QueryConfig(Out):
    search: SearchConfig
    sql: SqlConfig = absent("Present when the dataset has tabular fields.")


class HalDataset(Out):
    id: str
    name: str | None
    description: str | None
    alias: str | None
    fields: list[FieldOut]
    filters: list[FilterOut]
    query: QueryConfig
    links: SelfLinks = Field(alias="_links")


class Knowledge(Out):
    assistantId: str
    datasetId: str
    filter: JsonObject | None = Field(description="The association's filter; null for full "
                                                  "access.")
    createdAt: int
    updatedAt: int
    dataset: HalDataset
    links: KnowledgeLinks = Field(alias="_links")


class KnowledgeEmbedded(Out):
    knowledge: list[Knowledge] = Field(alias="inf:dataset-knowledge")


class KnowledgePage(Out):
    links: PageLinks = Field(alias="_links")
    embedded: KnowledgeEmbedded = Field(alias="_embedded")
    start: int
    count: int
    total: int


class KnowledgeHit(SearchHit):
    datasetId: str


class KnowledgeAnswer(Out):
    id: str = Field(description="The assistant searched.")
    records: list[KnowledgeHit]
