"""CSV and TSV: one typed Row per line of the table.

The text is decoded once and parsed twice, streaming: the first pass only types the
columns, the second builds the rows, so a 100k-row file never exists as a list of raw cells
next to its rows.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from pathlib import PurePosixPath

from dataloft.ingest.extract.base import Extracted, ExtractionError, register
from dataloft.ingest.extract.columns import Column, extend_names, typed_rows, unique_names
from dataloft.ingest.extract.decode import decode_text

DELIMITERS = ",;\t|"
_SNIFF_CHARS = 64 * 1024
_SNIFF_ROWS = 50

# One cell may hold a whole quoted document; the csv module's 128 KiB default is too small.
csv.field_size_limit(min(sys.maxsize, 1 << 30))


class _Dialect(csv.excel):
    delimiter = ","


def _dialect(delimiter: str) -> type[csv.Dialect]:
    return type("Sniffed", (_Dialect,), {"delimiter": delimiter})


def sniff_delimiter(text: str, prefer_tab: bool) -> str:
    """The delimiter that splits the first rows into the most consistent, widest columns.

    Reads the sample with the csv module itself, so quoted delimiters and quoted newlines
    do not count; a tie goes to the usual suspect (tab for .tsv, else comma)."""
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[:sample.rfind("\n")]
    order = ("\t" + DELIMITERS.replace("\t", "")) if prefer_tab else DELIMITERS
    best, best_score = order[0], (0, 0)
    for delimiter in order:
        reader = csv.reader(io.StringIO(sample, newline=""), _dialect(delimiter))
        try:
            widths = [len(row) for _, row in zip(range(_SNIFF_ROWS), reader, strict=False) if row]
        except csv.Error:
            continue
        if not widths or max(widths) < 2:
            continue
        common = max(set(widths), key=widths.count)
        score = (widths.count(common) if common > 1 else 0, common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _reader(text: str, delimiter: str) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(delimiter))
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield row
    except csv.Error as exc:
        raise ExtractionError("corrupted_file", f"unreadable CSV near line {reader.line_num}: "
                              f"{exc}") from exc


@register("csv", (".csv", ".tsv", ".tab"),
          ("text/csv", "text/tab-separated-values", "application/csv"))
def extract_delimited(data: bytes, name: str) -> Extracted:
    # The csv module wants raw newlines: a quoted cell may hold CRLF that must survive.
    text = decode_text(data, newlines=False)
    suffix = PurePosixPath(name).suffix.lower()
    delimiter = sniff_delimiter(text, prefer_tab=suffix in (".tsv", ".tab"))

    rows = _reader(text, delimiter)
    header = next(rows, None)
    if header is None:
        return
    names = unique_names(header)
    columns = [Column(parse_text=True) for _ in names]
    for row in rows:
        if len(row) > len(names):
            extend_names(names, len(row))
            columns += [Column(parse_text=True) for _ in range(len(names) - len(columns))]
        for column, cell in zip(columns, row, strict=False):
            if not column.settled:
                column.observe(cell)

    body = _reader(text, delimiter)
    next(body, None)
    table = PurePosixPath(name).stem or "table"
    yield from typed_rows(names, columns, body, {"table": table})
