"""Excel (.xlsx): every worksheet is a table; one typed Row per row, meta `sheet`."""

from __future__ import annotations

import io
from typing import Any

import openpyxl

from dataloft.ingest.extract.base import Extracted, ExtractionError, Row, register
from dataloft.ingest.extract.columns import Column, extend_names, typed_rows, unique_names
from dataloft.ingest.extract.sniff import ooxml_kind, open_zip

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _trimmed(row: tuple[Any, ...]) -> list[Any]:
    cells = list(row)
    while cells and (cells[-1] is None or (isinstance(cells[-1], str) and not cells[-1].strip())):
        cells.pop()
    return cells


def _sheet_rows(sheet: Any) -> list[Row]:
    # Read-only sheets trust the file's stated dimensions, which some writers get wrong.
    sheet.reset_dimensions()
    raw = (_trimmed(r) for r in sheet.iter_rows(values_only=True))
    cells = [r for r in raw if r]  # openpyxl streams the XML: this list is the one copy
    if len(cells) < 2:
        return []
    names = unique_names(cells[0])
    columns = [Column(parse_text=True) for _ in names]
    for row in cells[1:]:
        if len(row) > len(names):
            extend_names(names, len(row))
            columns += [Column(parse_text=True) for _ in range(len(names) - len(columns))]
        for column, value in zip(columns, row, strict=False):
            column.observe(value)
    meta = {"table": sheet.title, "sheet": sheet.title}
    return list(typed_rows(names, columns, cells[1:], meta))


@register("xlsx", (".xlsx", ".xlsm", ".xltx"), (XLSX,),
          magic=lambda data: ooxml_kind(data) == "xlsx")
def extract_xlsx(data: bytes, _name: str) -> Extracted:
    open_zip(data, "xlsx").close()
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl raises many kinds; all mean a damaged workbook
        raise ExtractionError("corrupted_file", f"the xlsx file is damaged "
                              f"({type(exc).__name__}: {exc})") from exc
    try:
        sheets = [s for s in workbook.worksheets if hasattr(s, "iter_rows")]
        for sheet in sheets:
            try:
                rows = _sheet_rows(sheet)
            except MemoryError:
                raise
            except Exception as exc:
                raise ExtractionError("corrupted_file", f"sheet {sheet.title!r} of the xlsx "
                                      f"file is damaged ({type(exc).__name__}: {exc})") from exc
            yield from rows
    finally:
        workbook.close()
