"""Wire shapes of a dataset search answer (service.render()), key for key (kit/wire.py)."""

from __future__ import annotations

from pydantic import Field

from dataloft.kit.wire import JsonObject, Out


class SearchHit(Out):
    id: str
    text: str
    source: str | None
    meta: JsonObject
    score: float = Field(description="The fused relevance in [0, 1], rounded to 6 places.")
    highlights: list[str] = Field(description="The sentences sharing most terms with the "
                                              "query.")


class SearchAnswer(Out):
    id: str = Field(description="The dataset searched.")
    records: list[SearchHit]
