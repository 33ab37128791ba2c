"""All SQL over the datasets and files of end-user and context scopes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataloft.kit import policy
from dataloft.kit.principal import Principal
from dataloft.models import Attachment, Dataset, File


def dataset_of_scope(session: Session, assistant_id: str, owner_scope: str) -> Dataset | None:
    """The one dataset an agent keeps for a scope, if made yet."""
    return session.scalar(select(Dataset).where(Dataset.assistant_id == assistant_id,
                                                Dataset.owner_scope == owner_scope))


def scope_file_named(session: Session, principal: Principal, dataset_id: str,
                     owner_scope: str, filename: str) -> File | None:
    """The scope's own file called filename in its dataset, as far as the principal may see
    it (other files a backend attached there are not part of the scope)."""
    return session.scalar(
        select(File).join(Attachment, Attachment.file_id == File.id)
        .where(Attachment.dataset_id == dataset_id, File.owner_scope == owner_scope,
               policy.files(principal))
        .where(File.name == filename))


def file_names(session: Session, principal: Principal, dataset_id: str
               ) -> Sequence[str | None]:
    """Names of the dataset's files the principal may see, in order."""
    return session.scalars(select(File.name).join(Attachment, Attachment.file_id == File.id)
                           .where(Attachment.dataset_id == dataset_id,
                                  policy.files(principal))
                           .order_by(File.name)).all()
