"""End-user and context scoped datasets: the Inconvo datasets API over our files/datasets.

Each (agent, scope) pair keeps one dataset, owned by that scope (`user:{id}` or
`context:{key}:{value}`); an upload becomes a file of the same scope, attached as a source
and synced at once. Uploading a filename again in the same scope gives the file a new
version. Only CSV and JSON are accepted, decided by content, at most 10 MB.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from dataloft.assistants import service as assistants
from dataloft.datasets import repository as dataset_rows
from dataloft.datasets import service as datasets
from dataloft.errors import BadRequest, NotAuthorized, NotFound, UnsupportedMediaType
from dataloft.files import repository as file_rows
from dataloft.files import service as files
from dataloft.kit import policy
from dataloft.kit.ids import new_id
from dataloft.kit.principal import CONTEXT_KEY, CONTEXT_PART, Principal, check_user_identifier
from dataloft.models import Assistant, Attachment, Dataset, File
from dataloft.quotas import service as quotas
from dataloft.scoped import repository
from dataloft.storage.blobs.base import BlobInfo
from dataloft.sync import service as sync

# Seeds 000/001 promise 10 MB per file: decimal, as the seeds write it (api/limits.py lets
# these routes past the general JSON body cap, which is smaller).
MAX_BYTES = 10_000_000


@dataclass(frozen=True)
class Scope:
    owner: str  # owner_scope of the files and the dataset
    path: str  # the middle of the seed's path: userIdentifier/{id} or userContext/{k}:{v}

    @classmethod
    def user(cls, user_identifier: str) -> Scope:
        check_user_identifier(user_identifier)
        return cls(f"user:{user_identifier}", f"userIdentifier/{user_identifier}")

    @classmethod
    def context(cls, key: str, value: str) -> Scope:
        if not CONTEXT_KEY.match(key):
            raise BadRequest("contextKey must be 1-256 characters of letters, digits and _ - . @")
        if not CONTEXT_PART.match(value):
            raise BadRequest("contextValue must be 1-256 characters of letters, digits "
                             "and _ - : . @")
        return cls(f"context:{key}:{value}", f"userContext/{key}:{value}")


def clean_filename(raw: str | None) -> str:
    name = unicodedata.normalize("NFC", raw or "")
    if (not name or name in (".", "..") or "/" in name or "\\" in name or ".." in name
            or any(unicodedata.category(c)[0] == "C" for c in name) or len(name) > 255):
        raise BadRequest("filename must be 1-255 characters with no path separators, '..', "
                         "control characters or NUL")
    return name


def sniff_tabular(data: bytes, filename: str) -> str:
    """'text/csv' or 'application/json', judged by content; anything else is a 415."""
    refuse = UnsupportedMediaType("only CSV and JSON files are accepted")
    if data.startswith((b"PK\x03\x04", b"%PDF", b"\x1f\x8b", b"\x89PNG", b"\xff\xd8")):
        raise refuse
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise refuse from exc
    if "\x00" in text[:8192]:
        raise refuse
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            json.loads(text)
            return "application/json"
        except (ValueError, RecursionError) as exc:
            if filename.lower().endswith(".json"):
                raise BadRequest(f"{filename} is not valid JSON: {exc}") from exc
    if re.search(r"\.(jsonl|ndjson)$", filename, re.I):
        raise refuse
    try:
        rows = list(csv.reader(io.StringIO(text[:65536])))
    except csv.Error as exc:
        raise refuse from exc
    if not rows or not any(len(r) > 1 for r in rows[:5]) and len(rows) < 2:
        raise refuse
    return "text/csv"


def agent(session: Session, principal: Principal, agent_id: str | None) -> Assistant:
    if agent_id is None:
        return assistants.default(session, principal.org_id)
    return assistants.get(session, principal, agent_id)


def _check_scope(principal: Principal, scope: Scope) -> None:
    # An end-user reaches only its own scope and its contexts; anything else does not exist.
    if not policy.scope_allows(principal, scope.owner, "private"):
        raise NotFound("no such dataset scope")


def _check_writable(principal: Principal, scope: Scope) -> None:
    _check_scope(principal, scope)
    # Context files are shared reference data: members read them, the backend writes them.
    if principal.is_end_user and scope.owner != principal.own_scope:
        raise NotAuthorized("end-users may only change files of their own user scope")


def scope_dataset(session: Session, agent_: Assistant, scope: Scope, *, create: bool
                  ) -> Dataset | None:
    found = repository.dataset_of_scope(session, agent_.id, scope.owner)
    if found is None and create:
        found = Dataset(id=new_id("ds"), org_id=agent_.org_id, assistant_id=agent_.id,
                        owner_scope=scope.owner, visibility="private", meta={}, settings={},
                        name=f"{agent_.name or agent_.id} · {scope.path}")
        dataset_rows.save_dataset(session, found)
    return found


def _named(session: Session, principal: Principal, dataset: Dataset, scope: Scope,
           filename: str) -> File | None:
    if "\x00" in filename:
        return None  # no stored name has one (clean_filename), and PostgreSQL refuses NUL
    return repository.scope_file_named(session, principal, dataset.id, scope.owner, filename)


def _check_dataset(principal: Principal, dataset: Dataset | None) -> None:
    # A dataset-limited key reaches only scope datasets it was given.
    if principal.datasets is not None and (dataset is None
                                           or not policy.dataset_allowed(principal, dataset)):
        raise NotFound("no such dataset scope")


def path_of(agent_: Assistant, scope: Scope, filename: str) -> str:
    return f"{agent_.org_id}/{agent_.id}/{scope.path}/{filename}"


def store(session: Session, principal: Principal, agent_id: str | None, scope: Scope,
          filename: str, notes: str | None, blob: BlobInfo, content_type: str,
          max_attempts: int) -> dict[str, Any]:
    principal.require("files:write")
    _check_writable(principal, scope)
    agent_ = agent(session, principal, agent_id)
    if scope.owner.startswith("context:"):
        assistants.check_context_key(agent_, scope.owner.split(":")[1])
    _check_dataset(principal, scope_dataset(session, agent_, scope, create=False))
    dataset = scope_dataset(session, agent_, scope, create=True)
    assert dataset is not None
    file = _named(session, principal, dataset, scope, filename)
    if file is None:
        quotas.charge(session, agent_.org_id, files=1)
        file = File(id=new_id("file"), org_id=agent_.org_id, name=filename, description=notes,
                    owner_scope=scope.owner, visibility="private", meta={})
        file_rows.save_file(session, file)
        link = Attachment(id=new_id("att"), org_id=agent_.org_id, dataset_id=dataset.id,
                          file_id=file.id, type="source")
        dataset_rows.save_attachment(session, link)
    else:
        files.check_changeable(session, principal, file)
        # The file's row lock first, as a sync's commit and a deletion take it: a replace
        # that locked the attachment before the file could deadlock with them on PostgreSQL.
        file_rows.lock_file(session, file)
        found = datasets.attachment(session, dataset.id, file.id)
        assert found is not None
        link = found
        if notes is not None:
            file.description = notes
    files.set_content(session, file, blob, content_type, filename)
    sync.queue_sync(session, dataset, link, max_attempts)
    return {"file": {"name": filename, "path": path_of(agent_, scope, filename),
                     "size": blob.size}}


def names(session: Session, principal: Principal, agent_id: str | None, scope: Scope
          ) -> dict[str, Any]:
    _check_scope(principal, scope)
    dataset = scope_dataset(session, agent(session, principal, agent_id), scope, create=False)
    if dataset is None:
        return {"files": []}
    _check_dataset(principal, dataset)
    found = repository.file_names(session, principal, dataset.id)
    return {"files": [name for name in found if name is not None]}


def remove(session: Session, index: Any, principal: Principal, agent_id: str | None,
           scope: Scope, filename: str) -> dict[str, Any]:
    principal.require("files:write")
    _check_writable(principal, scope)
    dataset = scope_dataset(session, agent(session, principal, agent_id), scope, create=False)
    _check_dataset(principal, dataset)
    file = _named(session, principal, dataset, scope, filename) if dataset is not None else None
    if file is None:
        raise NotFound(f"no file named {filename!r} in this scope")
    files.check_changeable(session, principal, file)
    files.delete_unchecked(session, index, file)
    return {"file": filename, "success": True}
