"""Turning bytes into sections of text (documents) or typed rows (tables).

`extract(name, content_type, data)` picks a format by content and name (see `dispatch`)
and returns `(format name, [Section | Row])`, raising only `ExtractionError` with a code
in {unsupported_format, corrupted_file, empty_content, encrypted, resource_limit}.

Extractors register in one registry (`register`, `REGISTRY`); the built-ins below are
imported here and register exactly as a plugin would, at import time (the extraction
sandbox forks a process that has imported this package, so later registrations would not
be seen there). `infer_schema(items)` gives `{column: dataType}` of the rows.
"""

from __future__ import annotations

# Built-in formats, in tie-breaking order. Binary signatures first, plain text last.
from dataloft.ingest.extract import (  # noqa: E402,F401,I001  # noqa: E402,F401,I001  # noqa: E402,F401,I001
    code,
    delimited,
    image,
    markup,
    office,
    pdf,
    plain,
    rtf,
    spreadsheet,
    structured,
)
from dataloft.ingest.extract.base import (
    REGISTRY,
    Extracted,
    ExtractionError,
    Extractor,
    Registration,
    Row,
    Section,
    register,
)
from dataloft.ingest.extract.columns import infer_schema, table_schemas
from dataloft.ingest.extract.dispatch import choose, content_type_for, extract

__all__ = ["REGISTRY", "ExtractionError", "Extracted", "Extractor", "Registration", "Row",
           "Section", "choose", "content_type_for", "extract", "infer_schema", "register",
           "table_schemas"]
