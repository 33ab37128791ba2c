"""What a dataset holds as tables: its typed fields (Informer) and, per tabular file, tables.

The sync records each table of a synced tabular file (`replace`, in the sync's own
transaction). A table's SQL name comes from its file name (`sales.csv` -> `sales`, sheet
`Q1` of `budget.xlsx` -> `budget_q1`); clashes get `_2`, `_3` ... in attachment order (then
table order within the file), among the tables the caller can see, so a name never
reveals a table the caller cannot read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from dataloft.errors import BadRequest
from dataloft.ingest.extract.columns import resolve
from dataloft.jobs import queue
from dataloft.kit.ids import new_id
from dataloft.kit.principal import Principal
from dataloft.models import Dataset, SqlTable
from dataloft.tables import repository
from dataloft.tables.snapshot import TableSnapshot

DATA_TYPES = ("string", "number", "integer", "boolean", "date", "datetime")
MAX_FIELDS = 1000
_ACRONYMS = {"id": "ID", "url": "URL", "uuid": "UUID", "sku": "SKU", "api": "API"}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    data_type: str  # one of DATA_TYPES


@dataclass(frozen=True)
class Table:
    """A catalog row under the SQL name it has for one caller."""

    name: str
    row: SqlTable


# --- written by the sync --------------------------------------------------------------------

def replace(session: Session, org_id: str, dataset_id: str, file_id: str, version: int,
            snapshots: list[TableSnapshot]) -> int:
    """The file's tables become `snapshots` (none for a document); old snapshots are queued
    for deletion. Returns how many tables were replaced."""
    replaced = drop(session, org_id, dataset_id=dataset_id, file_id=file_id)
    repository.add_tables(session, [SqlTable(
        id=new_id("tbl"), org_id=org_id, dataset_id=dataset_id, file_id=file_id,
        file_version=version, position=snap.position, base_name=snap.base_name,
        source_table=snap.source_table, columns=snap.columns, meta=snap.meta,
        row_column=snap.row_column, row_count=snap.row_count, blob_key=snap.blob_key)
        for snap in snapshots])
    return replaced


def drop(session: Session, org_id: str, *, dataset_id: str | None = None,
         file_id: str | None = None) -> int:
    """Forget the tables of a dataset, a file, or a file in a dataset, and queue their
    snapshots for deletion (once this commits), so no snapshot outlives its table."""
    old = repository.tables_of(session, org_id, dataset_id=dataset_id, file_id=file_id)
    for row in old:
        # A query that read the catalog just before this commit may still look for it:
        # sql.service retries such a query once on the new catalog.
        queue.delete_blob_later(session, row.blob_key, org_id)
    repository.delete_tables(session, org_id, dataset_id=dataset_id, file_id=file_id)
    return len(old)


# --- read -----------------------------------------------------------------------------------

def name_tables(rows: list[SqlTable], taken: set[str] | None = None) -> list[Table]:
    """SQL names in order: the base name, or base_2, base_3 ... when already taken."""
    used = set() if taken is None else taken
    out = []
    for row in rows:
        name, n = row.base_name, 2
        while name in used:
            name, n = f"{row.base_name}_{n}", n + 1
        used.add(name)
        out.append(Table(name, row))
    return out


def tables(session: Session, principal: Principal, dataset: Dataset,
           taken: set[str] | None = None) -> list[Table]:
    """The dataset's tables whose files the principal may read, named for it."""
    return name_tables(repository.tables_of_dataset(session, dataset.id, principal), taken)


def schema(tables_: list[Table]) -> list[dict[str, Any]]:
    return [{"name": t.name, "fileId": t.row.file_id, "fileName": t.row.meta.get("fileName"),
             "sheet": t.row.meta.get("sheet"), "rowCount": t.row.row_count,
             "columns": [{"name": c["name"], "type": c["type"], "sqlType": c["sqlType"]}
                         for c in t.row.columns]}
            for t in tables_]


# --- fields (Informer) ----------------------------------------------------------------------

def label(name: str) -> str:
    """`order_date` -> `Order date`, `customerId` -> `Customer ID`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    words = [w for w in re.split(r"[\s_\-.]+", spaced) if w]
    if not words:
        return name
    out = [_ACRONYMS.get(w.lower(), w.lower()) for w in words]
    first = out[0]
    out[0] = first if first.isupper() else first[:1].upper() + first[1:]
    return " ".join(out)


def _field_type(data_type: str) -> str:
    return data_type if data_type in DATA_TYPES else "string"  # json reads as text


def inferred(session: Session, dataset: Dataset) -> list[Field]:
    types: dict[str, set[str]] = {}
    for row in repository.tables_of_dataset(session, dataset.id, None):
        for col in row.columns:
            types.setdefault(col["name"], set()).add(col["type"])
    return [Field(name, label(name), _field_type(resolve(kinds)))
            for name, kinds in types.items()]


def fields(session: Session, dataset: Dataset) -> list[Field]:
    """The dataset's fields: inferred from its tabular sources, with the user's edits."""
    edits = {e["name"]: e for e in (dataset.settings or {}).get("fields") or []}
    out = []
    for f in inferred(session, dataset):
        e = edits.pop(f.name, None)
        out.append(f if e is None else Field(f.name, e.get("label") or f.label,
                                             e.get("dataType") or f.data_type))
    for name, e in edits.items():  # declared by the user before (or without) a sync
        out.append(Field(name, e.get("label") or label(name), e.get("dataType") or "string"))
    return out


def render_fields(items: list[Field]) -> list[dict[str, str]]:
    return [{"name": f.name, "label": f.label, "dataType": f.data_type} for f in items]


def check_field_edits(raw: object) -> list[dict[str, str]]:
    """Validate `fields` of a dataset update: a list of {name, label?, dataType?}."""
    if not isinstance(raw, list):
        raise BadRequest("fields: expected a list of {name, label?, dataType?}")
    if len(raw) > MAX_FIELDS:
        raise BadRequest(f"fields: at most {MAX_FIELDS} entries")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"fields[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: expected an object")
        unknown = set(item) - {"name", "label", "dataType"}
        if unknown:
            raise BadRequest(f"{where}: unknown properties {sorted(unknown)}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise BadRequest(f"{where}.name: expected a non-empty string of at most 200 "
                             "characters")
        if name in seen:
            raise BadRequest(f"{where}.name: {name!r} is listed twice")
        seen.add(name)
        edit = {"name": name}
        lab = item.get("label")
        if lab is not None:
            if not isinstance(lab, str) or len(lab) > 200:
                raise BadRequest(f"{where}.label: expected a string of at most 200 characters")
            edit["label"] = lab
        dtype = item.get("dataType")
        if dtype is not None:
            if dtype not in DATA_TYPES:
                raise BadRequest(f"{where}.dataType: expected one of {', '.join(DATA_TYPES)}")
            edit["dataType"] = dtype
        out.append(edit)
    return out
