"""Alembic environment. The URL comes from the caller (dataloft.kit.migrate), not settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from dataloft.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    # Index adapters own their dialect-specific tables (FTS5 shadow tables, ...).
    return not (type_ == "table" and reflected and compare_to is None
                and ((name or "").startswith("records_fts") or name == "record_index"))


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: sqlalchemy.url is not configured")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
