"""Issue #11, finding 12 (Build 7): the signing key of end-user tokens and upload URLs is
stored encrypted under a master key kept outside the database; a plaintext key of an older
version is encrypted on start; rotation keeps what was signed valid until it expires.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from dataloft.app import create_app
from dataloft.config import Settings
from dataloft.keys import signing, tokens
from dataloft.keys.signing import SecretKeyError
from dataloft.kit.ids import now_ms
from dataloft.models import InstanceSecret
from tests.conftest import KEY, BackendSettings

AUTH = {"Authorization": f"Bearer {KEY}"}


def secrets_of(client: TestClient) -> dict[str, str]:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.read() as s:
        return {r.name: r.value for r in s.scalars(select(InstanceSecret))}


def token(client: TestClient) -> str:
    r = client.post("/api/v1/token/create", json={"userIdentifier": "u1"})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def works(client: TestClient, tok: str) -> bool:
    r = client.get("/api/v1/file/list", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def ticket(client: TestClient) -> tuple[str, str]:
    fid = client.post("/api/v1/file/create", json={}).json()["id"]
    r = client.post(f"/api/v1/file/{fid}/upload",
                    json={"file": {"type": "text/plain", "size": 2}})
    return fid, str(r.json()["uploadRequest"]["url"])


def app(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), headers=AUTH)


@pytest.fixture
def made(tmp_path: Path, backend_settings: BackendSettings) -> Settings:
    return backend_settings(tmp_path)


def test_the_key_is_stored_encrypted_under_a_key_file(made: Settings) -> None:
    with app(made) as c:
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        stored = secrets_of(c)
        tok = token(c)
        assert works(c, tok)
    assert list(stored) == [n for n in stored if n.startswith(signing.PREFIX)] and stored
    for value in stored.values():
        assert value.startswith(signing.SCHEME)
        assert ctx.signing_key.hex() not in value and ctx.signing_key.hex().upper() not in value
    key_file = made.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The same database and key file: the same key, the token still valid.
    with app(made) as c:
        assert works(c, tok)
    # Another master key cannot open it: the server refuses to start.
    other = made.model_copy(update={"secret_key": "not the one it was made with"})
    with pytest.raises(SecretKeyError), app(other):
        pass


def test_a_plaintext_key_is_encrypted_on_start(made: Settings) -> None:
    with app(made) as c:
        key_id = str(c.get("/api/v1/key/list").json()["items"][0]["id"])
    legacy = os.urandom(32)
    ctx = c.app.state.ctx  # type: ignore[attr-defined]
    # What an older version left: the key as plaintext hex.
    with ctx.db.write() as s:
        s.execute(delete(InstanceSecret))
        s.add(InstanceSecret(name=signing.LEGACY, value=legacy.hex()))
    old, _ = tokens.mint(legacy, key_id=key_id, key_permissions=frozenset({"admin"}),
                         user_identifier="u1", user_context={}, ttl_s=600, permissions=[])
    with app(made) as c:
        stored = secrets_of(c)
        assert signing.LEGACY not in stored and len(stored) == 1
        assert legacy.hex() not in next(iter(stored.values()))
        assert c.app.state.ctx.signing_key == legacy  # type: ignore[attr-defined]
        assert works(c, old)


def test_rotation_keeps_tokens_and_upload_urls_valid(made: Settings, backend: str) -> None:
    with app(made) as c:
        first = token(c)
        fid, url = ticket(c)
        before = c.app.state.ctx.signing_key  # type: ignore[attr-defined]
    env = {**os.environ, "DATALOFT_DATA_DIR": str(made.data_dir),
           "DATALOFT_DATABASE_URL": made.database_url, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "dataloft.cli", "rotate-signing-key"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with app(made) as c:
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        assert ctx.signing_key != before and ctx.verify_keys == (ctx.signing_key, before)
        assert len(secrets_of(c)) == 2
        assert works(c, first)
        second = token(c)
        assert works(c, second)
        # The new token is signed with the new key only.
        with pytest.raises(Exception, match="invalid or expired"):
            tokens.verify([before], second)
        if backend == "sqlite":  # our own signed PUT (S3 presigns its own URLs)
            r = TestClient(c.app).put(url, content=b"hi", headers={"Content-Type": "text/plain"})
            assert r.status_code == 200, r.text


def test_replaced_keys_go_once_their_grace_has_passed(made: Settings) -> None:
    with app(made) as c:
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
    master = signing.master_key("", made.secret_key_path)
    with ctx.db.write() as s:
        signing.rotate(s, master)
    grace = 60.0
    with ctx.db.write() as s:
        assert len(signing.load(s, master, grace)) == 2
    with ctx.db.write() as s:
        ring: Any = signing.load(s, master, grace, now=now_ms() + 61_000)
    assert len(ring) == 1
    with ctx.db.read() as s:
        assert len(list(s.scalars(select(InstanceSecret)))) == 1
