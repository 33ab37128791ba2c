"""What every extractor produces, how it fails, and the registry it joins.

An extractor turns a file's bytes into `Section`s (document text, Markdown-flavoured:
`#` headings, `-` lists, `|` tables) or `Row`s (one per table row, typed fields). The
built-in extractors register through `register` exactly as a plugin would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from dataloft.kit.confine import Confined

ErrorCode = Literal["unsupported_format", "corrupted_file", "empty_content", "encrypted",
                    "resource_limit"]


class ExtractionError(Confined):
    """A typed extraction failure; `code` ends up in the sync.failed event. A `Confined`
    error, so it crosses the confinement boundary with its code and message."""


@dataclass
class Section:
    """A run of document text with where it came from (`page`, `slide`, `language` ...).

    `verbatim` text (source code) keeps its lines: the chunker reads no Markdown headings
    in it and never cuts it at sentence ends."""

    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    verbatim: bool = False


@dataclass
class Row:
    """One table row: fields typed per column, plus `table` (and `sheet`, `row`) in meta."""

    fields: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def __reduce__(self) -> tuple[type[Row], tuple[dict[str, Any], dict[str, Any]]]:
        # A sync unpickles every row of a file twice (records, tables): a constructor
        # call is a third cheaper than the default object-and-state protocol.
        return Row, (self.fields, self.meta)


Extracted = Iterator[Section | Row]
Extractor = Callable[[bytes, str], Extracted]
Confidence = Literal["certain", "likely"]
Sniffer = Callable[[str], Confidence | None]


@dataclass(frozen=True)
class Registration:
    """One format.

    `magic(data)` claims raw bytes by signature and outranks everything else; a format with
    magic is never chosen by its name alone (a `.pdf` holding text is text). `sniff(head)`
    reads the start of decoded text: "certain" outranks the name (`<!doctype html` in a
    `.txt`), "likely" is used only when neither name nor content type decide. Extensions
    are lower-case suffixes (".csv") or whole lower-case file names ("dockerfile")."""

    name: str
    extensions: tuple[str, ...]
    content_types: tuple[str, ...]
    extract: Extractor
    magic: Callable[[bytes], bool] | None = None
    sniff: Sniffer | None = None

    @property
    def content_type(self) -> str:
        """The canonical MIME type of the format."""
        return self.content_types[0] if self.content_types else "application/octet-stream"


REGISTRY: list[Registration] = []


def register(name: str, extensions: tuple[str, ...], content_types: tuple[str, ...], *,
             magic: Callable[[bytes], bool] | None = None, sniff: Sniffer | None = None
             ) -> Callable[[Extractor], Extractor]:
    """Add an extractor; earlier registrations win ties, a repeated `name` replaces."""
    def wrap(fn: Extractor) -> Extractor:
        reg = Registration(name, tuple(e.lower() for e in extensions), content_types, fn,
                           magic, sniff)
        for i, old in enumerate(REGISTRY):
            if old.name == name:
                REGISTRY[i] = reg
                break
        else:
            REGISTRY.append(reg)
        return fn
    return wrap
