"""Request dependencies: the context, the principal, the request-owned unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from dataloft.context import Context
from dataloft.errors import NotAuthenticated
from dataloft.keys import service as keys
from dataloft.kit.principal import Principal


def get_ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def get_principal(request: Request, ctx: Annotated[Context, Depends(get_ctx)]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("missing API key: send 'Authorization: Bearer <key>'")
    with ctx.db.read() as session:
        return keys.authenticate(session, token.strip())


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
# scope="function": commit (or roll back) before the response is sent. The default scope
# runs the code after `yield` once the response is out, so a client could use an id whose
# row is not committed yet, and a failing commit could follow a 200.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def query_pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


Json = dict[str, Any]
