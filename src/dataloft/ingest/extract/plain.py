"""Plain text and Markdown: decoded as they are; Markdown's own `#` headings carry structure."""

from __future__ import annotations

from dataloft.ingest.extract.base import Extracted, Section, register
from dataloft.ingest.extract.decode import decode_text


@register("text", (".txt", ".text", ".log"), ("text/plain",))
def extract_text(data: bytes, _name: str) -> Extracted:
    yield Section(decode_text(data))


@register("markdown", (".md", ".markdown", ".mdown", ".mkd", ".mdx"),
          ("text/markdown", "text/x-markdown"))
def extract_markdown(data: bytes, _name: str) -> Extracted:
    yield Section(decode_text(data))
