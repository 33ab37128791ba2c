"""RTF: control words stripped by striprtf; paragraphs survive as blank-line breaks."""

from __future__ import annotations

import re
from collections.abc import Callable

from striprtf.striprtf import rtf_to_text as _untyped_rtf_to_text

from dataloft.ingest.extract.base import Extracted, ExtractionError, Section, register
from dataloft.ingest.extract.sniff import is_rtf

rtf_to_text: Callable[..., str] = _untyped_rtf_to_text
_CODEPAGE = re.compile(rb"\\ansicpg([0-9]{3,5})")


def _codepage(data: bytes) -> str:
    found = _CODEPAGE.search(data[:4096])
    candidate = f"cp{int(found.group(1))}" if found else "cp1252"
    try:
        "".encode(candidate)
    except LookupError:
        return "cp1252"
    return candidate


@register("rtf", (".rtf",), ("application/rtf", "text/rtf"), magic=is_rtf)
def extract_rtf(data: bytes, _name: str) -> Extracted:
    # RTF is 7-bit: bytes above 127 appear only as \'xx escapes, decoded by the codepage.
    encoding = _codepage(data)
    try:
        text = rtf_to_text(data.decode("latin-1"), encoding=encoding, errors="replace")
    except (ValueError, IndexError, KeyError, UnicodeError) as exc:
        raise ExtractionError("corrupted_file", f"unreadable RTF: {exc}") from exc
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # striprtf ends each \par with one newline; a paragraph break reads better as two.
    yield Section("\n\n".join(line.strip() for line in text.split("\n") if line.strip()))
