"""SQLite index adapter: FTS5 (porter stemming) keyed by records.pk, BM25 ranking."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Float, Integer, column, select, text
from sqlalchemy.orm import Session

from dataloft.models import Record
from dataloft.storage.index.base import tokens

_BATCH = 500


class SqliteIndex:
    def added(self, session: Session, rows: Sequence[tuple[int, str]]) -> None:
        for i in range(0, len(rows), _BATCH):
            session.execute(
                text("INSERT INTO records_fts(rowid, text) VALUES (:pk, :text)"),
                [{"pk": pk, "text": t} for pk, t in rows[i : i + _BATCH]],
            )

    def removed(self, session: Session, pks: Sequence[int]) -> None:
        for i in range(0, len(pks), _BATCH):
            chunk = list(pks[i : i + _BATCH])
            marks = ",".join(str(int(pk)) for pk in chunk)
            session.execute(text(f"DELETE FROM records_fts WHERE rowid IN ({marks})"))

    def search(self, session: Session, dataset_ids: Sequence[str], query: str, take: int,
               restrict: ColumnElement[bool] | None = None) -> list[tuple[int, float]]:
        terms = tokens(query)
        if not terms or not dataset_ids:
            return []
        # Quoted terms OR-ed: user text never reaches FTS5 query syntax.
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        fts = (text("SELECT rowid AS pk, bm25(records_fts) AS rank FROM records_fts "
                   "WHERE records_fts MATCH :match")
               .columns(column("pk", Integer), column("rank", Float)).subquery("fts"))
        stmt = (
            select(fts.c.pk, fts.c.rank)
            .join(Record, Record.pk == fts.c.pk)
            .where(Record.dataset_id.in_(list(dataset_ids)))
            .order_by(fts.c.rank)
            .limit(take)
        )
        if restrict is not None:
            stmt = stmt.where(restrict)
        return [(int(pk), -float(rank)) for pk, rank in session.execute(stmt, {"match": match})]
