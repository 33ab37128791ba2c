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
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from dataloft.ingest.extract import Row, Section
from dataloft.ingest.extract.columns import (
    MAX_TABLE_COLUMNS,
    UTC_OFFSET,
    TableShape,
    add_shape,
)
from dataloft.kit.filters import duck_quote
from dataloft.storage.blobs.base import BlobStore

ROW_COLUMN = "__row"
SNAPSHOT_MAX_BYTES = 1 << 40
# The sync runs beside the API: DuckDB must not take the whole machine to write a file.
WRITER_THREADS = 2
WRITER_MEMORY = "256MB"
WRITE_BATCH = 2000
MAX_COLUMNS = MAX_TABLE_COLUMNS
log = logging.getLogger("dataloft.tables")
_OFFSET = UTC_OFFSET


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
    """`plan_shapes` of the rows of `items` (one pass; keeps no row)."""
    shapes: dict[str, TableShape] = {}
    for item in items:
        if isinstance(item, Row):
            add_shape(shapes, item)
    return plan_shapes(file_name, shapes, shared)


def plan_shapes(file_name: str | None, shapes: dict[str, TableShape],
                shared: dict[str, Any]) -> list[TableSnapshot]:
    """A snapshot per table (file order) with its typed columns; writes nothing. The
    shapes come from the extraction child (`ingest/confined.py`), which sees every row
    anyway, so the sync does not read its rows once more to type them. A table wider than
    MAX_COLUMNS gets no snapshot: SQL over it would be unusable, and DuckDB's planning
    cost grows faster than linearly in the width (100k columns: hours)."""
    out = []
    for position, (key, shape) in enumerate(shapes.items()):
        schema = shape.schema
        if len(schema) > MAX_COLUMNS:
            log.warning("table %r of %s has over %d columns: no SQL snapshot", key, file_name,
                        MAX_COLUMNS)
            continue
        meta = {**shared, **shape.meta}
        snap = TableSnapshot(position, key, base_name(file_name, meta), [], meta, ROW_COLUMN,
                             shape.rows)
        for name, data_type in schema.items():
            snap.columns.append({"name": name, "type": data_type, "sqlType": sql_type(
                data_type, ["+00:00"] if name in shape.offsets else [])})
        while snap.row_column in schema:
            snap.row_column = "_" + snap.row_column
        out.append(snap)
    return out


_STORAGE = {"integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN"}


def _arrays(snap: TableSnapshot, rows: list[Row], first: int
            ) -> tuple[dict[str, Any], list[str]]:
    """numpy arrays DuckDB scans without copying, and the select list that types them."""
    arrays: dict[str, Any] = {}
    select: list[str] = []
    n = len(rows)
    for i, col in enumerate(snap.columns):
        name, data_type = col["name"], col["type"]
        values = [r.fields.get(name) for r in rows]
        if data_type in ("integer", "number") and None not in values:
            # A full column (the common case) converts in one call, without a mask.
            arrays[f"c{i}"] = np.array(values, dtype=np.int64 if data_type == "integer"
                                       else np.float64)
            select.append(f"c{i}")
        elif data_type in ("integer", "number"):
            mask = np.fromiter((v is None for v in values), bool, n)
            arrays[f"c{i}"] = (np.fromiter((0 if v is None else v for v in values), np.int64, n)
                               if data_type == "integer" else
                               np.fromiter((0.0 if v is None else float(v) for v in values),
                                           np.float64, n))
            arrays[f"n{i}"] = mask
            select.append(f"CASE WHEN n{i} THEN NULL ELSE c{i} END")
        elif data_type == "boolean":
            arrays[f"c{i}"] = np.fromiter((-1 if v is None else int(bool(v)) for v in values),
                                          np.int8, n)
            select.append(f"CASE WHEN c{i} < 0 THEN NULL ELSE c{i} = 1 END")
        elif all(v is None or type(v) is str for v in values):  # text as it is
            arrays[f"c{i}"] = np.array(values, dtype=object)
            select.append(f"CAST(c{i} AS VARCHAR)")
        else:
            arrays[f"c{i}"] = np.array([_text(v) for v in values], dtype=object)
            select.append(f"CAST(c{i} AS VARCHAR)")
    arrays["r"] = np.fromiter((int(r.meta.get("row", first + k + 1))
                               for k, r in enumerate(rows)), np.int64, n)
    select.append("r")
    return arrays, select


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def write(blobs: BlobStore, snapshots: list[TableSnapshot], items: Iterable[Section | Row],
          check: Callable[[], None] = lambda: None) -> None:
    """Write each table's Parquet into the blob store (sets `blob_key`), from `items` read
    once more, a batch at a time: the rows go to a DuckDB database on disk under a memory
    limit, never all into this process. `check` runs between batches (the sync deadline)."""
    import duckdb  # noqa: PLC0415 - the API never needs it in-process, only the sync

    if not snapshots:
        return
    with tempfile.TemporaryDirectory(prefix="dataloft-snapshot-") as tmp:
        con = duckdb.connect(os.path.join(tmp, "t.duckdb"), config={
            "threads": WRITER_THREADS, "memory_limit": WRITER_MEMORY,
            "temp_directory": tmp, "autoinstall_known_extensions": False,
            "autoload_known_extensions": False})
        try:
            by_key = {snap.source_table: snap for snap in snapshots}
            for snap in snapshots:
                cols = [f"{duck_quote(c['name'])} {_STORAGE.get(c['type'], 'VARCHAR')}"
                        for c in snap.columns]
                cols.append(f"{duck_quote(snap.row_column)} BIGINT")
                con.execute(f"CREATE TABLE t{snap.position} ({', '.join(cols)})")
            written = dict.fromkeys(by_key, 0)
            for batch in _batches(items, by_key):
                check()
                for key, rows in batch.items():
                    snap = by_key[key]
                    arrays, select = _arrays(snap, rows, written[key])
                    written[key] += len(rows)
                    con.register("src", arrays)
                    con.execute(f"INSERT INTO t{snap.position} SELECT {', '.join(select)} "
                                "FROM src")
                    con.unregister("src")
            for snap in snapshots:
                _export(con, blobs, snap, os.path.join(tmp, f"{snap.position}.parquet"))
        finally:
            con.close()


def _batches(items: Iterable[Section | Row], tables: dict[str, TableSnapshot]
             ) -> Iterator[dict[str, list[Row]]]:
    batch: dict[str, list[Row]] = {}
    size = 0
    for item in items:
        if isinstance(item, Row) and (key := str(item.meta.get("table", ""))) in tables:
            batch.setdefault(key, []).append(item)
            size += 1
            if size >= WRITE_BATCH:
                yield batch
                batch, size = {}, 0
    if batch:
        yield batch


def _export(con: Any, blobs: BlobStore, snap: TableSnapshot, path: str) -> None:
    con.execute(f"COPY t{snap.position} TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
    with blobs.writer(SNAPSHOT_MAX_BYTES) as writer, open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            writer.write(chunk)
        snap.blob_key = writer.commit().key
    os.unlink(path)
