"""Cluster-wide locks: PostgreSQL advisory locks, no-ops where SQLite's one writer already
serialises every write transaction.

Keys are strings hashed to PostgreSQL's signed 64-bit lock space under a namespace, so our
locks cannot collide with another application's integer locks by accident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool


def lock_id(name: str) -> int:
    digest = hashlib.blake2b(f"dataloft:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def try_transaction_lock(session: Session, name: str) -> bool:
    """Take `name` until the session's transaction ends; False (at once) if another
    transaction holds it. On SQLite the write transaction is the lock: always True."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"),
                                {"id": lock_id(name)}).scalar())


@contextmanager
def exclusive(url: str, name: str) -> Iterator[None]:
    """Hold `name` across transactions, waiting for it (start-up chores that one process
    among many must do alone). It lives on a connection of its own, so the holder's work,
    migrations included, runs outside it and a crash of the holder releases it."""
    if not url.startswith("postgresql"):
        yield
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id(name)})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id(name)})
                conn.commit()
    finally:
        engine.dispose()
