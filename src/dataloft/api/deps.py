"""Request dependencies: the context, the principal, the request-owned unit of work."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from dataloft.context import Context
from dataloft.errors import BadRequest, NotAuthenticated, NotAuthorized
from dataloft.keys import service as keys
from dataloft.keys import tokens
from dataloft.kit.principal import Principal, check_context


async def get_ctx(request: Request) -> Context:
    # async: FastAPI runs a plain `def` dependency in the thread pool, a hop per request
    # for an attribute read.
    return request.app.state.ctx  # type: ignore[no-any-return]


# Declares the bearer scheme in /openapi.json, so Swagger UI's "Authorize" sends the key.
# auto_error=False: the header is read below, so a missing or malformed one gets our 401.
BEARER = HTTPBearer(auto_error=False, description="An API key, or an end-user token.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents: a credential, maybe acting for a user. Read from the
    headers alone; resolving it to a principal needs the database."""

    credential: str
    run_as: str | None
    raw_context: str | None


def credentials_of(request: Request) -> Credentials:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise NotAuthenticated("missing API key: send 'Authorization: Bearer <key>'")
    return Credentials(credential, request.headers.get("x-runas-user-id"),
                       request.headers.get("x-user-context"))


async def get_credentials(request: Request, _bearer: Bearer = None) -> Credentials:
    # async and no database: a handler that resolves the principal in its own read
    # transaction (principal_in) saves a thread-pool hop and a transaction per request.
    return credentials_of(request)


_KEY_IN_HANDLER: set[Callable[..., Any]] = set()
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def key_in_handler(endpoint: _Endpoint) -> _Endpoint:
    """Marks a route that resolves its key in its handler (principal_in after
    get_credentials). FastAPI validates its body before that, so the validation error
    handler asks check_key first: a bad key answers 401 before a bad body's 400, as on a
    route with PrincipalDep, and an unauthenticated caller learns nothing of the body."""
    _KEY_IN_HANDLER.add(endpoint)
    return endpoint


def key_checked_in_handler(request: Request) -> bool:
    return getattr(request.scope.get("route"), "endpoint", None) in _KEY_IN_HANDLER


def check_key(request: Request) -> None:
    """Raise what the principal dependency would raise for this request's credentials."""
    found = credentials_of(request)
    principal_of(request.app.state.ctx, found.credential, found.run_as, found.raw_context)


def get_principal(request: Request, ctx: Annotated[Context, Depends(get_ctx)],
                  _bearer: Bearer = None) -> Principal:
    found = credentials_of(request)
    return principal_of(ctx, found.credential, found.run_as, found.raw_context)


def principal_of(ctx: Context, credential: str, run_as: str | None,
                 raw_context: str | None) -> Principal:
    """The principal of a credential (API key or end-user token), maybe acting for a user."""
    with ctx.db.read() as session:
        return principal_in(session, ctx, Credentials(credential, run_as, raw_context))


def principal_in(session: Session, ctx: Context, found: Credentials) -> Principal:
    """principal_of within the caller's read transaction: the key is read in the same
    snapshot as the rest of the request, so a revoked key fails at once, as it does there."""
    if found.credential.startswith(tokens.PREFIX):
        principal = keys.from_token(session, tokens.verify(ctx.verify_keys, found.credential))
        if found.run_as is not None and found.run_as != principal.user_identifier:
            raise NotAuthorized("an end-user token cannot act for another user")
        return principal
    principal = keys.authenticate(session, found.credential)
    if found.run_as is None:
        if found.raw_context is not None:
            raise BadRequest("X-User-Context needs X-RunAs-User-Id")
        return principal
    return keys.acting_for(principal, found.run_as, _context_header(found.raw_context))


def _context_header(raw: str | None) -> dict[str, str]:
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("X-User-Context must be a JSON object") from exc
    return check_context(value)


def get_session(request: Request, ctx: Annotated[Context, Depends(get_ctx)]) -> Iterator[Session]:
    """The request owns the transaction: commit after the handler returns, roll back if it
    raises. Reads use the concurrent read pool; anything else takes the writer."""
    unit = ctx.db.read() if request.method in ("GET", "HEAD") else ctx.db.write()
    with unit as session:
        yield session
    if request.method not in ("GET", "HEAD"):
        ctx.notify()  # jobs committed by this request can start now


CtxDep = Annotated[Context, Depends(get_ctx)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
CredentialsDep = Annotated[Credentials, Depends(get_credentials)]
# scope="function": commit (or roll back) before the response is sent. The default scope
# runs the code after `yield` once the response is out, so a client could use an id whose
# row is not committed yet, and a failing commit could follow a 200.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# `?wait=SECONDS` on the sync routes: answer once the sync ended or the wait ran out (at
# most sync/wait.py's MAX_WAIT_SECONDS), with the status; without it, answer at once.
WaitQuery = Annotated[float | None, Query(
    ge=0, description="Seconds to wait for the sync to end (at most 60); the answer then "
    "carries its status.")]


def query_pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


Json = dict[str, Any]
