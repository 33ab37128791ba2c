"""Columnar snapshots of a file's tables, written by the sync, read by governed SQL.

Each table of a tabular file (each XLSX sheet) becomes one Parquet file in the blob store,
written by DuckDB from the extracted, already typed rows. A query then reads a few columnar
megabytes instead of a million JSON record metas (see docs/decisions.md for the figures).

A snapshot holds what the row's record meta holds, so the association filter can be
evaluated on it exactly as on records: the typed columns, plus a hidden column with the
row's `row` number. Dates and datetimes are stored as the ISO text the record holds (the
filter compares them as text); queries see them as DATE/TIMESTAMP (`sql_type`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from dataloft.ingest.extract import Row, Section
from dataloft.ingest.extract.columns import infer_schema
from dataloft.kit.filters import duck_quote
from dataloft.storage.blobs.base import BlobStore

ROW_COLUMN = "__row"
SNAPSHOT_MAX_BYTES = 1 << 40
# The sync runs beside the API: DuckDB must not take the whole machine to write a file.
WRITER_THREADS = 2
WRITER_MEMORY = "1GB"
_OFFSET = re.compile(r"(Z|[+-][0-9]{2}:?[0-9]{2})$")


@dataclass
class TableSnapshot:
    position: int
    source_table: str
    base_name: str
    columns: list[dict[str, str]]  # {"name", "type" (dataType), "sqlType"}
    meta: dict[str, Any]  # what every row's record meta shares
    row_column: str
    row_count: int
    blob_key: str = ""
    rows: list[Row] = field(default_factory=list, repr=False)


def slug(text: str) -> str:
    """A SQL-friendly table name: lower-case letters, digits and underscores."""
    s = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    if not s:
        return "table"
    return f"t_{s}" if s[0].isdigit() else s[:120]


def base_name(file_name: str | None, meta: dict[str, Any]) -> str:
    stem = PurePosixPath(file_name or "").stem or str(meta.get("table") or "table")
    if "sheet" in meta:
        return slug(f"{stem}_{meta['sheet']}")
    return slug(stem)


def sql_type(data_type: str, values: Iterable[Any]) -> str:
    if data_type == "integer":
        return "BIGINT"
    if data_type == "number":
        return "DOUBLE"
    if data_type == "boolean":
        return "BOOLEAN"
    if data_type == "date":
        return "DATE"
    if data_type == "datetime":
        # DuckDB's TIMESTAMP would drop a UTC offset silently: such a column stays text.
        return "VARCHAR" if any(isinstance(v, str) and _OFFSET.search(v) for v in values) \
            else "TIMESTAMP"
    if data_type == "json":
        return "JSON"
    return "VARCHAR"


def plan(file_name: str | None, items: Iterable[Section | Row],
         shared: dict[str, Any]) -> list[TableSnapshot]:
    """Group the rows into tables (file order) and type their columns; writes nothing."""
    tables: dict[str, TableSnapshot] = {}
    for item in items:
        if not isinstance(item, Row):
            continue
        key = str(item.meta.get("table", ""))
        snap = tables.get(key)
        if snap is None:
            meta = {**shared, **{k: v for k, v in item.meta.items() if k != "row"}}
            snap = tables[key] = TableSnapshot(len(tables), key, base_name(file_name, meta),
                                               [], meta, ROW_COLUMN, 0)
        snap.rows.append(item)
    for snap in tables.values():
        schema = infer_schema(snap.rows)
        for name, data_type in schema.items():
            values = (r.fields.get(name) for r in snap.rows)
            snap.columns.append({"name": name, "type": data_type,
                                 "sqlType": sql_type(data_type, values)})
        names = set(schema)
        while snap.row_column in names:
            snap.row_column = "_" + snap.row_column
        snap.row_count = len(snap.rows)
    return list(tables.values())


def _arrays(snap: TableSnapshot) -> tuple[dict[str, Any], list[str]]:
    """numpy arrays DuckDB scans without copying, and the select list that types them."""
    arrays: dict[str, Any] = {}
    select: list[str] = []
    n = len(snap.rows)
    for i, col in enumerate(snap.columns):
        name, data_type = col["name"], col["type"]
        values = [r.fields.get(name) for r in snap.rows]
        alias = duck_quote(name)
        try:
            if data_type == "integer":
                mask = np.fromiter((v is None for v in values), bool, n)
                arrays[f"c{i}"] = np.fromiter((0 if v is None else v for v in values),
                                              np.int64, n)
                arrays[f"n{i}"] = mask
                select.append(f"CASE WHEN n{i} THEN NULL ELSE c{i} END AS {alias}")
                continue
            if data_type == "number":
                mask = np.fromiter((v is None for v in values), bool, n)
                arrays[f"c{i}"] = np.fromiter((0.0 if v is None else float(v) for v in values),
                                              np.float64, n)
                arrays[f"n{i}"] = mask
                select.append(f"CASE WHEN n{i} THEN NULL ELSE c{i} END AS {alias}")
                continue
            if data_type == "boolean":
                arrays[f"c{i}"] = np.fromiter((-1 if v is None else int(bool(v)) for v in values),
                                              np.int8, n)
                select.append(f"CASE WHEN c{i} < 0 THEN NULL ELSE c{i} = 1 END AS {alias}")
                continue
        except (TypeError, ValueError, OverflowError):
            col["type"], col["sqlType"] = "string", "VARCHAR"  # never expected; stay readable
        arrays[f"c{i}"] = np.array([_text(v) for v in values], dtype=object)
        select.append(f"c{i} AS {alias}")
    arrays["r"] = np.fromiter((int(r.meta.get("row", k + 1)) for k, r in enumerate(snap.rows)),
                              np.int64, n)
    select.append(f"r AS {duck_quote(snap.row_column)}")
    return arrays, select


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def write(blobs: BlobStore, snapshots: list[TableSnapshot]) -> None:
    """Write each table's Parquet into the blob store; sets `blob_key`, drops the rows."""
    import duckdb  # noqa: PLC0415 - the API never needs it in-process, only the sync

    con = duckdb.connect(":memory:", config={"threads": WRITER_THREADS,
                                             "memory_limit": WRITER_MEMORY,
                                             "autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    try:
        for snap in snapshots:
            arrays, select = _arrays(snap)
            fd, path = tempfile.mkstemp(prefix="dataloft-snapshot-", suffix=".parquet")
            os.close(fd)
            try:
                con.register("src", arrays)
                con.execute(f"COPY (SELECT {', '.join(select)} FROM src) TO "
                            f"'{path}' (FORMAT parquet, COMPRESSION zstd)")
                con.unregister("src")
                with blobs.writer(SNAPSHOT_MAX_BYTES) as writer, open(path, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        writer.write(chunk)
                    snap.blob_key = writer.commit().key
            finally:
                os.unlink(path)
            snap.rows = []
    finally:
        con.close()
