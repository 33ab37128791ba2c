"""What happens to datasets and to the files attached to them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from dataloft.datasets import repository
from dataloft.datasets.schemas import SETTING_NAMES, AttachBody, DatasetCreate, DetachBody
from dataloft.errors import Conflict, NotAuthorized, NotFound, not_found
from dataloft.events import service as events
from dataloft.files import service as files
from dataloft.kit.ids import new_id, now_ms
from dataloft.kit.principal import Principal
from dataloft.models import Attachment, Dataset
from dataloft.records import repository as records
from dataloft.storage.index.base import Index
from dataloft.tables import catalog


def _check_alias(session: Session, principal: Principal, owner_scope: str, alias: str | None,
                 dataset_id: str | None) -> None:
    if alias is None:
        return
    clash = repository.alias_holder(session, principal, owner_scope, alias)
    if clash is not None and clash != dataset_id:
        raise Conflict(f"alias {alias!r} is already used by another dataset")


def _apply(dataset: Dataset, fields: dict[str, Any]) -> None:
    settings = dict(dataset.settings)
    for key, value in fields.items():
        if key in SETTING_NAMES:
            settings[key] = value
        elif key == "meta":
            dataset.meta = value or {}
        elif key == "visibility" and value is None:
            continue  # on create, null is the default (update refuses it first)
        else:
            setattr(dataset, key, value)
    dataset.settings = {k: v for k, v in settings.items() if v is not None}


def create(session: Session, principal: Principal, body: DatasetCreate) -> Dataset:
    principal.require("datasets:write")
    _check_alias(session, principal, principal.own_scope, body.alias, None)
    dataset = Dataset(id=new_id("ds"), org_id=principal.org_id, visibility="private",
                      owner_scope=principal.own_scope, meta={}, settings={})
    _apply(dataset, body.model_dump(exclude_unset=True))
    repository.save_dataset(session, dataset)
    return dataset


def get(session: Session, principal: Principal, dataset_id: str) -> Dataset:
    dataset = repository.visible_dataset(session, principal, dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    return dataset


def searched(session: Session, principal: Principal, dataset_id: str) -> repository.Searched:
    """`get` for a search: the same policy, only the columns a search reads."""
    dataset = repository.searched_dataset(session, principal, dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    return dataset


def get_owned(session: Session, principal: Principal, dataset_id: str) -> Dataset:
    """A dataset the principal may change: visible, and its own if acting for an end-user."""
    dataset = get(session, principal, dataset_id)
    if principal.is_end_user and dataset.owner_scope != principal.own_scope:
        raise NotAuthorized("end-users may only change their own datasets")
    return dataset


def listing(principal: Principal) -> Select[Any]:
    return repository.datasets_listing(principal)


def update(session: Session, principal: Principal, dataset_id: str,
           body: DatasetCreate) -> Dataset:
    principal.require("datasets:write")
    dataset = get_owned(session, principal, dataset_id)
    fields = body.model_dump(exclude_unset=True)
    files.refuse_null_visibility(fields)
    if "alias" in fields:
        _check_alias(session, principal, dataset.owner_scope, fields["alias"], dataset.id)
    if "fields" in fields:
        edits = fields.pop("fields")
        settings = {k: v for k, v in dataset.settings.items() if k != "fields"}
        if edits is not None:
            settings["fields"] = catalog.check_field_edits(edits)
        dataset.settings = settings
    _apply(dataset, fields)
    dataset.updated_at = now_ms()
    return dataset


def delete(session: Session, index: Index, principal: Principal, dataset_id: str) -> Dataset:
    principal.require("datasets:write")
    dataset = get_owned(session, principal, dataset_id)
    records.delete_where(session, index, org_id=dataset.org_id, dataset_id=dataset.id)
    catalog.drop(session, dataset.org_id, dataset_id=dataset.id)
    repository.delete_dataset(session, dataset)
    return dataset


def adopt_embedder(dataset: Dataset, name: str, dimension: int) -> bool:
    """A dataset takes the embedder of its first indexing; True if its vectors are `name`'s."""
    if dataset.embedding_model is None:
        dataset.embedding_model, dataset.embedding_dimension = name, dimension
    return dataset.embedding_model == name


def render(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "description": dataset.description,
        "meta": dataset.meta,
        "visibility": dataset.visibility,
        "alias": dataset.alias,
        "store": "default",
        "embeddingModel": dataset.embedding_model,
        **dataset.settings,
        "createdAt": dataset.created_at,
        "updatedAt": dataset.updated_at,
    }


# --- attachments -----------------------------------------------------------------------------

def attachment(session: Session, dataset_id: str, file_id: str) -> Attachment | None:
    return repository.attachment(session, dataset_id, file_id)


def attached_files(principal: Principal, dataset_id: str) -> Select[Any]:
    return repository.attached_files_listing(principal, dataset_id)


def attach(session: Session, principal: Principal, dataset_id: str, file_id: str,
           body: AttachBody) -> Attachment:
    principal.require("datasets:write")
    dataset = get_owned(session, principal, dataset_id)
    file = files.get(session, principal, file_id)
    link = attachment(session, dataset.id, file.id)
    if link is None:
        link = Attachment(id=new_id("att"), org_id=dataset.org_id, dataset_id=dataset.id,
                          file_id=file.id, type=body.type)
    else:
        # Re-attaching stands for removing and recreating the attachment (seed 004): the
        # new attachment was never synced, so no sync cooldown carries over.
        link.type = body.type
        link.sync_requested_at = None
    repository.save_attachment(session, link)
    events.emit(session, dataset.org_id, "file.attached", dataset_id=dataset.id,
                file_id=file.id, attachmentType=body.type)
    return link


def detach(session: Session, index: Index, principal: Principal, dataset_id: str,
           file_id: str, body: DetachBody) -> None:
    principal.require("datasets:write")
    dataset = get_owned(session, principal, dataset_id)
    files.get(session, principal, file_id)  # an invisible file answers like a missing one
    link = attachment(session, dataset.id, file_id)
    if link is None:
        raise NotFound(f"file {file_id!r} is not attached to dataset {dataset_id!r}")
    deleted = 0
    if body.deleteRecords:
        deleted = records.delete_where(session, index, org_id=dataset.org_id,
                                       dataset_id=dataset.id, file_id=file_id)
    # A detached file is no table (whatever deleteRecords says: tables follow attachments).
    catalog.drop(session, dataset.org_id, dataset_id=dataset.id, file_id=file_id)
    repository.delete_attachment(session, link)
    events.emit(session, dataset.org_id, "file.detached", dataset_id=dataset.id,
                file_id=file_id, deletedRecords=deleted)


def source_links(session: Session, file_id: str) -> list[Attachment]:
    """The attachments that make `file_id` a source of a dataset."""
    return repository.source_links(session, file_id)
