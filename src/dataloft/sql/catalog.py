"""What a dataset holds as tables: its typed fields (Informer) and, per tabular file, tables.

Stub with the agreed interface; the governed-SQL work fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataloft.models import Dataset

DATA_TYPES = ("string", "number", "integer", "boolean", "date", "datetime")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    data_type: str  # one of DATA_TYPES


def fields(session: Session, dataset: Dataset) -> list[Field]:
    """The dataset's fields: inferred from its tabular sources, with the user's edits."""
    return []
