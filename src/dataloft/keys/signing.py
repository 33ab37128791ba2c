"""The instance's signing keys (end-user tokens, signed upload URLs), encrypted at rest.

The keys live in `instance_secrets` so every replica shares them, each encrypted with
AES-256-GCM under a master key that is never in the database: `DATALOFT_SECRET_KEY`, or a
key file (`DATALOFT_SECRET_KEY_FILE`, default `{data_dir}/secret.key`) created with mode
0600 on first start. A database copy alone signs nothing.

Rotation adds a new key and signs with it from then on; older keys still verify until
everything they signed has expired (the longest token TTL or upload-URL TTL after the next
key took over), then they are deleted. A plaintext key of an older version is encrypted in
place on start, unchanged, so tokens and URLs already out stay valid.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from dataloft.keys import repository
from dataloft.kit.ids import now_ms

log = logging.getLogger("dataloft")

PREFIX = "signing_key."
LEGACY = "upload_signing_key"  # before encryption: the key as plaintext hex
SCHEME = "aesgcm1:"
NONCE_BYTES = 12


class SecretKeyError(RuntimeError):
    """The master key cannot open the stored signing keys (a different key or key file)."""


def master_key(secret_key: str, key_file: Path) -> bytes:
    """The 256-bit master key: from the setting, else from the key file (made if absent)."""
    text = secret_key or _key_file(key_file)
    return hashlib.sha256(text.encode()).digest()


def _key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            log.warning("%s is readable by other users; it should be mode 0600", path)
        text = path.read_text().strip()
        if not text:
            raise SecretKeyError(f"the key file {path} is empty") from None
        return text
    text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    return text


def _seal(master: bytes, name: str, key: bytes) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(master).encrypt(nonce, key, name.encode())
    return SCHEME + base64.b64encode(nonce + sealed).decode()


def _open(master: bytes, name: str, value: str) -> bytes:
    if not value.startswith(SCHEME):
        raise SecretKeyError(f"instance secret {name!r} is in an unknown format")
    raw = base64.b64decode(value[len(SCHEME):])
    try:
        return AESGCM(master).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], name.encode())
    except InvalidTag:
        raise SecretKeyError(
            "the signing keys were encrypted with another master key: set "
            "DATALOFT_SECRET_KEY (or DATALOFT_SECRET_KEY_FILE) to the one this deployment "
            "started with; every replica needs the same") from None


def _name(created_ms: int) -> str:
    return f"{PREFIX}{created_ms:015d}"


def load(session: Session, master: bytes, grace_s: float, now: int | None = None
         ) -> list[bytes]:
    """The signing keys still in use, the current one first. Makes the first key, or
    encrypts a legacy plaintext one, and deletes keys whose grace has passed."""
    now = now_ms() if now is None else now
    legacy = repository.secret(session, LEGACY)
    stored = repository.secrets_named(session, PREFIX)
    if legacy is not None:
        # Oldest possible name: any key made by a rotation sorts after it.
        name = _name(0) if stored else _name(now)
        repository.put_secret(session, name, _seal(master, name, bytes.fromhex(legacy)))
        repository.drop_secrets(session, [LEGACY])
        stored[name] = repository.secret(session, name) or ""
    if not stored:
        rotate(session, master, now)
        stored = repository.secrets_named(session, PREFIX)
    names = sorted(stored)
    expired = [old for old, newer in zip(names, names[1:], strict=False)
               if int(newer[len(PREFIX):]) + grace_s * 1000 < now]
    repository.drop_secrets(session, expired)
    return [_open(master, n, stored[n]) for n in reversed(names) if n not in expired]


def rotate(session: Session, master: bytes, now: int | None = None) -> str:
    """Add a new signing key; it signs from the next start of each API process on."""
    names = sorted(repository.secrets_named(session, PREFIX))
    created = now_ms() if now is None else now
    if names:
        created = max(created, int(names[-1][len(PREFIX):]) + 1)
    name = _name(created)
    repository.put_secret(session, name, _seal(master, name, secrets.token_bytes(32)))
    return name
