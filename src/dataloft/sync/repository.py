"""All SQL of the sync and re-index jobs beyond the records, datasets and files they use."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dataloft.models import Dataset, Job, Record


def datasets_of_other_embedders(session: Session, embedder_name: str, dimension: int
                                ) -> Sequence[str]:
    """Ids of the datasets embedded with another model, or with vectors of another length
    under the same model name."""
    return session.scalars(select(Dataset.id).where(
        Dataset.embedding_model.is_not(None),
        or_(Dataset.embedding_model != embedder_name,
            Dataset.embedding_dimension != dimension))).all()


def serial_keys_of_live_jobs(session: Session, kind: str) -> set[str | None]:
    """The serial keys of the kind's jobs that are queued or running."""
    return set(session.scalars(select(Job.serial_key).where(
        Job.kind == kind, Job.state.in_(("queued", "running")))))


def texts_of_dataset(session: Session, dataset_id: str) -> list[tuple[int, str]]:
    """(pk, text) of every record of the dataset."""
    return [(pk, text) for pk, text in session.execute(
        select(Record.pk, Record.text).where(Record.dataset_id == dataset_id))]


def records_of_dataset(session: Session, dataset_id: str, pks: Sequence[int]
                       ) -> Sequence[Record]:
    """The dataset's records among these primary keys."""
    return session.scalars(select(Record).where(
        Record.dataset_id == dataset_id, Record.pk.in_(list(pks)))).all()
