"""Short-lived end-user tokens, minted by a backend key for browsers and agents.

A token is `dlt_` + base64url(claims) + "." + base64url(HMAC-SHA256). Claims name the
minting key, so revoking the key revokes every token it minted (checked per request), and
a token never carries more than its user, its context and a subset of the key's write
permissions; it can never mint tokens or manage keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from typing import Any

from dataloft.errors import BadRequest, NotAuthenticated
from dataloft.kit.ids import now_ms

PREFIX = "dlt_"
GRANTABLE = ("files:write", "datasets:write")
MAX_TTL_S = 7 * 24 * 3600
DEFAULT_TTL_S = 3600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(signing_key: bytes) -> bytes:
    # A key derived for this purpose only, so an upload signature is never a token.
    return hmac.new(signing_key, b"dataloft end-user token v1", hashlib.sha256).digest()


def mint(signing_key: bytes, *, key_id: str, key_permissions: frozenset[str],
         user_identifier: str, user_context: dict[str, str], ttl_s: int | None,
         permissions: list[str] | None) -> tuple[str, int]:
    ttl = DEFAULT_TTL_S if ttl_s is None else ttl_s
    if not 1 <= ttl <= MAX_TTL_S:
        raise BadRequest(f"ttl must be between 1 and {MAX_TTL_S} seconds")
    wanted = set(permissions or [])
    if wanted - set(GRANTABLE):
        raise BadRequest(f"a token may only be granted {list(GRANTABLE)}")
    held = {p for p in GRANTABLE if "admin" in key_permissions or p in key_permissions}
    if wanted - held:
        raise BadRequest(f"the key cannot grant {sorted(wanted - held)}: it lacks them")
    expires = now_ms() + ttl * 1000
    claims = {"k": key_id, "u": user_identifier, "c": user_context, "p": sorted(wanted),
              "e": expires, "n": secrets.token_hex(8)}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(_key(signing_key), body.encode(), hashlib.sha256).digest())
    return f"{PREFIX}{body}.{sig}", expires


def verify(signing_keys: Sequence[bytes], token: str) -> dict[str, Any]:
    """The claims of a token signed by any of the keys still in use (current first: a
    rotation keeps the tokens already out valid until they expire)."""
    bad = NotAuthenticated("the end-user token is invalid or expired")
    body, _, sig = token[len(PREFIX):].partition(".")
    if not sig or not sig.isascii() or not any(
            hmac.compare_digest(sig, _b64(hmac.new(_key(k), body.encode(),
                                                   hashlib.sha256).digest()))
            for k in signing_keys):
        raise bad
    try:
        claims = json.loads(_unb64(body))
        if not isinstance(claims, dict) or int(claims["e"]) < now_ms():
            raise bad
        return claims
    except (ValueError, KeyError, TypeError) as exc:
        raise bad from exc
