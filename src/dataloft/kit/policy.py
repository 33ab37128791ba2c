"""The access policy: one rule, compiled to SQL for queries and evaluated in Python for
single objects. Every read path asks it; nothing else decides who sees what.

- Nothing of an org is visible outside it (public downloads aside, see files API).
- A backend key sees its whole org, narrowed to its datasets if the key is limited.
- Acting for an end-user it sees exactly: org-scoped `protected`/`public` items, that
  user's own items (`user:{id}`), and context-scoped items (`context:{k}:{v}`) whose pair
  is in the user's context.
- A record or event is visible when its dataset is, and its file too if it has one.

Writes are limited like reads (issue #11):
- A file may be changed or deleted by whoever sees it, if acting for an end-user only in its
  own scope, and if the key is dataset-limited only when every dataset using the file (by
  attachment or by records) is within the key's datasets.
- A key manages (sees, revokes) only keys whose rights are a subset of its own: no more
  permissions, and no dataset outside its datasets.
- An assistant's instructions are shown to end-users and dataset-limited keys only with
  `assistant:write`.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import aliased

from dataloft.kit.principal import Principal
from dataloft.models import ApiKey, Attachment, Dataset, Event, File, Record

SHARED = ("protected", "public")


def scope_allows(principal: Principal, owner_scope: str, visibility: str) -> bool:
    if not principal.is_end_user:
        return True
    return ((owner_scope == "org" and visibility in SHARED)
            or owner_scope == principal.own_scope
            or owner_scope in principal.context_scopes())


def _scope_sql(principal: Principal, owner_scope: Any, visibility: Any) -> ColumnElement[bool]:
    if not principal.is_end_user:
        return true()
    return or_(and_(owner_scope == "org", visibility.in_(SHARED)),
               owner_scope == principal.own_scope,
               owner_scope.in_(principal.context_scopes()) if principal.user_context else false())


def _dataset_limit(principal: Principal, dataset_id: Any) -> ColumnElement[bool]:
    if principal.datasets is None:
        return true()
    limited: ColumnElement[bool] = dataset_id.in_(sorted(principal.datasets))
    return limited


# --- datasets ---------------------------------------------------------------------------------

def datasets(principal: Principal) -> ColumnElement[bool]:
    return and_(Dataset.org_id == principal.org_id, _dataset_limit(principal, Dataset.id),
                _scope_sql(principal, Dataset.owner_scope, Dataset.visibility))


class DatasetLike(Protocol):
    """The columns the dataset rule reads: an ORM row, or a Core row of them."""

    @property
    def id(self) -> str: ...
    @property
    def org_id(self) -> str: ...
    @property
    def owner_scope(self) -> str: ...
    @property
    def visibility(self) -> str: ...


def dataset_allowed(principal: Principal, dataset: DatasetLike) -> bool:
    return (dataset.org_id == principal.org_id
            and (principal.datasets is None or dataset.id in principal.datasets)
            and scope_allows(principal, dataset.owner_scope, dataset.visibility))


# --- files ------------------------------------------------------------------------------------

def _file_in_allowed_dataset(principal: Principal, file_id: Any) -> ColumnElement[bool]:
    if principal.datasets is None:
        return true()
    # An alias: callers often join Attachment themselves, and the subquery must not
    # correlate to their row.
    link = aliased(Attachment)
    return exists(select(link.id).where(
        link.file_id == file_id, link.dataset_id.in_(sorted(principal.datasets))))


def files(principal: Principal) -> ColumnElement[bool]:
    return and_(File.org_id == principal.org_id, _file_in_allowed_dataset(principal, File.id),
                _scope_sql(principal, File.owner_scope, File.visibility))


def _used_only_within_limit(principal: Principal, file_id: Any) -> ColumnElement[bool]:
    if principal.datasets is None:
        return true()
    allowed = sorted(principal.datasets)
    link, record = aliased(Attachment), aliased(Record)
    return and_(
        ~exists(select(link.id).where(link.file_id == file_id,
                                      link.dataset_id.not_in(allowed))),
        # Records stay when a file is detached, and deleting the file deletes them too.
        ~exists(select(record.pk).where(record.file_id == file_id,
                                        record.dataset_id.not_in(allowed))))


def files_changeable(principal: Principal) -> ColumnElement[bool]:
    """Files the principal may change (content, metadata) or delete."""
    owned = File.owner_scope == principal.own_scope if principal.is_end_user else true()
    return and_(files(principal), owned, _used_only_within_limit(principal, File.id))


# --- records and events -----------------------------------------------------------------------

def _visible_dataset(principal: Principal, dataset_id: Any) -> ColumnElement[bool]:
    return exists(select(Dataset.id).where(Dataset.id == dataset_id, datasets(principal)))


def _visible_file_or_none(principal: Principal, file_id: Any) -> ColumnElement[bool]:
    # Only the file's scope counts here: a record stays visible in a dataset the principal
    # may read even if its file was detached from it.
    if not principal.is_end_user:
        return true()
    return or_(file_id.is_(None), exists(select(File.id).where(
        File.id == file_id, File.org_id == principal.org_id,
        _scope_sql(principal, File.owner_scope, File.visibility))))


def records(principal: Principal) -> ColumnElement[bool]:
    """Records of visible datasets whose file (if any) is visible too."""
    base = Record.org_id == principal.org_id
    if not principal.is_end_user and principal.datasets is None:
        return base
    return and_(base, _visible_dataset(principal, Record.dataset_id),
                _visible_file_or_none(principal, Record.file_id))


def events(principal: Principal) -> ColumnElement[bool]:
    base = Event.org_id == principal.org_id
    if not principal.is_end_user and principal.datasets is None:
        return base
    return and_(base, _visible_dataset(principal, Event.dataset_id),
                _visible_file_or_none(principal, Event.file_id))


# --- keys and assistants ----------------------------------------------------------------------

def key_manageable(principal: Principal, key: ApiKey) -> bool:
    """A key the principal may see and revoke: one of its org whose rights are a subset of
    the principal's (so a limited key sees only keys within its datasets)."""
    if key.org_id != principal.org_id or principal.is_end_user:
        return False
    # Every right of the key is one the principal holds (`admin` implies the others, never
    # `instance:admin`, which only an instance admin holds).
    if not all(principal.can(p) for p in key.permissions):
        return False
    if principal.datasets is None:
        return True
    return key.datasets is not None and set(key.datasets) <= principal.datasets


def sees_instructions(principal: Principal) -> bool:
    """An assistant's system instructions are configuration, not knowledge: end-users and
    dataset-limited keys read them only if they may also write them."""
    if not principal.is_end_user and principal.datasets is None:
        return True
    return principal.can("assistant:write")
