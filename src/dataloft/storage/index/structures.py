"""What the embedded index keeps per dataset: a term index and a vector matrix (with an
optional HNSW graph), each with the fingerprints of the records it was made from, so a
later version can be reached by a delta (delta.py) and a persisted copy (persist.py) can be
checked against the database."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataloft.storage.index import ann
from dataloft.storage.index.delta import Catalog
from dataloft.storage.index.rows import RowTerms


@dataclass(frozen=True)
class Approx:
    graph: ann.Graph
    # Graph key -> matrix row (-1: that row is gone), or None when the graph is the
    # matrix's own; `extra`: matrix rows the graph lacks, scored exactly on every search.
    remap: np.ndarray | None = None
    extra: np.ndarray | None = None

    @property
    def stale(self) -> int:
        if self.remap is None or self.extra is None:
            return 0
        return int((self.remap < 0).sum()) + len(self.extra)


@dataclass
class Matrix:
    pks: np.ndarray  # ascending
    vectors: np.ndarray
    fps: np.ndarray  # the record fingerprint of each row
    seen: Catalog  # every record of the dataset the matrix was made from
    # Set by the graph builder when the dataset is large enough; until then exact.
    approx: Approx | None = None

    @property
    def graph(self) -> ann.Graph | None:
        return None if self.approx is None else self.approx.graph


@dataclass(frozen=True)
class Terms:
    index: RowTerms
    fps: np.ndarray  # the record fingerprint of each document
